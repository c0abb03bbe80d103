"""``shrink_derived`` when the predicate aborts (no fresh target can be launched): the
result must never read as verified unless a run actually reproduced the failure."""

from __future__ import annotations

import trio

from protocols.adversarial_cases import BY_NAME as ADV
from replay.evidence import TripContext, derive
from replay.reduce import shrink_derived
from replay.shrink_records import ShrinkAbort


class _Judge:
    """Stands in for ``replay.reduce.Judge``: ``outcomes`` in order, an exception raised."""

    mode = "fresh"

    def __init__(self, *outcomes: bool | Exception) -> None:
        self.outcomes = list(outcomes)
        self.details: list[str] = []

    async def fails(self, units: object) -> bool:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        self.details.append("violated" if outcome else "passed")
        return outcome


def _derived():
    evidence = {"case": "cl-te-smuggle", "sent": ADV["cl-te-smuggle"].build("127.0.0.1", "/")}
    return derive(TripContext("adv.desync", "I-ADV-DESYNC", evidence, "http://127.0.0.1:1/"))


def _shrink(judge: _Judge):
    return trio.run(lambda: shrink_derived(_derived(), judge, max_attempts=10,
                                           max_seconds=10, stall_limit=10))


def test_an_abort_before_the_original_ran_is_not_verified() -> None:
    run = _shrink(_Judge(ShrinkAbort("cannot launch a fresh target: boom")))
    assert run.result.stopped_by == "aborted" and run.result.attempts == 0
    assert run.verified is not True
    assert run.stats()["verified"] is not True
    assert any("cannot launch" in note or "not reproduced" in note for note in run.notes)


def test_an_abort_after_the_original_failed_keeps_its_one_failure() -> None:
    # The original reproduced once against a fresh target before the launcher gave out:
    # that failure is the evidence (as when nothing smaller fails), not a claim made up.
    run = _shrink(_Judge(True, ShrinkAbort("cannot launch a fresh target: boom")))
    assert run.result.stopped_by == "aborted" and run.result.attempts == 1
    assert run.verified is True and run.verify_detail == "violated"
