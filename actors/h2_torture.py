"""The h2 slice: one fresh HTTP/2 connection per catalogue case, judged by the sans-IO oracle.

How this works: the walker cycles through ``protocols.h2_cases.CASES`` in an order shuffled
by its PRNG. One case is: connect (ALPN h2 over TLS, prior knowledge or the h2c upgrade on
cleartext: ``h2_via`` from the coordinator's gate, else discovered once), send our preface,
read the server's SETTINGS and ACK it, send the case's frames and a PING with fresh opaque
data, then read until ``protocols.h2_oracle`` has decided or the case deadline passes. The
judgement moves ``h2.case.<name>.<verdict>``; a MUST miss moves ``h2.must_violation``
(I-H2-MUST, MED); a malformed request served moves ``h2.accepted_malformed`` (I-H2-ACCEPTED,
HIGH, through ``ctx.report_violation``), each with the bytes sent and received. A violation
counts only once re-sent alone reproduces it (``actors.confirm``, ``adv_confirm_tries``).

After every case a survival probe opens a fresh HTTP/2 connection and PINGs: two failures
in a row (pause between) are ``h2.crashed`` (I-H2-CRASHED, HIGH). The received bytes in the
evidence are the frames as read, re-serialised (identical octets except a set R bit); the
sent bytes are the whole connection's, preface included (replayable on a bare connection).

Settings: ``h2_via`` ("alpn", "prior", "upgrade"), ``h2_path`` (default the target's path),
``h2_timeout`` (connect/send, seconds, default 5), ``h2_case_timeout`` (how long a server may
take to react, default 3), ``h2_grace_s`` (after the PING answer, how long a malformed
request's stream may take to settle, default the case timeout: the protocol layer answers
the PING, the application may answer the request later, much later on a loaded server; a
correct server always settles the stream, so only a defective one costs the wait),
``h2_probe_pause_s`` (default 1),
``h2_cases`` (names to restrict the catalogue to).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trio

from actors import confirm, h2_discover, net
from actors.h2_link import H2Link, NotHttp2, Via, open_link, server_preface
from actors.net import TransportError
from actors.walker import WalkerContext
from protocols import h2_frames as fr
from protocols.confirmation import Attempt, Confirmed, Decision
from protocols.errors import HarnessError
from protocols.h2_case_model import H2Case, H2Env, H2Reaction
from protocols.h2_cases import CASES
from protocols.h2_oracle import COUNTER_SEVERITY, H2Judgement, H2Oracle
from protocols.h2c import build_upgrade_request
from protocols.outcome import Severity, Verdict
from protocols.tls_options import ALPN_H2

SLICE = "h2"
CRASHED = f"{SLICE}.crashed"
CONNECT_BACKOFF_S = 0.2


@dataclass(frozen=True)
class CaseRun:
    """One judged case: the judgement and the exact exchange."""

    judgement: H2Judgement
    sent: bytes
    received: bytes
    elapsed: float


async def run(ctx: WalkerContext) -> None:
    """Run cases (each followed by a survival probe) until the walker's deadline."""
    via = await _via(ctx)
    if via is None:
        return
    cases = _case_cycle(ctx, via)
    # A case (and its confirmation and probe) started just before the deadline may finish
    # after it, but not by more than one case's worth of time.
    overrun = float(ctx.settings.get("h2_case_timeout", 3.0)) + _timeout(ctx)
    with trio.move_on_after(max(ctx.remaining(), 0.0) + overrun):
        while not ctx.expired():
            case = next(cases)
            await case_once(ctx, case, via)
            if not await survival(ctx, case, via):
                return  # a dead target: the coordinator's liveness check takes it from here


def _case_cycle(ctx: WalkerContext, via: Via) -> Iterator[H2Case]:
    wanted = ctx.settings.get("h2_cases")
    catalogue = list(CASES)
    if wanted:
        names = set(wanted)
        catalogue = [case for case in catalogue if case.name in names]
        if not catalogue:
            raise HarnessError(f"h2_cases names no known case: {sorted(names)}")
    if via is Via.UPGRADE:  # the preface follows the 101; a bad one cannot replace it
        catalogue = [case for case in catalogue if case.preface is None] or catalogue
    ctx.rng.shuffle(catalogue)
    return itertools.cycle(catalogue)


