"""``assay`` command line. Each sub-command maps user errors to one line and an exit code.

Exit codes (DESIGN §5): 0 pass, 1 an invariant or threshold failed, 2 bad arguments or
missing tools, 3 infrastructure failure (target never came up, actors could not start).
An interrupted run exits 130 (SIGINT) or 143 (SIGTERM) after writing its results, unless an
invariant had already failed (then 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from coordinator import logs
from coordinator.config import ConfigError, RunConfig, build_config
from coordinator.config_values import parse_seed
from coordinator.tls_flags import add_tls_options, install_from_args

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--target", help="http:// or https:// URL of the server under test (default: "
        "built-in refapp)")
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
    add("--ws-max-message", help="largest valid message the ws slice sends, whole and in "
        "64/256/1024-byte fragments (default 16MiB; 0 turns large messages off)")
    add("--sse-path", help="SSE route for the sse slice (default /events)")
    add("--body-path", action="append", default=None, metavar="PATH",
        help="route that reads request bodies; body-framing cases go there (repeatable; "
        "default: POST/PUT/PATCH routes of --spec/--markov that take a body, else the target "
        "path)")
    add("--stats-url", help="URL or path of a JSON/Prometheus page with the subscriber count")
    add("--stats-field", help="JSON field (dotted) with the SSE subscriber count")
    add("--stats-metric", help="Prometheus metric with the SSE subscriber count")
    add("--target-pid", help="pid of the target process, for liveness and forensics")
    add("--launch", metavar="CMD", help="shell command serving the target on 127.0.0.1:{port}: "
        "assay picks the port, starts it, knows its pid, stops it at the end (instead of "
        "--target)")
    add("--launch-path", metavar="PATH", help="with --launch: the target URL's path (default /)")
    add("--slices", help="comma-separated slices to run (default: all available)")
    add("--fail-fast", action="store_const", const=True, default=None,
        help="stop the run at the first HIGH invariant trip")
    add("--refapp-defect", action="append", default=[], metavar="NAME",
        help="with no --target: inject a defect into the built-in refapp (repeatable)")
    add("--checkpoint-interval", help="how often results are rewritten (default 10s)")
    add("--progress-interval", help="progress line interval when not on a terminal (5s)")
    add("--request-timeout", help="deadline for one request/response (default 10s)")
    add("--no-clock", action="store_const", const=True, default=None,
        help="the target has no clock: do not require Date (RFC 9110 §6.6.1)")
    add("--http2", action="store_const", const=True, default=None,
        help="the markov slice speaks HTTP/2 (ALPN h2 over TLS, prior knowledge on http), "
        "many streams per connection")
    add("--h2-streams-per-conn", help="with --http2: requests one connection carries at once "
        "(default 32, or fewer if the server allows fewer)")
    add("--adv-confirm-tries", help="re-sends alone a violation (adv, ws, h2c, sse) must "
        "reproduce on before it counts (default 2; 0 = off)")
    add("--restart-actors", action="store_const", const=True, default=None,
        help="restart an actor that dies as a new incarnation (default: exit 3; soak: on)")
    add("--max-restarts-per-hour", help="more actor restarts in an hour end the run (10)")
    add("--resource-warmup", help="target RSS/fd/thread samples ignored at first (5m)")
    add("--resource-bucket", help="bucket whose minimum feeds the leak slope (60s)")
    add("--tier3", choices=("pr", "nightly", "weekend"), metavar="TIER",
        help="also run the corpus tier's seeds (pr|nightly|weekend) in tier3 walkers; the run "
        "ends when every seed has a verdict or the duration runs out")
    add("--tier3-walkers", type=int, metavar="N",
        help="walkers running seeds, across all actors (default 8 per actor)")
    add("--bind", help="tcp://HOST:PORT for the actors' sockets (tallies on PORT, control on "
        "PORT+1; default tcp://127.0.0.1:0); off loopback CURVE keys are required")
    add("--remote-actors", help="actors started on other load hosts (see fleet.json); the "
        "run waits --remote-ready-timeout for them (default 0)")
    add("--remote-ready-timeout", help="how long to wait for remote actors (default 120s)")
    add("--curve-secret-key", help="the coordinator's CURVE secret key: certificate file or "
        "Z85 (make one with `assay keygen`)")
    add("--curve-authorized-keys", help="directory of the remote actors' public keys (*.key)")
    add("--leak-probes", choices=("on", "off"), help="black-box SSE-slot and connection leak "
        "probes at the end of the run (default on)")
    add("--leak-probe-interval", help="also run the leak probes this often while walkers run "
        "(e.g. 10m; default off for run, 10m for soak; 'off' disables)")
    add("--leak-probe-sse-cap", help="most SSE subscribers the slot probe opens (default 256)")
    add("--leak-probe-grace", help="how long a leak probe waits for the target to recover "
        "before judging a leak (default 10s)")
    add("--leak-probe-max-burst", help="largest burst of departing clients (default 1024)")
    from coordinator.incident_settings import add_incident_options

    add_incident_options(parser)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ["target", "duration", "concurrency", "procs", "seed", "results", "spec", "markov",
             "log_format", "label", "health_path", "ws_path", "sse_path", "stats_url",
             "stats_field", "stats_metric", "target_pid", "fail_fast", "checkpoint_interval",
             "progress_interval", "request_timeout", "launch", "body_path", "no_clock"]
    names += ["restart_actors", "max_restarts_per_hour", "resource_warmup", "resource_bucket",
              "bind", "remote_actors", "remote_ready_timeout", "curve_secret_key",
              "curve_authorized_keys"]
    names += ["leak_probes", "leak_probe_interval", "leak_probe_sse_cap", "leak_probe_grace",
              "leak_probe_max_burst"]
    names += ["adv_confirm_tries"]
    names += ["launch_path"]
    names += ["ws_max_message"]
    names += ["http2", "h2_streams_per_conn"]
    return {name: getattr(args, name) for name in names}


def config_from_args(args: argparse.Namespace, mode: str = "run",
                     base: RunConfig | None = None) -> RunConfig:
    """``base`` replaces the defaults (the soak preset, or a resumed soak's stored config)."""
    config = build_config(_flags(args), args.config, os.environ, base or RunConfig(mode=mode))
    if args.slices:
        config = replace(config, slices=tuple(s.strip() for s in args.slices.split(",") if s))
    if config.launch is None and config.launch_path != "/":
        raise ConfigError("--launch-path needs --launch")
    if config.launch is not None:
        clash = [flag for flag, value in (("--target", config.target),
                                          ("--target-pid", config.target_pid),
                                          ("--refapp-defect", args.refapp_defect)) if value]
        if clash:
            raise ConfigError(f"--launch and {clash[0]} do not go together (--launch serves "
                              "the target on http://127.0.0.1:{port}/ and knows its pid)")
    if args.refapp_defect:
        if config.target is not None:
            raise ConfigError("--refapp-defect only applies to the built-in refapp (no --target)")
        config = replace(config, refapp_defects=tuple(args.refapp_defect))
    if config.seed is None:
        config = replace(config, seed=parse_seed(int.from_bytes(os.urandom(8), "big")))
    from coordinator.incident_settings import incident_settings_from_args

    try:
        incidents = incident_settings_from_args(args).to_json()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if config.launch and not incidents.get("shrink_launch"):
        incidents["shrink_launch"] = config.launch  # crashes shrink against fresh instances
    return replace(config, extra={**config.extra, "incidents": incidents})


#: Commands that live in their own module: name -> (module, its add-parser function, its
#: run function). A new command adds one line here and nothing else to this file.
FLEET_COMMANDS: dict[str, tuple[str, str, str]] = {
    "agent": ("coordinator.agent", "add_agent_parser", "run_agent"),
    "cases": ("coordinator.cases_cli", "add_cases_parser", "run_cases"),
    "load": ("coordinator.load_cli", "add_load_parser", "run_load"),
    "slo": ("coordinator.slo_cli", "add_slo_parser", "run_slo"),
    "hold": ("coordinator.hold_cli", "add_hold_parser", "run_hold"),
    "loris": ("coordinator.loris_cli", "add_loris_parser", "run_loris"),
    "stress": ("coordinator.stress_cli", "add_stress_parser", "run_stress"),
    "tier2": ("coordinator.tier2_cli", "add_tier2_parser", "run_tier2"),
    "matrix": ("coordinator.matrix_cli", "add_matrix_parser", "run_matrix"),
    "diff": ("coordinator.diff_cli", "add_diff_parser", "run_diff"),
    "backend": ("coordinator.backend_cli", "add_backend_parser", "run_backend"),
    "watch": ("coordinator.watch_cli", "add_watch_parser", "run_watch"),
    "proxy": ("coordinator.proxy_cli", "add_proxy_parser", "run_proxy"),
    "report": ("coordinator.report_cli", "add_report_parser", "run_report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="assay", description="Production-readiness validator for "
                           "HTTP servers: protocol abuse under load, judged by invariants.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="validate a target (default: the built-in refapp)")
    _add_run_options(run)
    run.add_argument("--proxy", action="store_true", help="the target is a reverse proxy: "
                     "run `assay proxy` (smuggling checks) with --backend-ports")
    run.add_argument("--backend-ports", help="with --proxy: P1,P2,... of the assay backends")
    soak = sub.add_parser("soak", help="long run (default 24h): checkpoints, actor restarts, "
                          "--resume DIR after a crash")
    _add_run_options(soak)
    soak.add_argument("--resume", type=Path, metavar="DIR",
                      help="continue the soak in DIR whose coordinator was killed")
    _add_replay_and_corpus(sub)
    from replay.replay_cli import add_bisect_parser

    add_bisect_parser(sub)
    for module, add_parser, _run in FLEET_COMMANDS.values():
        getattr(importlib.import_module(module), add_parser)(sub)
    keygen = sub.add_parser("keygen", help="make a CURVE keypair (coordinator, actor or "
                            "agent) for traffic off loopback")
    keygen.add_argument("directory", type=Path, help="where NAME.key and NAME.key_secret go")
    keygen.add_argument("--name", default="assay", help="file name stem (default assay)")
    refapp = sub.add_parser("refapp", help="serve the built-in reference target alone")
    refapp.add_argument("--host", default="127.0.0.1")
    refapp.add_argument("--port", default="8080")
    refapp.add_argument("--defect", action="append", default=[])
    for command in sub.choices.values():  # every command that dials a target speaks TLS
        if any("--target" in action.option_strings for action in command._actions):
            add_tls_options(command)
    return parser


def _add_replay_and_corpus(sub: Any) -> None:
    replay = sub.add_parser("replay", help="re-run a seed (--seed N) or a reproducer FILE")
    add = replay.add_argument
    add("file", nargs="?", type=Path, help="a reproducer file (assay-repro/1)")
    add("--seed", help="a Tier 3 seed (u64): expand, run, judge")
    add("--target", help="http:// or https:// URL (default: start the built-in refapp)")
    add("--target-pid", help="the target's local pid: enables target-side faults")
    add("--commit", help="target commit, recorded in the failure's identity")
    add("--dry-run", action="store_true", help="print the seed's plan and digest, send nothing")
    add("--refapp-defect", action="append", default=[], metavar="NAME",
        help="without --target: inject a defect into the built-in refapp")
    add("--save", metavar="FILE", help="--seed: also write the seed's program as a repro file")
    add("--health-path", help="--seed: path of recovery and liveness probes")
    add("--ws-path", help="--seed: WebSocket route (default /ws)")
    add("--sse-path", help="--seed: SSE route (default /events)")
    add("--attempts", type=int, default=1, help="FILE: runs before giving up (default 1)")
    add("--launch", metavar="CMD", help="FILE: start a fresh target from this shell command "
        "(with {port}) for each run, instead of --target; exit 1 when it dies or hangs")
    corpus = sub.add_parser("corpus", help="add seeds or reproducers to the corpus; list it")
    from corpus.cli import add_arguments

    add_arguments(corpus)


def _replay(args: argparse.Namespace) -> int:
    """``--seed`` goes to ``corpus.replay_seed``; FILE to the reproducer replay."""
    if (args.seed is None) == (args.file is None):
        sys.stderr.write("assay replay: error: give exactly one of FILE or --seed N\n")
        return EXIT_USAGE
    if args.seed is not None:
        from corpus.replay_seed import main as replay_seed

        return replay_seed(args)
    import corpus.seed_checks  # noqa: F401  (seed programs saved as repro files)
    import replay.resp_repro  # noqa: F401  (the response-rule oracle of such repro files)
    from replay import repro

    if getattr(args, "launch", None):
        from replay.replay_cli import replay_launched

        return replay_launched(args)
    if args.target is None:
        sys.stderr.write("assay replay: error: FILE needs --target URL or --launch CMD\n")
        return EXIT_USAGE
    from replay import tier2_repro

    if tier2_repro.is_tier2(args.file):  # Tier 2 sequences replay with their own runner
        return tier2_repro.replay_file(args.file, args.target, max(1, args.attempts))
    try:
        loaded = repro.load_repro(args.file)
        pid = int(args.target_pid) if args.target_pid else None
        outcome = repro.replay(loaded, args.target, attempts=max(1, args.attempts), pid=pid)
    except (repro.ReproError, ValueError) as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE
    except repro.TargetUnreachable as exc:
        sys.stderr.write(f"assay: error: target unreachable: {exc}\n")
        return EXIT_INFRA
    print(f"{'FAIL (still reproduces)' if outcome.violated else 'PASS (gone)'}: "
          f"{outcome.detail}")
    print(f"digest: {loaded.program.digest()}")
    return EXIT_FAIL if outcome.violated else EXIT_PASS


def _keygen(args: argparse.Namespace) -> int:
    from actors import curve

    try:
        public, secret = curve.generate(args.directory, args.name)
    except (curve.CurveKeyError, OSError) as exc:
        sys.stderr.write(f"assay keygen: error: {exc}\n")
        return EXIT_USAGE
    print(f"public key {public} (give it to the other side)\nsecret key {secret} (keep it)")
    return EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "insecure"):  # a command with --target
            install_from_args(args)
        if args.command == "run" and (args.proxy or args.backend_ports is not None):
            from coordinator.proxy_cli import run_proxy_from_run

            return run_proxy_from_run(args)
        if args.command == "run":
            config = config_from_args(args)
            logs.configure(config.log_format)
            from coordinator.execute import execute_run

            if args.tier3:
                from coordinator.tier3 import TIER_BUDGET_S

                if args.duration is None and "ASSAY_DURATION" not in os.environ \
                        and config.duration_s == RunConfig().duration_s:
                    config = replace(config, duration_s=TIER_BUDGET_S[args.tier3])
                return execute_run(config, tier3=(args.tier3, args.tier3_walkers))
            return execute_run(config)
        if args.command == "replay":
            return _replay(args)
        if args.command == "bisect":
            from replay.replay_cli import run_bisect

            return run_bisect(args)
        if args.command == "keygen":
            return _keygen(args)
        if args.command in FLEET_COMMANDS:
            module, _add, run = FLEET_COMMANDS[args.command]
            return int(getattr(importlib.import_module(module), run)(args))
        if args.command == "corpus":
            from corpus.cli import main as corpus_main

            return corpus_main(args)
        if args.command == "soak":
            from coordinator.soak import soak_main

            return soak_main(args)
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
