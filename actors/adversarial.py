"""The adversarial walker: send malformed HTTP/1.1 on fresh connections and judge the answer.

How this works: the walker cycles through ``protocols.adversarial_cases.CASES`` round-robin
from an offset its PRNG chooses (so many short walkers still cover the catalogue between
them). For each case it

1. fetches (or reuses, for ``adv_baseline_ttl`` seconds) the answer to a *valid* request with
   the case's method to the same route, the baseline of the routing trap;
2. opens a fresh connection, sends the case bytes (dripped byte by byte for slow-loris cases),
   and reads under a deadline until a response is complete, then for a short grace period to
   learn whether the server closes and whether it answers anything else;
3. for framing cases whose connection is still open, sends a canary request and reads its
   answer the same way;
4. hands the bytes to ``protocols.adversarial_oracle`` and bumps the counters it names; HIGH
   ones go through ``ctx.report_violation`` with the exact bytes and timings.

All judgement lives in the sans-IO oracle; this module only moves bytes under deadlines.
Failures on our side (connect refused or timed out) are counted as ``adv.unjudged`` and
``adv.error.<cause>``, never as the server's fault. A send that fails because the server
hung up early is part of the observation, not an error: the read that follows sees why.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from actors import adv_confirm, body_routes, confirm, net
from actors.adv_baseline import BaselineCache, Phase, read_reply
from actors.walker import WalkerContext
from protocols.adversarial_cases import (
    BY_NAME,
    CASES,
    AdversarialCase,
    canary_request,
)
from protocols.adversarial_oracle import CaseVerdict, Observation, assess, observe
from protocols.confirmation import Confirmed, Decision
from protocols.outcome import Verdict

#: Counters whose first example is kept (per-case counters are too many to keep each).
EXAMPLE_COUNTERS = frozenset({
    "adv.must_violation", "adv.not_closed", "adv.lenient", "adv.hang_until_timeout",
    "adv.server_error", "adv.garbage", "adv.status_mismatch", "adv.canary_lost",
})
#: What a kept example holds (examples ship with every tally flush: keep them small).
FAILING_VERDICTS = (".violation", ".lenient")
EXAMPLE_KEYS = ("case", "rfc", "verdict", "reaction", "reason", "statuses", "baseline_status",
                "sent", "received", "ending")


@dataclass(frozen=True)
class AdvSettings:
    """The knobs this slice reads from ``ctx.settings`` (all optional)."""

    #: Deadline for connect, each send, and the wait for a response.
    timeout: float = 3.0
    #: How long to keep reading after a complete response (close? surplus responses?).
    grace: float = 0.3
    #: Longest a slow-loris case drips before it stops and looks at the reaction.
    drip_max: float = 6.0
    #: How long a baseline answer is reused.
    baseline_ttl: float = 30.0
    #: Pause after an error on our side, so a dead target is not hammered in a tight loop.
    backoff: float = 0.2
    #: Restrict the walker to these case names (empty: the whole catalogue).
    cases: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> AdvSettings:
        names = tuple(settings.get("adv_cases") or ())
        unknown = [name for name in names if name not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown adversarial case(s): {', '.join(unknown)}")
        return cls(
            timeout=float(settings.get("adv_timeout", cls.timeout)),
            grace=float(settings.get("adv_grace", cls.grace)),
            drip_max=float(settings.get("adv_drip_max", cls.drip_max)),
            baseline_ttl=float(settings.get("adv_baseline_ttl", cls.baseline_ttl)),
            backoff=float(settings.get("adv_backoff", cls.backoff)),
            cases=names,
        )

    def catalogue(self) -> Sequence[AdversarialCase]:
        return tuple(BY_NAME[name] for name in self.cases) if self.cases else CASES


@dataclass
class Exchange:
    """Everything one case did on the wire: the evidence an incident needs."""

    sent: bytes
    reply: Phase
    send_error: str | None = None
    canary_sent: bytes = b""
    canary: Phase | None = None
    timings: dict[str, float] = field(default_factory=dict)


class CaseDeck:
    """One dealing order over the catalogue, shared by all adversarial walkers of an actor.

    Walkers that each walked the catalogue from their own offset would spend a short run on
    overlapping stretches and miss whole regions; dealing from one deck gives the actor's
    walkers distinct cases, so the catalogue is covered at the actor's full case rate. Actors
    start evenly apart from a point drawn from the run seed (``slice_share``), so two actors
    deal two halves rather than overlapping stretches; it still replays from the seed.
    """

    def __init__(self, cases: Sequence[AdversarialCase],
                 share: tuple[int, int, int] | None = None) -> None:
        self.cases = cases
        self._next: int | None = None
        if share is not None and share[1] > 1:  # (rank, actors, seed): evenly apart
            rank, actors, seed = share
            base = random.Random(seed).randrange(len(cases))
            self._next = base + rank * len(cases) // max(1, actors)

    def draw(self, rng: random.Random) -> AdversarialCase:
        if self._next is None:
            self._next = rng.randrange(len(self.cases))
        case = self.cases[self._next % len(self.cases)]
        self._next += 1
        return case


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Validate this slice's settings once per actor (an unknown case name fails the plan)."""
    share = settings.get("slice_share")
    settings["adv_deck"] = CaseDeck(AdvSettings.from_mapping(settings).catalogue(),
                                    tuple(share) if share else None)
    return settings


