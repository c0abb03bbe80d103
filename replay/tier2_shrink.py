"""Shrinking a Tier 2 finding to the shortest sequence that still shows it.

How this works: the ddmin engine (``replay.shrink.shrink_async``) sees only the positions
of the non-setup steps. A candidate keeps some of them; ``renumber`` rebuilds its steps
with every binding pointing at the new position of its producer, and a candidate that
dropped a producer some kept step consumes is *inadmissible* (never run: it could not be
built, so it would "pass" for the wrong reason). Each admissible candidate runs on the live
target in a fresh session and still fails when the checkers report the same bucket.
"""

from __future__ import annotations

from typing import Any

from actors.tier2_exec import ExchangeFailed, SequenceRunner
from protocols.tier2_checkers import check
from protocols.tier2_sequences import Binding, Step
from replay.shrink import shrink_async
from replay.shrink_records import CandidateError


def renumber(steps: tuple[Step, ...], kept: tuple[int, ...]) -> tuple[Step, ...] | None:
    """The steps at positions ``kept`` (ascending), bindings renumbered; None if a kept
    step consumes from a dropped one."""
    where = {old: new for new, old in enumerate(kept)}
    out = []
    for old in kept:
        step = steps[old]
        binds = []
        for b in step.binds:
            if b.source not in where:
                return None
            binds.append(Binding(b.name, b.where, where[b.source]))
        out.append(Step(step.op_id, step.payload, step.body, tuple(binds)))
    return tuple(out)


async def still_shows(runner: SequenceRunner, steps: tuple[Step, ...], bucket: str) -> bool:
    """Run ``steps`` once; whether a finding in ``bucket`` comes out."""
    try:
        run = await runner.run(steps)
    except ExchangeFailed as exc:
        raise CandidateError(exc.cause) from None
    return any(f.bucket == bucket for f in check(run.exchanges, runner.ops, runner.graph))


async def minimize(runner: SequenceRunner, steps: tuple[Step, ...], setup_len: int,
                   bucket: str, *, max_attempts: int = 60, max_seconds: float = 10.0
                   ) -> tuple[tuple[Step, ...], dict[str, Any]]:
    """The smallest sequence found that still shows ``bucket``, and the shrink's stats."""
    fixed = tuple(range(setup_len))
    body = tuple(range(setup_len, len(steps)))

    def build(candidate: tuple[int, ...]) -> tuple[Step, ...] | None:
        return renumber(steps, fixed + tuple(sorted(candidate)))

    async def fails(candidate: tuple[int, ...]) -> bool:
        built = build(candidate)
        if built is None:
            return False
        return await still_shows(runner, built, bucket)

    result = await shrink_async(body, fails, max_attempts=max_attempts,
                                max_seconds=max_seconds,
                                admissible=lambda c: build(c) is not None)
    final = build(result.steps)
    assert final is not None  # the engine only keeps admissible candidates
    return final, result.stats()
