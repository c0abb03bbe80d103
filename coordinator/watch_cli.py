"""``assay watch``: the reconfiguration bench for a reverse proxy.

Clients call the proxy over and over while the user adds and removes backends (``assay
backend``s) behind it; every request is logged (``protocols.watch_records``) and the run
judges whether any failed while a backend was up (``protocols.watch_report``). The flags
become a ``WatchPlan``; bad input is a ``ConfigError`` (one line, exit 2). The run is an
ordinary fleet run with one watch walker per actor (``load_cli.config_for``); what the
coordinator does differently is ``coordinator.watch_run``. The run directory is created
here, before the fleet starts, because the walkers write their record shards into it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from coordinator import logs
from coordinator.config_values import ConfigError, parse_duration, validate_target_url
from coordinator.extensions import add_output_options
from coordinator.load_cli import config_for
from coordinator.results import ResultsError, create_run_dir
from protocols.load_errors import LoadInputError
from protocols.load_values import parse_rate
from protocols.watch_records import WatchPlan
from refapp.launch import stop_child

EXIT_USAGE, EXIT_INFRA = 2, 3
MAX_CLIENTS = 10_000
SHARD_DIR = "watch-shards"


def add_watch_parser(sub: Any) -> None:
    watch = sub.add_parser("watch", help="reverse-proxy reconfiguration bench: clients call "
                           "the proxy while backends change; every request logged, failures "
                           "judged (I-RECONF-FAIL)")
    add = watch.add_argument
    add("--target", help="http:// or https:// URL of the proxy (the path is requested)")
    add("--clients", default="4", help="clients, each with its own keep-alive connection "
        "(default 4)")
    add("--rate", default="50/s", help="requests per second, all clients together "
        "(default 50/s)")
    add("--duration", default="30s", help="how long (default 30s)")
    add("--backend-ports", help="P1,P2,...: ports of the assay backends behind the proxy; "
        "their /healthz is probed every 100 ms and a failure while none is up is not "
        "counted against the proxy")
    add("--launch-backends", metavar="N", help="start N assay backends for the run (ids "
        "from 0, ports from --backends-base-port) and probe them as --backend-ports")
    add("--backends-base-port", default="0", help="with --launch-backends: port of the "
        "first (default 0: ephemeral ports, printed)")
    add("--csv", type=Path, metavar="FILE", help="also write every request, in time order, "
        "to FILE (first line: the column names)")
    add("--no-request-lines", action="store_true", help="do not print a line per request "
        "on stdout (the CSV still has them)")
    add("--request-timeout", default="5s", help="a request not answered by then failed "
        "(default 5s)")
    add_output_options(add)


def parse_ports(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    ports = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise ConfigError(f"--backend-ports: {part!r} is not a port in 1..65535")
        ports.append(int(part))
    return tuple(ports)


def build_plan(args: argparse.Namespace, shard_dir: str) -> WatchPlan:
    """The plan from the flags. Bad input: ConfigError."""
    try:
        clients = int(str(args.clients).strip())
    except ValueError:
        raise ConfigError(f"--clients {args.clients!r} is not an integer") from None
    if not 1 <= clients <= MAX_CLIENTS:
        raise ConfigError(f"--clients must be 1..{MAX_CLIENTS} (got {clients})")
    try:
        rate = parse_rate(str(args.rate).strip())
    except LoadInputError as exc:
        raise ConfigError(f"--rate: {exc}") from None
    return WatchPlan(clients=clients, rate_per_s=rate,
                     duration_s=parse_duration(args.duration, "--duration"),
                     path=urlsplit(args.target).path or "/",
                     timeout_s=parse_duration(args.request_timeout, "--request-timeout"),
                     shard_dir=shard_dir, backend_ports=parse_ports(args.backend_ports))


class LaunchError(Exception):
    """The backends asked for did not start (a port in use, a bad count)."""


@contextmanager
def launched_backends(count: str, base_port: str) -> Iterator[list[int]]:
    """``assay backend --count N`` as a child for the run; its ports. Stopped (SIGTERM,
    then SIGKILL) when the run ends."""
    proc = subprocess.Popen([sys.executable, "-m", "coordinator", "backend", "--count",
                             str(count), "--base-port", str(base_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ports = []
        for line in proc.stdout:  # type: ignore[union-attr]
            ports.append(int(line.rsplit(":", 1)[1]))
            if len(ports) == int(count):
                break
        if proc.poll() is not None or not ports:
            proc.wait(timeout=10)
            error = (proc.stderr.read() if proc.stderr else "").strip()  # type: ignore[union-attr]
            raise LaunchError(error.removeprefix("assay: error: ") or "exited at once")
        sys.stderr.write("assay: backends launched on ports "
                         f"{','.join(map(str, ports))}\n")
        yield ports
    finally:
        stop_child(proc, signal.SIGTERM, grace=5)


def run_watch(args: argparse.Namespace) -> int:
    target = args.target or os.environ.get("ASSAY_TARGET")
    if not target:
        raise ConfigError("--target URL (the proxy) is required")
    args.target = validate_target_url(target)
    plan = build_plan(args, "")  # every flag checked before anything is created
    if args.launch_backends is not None:
        count, base = str(args.launch_backends).strip(), str(args.backends_base_port).strip()
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise ConfigError(f"--launch-backends must be 1..256 (got {args.launch_backends!r})")
        if not base.isdigit() or int(base) + int(count) - 1 > 65535:
            raise ConfigError(f"--backends-base-port {args.backends_base_port!r} is not a "
                              "port that leaves room for the backends")
    if args.csv is not None and not args.csv.parent.is_dir():
        raise ConfigError(f"--csv {args.csv}: its directory does not exist")
    if args.summary_json is not None and not args.summary_json.parent.is_dir():
        raise ConfigError(f"--summary-json {args.summary_json}: its directory does not exist")
    config = config_for(args, "watch", plan.duration_s, slices=("watch",))
    logs.configure(config.log_format)
    try:
        run_dir = create_run_dir(config.results_dir, "watch", config.label or "proxy")
    except ResultsError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE
    (run_dir / SHARD_DIR).mkdir()
    with ExitStack() as stack:
        if args.launch_backends:
            try:
                ports = stack.enter_context(launched_backends(
                    args.launch_backends, args.backends_base_port))
            except LaunchError as exc:
                sys.stderr.write(f"assay: error: --launch-backends: {exc}\n")
                return EXIT_INFRA
            plan = replace(plan, backend_ports=plan.backend_ports + tuple(ports))
        return _execute(args, config, run_dir, plan)


def _execute(args: argparse.Namespace, config: Any, run_dir: Path, plan: WatchPlan) -> int:
    from coordinator.execute import execute_run

    plan = replace(plan, shard_dir=str(run_dir / SHARD_DIR))
    settings: dict[str, Any] = {"watch": plan.to_wire(),
                                "watch_csv": str(args.csv) if args.csv else None,
                                "watch_print_requests": not args.no_request_lines,
                                "watch_summary_json": (str(args.summary_json)
                                                       if args.summary_json else None)}
    return execute_run(config, run_dir=run_dir, fleet=settings)