async def run(ctx: WalkerContext) -> None:
    """Walk the catalogue until the deadline (the actor may also cancel us at stop)."""
    settings = AdvSettings.from_mapping(ctx.settings)
    deck = ctx.settings.get("adv_deck") or CaseDeck(settings.catalogue())
    baselines = BaselineCache(settings)
    while not ctx.expired():
        case = deck.draw(ctx.rng)
        with trio.move_on_at(ctx.deadline):
            if not await probe(ctx, case, settings, baselines):
                await trio.sleep(settings.backoff)


async def probe(
    ctx: WalkerContext, case: AdversarialCase, settings: AdvSettings, baselines: BaselineCache
) -> bool:
    """Run one case end to end and record it; False when our side failed (not judged)."""
    ctx.begin_case(case.name)  # crash attribution (actors.flight)
    host, path = ctx.target.host_header, body_routes.path_for(ctx, case)
    with ctx.aside_case("baseline"):  # crash attribution: not part of the case
        baseline = await baselines.get(ctx, case.method, path)
    payload = case.build(host, path)
    started = trio.current_time()
    try:
        stream = await net.connect(ctx.target, settings.timeout)
    except net.TransportError as exc:
        for counter in (f"adv.case.{case.name}.unjudged", "adv.unjudged", f"adv.error.{exc.cause}"):
            ctx.tally.incr(counter)
        ctx.record_exchange(slice="adv", case=case.name, error=exc.cause)
        return False
    try:
        ctx.tally.incr("adv.sent")
        exchange = await _exchange(ctx, stream, case, payload, settings)
    finally:
        await net.aclose_quietly(stream)
    exchange.timings["total_s"] = trio.current_time() - started
    observation = observe(exchange.reply.data, exchange.reply.ending, case.methods)
    canary = observe(exchange.canary.data, exchange.canary.ending) if exchange.canary else None
    verdict = assess(case, observation, baseline, canary)
    decision = None
    if verdict.verdict is Verdict.VIOLATION and confirm.enabled(ctx):
        evidence = _evidence(ctx, case, exchange, observation, baseline, canary, verdict)
        decision = await confirm.confirm(
            ctx, "adv", case.name, adv_confirm.attempt_of(verdict),
            lambda _: adv_confirm.resend(
                ctx, case, settings.timeout, baselines,
                lambda stream: _exchange(ctx, stream, case, payload, settings)),
            {key: evidence[key] for key in (*EXAMPLE_KEYS, "timings")})
    _record(ctx, case, exchange, observation, baseline, canary, verdict, decision)
    return True


async def _exchange(
    ctx: WalkerContext,
    stream: trio.SocketStream,
    case: AdversarialCase,
    payload: bytes,
    settings: AdvSettings,
) -> Exchange:
    exchange = Exchange(sent=payload, reply=Phase())
    sent_at = trio.current_time()
    try:
        if case.drip:
            await _drip(stream, payload, case, settings)
        else:
            await net.send_all(stream, payload, settings.timeout)
    except net.TransportError as exc:
        exchange.send_error = exc.cause  # the server hung up on us: its reaction, read it
    exchange.timings["send_s"] = trio.current_time() - sent_at
    exchange.reply = await read_reply(stream, settings, case)
    exchange.timings["reply_s"] = exchange.reply.elapsed
    ctx.tally.record_latency("adv.latency", exchange.reply.elapsed * 1e6)
    if case.framing and exchange.send_error is None:
        reply = observe(exchange.reply.data, exchange.reply.ending, case.methods)
        if exchange.reply.ending == "timeout" and reply.statuses and not reply.closed:
            await _send_canary(ctx, stream, exchange, settings)
    return exchange