async def _via(ctx: WalkerContext) -> Via | None:
    """The way given by the coordinator's gate, else discovered (``h2.via_discovered``)."""
    named = ctx.settings.get("h2_via")
    if named:
        via: Via | None = Via(named)
    else:
        via, why = await h2_discover.discover(ctx.target, _timeout(ctx), _path(ctx))
        ctx.tally.incr(f"{SLICE}.via_discovered")
        if via is None:
            ctx.tally.incr(f"{SLICE}.not_http2")
            ctx.tally.keep_example(f"{SLICE}.not_http2", {"reason": why})
            ctx.record_exchange(slice=SLICE, error=why)
    if via is not None:
        ctx.tally.incr(f"{SLICE}.via.{via.value}")
    return via


def _timeout(ctx: WalkerContext) -> float:
    return float(ctx.settings.get("h2_timeout", 5.0))


def _path(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("h2_path") or ctx.target.base_path or "/")


def env_for(ctx: WalkerContext, via: Via, server_settings: fr.Frame | None) -> H2Env:
    max_frame = fr.MAX_FRAME_SIZE
    if server_settings is not None:
        payload = server_settings.payload
        for offset in range(0, len(payload) - 5, 6):
            ident, value = struct.unpack("!HI", payload[offset:offset + 6])
            if ident == fr.Setting.MAX_FRAME_SIZE:
                max_frame = value
    return H2Env(authority=ctx.target.host_header, scheme=ctx.target.scheme, path=_path(ctx),
                 first_stream=3 if via is Via.UPGRADE else 1, server_max_frame=max_frame)


async def case_once(ctx: WalkerContext, case: H2Case, via: Via) -> H2Judgement | None:
    """One case on a fresh connection, judged and counted; None when not judged.

    A violation is re-sent alone first (``actors.confirm``): only one that reproduces is
    counted; a hang also needs a PING on a fresh connection answered in that round (else
    the target is saturated, not wrong)."""
    ctx.begin_case(case.name)  # crash attribution (actors.flight)
    done = await _exchange(ctx, case, via)
    if done is None:
        return None
    decision: Decision | None = None
    if done.judgement.verdict is Verdict.VIOLATION and confirm.enabled(ctx):
        decision = await confirm.confirm(ctx, SLICE, case.name, _attempt(done.judgement),
                                         lambda _: _resend(ctx, case, via),
                                         evidence(case, done))
    _account(ctx, case, done, decision)
    return done.judgement


def _attempt(judgement: H2Judgement, baseline_answered: bool | None = None) -> Attempt:
    return Attempt(violation=judgement.verdict is Verdict.VIOLATION,
                   key=judgement.counter or "violation",
                   hang=judgement.reaction is H2Reaction.HANG,
                   judged=judgement.verdict is not Verdict.UNJUDGED,
                   baseline_answered=baseline_answered,
                   detail=f"{judgement.verdict.value}: {judgement.reaction.value}")


async def _resend(ctx: WalkerContext, case: H2Case, via: Via) -> Attempt:
    """One confirmation round: the case alone on a fresh connection (not counted), and for
    a hang a PING on another fresh connection."""
    done = await _exchange(ctx, case, via, count=False)
    if done is None:
        return Attempt.unjudged("the re-send could not be judged (connect or preface failed)")
    ctx.record_exchange(slice=SLICE, case=case.name, confirm_round=True, sent=done.sent,
                        received=done.received, reaction=done.judgement.reaction.value,
                        verdict=done.judgement.verdict.value)
    answered = None
    if done.judgement.reaction is H2Reaction.HANG:
        with ctx.aside_case("baseline"):
            answered = await probe(ctx, via) == ""
    return _attempt(done.judgement, baseline_answered=answered)


