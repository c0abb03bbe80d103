"""Run configuration: one frozen value built from defaults < TOML file < environment < flags.

Every check a user can fail raises ``ConfigError`` with one line that says what is wrong;
the CLI maps it to exit code 2. The single-value parsers (and ``ConfigError`` itself) live in
``coordinator.config_values``; ``ConfigError`` stays importable from here because most
callers catch it beside ``RunConfig``. Nothing here touches the network or the target:
reachability is an infrastructure question (exit 3), decided later.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from coordinator.config_values import (
    ConfigError,
    parse_bind,
    parse_count,
    parse_duration,
    parse_paths,
    parse_positive_int,
    parse_procs,
    parse_seed,
    parse_size,
    validate_path,
    validate_target_url,
)

DEFAULT_DURATION_S = 30.0
DEFAULT_CONCURRENCY = 32
DEFAULT_BIND = "tcp://127.0.0.1:0"
#: What ``RunConfig.to_json`` records instead of a secret key given as Z85 text.
REDACTED_KEY = "(Z85 key, not recorded)"


@dataclass(frozen=True)
class RunConfig:
    target: str | None = None
    duration_s: float = DEFAULT_DURATION_S
    concurrency: int = DEFAULT_CONCURRENCY
    procs: int = 0  # 0 = one per core
    seed: int | None = None
    results_dir: Path = Path("results")
    spec: Path | None = None
    markov: Path | None = None
    log_format: str = "console"
    label: str | None = None
    health_path: str | None = None
    ws_path: str = "/ws"
    #: ``--ws-max-message``: the largest valid message the ws slice sends (0: none).
    ws_max_message: int = 16 * 1024 * 1024
    sse_path: str = "/events"
    #: ``--body-path``: routes that read request bodies; the body cases go there.
    body_paths: tuple[str, ...] = ()
    stats_url: str | None = None
    stats_field: str | None = None
    stats_metric: str | None = None
    target_pid: int | None = None
    #: ``--launch CMD``: assay starts the target itself on 127.0.0.1:{port} (coordinator.launch).
    launch: str | None = None
    #: ``--launch-path``: the launched target's URL path (what a bare run walks and probes).
    launch_path: str = "/"
    slices: tuple[str, ...] = ()
    fail_fast: bool = False
    refapp_defects: tuple[str, ...] = ()
    tally_interval_s: float = 0.25
    checkpoint_interval_s: float = 10.0
    progress_interval_s: float = 5.0
    request_timeout_s: float = 10.0
    #: ``--no-clock``: the target declares no clock, so RFC 9110 §6.6.1 Date is not required.
    no_clock: bool = False
    #: ``--http2``: the Markov slice's sessions as HTTP/2 streams (actors.markov_h2).
    http2: bool = False
    #: ``--h2-streams-per-conn``: streams one HTTP/2 connection carries at once.
    h2_streams_per_conn: int = 32
    #: ``--adv-confirm-tries``: re-sends alone a violation must survive before it counts,
    #: in every slice (protocols.confirmation); 0 turns confirmation off.
    adv_confirm_tries: int = 2
    # Long runs (coordinator.restarts, coordinator.resources); `assay soak` turns restarts on.
    restart_actors: bool = False
    max_restarts_per_hour: int = 10
    resource_warmup_s: float = 300.0
    resource_bucket_s: float = 60.0
    # Actors on other load hosts (coordinator.remote_actors): where the coordinator's
    # sockets listen, how many actors it plans but does not spawn, and their CURVE keys.
    bind: str = DEFAULT_BIND
    remote_actors: int = 0
    remote_ready_timeout_s: float = 120.0
    curve_secret_key: str | None = None
    curve_authorized_keys: Path | None = None
    # Black-box leak probes (coordinator.leak_probe_runs): at the end of every run, and
    # every interval while walkers run (None = by mode: off for run, 10 min for soak; 0 = off).
    leak_probes: bool = True
    leak_probe_interval_s: float | None = None
    leak_probe_sse_cap: int = 256
    leak_probe_grace_s: float = 10.0
    leak_probe_max_burst: int = 1024
    mode: str = "run"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def resolved_procs(self) -> int:
        return self.procs if self.procs > 0 else max(1, os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, tuple):
                data[key] = list(value)
        data["procs"] = self.resolved_procs()
        if self.curve_secret_key is not None and not Path(self.curve_secret_key).exists():
            data["curve_secret_key"] = REDACTED_KEY  # a file path is kept
        return data


# Options that may come from TOML or ASSAY_* variables, with their converters.
_CONVERTERS: dict[str, Any] = {
    "target": validate_target_url,
    "duration": lambda v: ("duration_s", parse_duration(v)),
    "concurrency": lambda v: ("concurrency", parse_positive_int(v, "--concurrency")),
    "procs": lambda v: ("procs", parse_procs(v)),
    "seed": lambda v: ("seed", parse_seed(v)),
    "results": lambda v: ("results_dir", Path(str(v))),
    "spec": lambda v: ("spec", Path(str(v))),
    "markov": lambda v: ("markov", Path(str(v))),
    "log_format": lambda v: ("log_format", _log_format(v)),
    "label": lambda v: ("label", _label(v)),
    "health_path": lambda v: ("health_path", validate_path(str(v), "--health-path")),
    "ws_path": lambda v: ("ws_path", validate_path(str(v), "--ws-path")),
    "ws_max_message": lambda v: ("ws_max_message", parse_size(v, "--ws-max-message")),
    "sse_path": lambda v: ("sse_path", validate_path(str(v), "--sse-path")),
    "body_path": lambda v: ("body_paths", parse_paths(v, "--body-path")),
    "stats_url": lambda v: ("stats_url", str(v)),
    "stats_field": lambda v: ("stats_field", str(v)),
    "stats_metric": lambda v: ("stats_metric", str(v)),
    "target_pid": lambda v: ("target_pid", parse_positive_int(v, "--target-pid")),
    "launch": lambda v: ("launch", _launch(v)),
    "launch_path": lambda v: ("launch_path", validate_path(str(v), "--launch-path")),
    "fail_fast": lambda v: ("fail_fast", _bool(v, "fail_fast")),
    "checkpoint_interval": lambda v: (
        "checkpoint_interval_s", parse_duration(v, "checkpoint interval")),
    "progress_interval": lambda v: ("progress_interval_s", parse_duration(v, "progress interval")),
    "request_timeout": lambda v: ("request_timeout_s", parse_duration(v, "request timeout")),
    "no_clock": lambda v: ("no_clock", _bool(v, "no_clock")),
    "http2": lambda v: ("http2", _bool(v, "http2")),
    "h2_streams_per_conn": lambda v: (
        "h2_streams_per_conn", _bounded_int(v, "--h2-streams-per-conn", 1, 1024)),
    "adv_confirm_tries": lambda v: (
        "adv_confirm_tries", parse_count(v, "--adv-confirm-tries")),
    "restart_actors": lambda v: ("restart_actors", _bool(v, "restart_actors")),
    "max_restarts_per_hour": lambda v: (
        "max_restarts_per_hour", parse_positive_int(v, "--max-restarts-per-hour")),
    "resource_warmup": lambda v: ("resource_warmup_s", parse_duration(v, "resource warm-up")),
    "resource_bucket": lambda v: ("resource_bucket_s", parse_duration(v, "resource bucket")),
    "bind": lambda v: ("bind", parse_bind(v)),
    "remote_actors": lambda v: ("remote_actors", parse_count(v, "--remote-actors")),
    "remote_ready_timeout": lambda v: (
        "remote_ready_timeout_s", parse_duration(v, "remote ready timeout")),
    "curve_secret_key": lambda v: ("curve_secret_key", str(v) or None),
    "curve_authorized_keys": lambda v: ("curve_authorized_keys", Path(str(v))),
    "leak_probes": lambda v: ("leak_probes", _bool(v, "--leak-probes")),
    "leak_probe_interval": lambda v: ("leak_probe_interval_s", _interval_or_off(v)),
    "leak_probe_sse_cap": lambda v: (
        "leak_probe_sse_cap", _bounded_int(v, "--leak-probe-sse-cap", 1, 4096)),
    "leak_probe_grace": lambda v: ("leak_probe_grace_s", _grace(v)),
    "leak_probe_max_burst": lambda v: (
        "leak_probe_max_burst", _bounded_int(v, "--leak-probe-max-burst", 1, 16384)),
}


def _interval_or_off(value: Any) -> float:
    """``--leak-probe-interval``: a duration, or ``off``/``0`` (stored as 0.0)."""
    if str(value).strip().lower() in ("off", "0", "none", "false"):
        return 0.0
    return parse_duration(value, "--leak-probe-interval")


def _grace(value: Any) -> float:
    seconds = parse_duration(value, "--leak-probe-grace")
    if seconds > 300:
        raise ConfigError(f"--leak-probe-grace must be at most 5m (got {value!r})")
    return seconds


def _bounded_int(value: Any, what: str, low: int, high: int) -> int:
    number = parse_positive_int(value, what)
    if not low <= number <= high:
        raise ConfigError(f"{what} must be {low}..{high} (got {number})")
    return number


def _launch(value: Any) -> str:
    text = str(value)
    if "{port}" not in text or not text.replace("{port}", "").strip():
        raise ConfigError("--launch must be a command containing {port} (the port the "
                          "target must listen on)")
    return text


def _log_format(value: Any) -> str:
    if value not in ("console", "json"):
        raise ConfigError(f"--log-format must be console or json (got {value!r})")
    return str(value)


def _label(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", text):
        raise ConfigError(f"label {text!r} must be 1-64 of letters, digits, '.', '_' or '-'")
    return text


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{what} {value!r} is not a boolean")


def _apply(config: RunConfig, values: Mapping[str, Any], origin: str) -> RunConfig:
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        converter = _CONVERTERS.get(key)
        if converter is None:
            raise ConfigError(f"{origin}: unknown setting {raw_key!r}")
        try:
            result = converter(value)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        if key == "target":
            changes["target"] = result
        else:
            name, converted = result
            changes[name] = converted
    return replace(config, **changes)


def load_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    section = data.get("run", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [run] must be a table")
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


def env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """ASSAY_DURATION=10m etc.; unknown ASSAY_* names are ignored (other tools share it)."""
    found: dict[str, str] = {}
    for name in _CONVERTERS:
        value = environ.get(f"ASSAY_{name.upper()}")
        if value is not None:
            found[name] = value
    return found


def build_config(
    flags: Mapping[str, Any],
    config_file: Path | None,
    environ: Mapping[str, str],
    base: RunConfig | None = None,
) -> RunConfig:
    """Layer the sources; flags given as None are 'not set' and fall through."""
    config = base or RunConfig()
    if config_file is not None:
        config = _apply(config, load_toml(config_file), f"config file {config_file}")
    config = _apply(config, env_settings(environ), "environment")
    config = _apply(config, {k: v for k, v in flags.items() if v is not None}, "option")
    return config
