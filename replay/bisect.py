"""Commit bisect: which commit between a good and a bad revision introduced the failure.

How this works: the candidates are ``git rev-list --ancestry-path good..bad`` (oldest
first), so every candidate descends from ``good`` and leads to ``bad``. Each tested commit
gets its own ``git worktree`` (the user's checkout is never touched), is built with the
build command, launched with the launch command on a free loopback port (``{port}``),
awaited until it accepts a TCP connection, replayed (a repro file, or a seed through the
corpus), and stopped by killing its process group. The search itself is a plain binary
search over the candidate list that we drive ourselves rather than through ``git bisect``:
it needs no state in the repository, and a commit that cannot be judged (build failed,
never came up) is *skipped* by testing its nearest neighbours instead, as ``git bisect
skip`` would.

Both ends are tested first: a bad revision that does not reproduce, or a good one that
does, makes the answer meaningless, so the report says so instead of naming a commit.
Everything goes to ``bisect.json`` (format ``assay-bisect/1``) and per-commit logs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from actors.walker import Target
from replay.launcher import LaunchError, launch
from replay.repro import ReproError, load_repro, run_program

BISECT_FORMAT = "assay-bisect/1"
GIT_TIMEOUT_S = 60.0


class BisectError(RuntimeError):
    """Bisect cannot start (unknown revision, not a repository); one line."""


@dataclass(frozen=True)
class BisectConfig:
    repo: Path
    good: str
    bad: str
    launch: str
    build: str | None = None
    repro: Path | None = None
    seed: int | None = None
    out_dir: Path | None = None
    ready_timeout: float = 20.0
    build_timeout: float = 600.0
    attempts: int = 1
    replay_timeout: float = 120.0


def _git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BisectError(f"git {args[0]} failed: {exc}") from None
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise BisectError(f"git {' '.join(args[:2])}: {message[-1] if message else 'failed'}")
    return done.stdout.strip()


def _describe(repo: Path, sha: str) -> dict[str, str]:
    line = _git(repo, "log", "-1", "--format=%H%x00%s%x00%an%x00%aI", sha)
    full, subject, author, date = [*line.split("\0"), "", "", "", ""][:4]
    return {"sha": full, "subject": subject, "author": author, "date": date}


class _Tester:
    """Builds, launches and replays one commit at a time; records every outcome."""

    def __init__(self, config: BisectConfig, judge: Callable[[str], tuple[str, str]]) -> None:
        self.config = config
        self.judge = judge
        self.records: list[dict[str, Any]] = []
        self.cache: dict[str, str] = {}
        logs = (config.out_dir or Path(tempfile.gettempdir())) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs

    def test(self, sha: str) -> str:
        if sha in self.cache:
            return self.cache[sha]
        config = self.config
        record: dict[str, Any] = {**_describe(config.repo, sha), "verdict": "skip"}
        began = time.monotonic()
        tree = Path(tempfile.mkdtemp(prefix="assay-bisect-"))
        log_path = self.logs / f"{sha[:12]}.log"
        try:
            _git(config.repo, "worktree", "add", "--detach", "--force", str(tree), sha)
            if config.build:
                with open(log_path, "ab") as log:
                    try:
                        built = subprocess.run(config.build, shell=True, cwd=tree, stdout=log,
                                               stderr=log, timeout=config.build_timeout,
                                               stdin=subprocess.DEVNULL)
                    except subprocess.TimeoutExpired:
                        built = None
                record["build_s"] = round(time.monotonic() - began, 3)
                if built is None or built.returncode != 0:
                    status = "timed out" if built is None else f"exited {built.returncode}"
                    record["reason"] = f"build {status} (log: {log_path})"
                    return self._done(sha, record, "skip")
            try:
                running = launch(config.launch, cwd=tree, ready_timeout=config.ready_timeout,
                                 log_path=log_path)
            except LaunchError as exc:
                record["reason"] = f"launch: {exc} (log: {log_path})"
                return self._done(sha, record, "skip")
            replay_began = time.monotonic()
            try:
                verdict, detail = self.judge(running.url)
            finally:
                running.stop()
            record["replay_s"] = round(time.monotonic() - replay_began, 3)
            record["detail"] = detail
            return self._done(sha, record, verdict)
        finally:
            _git(config.repo, "worktree", "remove", "--force", str(tree), check=False)
            shutil.rmtree(tree, ignore_errors=True)
            record["elapsed_s"] = round(time.monotonic() - began, 3)

    def _done(self, sha: str, record: dict[str, Any], verdict: str) -> str:
        record["verdict"] = verdict
        self.records.append(record)
        self.cache[sha] = verdict
        return verdict


def repro_judge(config: BisectConfig) -> Callable[[str], tuple[str, str]]:
    """Replay the repro file: a violation is 'bad', none is 'good'."""
    assert config.repro is not None
    repro = load_repro(config.repro)

    def judge(url: str) -> tuple[str, str]:
        async def main() -> Any:
            return await run_program(repro.program, Target.from_url(url),
                                     attempts=config.attempts,
                                     time_limit_s=config.replay_timeout)

        outcome = trio.run(main)
        return ("bad" if outcome.violated else "good"), outcome.detail

    return judge


def seed_judge(config: BisectConfig) -> Callable[[str], tuple[str, str]]:
    """Replay a seed through the corpus' ``replay_seed``: exit 1 'bad', 0 'good'."""
    from replay.replay_cli import find_seed_replay

    replay_seed = find_seed_replay()
    if replay_seed is None:
        raise BisectError("seed replay not available in this build")

    def judge(url: str) -> tuple[str, str]:
        args = argparse.Namespace(seed=str(config.seed), target=url, dry_run=False, file=None,
                                  attempts=config.attempts)
        code = replay_seed(args)
        if code in (0, 1):
            return ("bad" if code == 1 else "good"), f"seed replay exited {code}"
        return "skip", f"seed replay exited {code}"

    return judge


