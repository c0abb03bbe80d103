"""``assay run`` end to end: validate inputs, bring up the target, run the fleet, clean up.

The built-in refapp is started here and always stopped here, whatever happens in between.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from actors.slices import SCHEME_ONLY, SLICES, for_scheme
from coordinator import inputs as prep
from coordinator import remote_actors
from coordinator.config import RunConfig
from coordinator.logs import get_logger
from coordinator.results import ResultsError, create_run_dir
from coordinator.run import Coordinator
from coordinator.run_state import RunInputs

EXIT_USAGE, EXIT_INFRA = 2, 3


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"assay: error: {message}\n")
    return code


def execute_run(config: RunConfig, run_dir: Path | None = None,
                setup: Callable[[Coordinator], None] | None = None,
                tier3: tuple[str, int | None] | None = None,
                fleet: dict[str, Any] | None = None) -> int:
    """``fleet``: the settings of a fleet command (``assay load``, ``hold``, ``loris``;
    ``coordinator.extensions``): one walker of each of ``config.slices`` per actor runs
    its plan instead of the Tier 1 slices. Two of its keys change the target checks:
    ``"preflight": "tcp"`` makes the pre-flight one TCP connect instead of a GET (a target
    that need not speak HTTP: ``assay hold``), ``"health_probes": False`` turns the
    once-a-second health probes off (they would take connection slots being measured).
