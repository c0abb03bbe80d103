"""The h2flood slice: HTTP/2 floods judged as resource invariants (I-H2-FLOOD, HIGH).

How this works: the walker first checks that the target speaks HTTP/2 (ALPN h2 on https,
prior knowledge on http); one that does not is counted ``h2flood.not_h2`` and left alone.
Then, for each flood class of ``protocols.h2_floods.CATALOGUE`` in an order shuffled by the
walker's PRNG (cycling until the deadline): a baseline of control requests (one HTTP/2 GET
on a fresh connection each, ``actors.h2_control``), then the flood on its own connection
with control requests started at a fixed pace beside it in the same nursery, bounded in
frames, bytes, seconds and send time (``FloodBounds``); with the target's pid, its RSS
before, at the peak and after the flood (the flood connection still open, idle).
``protocols.h2_flood_verdict.judge`` decides. A violation is re-run once (the baseline
first waits for the target to recover) and counts only if it repeats:
``h2flood.violation`` with the evidence; one that does not repeat is
``h2flood.unconfirmed`` (its evidence kept as that counter's example).

Settings: ``h2flood_classes`` (names, default all), ``h2flood_seconds`` (3),
``h2flood_max_frames`` (50000), ``h2flood_max_mib`` (128: bytes sent),
``h2flood_baseline`` (control requests, 5), ``h2flood_probe_interval_s`` (a control
request every 0.1 s during the flood), ``h2flood_control_timeout_s`` (5),
``h2flood_settle_s`` (0.5), ``h2flood_pause_s`` (1), ``h2flood_recover_s`` (10),
``h2flood_rss_limit_mib`` (64), ``target_pid``, ``health_path``, ``h2_via`` (the HTTP/2
gate's way to the target: "alpn", "prior" or "upgrade").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import trio

from actors import h2_link, net
from actors.h2_control import control_request, rss_of
from actors.h2_flood_lock import one_flood_at_a_time
from actors.h2_flood_send import flood_once
from actors.walker import WalkerContext
from protocols.h2_flood_verdict import (
    MIB,
    ControlSample,
    Criteria,
    FloodReaction,
    Judgement,
    RssTrace,
    Verdict,
    judge,
)
from protocols.h2_floods import BY_NAME, CATALOGUE, FloodBounds, FloodClass

SLICE = "h2flood"
VIOLATION = f"{SLICE}.violation"
RSS_EVERY_S = 0.1
#: The confirmation's answer when the target never answered a control request again.
NOT_RECOVERED = "no control request answered since the first flood"
#: The confirmation's answer when the run ended before the target could be seen to
#: recover (or not): unconfirmed, the first flood's evidence kept.
NO_TIME_TO_RECOVER = "the run ended before the target could be seen to recover"
#: A flood shorter than this measures nothing worth judging.
MIN_FLOOD_S = 0.3
#: The actor cancels its walkers this long after the deadline (``actors.actor``); a wait
#: that would outlast it loses what it waits for.
ACTOR_GRACE_S = 1.0


@dataclass
class Attempt:
    """One flood and what was measured around it."""

    flood: FloodClass
    judgement: Judgement
    reaction: FloodReaction
    baseline: list[ControlSample]
    during: list[ControlSample]
    rss: RssTrace | None


def _setting(ctx: WalkerContext, name: str, default: float) -> float:
    value = ctx.settings.get(f"{SLICE}_{name}")
    return float(default if value is None else value)


def _path(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("health_path") or ctx.target.base_path or "/")


def _pid(ctx: WalkerContext) -> int | None:
    pid = ctx.settings.get("target_pid")
    return int(pid) if pid else None


def via_of(ctx: WalkerContext) -> h2_link.Via | None:
    """How the coordinator's HTTP/2 gate reached the target (``h2_via``); None: the default
    (ALPN on https, prior knowledge on http)."""
    named = ctx.settings.get("h2_via")
    return h2_link.Via(named) if named else None


def floods_of(ctx: WalkerContext) -> list[FloodClass]:
    names = ctx.settings.get(f"{SLICE}_classes")
    return [BY_NAME[n] for n in names] if names else list(CATALOGUE)


async def run(ctx: WalkerContext) -> None:
    """Flood class after flood class until the deadline; nothing on a target without h2."""
    why = await speaks_h2(ctx)
    if why:
        ctx.tally.incr(f"{SLICE}.not_h2")
        ctx.record_exchange(slice=SLICE, not_h2=why)
        await trio.sleep_until(ctx.deadline)
        return
    order = floods_of(ctx)
    ctx.rng.shuffle(order)
    pause = _setting(ctx, "pause_s", 1.0)
    for flood in itertools.cycle(order):
        if ctx.remaining() < MIN_FLOOD_S + 1.0:
            break
        await flood_case(ctx, flood)
        await trio.sleep(max(0.0, min(pause, ctx.remaining())))
    await trio.sleep_until(ctx.deadline)


async def speaks_h2(ctx: WalkerContext) -> str:
    """"" when the target answers our HTTP/2 preface with its own, else why not."""
    timeout = _setting(ctx, "control_timeout_s", 5.0)
    try:
        with trio.fail_after(timeout * 2):
            link = await h2_link.open_link(ctx.target, timeout, via=via_of(ctx),
                                           path=_path(ctx))
            try:
                settings = await h2_link.server_preface(link, timeout)
            finally:
                await link.aclose()
    except trio.TooSlowError:
        return "no answer to the HTTP/2 preface"
    except net.TransportError as exc:
        return f"connection failed: {exc.cause}"
    except h2_link.NotHttp2 as exc:
        return str(exc)
    return "" if settings is not None else f"no server preface ({link.closed or 'silent'})"


async def flood_case(ctx: WalkerContext, flood: FloodClass) -> Verdict:
    """One flood class (alone against this target on this host: ``actors.h2_flood_lock``):
    flood, judge, confirm a violation by a second flood, count."""
    async with one_flood_at_a_time(ctx.target):
        if ctx.remaining() < MIN_FLOOD_S + 1.0:  # the run ran out while another flooded
            return Verdict.UNJUDGED
        return await _flood_case(ctx, flood)


async def _flood_case(ctx: WalkerContext, flood: FloodClass) -> Verdict:
    ctx.begin_case(flood.name)  # crash attribution (actors.flight)
    tally = ctx.tally
    first = await attempt(ctx, flood, recover=False)
    if isinstance(first, str):
        tally.incr(f"{SLICE}.unjudged")
        tally.incr(f"{SLICE}.case.{flood.name}.unjudged")
        ctx.record_exchange(slice=SLICE, flood=flood.name, unjudged=first)
        return Verdict.UNJUDGED
    tally.incr(f"{SLICE}.sent")
    tally.incr(f"{SLICE}.frames", first.reaction.frames_sent)
    tally.incr(f"{SLICE}.bound.{first.judgement.bound.value}")
    tally.incr(f"{SLICE}.drew.{flood.name}.{first.judgement.bound.value}")  # per class
    verdict = first.judgement.verdict
    evidence = evidence_of(first)
    if verdict is Verdict.VIOLATION:
        reference = None if first.rss is None else first.rss.before
        try:
            again = await attempt(ctx, flood, recover=True, rss_reference=reference)
        except trio.Cancelled:  # the run ends (deadline, Stop): keep what was measured
            tally.incr(f"{SLICE}.unconfirmed")
            tally.incr(f"{SLICE}.unconfirmed.no_rerun")
            tally.keep_example(f"{SLICE}.unconfirmed",
                               {**evidence, "confirmation": "cancelled: the run ended"})
            raise
        # The harm outlasting the first flood (no control request answered since) is the
        # same harm, repeated: it confirms.
        confirmed = again == NOT_RECOVERED or (
            isinstance(again, Attempt) and again.judgement.verdict is Verdict.VIOLATION)
        evidence["confirmation"] = again if isinstance(again, str) else evidence_of(again)
        if confirmed:
            tally.incr(f"{SLICE}.case.{flood.name}.violation")
            ctx.report_violation(VIOLATION, evidence)
        else:  # a violation that did not repeat is not counted; its evidence is kept
            tally.incr(f"{SLICE}.unconfirmed")
            if isinstance(again, str):
                tally.incr(f"{SLICE}.unconfirmed.no_rerun")
            tally.keep_example(f"{SLICE}.unconfirmed", evidence)
            verdict = Verdict.UNJUDGED
    if verdict is Verdict.UNJUDGED:
        tally.incr(f"{SLICE}.unjudged")
    if verdict is not Verdict.VIOLATION:
        tally.incr(f"{SLICE}.case.{flood.name}.{_case_verdict(verdict)}")
    ctx.record_exchange(slice=SLICE, flood=flood.name, verdict=verdict.value,
                        reason=first.judgement.reason, frames=first.reaction.frames_sent,
                        server=first.reaction.describe())
    return verdict


def _case_verdict(verdict: Verdict) -> str:
    """ARCHITECTURE's per-case verdicts: a bounded or absorbed flood is a pass."""
    return "unjudged" if verdict is Verdict.UNJUDGED else "pass"


