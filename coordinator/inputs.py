"""Everything that must be true before actors start: inputs parsed, target up, plan made.

The order matters for exit codes: user input (model, spec, results directory) is checked
first and fails with 2; only then is the target touched, and a target that does not come
up fails with 3 within a bounded time. A target that comes up (accepts TCP) but answers the
pre-flight GET with garbage, nothing, or an answer that never ends is not "unreachable": it
is broken, a verdict (exit 1, see ``coordinator.broken_target``). No actor is spawned before
all of it holds.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from actors import slices
from actors.walker import Target
from coordinator.config import ConfigError, RunConfig
from coordinator.planning import WalkerPlan, plan_walkers
from coordinator.preflight import BROKEN_CONFIRMATIONS, PROBE_TIMEOUT_S, Preflight, preflight
from protocols.h2_frames import is_server_preface
from protocols.http1 import RequestBuildError

REACHABILITY_BUDGET_S = 5.0
REFAPP_DIR = Path(__file__).resolve().parent.parent / "refapp"


class TargetUnavailable(RuntimeError):
    """The target never came up or cannot be reached (exit 3)."""


class TargetBroken(RuntimeError):
    """The target accepts connections but cannot answer a plain GET (exit 1, a verdict)."""

    def __init__(self, result: Preflight) -> None:
        super().__init__("target broken at the pre-flight GET")
        self.preflight = result


@dataclass(frozen=True)
class MarkovInputs:
    model_text: str | None
    model_source: str | None
    spec_text: str | None
    spec_source: str | None

    def to_settings(self) -> dict[str, Any]:
        return {"model_text": self.model_text, "model_source": self.model_source,
                "spec_text": self.spec_text, "spec_source": self.spec_source}


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{what} {path}: {reason}") from None


def load_markov_inputs(config: RunConfig, builtin: bool) -> MarkovInputs:
    """Read and validate model and spec; any problem is a ConfigError naming file and line."""
    from protocols.markov_loader import load_model
    from protocols.markov_model import ModelError, validate_against_spec
    from protocols.openapi import SpecError, load_spec

    model_path = config.markov
    spec_path = config.spec
    if builtin and model_path is None and spec_path is None:
        model_path, spec_path = REFAPP_DIR / "markov.yaml", REFAPP_DIR / "openapi.yaml"
    model_text = _read(model_path, "Markov model") if model_path else None
    spec_text = _read(spec_path, "OpenAPI spec") if spec_path else None
    try:
        spec = load_spec(spec_text, str(spec_path)) if spec_text is not None else None
        if model_text is not None:
            model = load_model(model_text, str(model_path))
            if spec is not None:
                validate_against_spec(model, spec)
    except (ModelError, SpecError) as exc:
        raise ConfigError(str(exc)) from None
    return MarkovInputs(model_text, str(model_path) if model_path else None,
                        spec_text, str(spec_path) if spec_path else None)


def check_results_parent(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".assay-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"results directory {parent} is not writable: "
                          f"{exc.strerror or exc}") from None


def default_label(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}-{parts.port or 80}"


def ensure_reachable(url: str, health_path: str,
                     probe_timeout_s: float = PROBE_TIMEOUT_S) -> Preflight:
    """Pre-flight GET on the health path: returns when the target answers (any status).

    Raises:
        TargetUnavailable: nothing listens, connect timed out, the name did not resolve.
        TargetBroken: connections are accepted but the answer is garbage, nothing, or
            never ends, on ``BROKEN_CONFIRMATIONS`` full-length probes in a row
            (``probe_timeout_s`` each: the run's request timeout).
        ConfigError: the health path cannot be sent as a request target.
    """
    target = Target.from_url(url)
    try:
        result = trio.run(preflight, target, health_path, REACHABILITY_BUDGET_S,
                          max(PROBE_TIMEOUT_S, probe_timeout_s))
    except RequestBuildError as exc:
        raise ConfigError(f"health path {health_path!r}: {exc}") from None
    if result.last.answered:
        return result
    if len(result.broken_run) >= BROKEN_CONFIRMATIONS:
        if all(a.finding is not None and is_server_preface(a.finding.evidence)
               for a in result.broken_run):
            # Not broken: an HTTP/2-only cleartext server (RFC 9113 §3.3 prior knowledge)
            # answers HTTP/1.1 with its SETTINGS, and the health probes need HTTP/1.1.
            raise TargetUnavailable(
                f"target {url} speaks only HTTP/2: it answered the HTTP/1.1 pre-flight GET "
                "with an HTTP/2 SETTINGS frame (prior knowledge, RFC 9113 §3.3); assay's "
                "pre-flight and health probes need HTTP/1.1 beside it on an http:// target "
                "(or an https:// target offering ALPN http/1.1)")
        raise TargetBroken(result)
    last = result.last
    what = last.cause if last.finding is None else last.finding.detail
    raise TargetUnavailable(f"target {url} unreachable: {what} after "
                            f"{result.elapsed_s:.1f} s ({len(result.attempts)} probes)")


def enabled_slices(config: RunConfig) -> list[str]:
    offered = slices.available()
    scheme = urlsplit(config.target).scheme if config.target else "http"
    if not config.slices:
        return slices.for_scheme(offered, scheme)
    wrong = [s for s in config.slices if s not in slices.for_scheme([s], scheme)]
    if wrong:
        raise ConfigError(f"slice(s) {', '.join(wrong)} do not apply to an {scheme}:// target "
                          f"(h2c is cleartext only; tls needs https)")
    unknown = [s for s in config.slices if s not in slices.SLICES]
    if unknown:
        raise ConfigError(f"unknown slice(s) {', '.join(unknown)}; "
                          f"known: {', '.join(slices.SLICES)}")
    missing = [s for s in config.slices if s not in offered]
    if missing:
        raise ConfigError(f"slice(s) {', '.join(missing)} are not available in this build")
    return list(config.slices)


def route_preflight(url: str, config: RunConfig, wanted: list[str]) -> dict[str, str]:
    """ws/sse walkers need their route; an absent route is reported, never silently passed."""
    checks = {"ws": config.ws_path, "sse": config.sse_path}
    todo = {name: path for name, path in checks.items() if name in wanted}
    if not todo:
        return {}
    try:
        from coordinator.sse_leak_check import route_exists
    except ImportError:
        return {}

    async def check_all() -> dict[str, str]:
        absent: dict[str, str] = {}
        for name, path in todo.items():
            ok, reason = await route_exists(url, path, name, 5.0)
            if not ok:
                absent[name] = f"not judged: {reason}"
        return absent

    return trio.run(check_all)


def make_walker_plan(
    config: RunConfig, enabled: list[str], absent: dict[str, str]
) -> WalkerPlan:
    """Plan with every enabled slice, then hand absent-route walkers to markov."""
    weights = {name: slices.SLICES[name][1] for name in enabled}
    try:
        plan = plan_walkers(config.concurrency, config.resolved_procs(), enabled, weights,
                            remote=config.remote_actors)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not absent or "markov" not in plan.per_slice:
        return plan
    moved = 0
    per_actor: dict[int, list[tuple[int, str]]] = {}
    for actor_id, walkers in plan.per_actor.items():
        per_actor[actor_id] = []
        for walker_id, name in walkers:
            if name in absent:
                moved += 1
                name = "markov"
            per_actor[actor_id].append((walker_id, name))
    per_slice = {n: c for n, c in plan.per_slice.items() if n not in absent}
    per_slice["markov"] += moved
    # h2 and h2flood without HTTP/2 share one reason: say it once.
    reasons = "; ".join(dict.fromkeys(absent[n] for n in sorted(absent)))
    moved_note = f"{moved} {', '.join(sorted(absent))} walker(s) moved to markov: {reasons}"
    notes = [*plan.notes, moved_note]
    return WalkerPlan(per_slice, per_actor, notes, plan.remote)


def cpu_count() -> int:
    return os.cpu_count() or 1