``run_dir`` given: continue in that directory (a soak resume) instead of a fresh one.
    ``setup`` adjusts the built coordinator before its fleet starts (``coordinator.soak``:
    the run's own log file, the checkpointed state of a resume)."""
    log = get_logger("assay")
    builtin = config.target is None and config.launch is None
    markov = prep.load_markov_inputs(config, builtin)
    enabled = prep.enabled_slices(config)
    prep.check_results_parent(config.results_dir)
    security = remote_actors.load_security(config)  # unusable or missing: exit 2, no work
    with ExitStack() as cleanup:
        target_pid = config.target_pid
        if builtin:
            from refapp.launch import start_refapp

            try:
                # Own session: a terminal Ctrl-C reaches assay, which then stops the refapp
                # after the final tallies, instead of the refapp dying mid-run.
                refapp = start_refapp(defects=config.refapp_defects,
                                      extra_args=["--parent-pid", str(os.getpid())],
                                      start_new_session=True)
            except Exception as exc:  # a refapp that cannot start is infrastructure
                return _fail(EXIT_INFRA, f"built-in refapp did not start: {exc}")
            cleanup.callback(refapp.stop)
            url = refapp.url.rstrip("/") + "/"
            target_pid = refapp.pid
            health_path = config.health_path or "/healthz"
            label = config.label or "refapp"
        elif config.launch is not None:
            from coordinator.launch import launch_for_run

            label = config.label or "launched"
            try:
                run_dir = run_dir or create_run_dir(config.results_dir, config.mode, label)
            except ResultsError as exc:
                return _fail(EXIT_USAGE, str(exc))
            launched = launch_for_run(config.launch, run_dir)
            if isinstance(launched, str):
                return _fail(EXIT_INFRA, launched)
            cleanup.callback(launched.stop)
            url = launched.url.rstrip("/") + config.launch_path
            target_pid = launched.pid
            health_path = config.health_path or config.launch_path
        else:
            assert config.target is not None
            url = config.target
            health_path = config.health_path or url_path(url)
            label = config.label or prep.default_label(url)
        try:
            if fleet is not None and fleet.get("preflight") == "tcp":
                _ensure_listening(url, config.request_timeout_s)
            else:
                prep.ensure_reachable(url, health_path, config.request_timeout_s)
        except prep.TargetUnavailable as exc:
            return _fail(EXIT_INFRA, str(exc))
        except prep.TargetBroken as exc:  # up but broken: a verdict (exit 1), not exit 3
            return _broken(config, exc, url, label, health_path, builtin, target_pid)
        if config.http2:  # --http2 asks for what the target must serve: check it first
            from actors import h2_session
            from actors.walker import Target

            why = trio.run(h2_session.check, Target.from_url(url), health_path,
                           config.request_timeout_s)
            if why is not None:
                return _fail(EXIT_INFRA, why)
        if fleet is not None and fleet.get("health_probes") is False:
            health_path = None  # the monitor then watches --target-pid only
        # h2/h2flood need an HTTP/2 target; h2_via says how it speaks HTTP/2.
        from coordinator.h2_preflight import gate as h2_gate

        h2_absent, h2_settings = h2_gate(url, enabled)
        absent = {**prep.route_preflight(url, config, enabled), **h2_absent}
        for name, reason in absent.items():
            log.warning("slice will not run", slice=name, reason=reason)
        if fleet is not None:
            from coordinator.extensions import fleet_walker_plan

            walker_plan = fleet_walker_plan(config)
        else:
            walker_plan = prep.make_walker_plan(config, enabled, absent)
        not_run = dict(absent)
        for name in SLICES:
            if fleet is not None and name not in config.slices:
                not_run[name] = f"not part of assay {config.mode}"
            elif name not in enabled:
                only = SCHEME_ONLY.get(name)
                not_run[name] = (
                    f"not applicable: {name} needs an {only}:// target"
                    if not config.slices and not for_scheme([name], urlsplit(url).scheme)
                    else "slice not selected (--slices)" if config.slices
                    else "slice not available in this build")
        settings = {
            "health_path": health_path,
            "ws_path": config.ws_path,
            "ws_max_message": config.ws_max_message,
            "sse_path": config.sse_path,
            "stats_url": config.stats_url or ("/stats" if builtin else None),
            "stats_field": config.stats_field or ("sse_subscribers" if builtin else None),
            "stats_metric": config.stats_metric,
            "request_timeout_s": config.request_timeout_s,
            "no_clock": config.no_clock,
            "target_pid": target_pid,  # h2flood samples its RSS around each flood
            "http2": config.http2,
            "h2_streams_per_conn": config.h2_streams_per_conn,
            "adv_confirm_tries": config.adv_confirm_tries,
            "markov": markov.to_settings(),
            **h2_settings,
            **(fleet or {}),
        }
        if "adv" in enabled:  # body-framing cases go where a body is read
            from coordinator.body_preflight import decide

            body_routes = decide(url, config.body_paths, markov, builtin)
            settings["adv_body_paths"] = list(body_routes.paths)
            log.info("adversarial body routes", note=body_routes.note)
        if "tier2" in enabled and fleet is None:  # only an explicit --spec runs Tier 2
            from coordinator import tier2_slice

            explicit = config.spec is not None
            walker_plan, tier2_settings, why = tier2_slice.plan(
                walker_plan, markov.spec_text if explicit else None,
                markov.spec_source if explicit else None)
            if tier2_settings is not None:
                settings["tier2"] = tier2_settings
            if why is not None:
                not_run["tier2"] = why
        if tier3 is not None:  # (tier, walkers): seeds run alongside Tier 1
            from coordinator import tier3 as tier3_plan
            from corpus.store import CorpusError

            try:
                walker_plan, settings["tier3"] = tier3_plan.plan(
                    tier3[0], tier3[1], walker_plan, url=url, builtin=builtin,
                    target_pid=target_pid, health_path=config.health_path,
                    ws_path=config.ws_path, sse_path=config.sse_path,
                    defects=tuple(config.refapp_defects))
            except CorpusError as exc:
                return _fail(EXIT_USAGE, str(exc))
            not_run.pop("tier3", None)
        if run_dir is None:
            try:
                run_dir = create_run_dir(config.results_dir, config.mode, label)
            except ResultsError as exc:
                return _fail(EXIT_USAGE, str(exc))
        assert config.seed is not None
        inputs = RunInputs(
            target_url=url, label=label, health_path=health_path, target_pid=target_pid,
            builtin=builtin, settings=settings, enabled_slices=enabled, not_run=not_run,
            walker_plan=walker_plan, seed=config.seed, security=security,
            notes=[f"built-in refapp with defects: {', '.join(config.refapp_defects)}"]
            if config.refapp_defects else [],
        )
        if "adv" in enabled:  # which routes the body cases went to, in the results
            inputs.notes.append(body_routes.note)
        log.info("results", path=str(run_dir))
        coordinator = Coordinator(config, inputs, run_dir)
        if setup is not None:
            setup(coordinator)
        return trio.run(coordinator.run)


def _ensure_listening(url: str, timeout_s: float) -> None:
    """The pre-flight of a target that need not speak HTTP: one TCP connect, closed at once.

    Raises:
        TargetUnavailable: nothing accepts (refused, timed out, unresolvable): exit 3.
    """
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 80}"
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise prep.TargetUnavailable(f"target {where} accepts no connection: {why}") from None


def url_path(url: str) -> str:
    return urlsplit(url).path or "/"


def _broken(config: RunConfig, exc: prep.TargetBroken, url: str, label: str,
            health_path: str, builtin: bool, target_pid: int | None) -> int:
    """Write the pre-flight verdict (coordinator.broken_target) and say it in one line."""
    from coordinator import broken_target

    try:
        run_dir = broken_target.write_broken_results(
            config, url=url, label=label, health_path=health_path, builtin=builtin,
            target_pid=target_pid, preflight=exc.preflight)
    except (ResultsError, OSError) as err:
        return _fail(EXIT_USAGE, f"results directory: {err}")
    sys.stderr.write(f"assay: {broken_target.summary_line(exc.preflight)}; "
                     f"results in {run_dir}\n")
    return 1
