"""``assay`` command line. Each sub-command maps user errors to one line and an exit code.

Exit codes (DESIGN §5): 0 pass, 1 an invariant or threshold failed, 2 bad arguments or
missing tools, 3 infrastructure failure (target never came up, actors could not start).
An interrupted run exits 130 (SIGINT) or 143 (SIGTERM) after writing its results, unless an
invariant had already failed (then 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from coordinator import logs
from coordinator.config import ConfigError, RunConfig, build_config, parse_seed

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--target", help="http:// URL of the server under test (default: built-in refapp)")
    add("--duration", help="run budget: 30s, 10m, 24h (default 30s)")
    add("--concurrency", help="walkers in total, across all actors (default 32)")
    add("--procs", help="actor processes: N or auto = one per core (default auto)")
    add("--seed", help="run seed (u64, decimal or 0x hex); default random, always recorded")
    add("--results", help="parent directory for run results (default ./results)")
    add("--spec", help="OpenAPI 3 spec (YAML or JSON) of the target")
    add("--markov", help="Markov session model (YAML)")
    add("--log-format", choices=None, help="console (default) or json")
    add("--config", type=Path, help="TOML file with the same settings (table [run])")
    add("--label", help="label in the results directory name")
    add("--health-path", help="path probed every second (default: the target URL's path)")
    add("--ws-path", help="WebSocket route for the ws slice (default /ws)")
    add("--sse-path", help="SSE route for the sse slice (default /events)")
    add("--stats-url", help="URL or path of a JSON/Prometheus page with the subscriber count")
    add("--stats-field", help="JSON field (dotted) with the SSE subscriber count")
    add("--stats-metric", help="Prometheus metric with the SSE subscriber count")
    add("--target-pid", help="pid of the target process, for liveness and forensics")
    add("--slices", help="comma-separated slices to run (default: all available)")
    add("--fail-fast", action="store_const", const=True, default=None,
        help="stop the run at the first HIGH invariant trip")
    add("--refapp-defect", action="append", default=[], metavar="NAME",
        help="with no --target: inject a defect into the built-in refapp (repeatable)")
    add("--checkpoint-interval", help="how often results are rewritten (default 10s)")
    add("--progress-interval", help="progress line interval when not on a terminal (5s)")
    add("--request-timeout", help="deadline for one request/response (default 10s)")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ["target", "duration", "concurrency", "procs", "seed", "results", "spec", "markov",
             "log_format", "label", "health_path", "ws_path", "sse_path", "stats_url",
             "stats_field", "stats_metric", "target_pid", "fail_fast", "checkpoint_interval",
             "progress_interval", "request_timeout"]
    return {name: getattr(args, name) for name in names}


def config_from_args(args: argparse.Namespace, mode: str = "run") -> RunConfig:
    config = build_config(_flags(args), args.config, os.environ, RunConfig(mode=mode))
    if args.slices:
        config = replace(config, slices=tuple(s.strip() for s in args.slices.split(",") if s))
    if args.refapp_defect:
        if config.target is not None:
            raise ConfigError("--refapp-defect only applies to the built-in refapp (no --target)")
        config = replace(config, refapp_defects=tuple(args.refapp_defect))
    if config.seed is None:
        config = replace(config, seed=parse_seed(int.from_bytes(os.urandom(8), "big")))
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="assay", description="Production-readiness validator for "
                           "HTTP servers: protocol abuse under load, judged by invariants.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="validate a target (default: the built-in refapp)")
    _add_run_options(run)
    refapp = sub.add_parser("refapp", help="serve the built-in reference target alone")
    refapp.add_argument("--host", default="127.0.0.1")
    refapp.add_argument("--port", default="8080")
    refapp.add_argument("--defect", action="append", default=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            config = config_from_args(args)
            logs.configure(config.log_format)
            from coordinator.execute import execute_run

            return execute_run(config)
        if args.command == "refapp":
            from refapp.__main__ import main as refapp_main

            extra = [f"--defect={d}" for d in args.defect]
            return refapp_main(["--host", args.host, "--port", str(args.port), *extra])
    except ConfigError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("assay: interrupted\n")
        return 130
    parser.error(f"unknown command {args.command}")
