"""``assay load``: open- and closed-model load with thresholds, on the actor fleet.

The plan comes from the flags (``--rate``/``--vus``/``--ramp``/...) or from a scenario file
(``--scenario``), both through ``protocols.load_scenario``; everything about the run that
is not the load itself (procs, results, logs, launch, config file and ``ASSAY_*``
overrides) is ``assay run``'s and goes through the same ``RunConfig``. The run is an
ordinary fleet run with one load walker per actor (``load_walker_plan``); what the
coordinator does differently lives in ``coordinator.load_run``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from coordinator import logs
from coordinator.config import ConfigError, RunConfig, build_config
from coordinator.config_values import parse_seed
from coordinator.load_run import drain_grace_s
from protocols.load_errors import LoadInputError
from protocols.load_model import LoadPlan
from protocols.load_scenario import load_scenario_file, plan_from_flags
from protocols.load_thresholds import parse_threshold

EXIT_USAGE = 2
#: Without --target or --launch the built-in refapp is the target; its /stats route
#: answers every GET without a session (its / is a 404, which would count as failed).
BUILTIN_PATH = "/stats"
#: The most VUs, in-flight requests or connections a plan may ask for.
MAX_VUS = 1_000_000
#: The ``assay run`` settings ``assay load`` takes (flags, config file, ASSAY_* variables).
RUN_SETTINGS = ("target", "procs", "seed", "results", "log_format", "label", "health_path",
                "target_pid", "launch", "launch_path", "request_timeout", "progress_interval",
                "checkpoint_interval", "bind", "remote_actors", "remote_ready_timeout",
                "curve_secret_key", "curve_authorized_keys")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The run options ``assay load`` and ``assay slo`` share with ``assay run``."""
    add = parser.add_argument
    add("--target", help="http:// or https:// URL of the server under test "
        "(default: built-in refapp)")
    add("--launch", metavar="CMD", help="shell command serving the target on "
        "127.0.0.1:{port} (assay starts and stops it)")
    add("--launch-path", help="with --launch: the URL path (default /)")
    add("--procs", help="actor processes: N or auto = one per core (default auto)")
    add("--seed", help="run seed (u64): {rand:..} and {uuid} placeholders replay from it")
    add("--results", help="parent directory for run results (default ./results)")
    add("--log-format", help="console (default) or json")
    add("--config", type=Path, help="TOML file with run settings (table [run])")
    add("--label", help="label in the results directory name")
    add("--health-path", help="path probed before and during the run (default: the "
        "target URL's path)")
    add("--target-pid", help="pid of the target process, for liveness")
    add("--request-timeout", help="a request with no response by then fails (default 10s)")
    add("--progress-interval", help="how often live progress is logged (default 5s)")


def add_load_parser(sub: Any) -> None:
    load = sub.add_parser("load", help="open (--rate) or closed (--vus) load with "
                          "thresholds, k6/vegeta/wrk2 style")
    add_common_options(load)
    add = load.add_argument
    add("--rate", help="open model: requests per second (or R/1m, R/500ms)")
    add("--vus", help="closed model: virtual users; with --rate: pre-allocated VUs")
    add("--max-vus", help="open model: most requests in flight (beyond: dropped)")
    add("--connections", help="open model: keep-alive connections the requests share "
        "(default: one per request in flight, up to --max-vus); fewer, and a request due "
        "while all are busy waits for one, the wait counted in its latency (wrk2)")
    add("--duration", help="how long (default 30s; not with --ramp)")
    add("--ramp", help="stages TARGET:DURATION,... (e.g. 0:10s,500:30s): a ramping arrival "
        "rate, or ramping VUs with --vus and no --rate")
    add("--threshold", action="append", default=[], metavar="EXPR",
        help="k6 threshold, e.g. 'p(99)<500', 'http_req_failed: rate<0.01', "
        "'p(95)<200; abort_on_fail' (repeatable); any failed threshold exits 1")
    add("--scenario", type=Path, metavar="FILE", help="TOML or YAML scenario file "
        "(instead of --rate/--vus/--ramp/--duration/--method/--header/--body-file)")
    add("--method", default=None, help="request method (default GET)")
    add("--header", action="append", default=[], metavar="'K: V'", help="request header "
        "(repeatable)")
    add("--body-file", type=Path, metavar="F", help="request body")
    add("--summary-json", type=Path, metavar="FILE", help="also write the summary here")
    add("--http2", action="store_true", help="send the requests as HTTP/2 streams (ALPN h2 "
        "over TLS, prior knowledge on http), up to 32 on each shared connection")


def config_for(args: argparse.Namespace, mode: str, duration_s: float,
               slices: tuple[str, ...] = ("load",)) -> RunConfig:
    """The run settings of a fleet command: flags > ASSAY_* > config file > defaults; the
    duration is the plan's plus the drain grace, the walkers run ``slices`` (one walker
    of each per actor), and the post-run leak probes (which judge Tier 1 slices) are
    off."""
    flags = {name: getattr(args, name, None) for name in RUN_SETTINGS}
    base = RunConfig(mode=mode, leak_probes=False)
    config = build_config(flags, args.config, _run_environ(), base)
    if config.launch is None and config.launch_path != "/":
        raise ConfigError("--launch-path needs --launch")
    if config.launch is not None and config.target is not None:
        raise ConfigError("--launch and --target do not go together")
    if config.seed is None:
        config = replace(config, seed=parse_seed(int.from_bytes(os.urandom(8), "big")))
    incidents = {"shrink_launch": config.launch} if config.launch else {}
    return replace(config, slices=slices,
                   duration_s=duration_s + drain_grace_s(config.request_timeout_s),
                   extra={**config.extra, "incidents": incidents})


