"""``assay proxy``: request smuggling and forwarding checks through a reverse proxy.

assay stands on both sides of the proxy: it sends the cases of ``protocols.proxy_cases``
to the proxy (``--target``) and asks the ``assay backend``s behind it (``--backend-ports``,
started beforehand and put into the proxy's configuration by the user) what arrived. The
run is an ordinary fleet run with one proxy walker per actor; what the coordinator does
differently is ``coordinator.proxy_run``. Bad input is one line, exit 2.

``assay run --target PROXY_URL --proxy --backend-ports P1,P2`` (the issue's spelling) is the
same run: ``run_proxy_from_run`` hands ``assay run``'s proxy-relevant flags over to it.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import sys
from typing import Any

from actors.proxy_walker import CASE_S, PARALLEL
from coordinator import logs
from coordinator.config_values import ConfigError, validate_target_url
from coordinator.extensions import add_output_options
from coordinator.load_cli import config_for
from coordinator.results import ResultsError, create_run_dir
from coordinator.watch_cli import parse_ports
from protocols.backend_echo import HEALTH_PATH
from protocols.proxy_catalogue import ALL_CASES

EXIT_USAGE, EXIT_INFRA = 2, 3
SHARD_DIR = "proxy-shards"
#: Long enough for every case on one actor: ``CASE_S`` at most each, ``PARALLEL`` at once.
DURATION_S = CASE_S * math.ceil(len(ALL_CASES) / PARALLEL) + 10.0
BACKEND_CHECK_S = 2.0


def add_proxy_parser(sub: Any) -> None:
    proxy = sub.add_parser("proxy", help="request smuggling and hop-by-hop checks through a "
                           "reverse proxy, with assay backends behind it")
    add = proxy.add_argument
    add("--target", help="http:// or https:// URL of the proxy")
    add("--backend-ports", help="P1,P2,...: ports of the assay backends behind the proxy")
    add_output_options(add, procs_default="1")


def backend_problem(port: int) -> str:
    """Empty when an assay backend answers ``/healthz`` on 127.0.0.1:port, else why not:
    without the backends nothing can be judged, so the run does not start (exit 3)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=BACKEND_CHECK_S)
    try:
        connection.request("GET", HEALTH_PATH)
        response = connection.getresponse()
        if response.status != 200 or response.getheader("X-Assay-Backend") is None:
            return f"/healthz answered {response.status} without X-Assay-Backend (not an " \
                   "assay backend?)"
        return ""
    except (OSError, http.client.HTTPException) as exc:
        return f"not answering ({exc})"
    finally:
        connection.close()


def run_proxy(args: argparse.Namespace) -> int:
    from coordinator.execute import execute_run

    target = args.target or os.environ.get("ASSAY_TARGET")
    if not target:
        raise ConfigError("--target URL (the proxy) is required")
    args.target = validate_target_url(target)
    ports = parse_ports(args.backend_ports)
    if not ports:
        raise ConfigError("--backend-ports P1,P2,... (the assay backends behind the proxy) "
                          "is required")
    if args.summary_json is not None and not args.summary_json.parent.is_dir():
        raise ConfigError(f"--summary-json {args.summary_json}: its directory does not exist")
    for port in ports:
        problem = backend_problem(port)
        if problem:
            sys.stderr.write(f"assay: error: backend 127.0.0.1:{port}: {problem}\n")
            return EXIT_INFRA
    config = config_for(args, "proxy", DURATION_S, slices=("proxy",))
    logs.configure(config.log_format)
    try:
        run_dir = create_run_dir(config.results_dir, "proxy", config.label or "proxy")
    except ResultsError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE
    (run_dir / SHARD_DIR).mkdir()
    settings: dict[str, Any] = {
        "proxy": {"run": os.urandom(6).hex(), "shard_dir": str(run_dir / SHARD_DIR),
                  "backend_ports": list(ports)},
        "proxy_summary_json": str(args.summary_json) if args.summary_json else None,
    }
    return execute_run(config, run_dir=run_dir, fleet=settings)


#: ``assay run`` flags an ``assay run --proxy`` run uses; the others would be ignored, so
#: they are refused (exit 2) rather than silently dropped.
_RUN_FLAGS_KEPT = ("target", "procs", "results", "log_format", "config", "label")
_RUN_FLAGS_UNUSED = ("duration", "concurrency", "seed", "spec", "launch", "slices")


def run_proxy_from_run(args: argparse.Namespace) -> int:
    """``assay run --proxy --backend-ports P1,P2``: exactly ``assay proxy`` with the same
    target, procs (default 1, not one per core: the cases are few), results, log format,
    config file and label. One without the other is a usage error."""
    if not args.proxy:
        raise ConfigError("--backend-ports goes with --proxy (the target is a reverse proxy)")
    if not args.backend_ports:
        raise ConfigError("--proxy needs --backend-ports P1,P2,... (the assay backends "
                          "behind the proxy)")
    unused = [f"--{name.replace('_', '-')}" for name in _RUN_FLAGS_UNUSED
              if getattr(args, name, None) is not None]
    if unused:
        raise ConfigError(f"{', '.join(unused)}: not used with --proxy (the cases decide "
                          "the run's length)")
    kept = {name: getattr(args, name, None) for name in _RUN_FLAGS_KEPT}
    kept["procs"] = kept["procs"] or "1"
    return run_proxy(argparse.Namespace(**kept, backend_ports=args.backend_ports,
                                        summary_json=getattr(args, "summary_json", None)))
