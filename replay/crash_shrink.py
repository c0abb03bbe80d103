"""Crash and hang shrinking: find the one input that kills (or hangs) a fresh target.

Why: when the target dies, the walker that noticed holds no evidence of *what* killed it;
the coordinator collects what every actor had in flight at the moment of death (the
*candidates*, ranked by how close their send was to it, written as ``candidates.json`` in
the incident directory). A crash has destroyed the live target, so each hypothesis is
tested against a fresh instance from a ``Launcher`` (``--launch CMD``): replay the
hypothesis, then probe; a target that no longer answers (refused, reset, the process
gone) was killed, one that takes the connection but never answers two probes was hung.

How this works:

* ``parse_candidates`` validates the ``candidates.json`` document (format below);
* ``crash_program`` turns candidates into a normal ``Program`` (assay-repro/1): each
  candidate's writes on its own connection, a short read after each write, the candidate's
  hang-up, then probe / hold / probe judged by ``probes_fail`` (``down`` or ``hung``);
* ``search`` is the pure core: single candidates first in rank order, then delta
  debugging (``replay.shrink.shrink``) over the union; every input found is confirmed by a
  second run before it counts. It sees only candidates and a predicate;
* ``FreshTargetJudge`` is the I/O predicate: launch, run the program, stop;
* ``shrink_crash`` ties them together and writes ``repro.json`` and ``crash_shrink.json``.

``candidates.json``::

    {"death_at": 1700000000.5, "kind": "liveness" | "hang",
     "candidates": [{"rank": 1, "actor": 0, "walker": 3, "slice": "adv",
                     "case": "field-oversized", "sent_at": 1700000000.4,
                     "writes": ["GET / HTTP/1.1\\r\\n...", {"base64": "..."}],
                     "end": "close" | "rst" | "open", "summary": "..."}]}

A write is a latin-1 string or ``{"base64": ...}``; all writes of a candidate go on one
connection, in order. ``end`` (default ``close``) is how the candidate left.

Everything is bounded: ``max_attempts`` fresh targets, ``budget_s`` of wall clock, and
``CANDIDATE_LIMIT_S`` per program run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols.program import Action, Check, Program, ReadUntil, Step
from replay.crash_candidates import (
    KINDS,
    Candidate,
    CandidateFormatError,
    load_candidates,
    parse_candidates,
)
from replay.launcher import Launcher, LaunchError
from replay.repro import Repro, save_repro
from replay.shrink import shrink
from replay.shrink_records import ShrinkAbort

__all__ = ["KINDS", "NEEDS_LAUNCH", "Candidate", "CandidateFormatError", "FreshTargetJudge",
           "crash_check", "crash_program", "crash_units", "load_candidates", "not_shrunk",
           "parse_candidates", "search", "shrink_crash"]

#: Longest a single program run (writes + probes) may take.
CANDIDATE_LIMIT_S = 30.0
#: How long to listen after each write (the target's answer, or its death).
WRITE_READ_S = 1.0
#: Most single candidates tried before the union (the best-ranked ones).
MAX_SINGLES = 24
#: Grace between the last write and the first probe (a dying process takes a moment).
SETTLE_S = 0.3
#: Pause between the two probes: a hang must hold, a restart must not hide a crash.
HOLD_S = 0.5


# -- candidates -> program ------------------------------------------------------------------


Unit = tuple[Step, ...]


def crash_units(candidates: Sequence[Candidate], *, probe_path: str = "/",
                probe_timeout_s: float = 3.0) -> tuple[Unit, ...]:
    """One unit per candidate, in the order they were sent (its writes on its own
    connection, a short read after each, its hang-up), then settle, probe, hold, probe.

    A candidate that left its connection open is closed before the probes: a server that
    only stalls while clients hold connections (a saturated worker pool) recovers when they
    leave, and is not hung; judging it with the connections held would be a false alarm."""
    units: list[Unit] = []
    held: list[int] = []
    for number, cand in enumerate(sorted(candidates, key=lambda c: c.sent_at)):
        conn = number + 1
        label = f"crash.{cand.slice}.{cand.case}"
        steps: list[Step] = []
        for write in cand.writes:
            steps.append(Step(Action.SEND, conn=conn, data=write, label=label))
            steps.append(Step(Action.READ, conn=conn, timeout_s=WRITE_READ_S,
                              until=ReadUntil.ANY, label="crash.reply"))
        if cand.end == "open":
            held.append(conn)
        else:
            steps.append(Step(Action.RST if cand.end == "rst" else Action.CLOSE, conn=conn))
        units.append(tuple(steps))
    if held:
        units.append(tuple(Step(Action.CLOSE, conn=conn, label="crash.leave") for conn in held))
    units.append((Step(Action.SLEEP, interval_s=SETTLE_S, label="settle"),))
    units.append((Step(Action.PROBE, path=probe_path, timeout_s=probe_timeout_s,
                       label="probe"),))
    units.append((Step(Action.SLEEP, interval_s=HOLD_S, label="hold"),))
    units.append((Step(Action.PROBE, path=probe_path, timeout_s=probe_timeout_s,
                       label="probe"),))
    return tuple(units)


def crash_check(kind: str) -> Check:
    """Killed: every probe unanswered; hung: and at least one timed out (process alive)."""
    return Check("probes_fail", {"how": "hung" if kind == "hang" else "down"})


def crash_program(candidates: Sequence[Candidate], kind: str, *, probe_path: str = "/",
                  probe_timeout_s: float = 3.0, meta: Mapping[str, Any] | None = None
                  ) -> Program:
    """The candidates replayed as ``crash_units``, judged by ``crash_check``."""
    units = crash_units(candidates, probe_path=probe_path, probe_timeout_s=probe_timeout_s)
    info = {"source": "crash-shrink", "kind": kind,
            "candidates": [c.describe() for c in candidates], **dict(meta or {})}
    return Program(tuple(step for unit in units for step in unit), crash_check(kind), info)


# -- the pure search --------------------------------------------------------------------------


@dataclass
class SearchResult:
    """What ``search`` found (``found`` None: nothing killed a fresh target) and how."""

    found: tuple[Candidate, ...] | None
    stage: str
    attempts: int
    elapsed_s: float
    stopped_by: str
    log: list[dict[str, Any]] = field(default_factory=list)


def _key(cands: Sequence[Candidate]) -> tuple[int, int, tuple[int, ...]]:
    return (len(cands), sum(c.size for c in cands), tuple(c.rank for c in cands))


def search(candidates: Sequence[Candidate], kills: Callable[[tuple[Candidate, ...]], bool], *,
           max_attempts: int = 30, max_seconds: float = 120.0, max_singles: int = MAX_SINGLES,
           clock: Callable[[], float] = time.monotonic,
           cancelled: Callable[[], bool] = lambda: False) -> SearchResult:
    """Single candidates in rank order, then ddmin over the union; each hit is confirmed by
    a second ``kills`` run. ``kills`` may raise ``ShrinkAbort`` (e.g. nothing launches);
    ``cancelled()`` true stops it before the next attempt."""
    began = clock()
    log: list[dict[str, Any]] = []
    attempts = 0

    def budget_left() -> bool:
        return attempts < max_attempts and clock() - began < max_seconds

    def run(cands: tuple[Candidate, ...], stage: str) -> bool:
        nonlocal attempts
        if cancelled():
            raise ShrinkAbort("cancelled")
        attempts += 1
        verdict = bool(kills(cands))
        log.append({"n": attempts, "stage": stage, "candidates": [c.describe() for c in cands],
                    "kills": verdict, "at_s": round(clock() - began, 3)})
        return verdict

    def result(found: tuple[Candidate, ...] | None, stage: str, stopped: str) -> SearchResult:
        return SearchResult(found, stage, attempts, clock() - began, stopped, log)

    ordered = tuple(sorted(candidates, key=lambda c: (c.rank, c.sent_at)))
    if not ordered:
        return result(None, "none", "no candidates")
    try:
        for cand in ordered[:max_singles]:
            if not budget_left():
                return result(None, "single", "budget")
            if run((cand,), "single") and budget_left() and run((cand,), "confirm"):
                return result((cand,), "single", "found")
        if len(ordered) == 1 or not budget_left():
            return result(None, "single", "budget" if not budget_left() else "exhausted")
        union = tuple(sorted(ordered, key=lambda c: c.sent_at))
        remaining = max(1, max_attempts - attempts - 1)
        aborts: list[str] = []

        def ddmin(cands: Sequence[Candidate]) -> bool:
            try:
                return run(tuple(cands), "ddmin")
            except ShrinkAbort as exc:  # ``shrink`` swallows it: keep the reason
                aborts.append(str(exc))
                raise

        shrunk = shrink(union, ddmin, key=_key, max_attempts=remaining,
                        max_seconds=max(1.0, max_seconds - (clock() - began)),
                        stall_limit=remaining, clock=clock)
        if shrunk.stopped_by == "aborted":
            # What the shrink kept was seen to kill at most once (not at all when the
            # union's own first run aborted): confirming it now, after the predicate said
            # it cannot go on, would count a single kill as found.
            return result(None, "aborted", aborts[-1] if aborts else "aborted")
        if shrunk.flaky:
            return result(None, "union", "union does not kill a fresh target")
        found = tuple(shrunk.steps)
        if attempts < max_attempts + 1 and run(found, "confirm"):
            return result(found, "ddmin", "found")
        return result(None, "ddmin", "not confirmed")
    except ShrinkAbort as exc:
        return result(None, "aborted", str(exc))


# -- the I/O predicate --------------------------------------------------------------------------


class FreshTargetJudge:
    """``kills(candidates)``: a fresh target per call, the crash program, then stop.

    Blocking (it runs its own trio loop per attempt): call it from a worker thread when
    the caller is async."""

    def __init__(self, launcher: Launcher, kind: str, *, probe_path: str = "/",
                 probe_timeout_s: float = 3.0) -> None:
        self.launcher = launcher
        self.kind = kind
        self.probe_path = probe_path
        self.probe_timeout_s = probe_timeout_s
        self.details: list[str] = []

    def program(self, candidates: Sequence[Candidate]) -> Program:
        return crash_program(candidates, self.kind, probe_path=self.probe_path,
                             probe_timeout_s=self.probe_timeout_s)

    def __call__(self, candidates: tuple[Candidate, ...]) -> bool:
        import trio

        from actors.walker import Target
        from replay.repro import run_program

        program = self.program(candidates)
        try:
            running = self.launcher.start()
        except LaunchError:  # once more: a free port can be taken between pick and bind
            try:
                running = self.launcher.start()
            except LaunchError as exc:
                raise ShrinkAbort(f"cannot launch a fresh target: {exc}") from None
        try:
            outcome = trio.run(lambda: run_program(program, Target.from_url(running.url),
                                                   pid=running.pid,
                                                   time_limit_s=CANDIDATE_LIMIT_S))
        finally:
            running.stop()
        self.details.append(outcome.detail[:300])
        return outcome.violated


def shrink_crash(candidates: Any, launcher: Launcher, out_dir: Path, budget_s: float = 90.0,
                 *, kind: str | None = None, max_attempts: int = 30, probe_path: str = "/",
                 probe_timeout_s: float = 3.0,
                 predicate: Mapping[str, Any] | None = None,
                 target: Mapping[str, Any] | None = None,
                 kills: Callable[[tuple[Candidate, ...]], bool] | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Path | None:
    """Shrink a crash or hang to the smallest input that kills/hangs a fresh target.

    Args:
        candidates: the ``candidates.json`` document (or its list, or ``Candidate`` values).
        launcher: starts a fresh target per attempt (``replay.launcher.Launcher``).
        out_dir: where ``repro.json`` and ``crash_shrink.json`` go (created).
        budget_s: wall-clock bound of the whole search; ``max_attempts`` bounds launches.
        kind: ``liveness`` or ``hang``; default: the document's.
        predicate / target: recorded in the repro (e.g. ``{"id": "I-LIVENESS", ...}``).
        kills: override the fresh-target predicate (tests).
        cancelled: polled before each attempt (e.g. ``threading.Event.is_set`` set by an
            incident task that was cancelled): the search stops, nothing is left running.

    Returns:
        The repro path when an input killed (hung) a fresh target twice, else None (the
        reason is in ``crash_shrink.json`` and ``NOT_SHRUNK.txt``).

    Blocking: from trio, ``await trio.to_thread.run_sync(lambda: shrink_crash(...))``.
    Raises ``CandidateFormatError`` for a malformed document.
    """
    doc_kind, parsed = parse_candidates(candidates)
    kind = kind or doc_kind
    out_dir.mkdir(parents=True, exist_ok=True)
    judge = FreshTargetJudge(launcher, kind, probe_path=probe_path,
                             probe_timeout_s=probe_timeout_s)
    found = search(parsed, kills or judge, max_attempts=max_attempts, max_seconds=budget_s,
                   cancelled=cancelled)
    report = {"format": "assay-crash-shrink/1", "kind": kind, "launcher": launcher.describe(),
              "stage": found.stage, "stopped_by": found.stopped_by,
              "attempts": found.attempts, "elapsed_s": round(found.elapsed_s, 3),
              "candidates": [c.to_json() for c in parsed],
              "found": [c.describe() for c in found.found] if found.found else None,
              "log": found.log, "details": judge.details[-20:]}
    (out_dir / "crash_shrink.json").write_text(json.dumps(report, indent=2) + "\n")
    if found.found is None:
        (out_dir / "NOT_SHRUNK.txt").write_text(
            f"no input killed a fresh target: {found.stopped_by} "
            f"({found.attempts} attempt(s), {found.elapsed_s:.1f} s)\n")
        return None
    program = crash_program(found.found, kind, probe_path=probe_path,
                            probe_timeout_s=probe_timeout_s)
    default = {"id": "I-HANG" if kind == "hang" else "I-LIVENESS",
               "counter": "coord.target_hung" if kind == "hang" else "coord.target_down"}
    repro = Repro(program, predicate=dict(predicate or default),
                  target={**dict(target or {}), "needs_fresh_target": True,
                          "launch": launcher.describe()},
                  shrink={"mode": "fresh", "stage": found.stage, "attempts": found.attempts,
                          "original_size": len(parsed), "final_size": len(found.found),
                          "elapsed_s": round(found.elapsed_s, 3), "verified": True},
                  notes=(f"the input that {'hung' if kind == 'hang' else 'killed'} a fresh "
                         f"target twice: {', '.join(c.describe() for c in found.found)}",
                         "replay with: assay replay repro.json --launch 'CMD {port}'"))
    path = out_dir / "repro.json"
    save_repro(repro, path)
    return path


#: What a dossier says when a crash could not be shrunk for want of a launcher.
NEEDS_LAUNCH = ("shrinking a crash or hang needs a fresh target per attempt: run with "
                "--launch 'CMD {port}' (or --shrink-launch 'CMD {port}') so assay can start "
                "one; the candidates below are the inputs in flight at the moment of death")


def not_shrunk(candidates: Any, out_dir: Path, reason: str = NEEDS_LAUNCH, *,
               kind: str | None = None, probe_path: str = "/") -> Path | None:
    """No shrink possible (no launcher): ``NOT_SHRUNK.txt`` gives ``reason`` and lists the
    candidates best-ranked first; ``unshrunk.json`` (assay-repro/1, unverified) replays all
    of them, for ``assay replay unshrunk.json --launch CMD`` by hand. Returns its path, or
    None when no candidate carried bytes."""
    doc_kind, parsed = parse_candidates(candidates)
    kind = kind or doc_kind
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [reason, ""]
    lines += [f"{c.describe()} sent_at={c.sent_at:.3f} bytes={c.size}"
              + (f" ({c.summary})" if c.summary else "") for c in parsed]
    if not parsed:
        lines.append("(no candidate carried bytes to replay)")
    (out_dir / "NOT_SHRUNK.txt").write_text("\n".join(lines) + "\n")
    if not parsed:
        return None
    program = crash_program(parsed, kind, probe_path=probe_path)
    path = out_dir / "unshrunk.json"
    save_repro(Repro(program, predicate={"id": "I-HANG" if kind == "hang" else "I-LIVENESS"},
                     target={"needs_fresh_target": True},
                     shrink={"status": "not_shrunk", "reason": reason, "verified": False},
                     notes=("unverified: every candidate in flight at the moment of death, "
                            "not shrunk",)), path)
    return path