async def _send_canary(
    ctx: WalkerContext, stream: trio.SocketStream, exchange: Exchange, settings: AdvSettings
) -> None:
    nonce = f"{ctx.rng.getrandbits(48):012x}"
    exchange.canary_sent = canary_request(ctx.target.host_header, ctx.target.base_path, nonce)
    try:
        await net.send_all(stream, exchange.canary_sent, settings.timeout)
    except net.TransportError:
        return  # closed after all: nothing more to learn on this socket
    exchange.canary = await read_reply(stream, settings)
    exchange.timings["canary_s"] = exchange.canary.elapsed


async def _drip(
    stream: trio.SocketStream, payload: bytes, case: AdversarialCase, settings: AdvSettings
) -> None:
    """Send ``payload`` one byte per ``case.drip`` seconds, for at most ``drip_max``."""
    assert case.drip is not None
    start = 0
    if case.drip_body_only:
        start = payload.find(b"\r\n\r\n") + 4 if b"\r\n\r\n" in payload else 0
        await net.send_all(stream, payload[:start], settings.timeout)
    deadline = trio.current_time() + settings.drip_max
    for offset in range(start, len(payload)):
        await net.send_all(stream, payload[offset : offset + 1], settings.timeout)
        if trio.current_time() + case.drip > deadline:
            return  # stop dripping: the server has had its chance to time us out
        await trio.sleep(case.drip)


def _record(
    ctx: WalkerContext,
    case: AdversarialCase,
    exchange: Exchange,
    observation: Observation,
    baseline: Observation | None,
    canary: Observation | None,
    verdict: CaseVerdict,
    decision: Decision | None = None,
) -> None:
    ctx.record_exchange(
        slice="adv",
        case=case.name,
        sent=exchange.sent,
        received=exchange.reply.data,
        ending=exchange.reply.ending,
        statuses=list(observation.statuses),
        canary_statuses=list(canary.statuses) if canary else None,
        reaction=verdict.reaction.value if verdict.reaction else None,
        verdict=verdict.verdict.value,
    )
    if decision is not None and not isinstance(decision, Confirmed):
        return  # counted as unconfirmed by actors.confirm: nothing of the verdict counts
    evidence = _evidence(ctx, case, exchange, observation, baseline, canary, verdict)
    if decision is not None:
        evidence.update(confirm.confirmation_note(decision))
    for counter in verdict.counters:
        if counter in verdict.high:
            ctx.report_violation(counter, evidence)
            continue
        ctx.tally.incr(counter)
        failing_case = counter.startswith("adv.case.") and counter.endswith(FAILING_VERDICTS)
        if (counter in EXAMPLE_COUNTERS or failing_case) and counter not in ctx.tally.examples:
            ctx.tally.keep_example(counter, {key: evidence[key] for key in EXAMPLE_KEYS})


def _evidence(
    ctx: WalkerContext,
    case: AdversarialCase,
    exchange: Exchange,
    observation: Observation,
    baseline: Observation | None,
    canary: Observation | None,
    verdict: CaseVerdict,
) -> dict[str, Any]:
    return {
        "case": case.name,
        "category": case.category,
        "rfc": case.rfc,
        "quote": case.quote,
        "requirement": case.requirement.value,
        "severity": case.severity.value,
        "allowed": sorted(reaction.value for reaction in case.allowed),
        "verdict": verdict.verdict.value,
        "reaction": verdict.reaction.value if verdict.reaction else None,
        "reason": verdict.reason,
        "target": ctx.target.url,
        "statuses": list(observation.statuses),
        "baseline_status": baseline.status if baseline else None,
        "sent": exchange.sent,
        "received": exchange.reply.data,
        "ending": exchange.reply.ending,
        "send_error": exchange.send_error,
        "canary_sent": exchange.canary_sent,
        "canary_received": exchange.canary.data if exchange.canary else b"",
        "canary_ending": exchange.canary.ending if exchange.canary else None,
        "canary_statuses": list(canary.statuses) if canary else None,
        "timings": dict(exchange.timings),
    }