def bisect(config: BisectConfig) -> dict[str, Any]:
    """Run the whole bisect (blocking); returns the report also written to bisect.json."""
    began = time.monotonic()
    report: dict[str, Any] = {"format": BISECT_FORMAT, "repo": str(config.repo),
                              "good": config.good, "bad": config.bad, "launch": config.launch,
                              "build": config.build,
                              "repro": str(config.repro) if config.repro else None,
                              "seed": config.seed, "tested": []}
    tester: _Tester | None = None
    try:
        judge = repro_judge(config) if config.repro is not None else seed_judge(config)
        good = _git(config.repo, "rev-parse", "--verify", f"{config.good}^{{commit}}")
        bad = _git(config.repo, "rev-parse", "--verify", f"{config.bad}^{{commit}}")
        ancestry = subprocess.run(["git", "-C", str(config.repo), "merge-base", "--is-ancestor",
                                   good, bad], capture_output=True, timeout=GIT_TIMEOUT_S)
        if ancestry.returncode != 0:
            raise BisectError(f"{config.good} is not an ancestor of {config.bad}")
        candidates = _git(config.repo, "rev-list", "--ancestry-path", "--reverse",
                          f"{good}..{bad}").split()
        if not candidates:
            raise BisectError(f"no commits between {config.good} and {config.bad}")
        report.update(good_sha=good, bad_sha=bad, candidates=len(candidates))
        tester = _Tester(config, judge)
        report.update(_search(tester, good, candidates))
    except (BisectError, ReproError) as exc:
        report.update(status="error", reason=str(exc))
    finally:
        if tester is not None:
            report["tested"] = tester.records
        report["elapsed_s"] = round(time.monotonic() - began, 3)
        if config.out_dir is not None:
            config.out_dir.mkdir(parents=True, exist_ok=True)
            tmp = config.out_dir / "bisect.json.tmp"
            tmp.write_text(json.dumps(report, indent=2) + "\n")
            os.replace(tmp, config.out_dir / "bisect.json")
    return report


def _search(tester: _Tester, good: str, candidates: list[str]) -> dict[str, Any]:
    """Binary search with skips; candidates[-1] is the bad revision."""
    if tester.test(candidates[-1]) != "bad":
        return {"status": "error", "reason": f"the bad revision {candidates[-1][:12]} does not "
                                             "reproduce the failure (or could not be judged)"}
    if tester.test(good) != "good":
        return {"status": "error", "reason": f"the good revision {good[:12]} reproduces the "
                                             "failure too (or could not be judged)"}
    low, high = -1, len(candidates) - 1  # candidates[low] good (-1: the good rev), [high] bad
    while high - low > 1:
        middle = (low + high) // 2
        verdict, index = _test_near(tester, candidates, middle, low, high)
        if verdict == "skip":
            between = candidates[low + 1:high + 1]
            return {"status": "ambiguous",
                    "reason": "commits in between could not be judged",
                    "candidates_left": [_describe(tester.config.repo, c) for c in between]}
        if verdict == "good":
            low = index
        else:
            high = index
    first = _describe(tester.config.repo, candidates[high])
    return {"status": "found", "first_bad": first, "steps": len(tester.records)}


def _test_near(tester: _Tester, candidates: list[str], middle: int, low: int,
               high: int) -> tuple[str, int]:
    """Test ``middle``; when it is skipped, the nearest untested neighbours in (low, high)."""
    order = [middle]
    for distance in range(1, high - low):
        for index in (middle + distance, middle - distance):
            if low < index < high:
                order.append(index)
    for index in order:
        verdict = tester.test(candidates[index])
        if verdict != "skip":
            return verdict, index
    return "skip", middle
