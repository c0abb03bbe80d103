"""``assay loris``: slow connections (slowhttptest) with control traffic beside them.

The flags become a ``protocols.loris.LorisPlan`` (the attack) and a ``LoadPlan`` with one
constant-arrival-rate scenario named ``control`` (GETs of the target path: vegeta beside
slowhttptest). Bad input is a ``ConfigError``: one line, exit 2. The run is an ordinary
fleet run (``load_cli.config_for``) with a loris walker and a load walker per actor; what
the coordinator does differently is ``coordinator.loris_run``.

A control request that gets no answer within ``--request-timeout`` fails. Its default
here is 5 s, slowhttptest's probe timeout (``-p``), not ``assay run``'s 10 s: a request
that waits that long behind the slow connections means the service is unavailable.
The once-a-second health probes are off: the control traffic is the availability probe
(a starved server would otherwise also trip I-HANG from probes that wait in the same
queue); only ``--target-pid`` liveness is watched.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordinator import logs
from coordinator.config import ConfigError, RunConfig
from coordinator.load_cli import add_common_options, config_for, target_path
from coordinator.load_run import drain_grace_s
from protocols.http1 import RequestBuildError
from protocols.load_errors import LoadInputError
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
)
from protocols.load_values import parse_duration, parse_rate
from protocols.loris import LorisPlan, Mode, opening
from protocols.loris_report import CONTROL, render

if TYPE_CHECKING:
    from coordinator.stress_cli import Stress

EXIT_USAGE = 2
#: Most connections one run may ask for (a bound on every loop; far above one host's ports).
MAX_CONNECTIONS = 10_000_000
#: A drip more often than this is a flood, not a slow attack (and would only load the actor).
MIN_INTERVAL_S = 0.05
MAX_RANGES = 10_000
MAX_BODY_LENGTH = 1 << 40
#: The control requests' timeout unless --request-timeout (or its config) says otherwise.
CONTROL_TIMEOUT_S = 5.0
#: Most control requests in flight at once (beyond: dropped, and counted as failed).
MAX_CONTROL_VUS = 20_000
DEFAULTS = {"mode": "headers", "connections": "1000", "rate": "200/s", "interval": "10s",
            "duration": "60s", "control_rate": "100/s", "threshold_control": "95",
            "body_length": "8192", "ranges": "1000", "connect_timeout": "10s"}


def add_loris_parser(sub: Any) -> None:
    loris = sub.add_parser("loris", help="slow headers, slow body, slow read or range "
                           "attack (slowhttptest) with control traffic beside it; judged by "
                           "the control traffic's success %%")
    add_common_options(loris)
    for action in loris._actions:  # two shared options mean something else here
        if action.dest == "request_timeout":
            action.help = ("a control request with no response by then fails (default 5s, "
                           "slowhttptest's probe timeout)")
        elif action.dest == "health_path":
            action.help = "path of the pre-flight GET (default: the target URL's path)"
    add = loris.add_argument
    add("--mode", default=DEFAULTS["mode"], help="headers (slowloris: a header line every "
        "interval, the head never ends), body (a POST announcing --body-length, a few bytes "
        "every interval), read (a tiny receive window, a byte read every interval), range "
        "(many overlapping Range parts, read slowly); default headers")
    add("--connections", default=DEFAULTS["connections"], help="slow connections in total, "
        "across all actors (default 1000)")
    add("--rate", default=DEFAULTS["rate"], help="connections opened per second, "
        "fleet-wide (default 200/s)")
    add("--interval", default=DEFAULTS["interval"], help="between two drips or slow reads "
        "on a connection (default 10s)")
    add("--duration", default=DEFAULTS["duration"], help="how long the attack and the "
        "control traffic run (default 60s; the attack also outlasts the last control "
        "request)")
    add("--control-rate", default=DEFAULTS["control_rate"], help="control requests per "
        "second, open model (default 100/s)")
    add("--control-duration", help="control traffic during the last D of --duration "
        "(default: all of it)")
    add("--threshold-control", default=DEFAULTS["threshold_control"], metavar="PCT",
        help="pass when at least PCT %% of the control requests due succeeded (default 95)")
    add("--body-length", default=DEFAULTS["body_length"], help="--mode body: the "
        "Content-Length announced (default 8192)")
    add("--ranges", default=DEFAULTS["ranges"], help="--mode range: overlapping ranges "
        "asked (default 1000)")
    add("--connect-timeout", default=DEFAULTS["connect_timeout"], help="a slow connection "
        "not established by then failed (default 10s)")
    add("--summary-json", type=Path, metavar="FILE", help="also write the summary here")


def _value(parse: Any, flag: str, text: str, **kw: Any) -> Any:
    try:
        return parse(text, **kw)
    except LoadInputError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _count(flag: str, text: str, minimum: int, maximum: int) -> int:
    try:
        count = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not an integer") from None
    if not minimum <= count <= maximum:
        raise ConfigError(f"{flag} must be {minimum}..{maximum} (got {count})")
    return count


def build_plan(args: argparse.Namespace, path: str) -> LorisPlan:
    """The attack plan from the flags; bad input is a ConfigError (exit 2)."""
    try:
        mode = Mode(str(args.mode).strip().lower())
    except ValueError:
        raise ConfigError(f"--mode {args.mode!r} is not one of "
                          f"{', '.join(m.value for m in Mode)}") from None
    interval = _value(parse_duration, "--interval", args.interval, bare_seconds=True)
    if interval < MIN_INTERVAL_S:
        raise ConfigError(f"--interval must be at least {MIN_INTERVAL_S * 1000:g}ms "
                          f"(got {args.interval!r})")
    duration = _value(parse_duration, "--duration", args.duration, bare_seconds=True)
    control_duration = duration
    if args.control_duration is not None:
        control_duration = _value(parse_duration, "--control-duration", args.control_duration,
                                  bare_seconds=True)
        if control_duration > duration:
            raise ConfigError(f"--control-duration ({args.control_duration}) must not exceed "
                              f"--duration ({args.duration})")
    try:
        threshold = float(str(args.threshold_control).strip().rstrip("%"))
    except ValueError:
        raise ConfigError(f"--threshold-control {args.threshold_control!r} is not a "
                          "percentage") from None
    if not 0 <= threshold <= 100:
        raise ConfigError(f"--threshold-control must be 0..100 (got {args.threshold_control!r})")
    plan = LorisPlan(
        mode=mode, connections=_count("--connections", args.connections, 1, MAX_CONNECTIONS),
        rate=_value(parse_rate, "--rate", args.rate), interval_s=interval,
        duration_s=duration, path=path,
        body_length=_count("--body-length", args.body_length, 2, MAX_BODY_LENGTH),
        ranges=_count("--ranges", args.ranges, 1, MAX_RANGES),
        connect_timeout_s=_value(parse_duration, "--connect-timeout", args.connect_timeout,
                                 bare_seconds=True),
        control_rate=_value(parse_rate, "--control-rate", args.control_rate),
        control_duration_s=control_duration, threshold_control=threshold)
    try:
        opening(plan, "localhost")
    except RequestBuildError as exc:
        raise ConfigError(f"the target path {path!r} cannot be requested: {exc}") from None
    return plan


def control_plan(plan: LorisPlan, timeout_s: float) -> LoadPlan:
    """The control traffic: GETs of the target path at ``control_rate`` for the last
    ``control_duration_s`` of the attack. Up to ``rate x timeout`` requests may be in
    flight (a starved server answers none of them), with room for the actors' uneven
    shares, so none is dropped by the generator's own limit."""
    max_vus = min(MAX_CONTROL_VUS,
                  max(100, math.ceil(plan.control_rate * (timeout_s + 1.0)) + 10))
    executor = Executor(CONSTANT_ARRIVAL_RATE, vus=10, max_vus=max_vus,
                        rate=plan.control_rate, duration_s=plan.control_duration_s)
    scenario = Scenario(CONTROL, executor, RequestTemplate(path=plan.path),
                        start_s=plan.control_start_s)
    return LoadPlan((scenario,), source="assay loris (control traffic)")


