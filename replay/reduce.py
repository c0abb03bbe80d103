"""Shrink a program against a real target: the glue between ``replay.shrink`` and the wire.

How this works: the engine shrinks a tuple of *units* (``replay.evidence``: a request with
its reads; deleting half of one only produces a slow timeout). ``key`` orders candidates
shorter-then-lexicographic over the flattened steps; two granularities shrink inside the
request a unit sends (its lines, then, for short requests, its bytes). The predicate runs
the candidate program and judges it with the program's own oracle, either

* ``live``: against the target under test (own connections; nothing reaches the run's
  tallies). An intermittent failure (``repeats`` > 1) must show on every run to count; or
* ``fresh``: against a new instance per candidate from a ``Launcher``, for failures that
  take the target's state with them (a crash, a saturated broker) or depend on it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from actors.walker import Target
from protocols.program import Action, Check, Program, Step
from replay.evidence import Derived, Unit, program_of
from replay.launcher import Launcher, LaunchError
from replay.repro import run_program
from replay.shrink import shrink_async
from replay.shrink_records import Attempt, Granularity, ShrinkAbort, ShrinkResult

_REQUEST = re.compile(rb"\A[A-Z]{3,10} \S+ HTTP/\d")
BYTE_SHRINK_MAX = 64
#: Labels of steps the shrinker must keep, as many as the original had: a grace period
#: the oracle's verdict assumes ("hold"), and the probes that give a target more than one
#: chance ("probe"). Without them a correct-but-slow target would fail the repro too.
PINNED = ("hold", "probe")
#: Budget of one candidate run.
CANDIDATE_LIMIT_S = 60.0


def unit_key(units: Sequence[Unit]) -> tuple[int, int, bytes]:
    """Fewer steps, then fewer bytes, then lexicographic on the canonical step JSON."""
    steps = [step for unit in units for step in unit]
    canonical = json.dumps([s.to_json() for s in steps], sort_keys=True,
                           separators=(",", ":")).encode()
    return (len(steps), sum(len(s.data) for s in steps), canonical)


def _request_step(unit: Unit) -> int | None:
    for index, step in enumerate(unit):
        if step.action in (Action.SEND, Action.DRIP) and _REQUEST.match(step.data):
            return index
    return None


def _lines_split(unit: Unit) -> list[bytes] | None:
    index = _request_step(unit)
    return None if index is None else unit[index].data.splitlines(keepends=True)


def _bytes_split(unit: Unit) -> list[int] | None:
    index = _request_step(unit)
    if index is None or len(unit[index].data) > BYTE_SHRINK_MAX:
        return None
    return list(unit[index].data)


def _join(unit: Unit, parts: Sequence[Any]) -> Unit:
    index = _request_step(unit)
    if index is None:
        return unit
    data = b"".join(parts) if parts and isinstance(parts[0], bytes) else bytes(parts)
    steps = list(unit)
    steps[index] = _replace_data(steps[index], data)
    return tuple(steps)


def _replace_data(step: Step, data: bytes) -> Step:
    return replace(step, data=data)


GRANULARITIES: tuple[Granularity[Unit], ...] = (
    Granularity("lines", _lines_split, _join),
    Granularity("bytes", _bytes_split, _join),
)


@dataclass
class ShrinkRun:
    """The outcome of shrinking one derived program, ready to be written out."""

    mode: str
    result: ShrinkResult[Unit]
    program: Program
    verified: bool | None = None
    verify_detail: str = ""
    notes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        return {**self.result.stats(), "mode": self.mode,
                "original_steps": sum(len(u) for u in self.result.original),
                "final_steps": len(self.program.steps), "verified": self.verified}

    def log_document(self) -> dict[str, Any]:
        attempts = [a.to_json() for a in self.result.log]
        for entry, detail in zip(attempts, self.details, strict=False):
            entry["check"] = detail
        return {"format": "assay-shrink-log/1", "mode": self.mode, "stats": self.stats(),
                "attempts": attempts}


class Judge:
    """Runs candidates against the live target or fresh instances; keeps the last detail."""

    def __init__(self, check: Check, meta: dict[str, Any], *, live_url: str | None,
                 launcher: Launcher | None, repeats: int = 1, pid: int | None = None) -> None:
        self.check = check
        self.meta = meta
        self.live_url = live_url
        self.launcher = launcher
        self.repeats = max(1, repeats)
        self.pid = pid
        self.details: list[str] = []

    @property
    def mode(self) -> str:
        return "fresh" if self.launcher is not None else "live"

    async def fails(self, units: tuple[Unit, ...]) -> bool:
        program = program_of(units, self.check, self.meta)
        if self.launcher is None:
            assert self.live_url is not None
            outcome = await run_program(program, Target.from_url(self.live_url),
                                        attempts=self.repeats, pid=self.pid,
                                        time_limit_s=CANDIDATE_LIMIT_S, stop_on_violation=False)
        else:
            launcher = self.launcher
            running = None
            try:
                # Shielded: a launch takes a moment, and one cancelled halfway would leave
                # a target process nobody stops.
                with trio.CancelScope(shield=True):
                    running = await trio.to_thread.run_sync(launcher.start)
                outcome = await run_program(program, Target.from_url(running.url),
                                            pid=running.pid, time_limit_s=CANDIDATE_LIMIT_S)
            except LaunchError as exc:
                raise ShrinkAbort(f"cannot launch a fresh target: {exc}") from None
            finally:
                if running is not None:
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(running.stop)
        self.details.append(outcome.detail[:300])
        return outcome.violated


async def shrink_derived(derived: Derived, judge: Judge, *, max_attempts: int,
                         max_seconds: float, stall_limit: int,
                         on_attempt: Any = None) -> ShrinkRun:
    """Shrink (the original runs first: flaky when it no longer fails), then verify once."""
    began = time.monotonic()

    def note(attempt: Attempt) -> None:
        if on_attempt is not None:
            on_attempt(attempt)

    def pinned(units: Sequence[Unit]) -> int:
        return sum(step.label in PINNED for unit in units for step in unit)

    needed = pinned(derived.units)

    def admissible(units: tuple[Unit, ...]) -> bool:
        return pinned(units) == needed

    aborts: list[str] = []

    async def fails(units: tuple[Unit, ...]) -> bool:
        try:
            return await judge.fails(units)
        except ShrinkAbort as exc:  # ``shrink_async`` swallows it: keep the reason
            aborts.append(str(exc))
            raise

    result = await shrink_async(derived.units, fails, key=unit_key, admissible=admissible,
                                granularities=GRANULARITIES if derived.shrink_data else (),
                                max_attempts=max_attempts,
                                max_seconds=max_seconds, stall_limit=stall_limit,
                                on_attempt=note)
    program = program_of(result.steps, derived.check, derived.meta)
    run = ShrinkRun(judge.mode, result, program, details=list(judge.details))
    if not result.flaky and result.improved and time.monotonic() - began < max_seconds * 2:
        try:
            run.verified = await judge.fails(tuple(result.steps))
            run.verify_detail = judge.details[-1] if judge.details else ""
        except ShrinkAbort as exc:
            run.verify_detail = str(exc)
    elif not result.flaky and result.attempts:
        run.verified = True
        run.verify_detail = judge.details[0] if judge.details else ""
    elif not result.flaky:
        # Aborted before the original's own run (no fresh target launched): nothing was
        # reproduced, so nothing is verified; the repro is the unshrunk evidence.
        run.verify_detail = aborts[-1] if aborts else result.stopped_by
        run.notes.append(f"not reproduced: the shrink stopped before the original ran "
                         f"({run.verify_detail}); the repro is the unshrunk evidence")
    if result.flaky:
        run.notes.append("flaky: the original program did not fail again against "
                         f"{judge.mode} target(s); the repro is the unshrunk evidence")
    return run