async def _open(ctx: WalkerContext, case: H2Case, via: Via) -> tuple[H2Link, bytes | None]:
    """The connection and the case's bytes (None: the case does not apply to this server).
    A preface case gets a bare connection: its bytes replace our preface."""
    timeout = _timeout(ctx)
    if case.preface is not None:
        stream = await net.connect(ctx.target, timeout, alpn=ALPN_H2)
        return H2Link(stream, via), case.preface
    link = await open_link(ctx.target, timeout, via, path=_path(ctx))
    try:
        first = await server_preface(link, timeout)
        if first is None:
            raise NotHttp2(f"no server preface ({link.closed or link.reader.problem or 'timeout'})")
    except BaseException:
        await link.aclose()
        raise
    return link, case.build(env_for(ctx, via, first))


def _prologue(ctx: WalkerContext, case: H2Case, via: Via) -> bytes:
    """What the connection carried before the case's own bytes (``actors.h2_link``): the
    h2c upgrade request, our preface and the ACK of the server's SETTINGS; a preface case
    sends its own preface instead. With it the evidence replays on a bare connection."""
    if case.preface is not None:
        return b""
    upgrade = build_upgrade_request(_path(ctx), ctx.target.host_header) \
        if via is Via.UPGRADE else b""
    return upgrade + fr.client_preface(fr.DEFAULT_SETTINGS) + fr.SETTINGS_ACK


async def _exchange(ctx: WalkerContext, case: H2Case, via: Via,
                    count: bool = True) -> CaseRun | None:
    """Send the case and judge the answer; ``count``: move the sent/unjudged counters (a
    confirmation round does not)."""
    tally = ctx.tally
    started = trio.current_time()
    try:
        link, payload = await _open(ctx, case, via)
    except (TransportError, NotHttp2) as exc:
        why = f"connect failed: {exc.cause}" if isinstance(exc, TransportError) else str(exc)
        if count:
            _unjudged(ctx, case, why)
        await trio.sleep(CONNECT_BACKOFF_S)
        return None
    try:
        if payload is None:
            if count:
                tally.incr(f"{SLICE}.not_applicable")
                tally.incr(f"{SLICE}.case.{case.name}.not_applicable")
            return None
        if count:
            tally.incr(f"{SLICE}.sent")
        canary = ctx.rng.randbytes(8)
        wire = payload + fr.ping(canary)
        oracle = H2Oracle(case, canary, frozenset({1}) if via is Via.UPGRADE else frozenset())
        oracle.feed(link.frames)
        try:
            await link.send(wire, _timeout(ctx))
        except TransportError:
            pass  # a server that fails the connection early may reset our write; read on
        await _read_answer(ctx, link, oracle)
        ending = link.closed or ("cap" if link.reader.capped else "open")
        judgement = oracle.finish(ending, link.reader.problem)
        received = b"".join(fr.build_frame(f.type, f.flags, f.stream_id, f.payload)
                            for f in link.frames)
        sent = _prologue(ctx, case, via) + wire
        return CaseRun(judgement, sent, received, trio.current_time() - started)
    finally:
        await link.aclose()


async def _read_answer(ctx: WalkerContext, link: H2Link, oracle: H2Oracle) -> None:
    """Read until the oracle decides, the link ends, or the case deadline (a malformed
    request's stream gets ``h2_grace_s`` past the PING answer to settle)."""
    case_timeout = float(ctx.settings.get("h2_case_timeout", 3.0))
    deadline = trio.current_time() + case_timeout
    grace = float(ctx.settings.get("h2_grace_s", case_timeout))
    while not oracle.decided and not link.closed and not link.reader.problem \
            and not link.reader.capped:
        now = trio.current_time()
        if oracle.alive:
            deadline = min(deadline, now + grace)
            grace = deadline - now  # the grace is counted once, from the first PING answer
        if now >= deadline:
            return
        oracle.feed(await link.read(deadline - now, until=lambda _: True))


def _unjudged(ctx: WalkerContext, case: H2Case, why: str) -> None:
    ctx.tally.incr(f"{SLICE}.unjudged")
    ctx.tally.incr(f"{SLICE}.case.{case.name}.{Verdict.UNJUDGED.value}")
    ctx.tally.keep_example(f"{SLICE}.unjudged", {"case": case.name, "reason": why})
    ctx.record_exchange(slice=SLICE, case=case.name, error=why)


