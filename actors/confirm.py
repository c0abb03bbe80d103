"""The I/O side of confirmation, shared by every slice: re-send under a deadline, then count.

How this works: a slice that judged a case a violation calls ``confirm`` with the first
attempt and a coroutine function that re-sends the case alone (fresh connection, plus the
baseline of the same route where the re-send hung) and returns an ``Attempt``. ``confirm``
calls it until ``protocols.confirmation.decide`` has an answer, at most ``tries`` times and
within ``deadline_s`` (never past the walker's own deadline), then counts the outcome:

* confirmed: ``<slice>.confirmed``; the caller then counts the violation as it always did;
* unconfirmed: ``<slice>.case.<name>.unconfirmed``, ``<slice>.unconfirmed`` and
  ``<slice>.unconfirmed.<why>``, with the first attempt's evidence kept as the example; the
  caller counts nothing of the violation.

While this runs the walker sends nothing else, so the re-send is alone as far as this walker
is concerned (other walkers keep their load: that is what the baseline round controls for).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from actors.walker import WalkerContext
from protocols.confirmation import (
    DEFAULT_DEADLINE_S,
    Attempt,
    Confirmed,
    Decision,
    Unconfirmed,
    decide,
    tries_from,
)

Resend = Callable[[int], Awaitable[Attempt]]


def settings_of(ctx: WalkerContext) -> tuple[int, float]:
    """(tries, deadline_s) from the walker's settings; tries 0 means confirmation is off."""
    deadline = ctx.settings.get("adv_confirm_deadline_s", DEFAULT_DEADLINE_S)
    return tries_from(ctx.settings), float(deadline or DEFAULT_DEADLINE_S)


def enabled(ctx: WalkerContext) -> bool:
    return settings_of(ctx)[0] > 0


async def confirm(
    ctx: WalkerContext,
    slice_name: str,
    case_name: str,
    first: Attempt,
    resend: Resend,
    evidence: Mapping[str, Any],
) -> Decision:
    """Re-send until decided; count the decision; return it (the caller counts a Confirmed).

    ``resend(round)`` must not count the violation itself: it only observes and judges.
    Confirmation ends at the walker's deadline too: a violation it cuts short is counted
    ``unconfirmed.deadline`` (or, where the walker's own cancel scope ends at the same
    moment, not at all), never as a violation.
    """
    tries, deadline_s = settings_of(ctx)
    retries: list[Attempt] = []
    give_up = min(trio.current_time() + deadline_s, ctx.deadline)
    decision: Decision | None = None
    with trio.move_on_at(give_up):
        while (decision := decide(first, retries, max(1, tries))) is None:
            ctx.tally.incr(f"{slice_name}.confirm_sent")
            retries.append(await resend(len(retries)))
    if decision is None:
        decision = decide(first, retries, max(1, tries), out_of_time=True)
    assert decision is not None
    account(ctx, slice_name, case_name, decision, retries, evidence)
    return decision


def account(
    ctx: WalkerContext,
    slice_name: str,
    case_name: str,
    decision: Decision,
    retries: list[Attempt],
    evidence: Mapping[str, Any],
) -> None:
    """Count the decision and keep an example of every unconfirmed case."""
    tally = ctx.tally
    rounds = [{"detail": r.detail, "violation": r.violation, "hang": r.hang,
               "judged": r.judged, "baseline_answered": r.baseline_answered} for r in retries]
    if isinstance(decision, Confirmed):
        tally.incr(f"{slice_name}.confirmed")
        ctx.record_exchange(slice=slice_name, case=case_name, confirmation="confirmed",
                            rounds=len(retries))
        return
    assert isinstance(decision, Unconfirmed)
    why = decision.why.value
    per_case = f"{slice_name}.case.{case_name}.unconfirmed"
    for counter in (per_case, f"{slice_name}.unconfirmed", f"{slice_name}.unconfirmed.{why}"):
        tally.incr(counter)
    example = {**evidence, "confirmation": "unconfirmed", "why": why,
               "why_detail": decision.detail, "rounds": rounds}
    tally.keep_example(per_case, example)
    tally.keep_example(f"{slice_name}.unconfirmed", example)
    ctx.record_exchange(slice=slice_name, case=case_name, confirmation="unconfirmed", why=why)


def confirmation_note(decision: Decision) -> dict[str, Any]:
    """What a confirmed violation's evidence says about its confirmation."""
    if isinstance(decision, Confirmed):
        return {"confirmation": "confirmed", "reproduced": decision.reproduced}
    return {"confirmation": "unconfirmed", "why": decision.why.value}
