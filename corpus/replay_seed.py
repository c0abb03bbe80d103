"""``assay replay --seed N``: run one seed against a target and say what tripped.

How this works: the seed is expanded for the target's profile (the refapp profile for the
built-in target, GETs of the URL's path otherwise), then run and judged by
``corpus.runner.run_seed``. ``--dry-run`` prints the plan and its digest and sends nothing.
Without ``--target`` the built-in refapp is started (``--refapp-defect`` may break it) and
its pid is known, so target-side faults run; with ``--target``, ``--target-pid`` enables them.

Exit codes: 0 the seed passes, 1 it fails, 2 bad arguments, 3 the target is unreachable or
the built-in refapp did not start.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
_REPO = Path(__file__).resolve().parent.parent


def _error(code: int, message: str) -> int:
    sys.stderr.write(f"assay: error: {message}\n")
    return code


def repo_commit() -> str | None:
    """HEAD of the checkout the built-in refapp runs from (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


def _opt(args: argparse.Namespace, name: str) -> Any:
    return getattr(args, name, None)


def main(args: argparse.Namespace) -> int:
    """Entry point for ``assay replay --seed``; ``args`` comes from the CLI parser."""
    importlib.import_module("corpus.seed_checks")  # registers the seed oracle
    from actors.walker import Target
    from corpus.generator import SeedError, expand, parse_seed
    from corpus.plan import Profile
    from corpus.runner import run_seed

    try:
        seed = parse_seed(args.seed)
    except SeedError as exc:
        return _error(EXIT_USAGE, str(exc))
    target_url: str | None = _opt(args, "target")
    builtin = target_url is None
    if target_url is not None and urlsplit(target_url).scheme not in ("http", "https"):
        return _error(EXIT_USAGE, f"--target must be an http:// or https:// URL, "
                      f"got {target_url!r}")
    defects = list(_opt(args, "refapp_defect") or [])
    if defects and not builtin:
        return _error(EXIT_USAGE, "--refapp-defect only applies to the built-in refapp")
    path = urlsplit(target_url).path if target_url else "/"
    profile = Profile.for_target(path, builtin=builtin, health_path=_opt(args, "health_path"),
                                 ws_path=_opt(args, "ws_path"), sse_path=_opt(args, "sse_path"))
    plan = expand(seed, profile)
    if _opt(args, "dry_run"):
        print(plan.describe())
        print(f"digest: {plan.digest()}")
        return EXIT_PASS
    pid: int | None = None
    if _opt(args, "target_pid") is not None:
        try:
            pid = int(args.target_pid)
        except ValueError:
            return _error(EXIT_USAGE, f"--target-pid must be an integer, got {args.target_pid!r}")
    commit = _opt(args, "commit")
    with contextlib.ExitStack() as cleanup:
        if builtin:
            from refapp.launch import start_refapp

            try:
                refapp = start_refapp(defects=defects, stderr=subprocess.DEVNULL)
            except Exception as exc:
                return _error(EXIT_INFRA, f"built-in refapp did not start: {exc}")
            cleanup.callback(refapp.stop)
            target_url, pid = refapp.url.rstrip("/") + "/", refapp.pid
            commit = commit or repo_commit()
        assert target_url is not None
        target = Target.from_url(target_url)
        from replay.repro import TargetUnreachable, ensure_reachable

        async def go() -> Any:
            await ensure_reachable(target)
            return await run_seed(seed, target, profile, pid=pid, commit=commit,
                                  builtin=builtin)

        try:
            outcome = trio.run(go)
        except TargetUnreachable as exc:
            return _error(EXIT_INFRA, f"target unreachable: {exc}")
    _report(outcome, builtin, defects)
    if _opt(args, "save"):
        _save(outcome, Path(args.save))
    return EXIT_PASS if outcome.verdict.passed else EXIT_FAIL


def _report(outcome: Any, builtin: bool, defects: list[str]) -> None:
    identity = outcome.identity()
    verdict = outcome.verdict
    where = "built-in refapp" + (f" (defects: {', '.join(defects)})" if defects else "") \
        if builtin else str(outcome.target)
    print(f"seed {identity['seed']}  generator v{identity['generator']}  target {where}  "
          f"commit {identity['target_commit']}  arch {identity['arch']}")
    print(f"digest: {outcome.digest}")
    print(f"verdict: {'PASS' if verdict.passed else 'FAIL'}  ({verdict.judged} segment(s) "
          f"judged, {len(outcome.transcript.results)} steps in "
          f"{outcome.transcript.elapsed_s:.2f} s)")
    for trip in verdict.trips:
        print(f"tripped: {trip.line()}")
    for segment, kind, reason in verdict.not_judged:
        print(f"not judged: segment {segment:02d} [{kind}]: {reason}")
    if not verdict.passed:
        command = outcome.replay_command()
        if builtin and defects:
            command += "".join(f" --refapp-defect {d}" for d in defects)
        print(f"replay: {command}")


def _save(outcome: Any, path: Path) -> None:
    """Write the seed's program as a repro file (for ``assay replay FILE`` / the shrinker)."""
    from replay.repro import Repro, save_repro

    trip = outcome.verdict.trips[0] if outcome.verdict.trips else None
    repro = Repro(
        program=outcome.plan.program,
        predicate={"id": trip.invariant, "severity": trip.severity, "meaning": trip.detail}
        if trip else {},
        target={"url": outcome.target, "commit": outcome.commit,
                "builtin": outcome.target is None},
        seed=outcome.plan.seed,
        generator={"name": "assay-seed", "version": str(outcome.plan.version)},
        notes=(f"plan digest {outcome.digest}",
               json.dumps(outcome.plan.profile.to_json(), sort_keys=True)),
    )
    save_repro(repro, path)
    print(f"saved: {path}")