def fleet_settings(plan: LorisPlan, timeout_s: float) -> dict[str, Any]:
    return {"loris": plan.to_wire(), "load_plan": control_plan(plan, timeout_s).to_wire(),
            "health_probes": False}


def _with_control_timeout(args: argparse.Namespace, config: RunConfig,
                          plan: LorisPlan) -> RunConfig:
    """slowhttptest's probe timeout, unless --request-timeout or ASSAY_REQUEST_TIMEOUT (or
    a config file value other than the default) set one."""
    if args.request_timeout is not None or "ASSAY_REQUEST_TIMEOUT" in os.environ \
            or config.request_timeout_s != RunConfig().request_timeout_s:
        return config
    return replace(config, request_timeout_s=CONTROL_TIMEOUT_S,
                   duration_s=plan.duration_s + drain_grace_s(CONTROL_TIMEOUT_S))


def run_loris(args: argparse.Namespace) -> int:
    from coordinator.execute import execute_run

    plan = build_plan(args, target_path(args))
    config = config_for(args, "loris", plan.duration_s, slices=("loris", "load"))
    config = _with_control_timeout(args, config, plan)
    logs.configure(config.log_format)
    settings = fleet_settings(plan, config.request_timeout_s)
    if args.summary_json is not None:
        if not args.summary_json.parent.is_dir():
            sys.stderr.write(f"assay: error: --summary-json {args.summary_json}: its "
                             "directory does not exist\n")
            return EXIT_USAGE
        settings["loris_summary_json"] = str(args.summary_json)
    return execute_run(config, fleet=settings)


def stress_loris(stress: Stress) -> int:
    """``assay stress``'s third test: slow headers from ``loris_conns`` connections for
    ``loris_duration_s``, control traffic at ``loris_control_rate`` during its last
    ``loris_control_duration_s``, judged by ``judge_loris``."""
    from protocols.stress import judge_loris

    s = stress.settings
    args = stress.args
    plan = LorisPlan(Mode.HEADERS, s.loris_conns, parse_rate(DEFAULTS["rate"]),
                     parse_duration(DEFAULTS["interval"]), s.loris_duration_s, args.path,
                     control_rate=s.loris_control_rate,
                     control_duration_s=min(s.loris_control_duration_s, s.loris_duration_s),
                     threshold_control=s.thresh_loris_ctrl)
    timeout = RunConfig().request_timeout_s
    if args.request_timeout is not None:
        from coordinator.config_values import parse_duration as parse_flag

        timeout = parse_flag(args.request_timeout, "--request-timeout")
    code, document = stress._run("loris", plan.duration_s, ("loris", "load"),
                                 fleet_settings(plan, timeout))
    if document is None or code not in (0, 1):
        return code
    block = document.get("loris", {})
    verdict = judge_loris(block.get("control_success_pct"), s)
    stress._record("loris", verdict, document, block, render(block) if block else [])
    return code
