"""``assay bisect``: argument parsing and exit codes, nothing else.

(``assay replay FILE|--seed N`` is parsed in ``coordinator.cli``: a FILE goes through
``replay.repro``, a seed through ``corpus.replay_seed``; ``find_seed_replay`` below finds
the latter for ``bisect --seed``, imported only when used.)

``assay bisect`` finds the first bad commit (see ``replay.bisect``): exit 0 with a commit
named, 1 when the search ended ambiguous (commits in between could not be judged), 2 for
bad arguments or revisions that contradict the repro, 3 for infrastructure failures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
#: (module, function) pairs that may implement seed replay, ``f(args) -> exit code``.
SEED_REPLAY = (("corpus.replay_seed", "main"), ("corpus", "replay_seed"))


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"assay: error: {message}\n")
    return code


def add_bisect_parser(sub: Any) -> None:
    bisect = sub.add_parser("bisect", help="find the commit that introduced a failure")
    bisect.add_argument("--repo", type=Path, required=True, help="git repository of the target")
    bisect.add_argument("--good", required=True, help="a revision without the failure")
    bisect.add_argument("--bad", default="HEAD", help="a revision with it (default HEAD)")
    bisect.add_argument("--launch", required=True,
                        help="shell command that serves the target on 127.0.0.1:{port}")
    bisect.add_argument("--build", help="shell command run in each checkout before launching")
    source = bisect.add_mutually_exclusive_group(required=True)
    source.add_argument("--repro", type=Path, help="repro file to replay at each commit")
    source.add_argument("--seed", help="corpus seed to replay at each commit")
    bisect.add_argument("--out", type=Path, help="directory for bisect.json and logs "
                        "(default ./bisect-<timestamp>)")
    bisect.add_argument("--attempts", type=int, default=1,
                        help="replays per commit; any violation makes it bad (default 1)")
    bisect.add_argument("--ready-timeout", type=float, default=20.0,
                        help="seconds a launched target has to accept (default 20)")


def find_seed_replay() -> Callable[[argparse.Namespace], int] | None:
    for name, attribute in SEED_REPLAY:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        function = getattr(module, attribute, None)
        if callable(function):
            return function
    return None


def run_bisect(args: argparse.Namespace) -> int:
    import time

    from coordinator.config_values import ConfigError, parse_seed
    from replay.bisect import BisectConfig, bisect

    seed = None
    if args.seed is not None:
        try:
            seed = parse_seed(args.seed)
        except ConfigError as exc:
            return _error(str(exc), EXIT_USAGE)
    if not (args.repo / ".git").exists() and not args.repo.joinpath("HEAD").exists():
        return _error(f"--repo {args.repo} is not a git repository", EXIT_USAGE)
    if "{port}" not in args.launch:
        return _error("--launch must contain {port} (the port the target must listen on)",
                      EXIT_USAGE)
    out = args.out or Path(f"bisect-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    config = BisectConfig(repo=args.repo.resolve(), good=args.good, bad=args.bad,
                          launch=args.launch, build=args.build,
                          repro=args.repro.resolve() if args.repro else None, seed=seed,
                          out_dir=out, ready_timeout=args.ready_timeout,
                          attempts=max(1, args.attempts))
    report = bisect(config)
    status = report.get("status")
    if status == "found":
        first = report["first_bad"]
        print(f"first bad commit: {first['sha']} {first['subject']}")
        print(f"tested {len(report['tested'])} commit(s); report: {out / 'bisect.json'}")
        return EXIT_PASS
    if status == "ambiguous":
        print(f"ambiguous: {report.get('reason')}; report: {out / 'bisect.json'}")
        return EXIT_FAIL
    reason = str(report.get("reason"))
    code = EXIT_INFRA if reason.startswith("git ") else EXIT_USAGE
    return _error(f"bisect: {reason} (report: {out / 'bisect.json'})", code)


def replay_launched(args: argparse.Namespace) -> int:
    """``assay replay FILE --launch CMD``: each attempt on a fresh target from CMD (a crash
    repro needs one: the defect kills what it runs against). Exit 1 when any attempt still
    shows the violation (the target died or hung), 0 when none did, 2 for a bad file or
    option, 3 when the target never came up (its output is kept in the named log)."""
    import os
    import tempfile
    from functools import partial

    import trio

    from actors.walker import Target
    from coordinator.launch import TargetLauncher, check_command
    from replay import repro
    from replay.launcher import LaunchError

    if args.target is not None:
        return _error("--launch and --target do not go together (--launch serves the target "
                      "on a free loopback port)", EXIT_USAGE)
    try:
        check_command(args.launch)
        loaded = repro.load_repro(args.file)
    except (repro.ReproError, ValueError) as exc:
        return _error(str(exc), EXIT_USAGE)
    handle, name = tempfile.mkstemp(prefix="assay-replay-target-", suffix=".log")
    os.close(handle)
    log_path = Path(name)
    launcher = TargetLauncher(args.launch, log_path=log_path,
                              ready_timeout=float(getattr(args, "ready_timeout", 30.0) or 30.0))
    outcome = None
    for _ in range(max(1, args.attempts)):
        try:
            running = launcher.start()
        except LaunchError as exc:
            return _error(f"target did not come up: {exc}", EXIT_INFRA)
        try:
            outcome = trio.run(partial(repro.run_program, loaded.program,
                                       Target.from_url(running.url), pid=running.pid,
                                       time_limit_s=120.0))
        finally:
            running.stop()
        if outcome.violated:
            break
    log_path.unlink(missing_ok=True)
    assert outcome is not None
    print(f"{'FAIL (still reproduces)' if outcome.violated else 'PASS (gone)'}: "
          f"{outcome.detail}")
    print(f"digest: {loaded.program.digest()}")
    return EXIT_FAIL if outcome.violated else EXIT_PASS