def evidence(case: H2Case, done: CaseRun) -> dict[str, Any]:
    judgement = done.judgement
    return {
        "case": case.name,
        "group": case.group.value,
        "rfc": case.rfc,
        "quote": case.quote,
        "requirement": case.requirement.value,
        "expect": case.expect.value,
        "reaction": judgement.reaction.value,
        "verdict": judgement.verdict.value,
        "detail": judgement.detail,
        "sent": done.sent,
        "received": done.received,
        "elapsed_s": round(done.elapsed, 6),
    }


def _account(ctx: WalkerContext, case: H2Case, done: CaseRun,
             decision: Decision | None = None) -> None:
    """Count a judged case; an unconfirmed violation was counted by ``actors.confirm``."""
    tally = ctx.tally
    judgement = done.judgement
    tally.record_latency(f"{SLICE}.latency", done.elapsed * 1e6)
    ctx.record_exchange(slice=SLICE, case=case.name, sent=done.sent, received=done.received,
                        reaction=judgement.reaction.value, verdict=judgement.verdict.value)
    if decision is not None and not isinstance(decision, Confirmed):
        return
    tally.incr(f"{SLICE}.case.{case.name}.{judgement.verdict.value}")
    if judgement.verdict is Verdict.UNJUDGED:
        tally.incr(f"{SLICE}.unjudged")
    if judgement.verdict in (Verdict.VIOLATION, Verdict.LENIENT):
        tally.keep_example(f"{SLICE}.case.{case.name}.{judgement.verdict.value}",
                           evidence(case, done))
    counter = judgement.counter
    if counter is None:
        return
    proof = evidence(case, done)
    if decision is not None:
        proof.update(confirm.confirmation_note(decision))
    if COUNTER_SEVERITY[counter] is Severity.HIGH and judgement.verdict is Verdict.VIOLATION:
        ctx.report_violation(counter, proof)
    else:
        tally.incr(counter)
        tally.keep_example(counter, proof)


async def survival(ctx: WalkerContext, case: H2Case, via: Via) -> bool:
    """Two chances for a fresh HTTP/2 connection to answer a PING; a target that fails both
    is reported crashed (with the case that preceded it)."""
    pause = float(ctx.settings.get("h2_probe_pause_s", 1.0))
    reasons: list[str] = []
    with ctx.aside_case("survival_probe"):  # crash attribution: not part of the case
        for attempt in range(2):
            ctx.tally.incr(f"{SLICE}.probes")
            why = await probe(ctx, via)
            if not why:
                return True
            reasons.append(why)
            if attempt == 0:
                await trio.sleep(pause)
    ctx.report_violation(CRASHED, {"case": case.name, "rfc": case.rfc,
                                   "reason": "the target stopped answering HTTP/2 after the "
                                             "case: " + "; ".join(reasons)})
    return False


async def probe(ctx: WalkerContext, via: Via) -> str:
    """"" when a fresh connection's PING is answered, else why not."""
    timeout = _timeout(ctx)
    opaque = b"assay-lv"
    try:
        with trio.fail_after(timeout * 3):
            link = await open_link(ctx.target, timeout, via, path=_path(ctx))
            try:
                if await server_preface(link, timeout) is None:
                    return f"no server preface ({link.closed or 'timeout'})"
                await link.send(fr.ping(opaque), timeout)
                await link.read(timeout, until=lambda f: f.type == fr.FrameType.PING
                                and f.flags & fr.FLAG_ACK and f.payload == opaque)
            finally:
                await link.aclose()
    except (TransportError, NotHttp2) as exc:
        return f"connect failed: {exc.cause}" if isinstance(exc, TransportError) else str(exc)
    except trio.TooSlowError:
        return "timed out"
    answered = any(f.type == fr.FrameType.PING and f.flags & fr.FLAG_ACK
                   and f.payload == opaque for f in link.frames)
    return "" if answered else f"PING not answered ({link.closed or 'timeout'})"