async def attempt(ctx: WalkerContext, flood: FloodClass, recover: bool,
                  rss_reference: int | None = None) -> Attempt | str:
    """Baseline, flood with control traffic beside it, verdict; a string says why nothing
    could be judged (the flood connection failed, no server preface).

    ``rss_reference``: a confirmation measures memory growth from the first flood's
    "before": an allocator that kept the first flood's pages reuses them for the second,
    whose own growth then looks small although the server holds as much again."""
    baseline = await _baseline(ctx, recover)
    if isinstance(baseline, str):
        return baseline
    seconds = min(_setting(ctx, "seconds", 3.0), ctx.remaining() - 1.0)
    if seconds < MIN_FLOOD_S:
        return "too little time left for a flood"
    bounds = FloodBounds(max_frames=int(_setting(ctx, "max_frames", 50_000)),
                         max_bytes=int(_setting(ctx, "max_mib", 128) * MIB),
                         max_seconds=seconds)
    pid = _pid(ctx)
    rss = [rss_of(pid)] * 3  # before, peak, after
    during: list[ControlSample] = []
    done, sending_over = trio.Event(), trio.Event()

    def settled() -> None:
        rss[2] = rss_of(pid)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_control_probes, ctx, during, sending_over)
        if rss[0] is not None:
            nursery.start_soon(_sample_peak, pid, rss, done)
        try:
            reaction = await flood_once(
                ctx, flood, bounds, via_of(ctx), _path(ctx),
                _setting(ctx, "control_timeout_s", 5.0),
                _setting(ctx, "settle_s", 0.5), settled, sending_over)
        finally:
            sending_over.set()
            done.set()
    if isinstance(reaction, str):
        return reaction
    trace = None
    if None not in rss:
        before = rss[0] if rss_reference is None else min(rss[0], rss_reference)
        trace = RssTrace(before=before, peak=max(rss), after=rss[2])  # type: ignore[type-var]
    criteria = Criteria(rss_limit=int(_setting(ctx, "rss_limit_mib", 64) * MIB))
    judgement = judge(baseline, during, reaction, trace, criteria)
    for sample in during:
        if sample.latency_s is not None:
            ctx.tally.record_latency(f"{SLICE}.control_latency", sample.latency_s * 1e6)
    return Attempt(flood, judgement, reaction, baseline, during, trace)