def _run_environ() -> dict[str, str]:
    """``ASSAY_*`` variables, but not ``ASSAY_DURATION``: a load run's length is its plan's."""
    return {k: v for k, v in os.environ.items() if k != "ASSAY_DURATION"}


def build_plan(args: argparse.Namespace, target_path: str) -> LoadPlan:
    """The plan from ``--scenario`` or from the flags; bad input is a ConfigError (exit 2)."""
    try:
        if args.scenario is not None:
            clash = [flag for flag, value in (
                ("--rate", args.rate), ("--vus", args.vus), ("--max-vus", args.max_vus),
                ("--duration", args.duration), ("--ramp", args.ramp),
                ("--method", args.method), ("--header", args.header),
                ("--body-file", args.body_file), ("--connections", args.connections))
                if value]
            if clash:
                raise ConfigError(f"--scenario and {clash[0]} do not go together (the file "
                                  "says how each scenario runs)")
            plan = load_scenario_file(args.scenario)
            if args.threshold:
                extra = tuple(parse_threshold(text) for text in args.threshold)
                plan = replace(plan, thresholds=plan.thresholds + extra)
            return plan
        body = None
        if args.body_file is not None:
            try:
                body = args.body_file.read_bytes()
            except OSError as exc:
                raise ConfigError(f"--body-file {args.body_file}: {exc.strerror or exc}") \
                    from None
        plan = plan_from_flags(path=target_path, rate=args.rate, vus=args.vus,
                               max_vus=args.max_vus, duration=args.duration, ramp=args.ramp,
                               method=args.method or "GET", headers=list(args.header),
                               body=body, thresholds=list(args.threshold))
        if args.connections is not None:
            plan = _with_connections(plan, args.connections)
        return plan
    except LoadInputError as exc:
        raise ConfigError(str(exc)) from None


def check_plan(plan: LoadPlan) -> LoadPlan:
    """Refuse what parses but cannot mean anything: a threshold tagged with a scenario the
    plan does not have (it would judge nothing), VU counts beyond what one host can run."""
    names = {scenario.name for scenario in plan.scenarios}
    for threshold in plan.thresholds:
        for key, value in threshold.tags:
            if key == "scenario" and value not in names:
                raise ConfigError(f"threshold {threshold.source!r}: no scenario named "
                                  f"{value!r} (scenarios: {', '.join(sorted(names))})")
    for scenario in plan.scenarios:
        executor = scenario.executor
        most = max([executor.vus, executor.max_vus, executor.connections,
                    *(int(stage.target) for stage in executor.stages
                      if not executor.is_open)])
        if most > MAX_VUS:
            raise ConfigError(f"scenario {scenario.name}: {most} VUs or connections is more "
                              f"than one fleet runs (at most {MAX_VUS:,})")
    return plan


def _with_connections(plan: LoadPlan, text: str) -> LoadPlan:
    try:
        connections = int(text)
    except ValueError:
        raise ConfigError(f"--connections {text!r} is not an integer") from None
    if connections < 1:
        raise ConfigError(f"--connections must be at least 1 (got {text!r})")
    (scenario,) = plan.scenarios
    if not scenario.executor.is_open:
        raise ConfigError("--connections needs --rate (the open model); with --vus every "
                          "VU has its own connection")
    executor = replace(scenario.executor, connections=connections)
    return replace(plan, scenarios=(replace(scenario, executor=executor),))


def target_path(args: argparse.Namespace) -> str:
    """The path the flags' requests go to: the target URL's, or ``--launch-path``."""
    from urllib.parse import urlsplit

    target = args.target or os.environ.get("ASSAY_TARGET")
    if target:
        return urlsplit(target).path or "/"
    if args.launch is None and not os.environ.get("ASSAY_LAUNCH"):
        return BUILTIN_PATH
    return args.launch_path or "/"


def run_load(args: argparse.Namespace) -> int:
    from coordinator.execute import execute_run

    plan = check_plan(build_plan(args, target_path(args)))
    if args.health_path is None and "{" in target_path(args):
        args.health_path = "/"  # never probe a path with placeholders literally
    config = config_for(args, "load", plan.duration_s)
    logs.configure(config.log_format)
    if getattr(args, "http2", False):
        chunked = [s.name for s in plan.scenarios if any(
            name.lower() == "transfer-encoding" for name, _ in s.request.headers)]
        if chunked:
            sys.stderr.write(f"assay: error: --http2: scenario {chunked[0]} sends "
                             "Transfer-Encoding, which HTTP/2 does not have (RFC 9113 "
                             "§8.2.2): drop the header\n")
            return EXIT_USAGE
        config = replace(config, http2=True)
    settings: dict[str, Any] = {"load_plan": plan.to_wire()}
    if args.summary_json is not None:
        settings["load_summary_json"] = str(args.summary_json)
        if not args.summary_json.parent.is_dir():
            sys.stderr.write(f"assay: error: --summary-json {args.summary_json}: its "
                             "directory does not exist\n")
            return EXIT_USAGE
    return execute_run(config, fleet=settings)
