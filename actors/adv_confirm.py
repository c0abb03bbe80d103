"""Confirmation rounds for the adversarial walker (see ``actors.confirm`` for the loop).

How this works: ``attempt_of`` reduces a ``CaseVerdict`` to the ``Attempt`` confirmation
compares, keyed by the counters that fail an invariant (a re-send must break the same
invariant, not merely any MUST). ``resend`` is one round: the case bytes alone on a fresh
connection, then, when the re-send hung, the valid baseline to the same route fetched fresh,
because a hang counts only if the server answered a valid request in the same round. That
baseline goes after the case's connection is closed, so a server with a single worker is not
blocked by our own re-send. The exchange itself is the walker's
(``actors.adversarial._exchange``), passed in, so both sendings of a case move exactly the
same bytes the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from actors import net
from actors.walker import WalkerContext
from protocols.adversarial_cases import AdversarialCase
from protocols.adversarial_oracle import CaseVerdict, assess, observe
from protocols.confirmation import Attempt
from protocols.outcome import Reaction, Verdict

if TYPE_CHECKING:
    from actors.adversarial import BaselineCache, Exchange

#: Counters that fail an invariant: the class a re-send must reproduce.
INVARIANT_COUNTERS = frozenset({"adv.wrong_accepted", "adv.desync", "adv.must_violation"})


def attempt_of(verdict: CaseVerdict, baseline_answered: bool | None = None) -> Attempt:
    """A judged sending reduced to what confirmation compares."""
    failing = sorted(set(verdict.counters) & INVARIANT_COUNTERS)
    reaction = verdict.reaction.value if verdict.reaction else "unjudged"
    return Attempt(
        violation=verdict.verdict is Verdict.VIOLATION,
        key=",".join(failing) or "violation",
        hang=verdict.reaction is Reaction.HANG,
        judged=verdict.verdict is not Verdict.UNJUDGED,
        baseline_answered=baseline_answered,
        detail=f"{verdict.verdict.value}: {reaction}",
    )


async def resend(
    ctx: WalkerContext,
    case: AdversarialCase,
    timeout: float,
    baselines: BaselineCache,
    exchange: Callable[[trio.SocketStream], Awaitable[Exchange]],
) -> Attempt:
    """One confirmation round; judges, records in the ring, counts nothing of the verdict."""
    try:
        stream = await net.connect(ctx.target, timeout)
    except net.TransportError as exc:
        return Attempt.unjudged(f"connect failed: {exc.cause}")
    try:
        done = await exchange(stream)
    finally:
        await net.aclose_quietly(stream)
    observation = observe(done.reply.data, done.reply.ending, case.methods)
    canary = observe(done.canary.data, done.canary.ending) if done.canary else None
    # Only a hang needs this round's baseline; any other reaction is judged against the
    # cached one, as the first sending was (a fresh fetch would double every round's cost).
    hung = observation.reaction is Reaction.HANG
    with ctx.aside_case("baseline"):  # the reproducer holds the case's bytes only
        baseline = await (baselines.fresh if hung else baselines.again)(ctx, case.method)
    verdict = assess(case, observation, baseline, canary)
    ctx.record_exchange(slice="adv", case=case.name, confirm_round=True, sent=done.sent,
                        received=done.reply.data, ending=done.reply.ending,
                        verdict=verdict.verdict.value,
                        reaction=verdict.reaction.value if verdict.reaction else None)
    return attempt_of(verdict, baseline_answered=(baseline is not None) if hung else None)