async def _baseline(ctx: WalkerContext, recover: bool) -> list[ControlSample] | str:
    """Control requests just before the flood. ``recover``: first wait (up to
    ``h2flood_recover_s``, and no later than the actor lets the walker run) for one to
    succeed, so that a confirmation starts from a target that came back from the first
    flood; ``NOT_RECOVERED`` when it never did in the whole wait, ``NO_TIME_TO_RECOVER``
    when the run's end cut the wait short."""
    async def control() -> ControlSample:
        return await control_request(ctx.target, _path(ctx),
                                     _setting(ctx, "control_timeout_s", 5.0), via_of(ctx))

    with ctx.aside_case("baseline"):
        if recover:
            wanted = _setting(ctx, "recover_s", 10.0)
            allowed = min(wanted, ctx.remaining() + ACTOR_GRACE_S / 2)
            with trio.move_on_after(max(allowed, 0.0)) as waited:
                while (await control()).latency_s is None:
                    await trio.sleep(0.2)
            if waited.cancelled_caught:
                return NOT_RECOVERED if allowed >= wanted else NO_TIME_TO_RECOVER
        return [await control() for _ in range(int(_setting(ctx, "baseline", 5)))]


async def _control_probes(ctx: WalkerContext, during: list[ControlSample],
                          sending_over: trio.Event) -> None:
    """A control request every ``h2flood_probe_interval_s`` from the flood's first byte to
    its last, each on its own connection and awaited to its end (or its timeout).

    Why at a fixed pace and not back to back: the median then says for how much of the
    flood a new client met that latency. Back to back, a server stalled for most of the
    flood gives one slow sample and then many fast ones once it catches up."""
    timeout = _setting(ctx, "control_timeout_s", 5.0)
    interval = _setting(ctx, "probe_interval_s", 0.1)

    async def probe() -> None:
        during.append(await control_request(ctx.target, _path(ctx), timeout, via_of(ctx)))

    with ctx.aside_case("control"):
        async with trio.open_nursery() as probes:
            while True:
                probes.start_soon(probe)
                with trio.move_on_after(interval):
                    await sending_over.wait()
                if sending_over.is_set():
                    break


async def _sample_peak(pid: int | None, rss: list[int | None], done: trio.Event) -> None:
    while not done.is_set():
        now = rss_of(pid)
        if now is not None and now > (rss[1] or 0):
            rss[1] = now
        with trio.move_on_after(RSS_EVERY_S):
            await done.wait()


def evidence_of(done: Attempt) -> dict[str, Any]:
    """What a reader of the incident needs: the flood, what the server did, control
    latencies before and during, memory."""
    judgement, rss = done.judgement, done.rss

    def ms(samples: list[ControlSample]) -> list[float | str]:
        return [round(s.latency_s * 1000, 1) if s.latency_s is not None else s.error
                for s in samples]

    return {
        "flood": done.flood.name,
        "reference": done.flood.reference,
        "rfc_quote": done.flood.quote,
        "frames_sent": done.reaction.frames_sent,
        "server_reaction": done.reaction.describe(),
        "verdict": judgement.verdict.value,
        "reason": judgement.reason,
        "control_ms_before": ms(done.baseline),
        "control_ms_during": ms(done.during),
        "rss_mib": None if rss is None else {
            "before": round(rss.before / MIB, 1), "peak": round(rss.peak / MIB, 1),
            "after": round(rss.after / MIB, 1)},
    }
