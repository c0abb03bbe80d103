"""The ws slice: one WebSocket session per catalogue case, judged by the sans-IO oracle.

How this works: the walker cycles through the catalogue (``protocols.websocket_cases``) in
an order shuffled by its PRNG, so a short run still covers every case. One session is:
connect, opening handshake (a valid one, or the malformed one a handshake case calls for),
send the case's frames masked with fresh keys (plus the oracle's canary Ping where the case
wants one), then read until the oracle has decided, the server closes, or the case deadline
passes. The oracle's judgement moves ``ws.case.<name>.<verdict>`` and, for a MUST
violation, a HIGH counter through ``ctx.report_violation`` with the exact bytes both ways.

A frame case whose valid handshake fails is not judged (``ws.handshake_failed``): the route
pre-flight decides whether the slice runs at all, so a failure here is counted, not blamed.

Settings: ``ws_path`` (default ``/ws``), ``ws_timeout`` (connect/send/handshake, seconds,
default 5), ``ws_case_timeout`` (how long a server may take to react, default 5),
``ws_cases`` (names to restrict the catalogue to, default all).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trio

from actors import confirm, net, ws_deflate, ws_large_walk
from actors.net import Ending, TransportError
from actors.response_check import check_raw
from actors.walker import WalkerContext
from protocols.confirmation import Attempt, Confirmed, Decision
from protocols.errors import HarnessError
from protocols.outcome import Severity, Verdict
from protocols.response_head import HEAD_CAP
from protocols.websocket_cases import (
    CASES,
    HANDSHAKE_CASES,
    CaseKind,
    HandshakeCase,
    WsCase,
)
from protocols.websocket_frames import (
    Frame,
    Opcode,
    build_handshake,
    close_payload,
    encode_frames,
    make_key,
    parse_handshake_response,
)
from protocols.websocket_oracle import (
    CANARY_FRAME,
    COUNTER_SEVERITY,
    READ_CAP,
    Transport,
    WsJudgement,
    WsOracle,
    handshake_decided,
    judge_handshake,
)
from protocols.ws_deflate_cases import CASES as DEFLATE_CASES
from protocols.ws_deflate_cases import DeflateCase

SLICE = "ws"
#: Pause after a connect failure, so a dead target does not spin the walker.
CONNECT_BACKOFF_S = 0.2

_TRANSPORT = {
    Ending.EOF: Transport.EOF,
    Ending.RESET: Transport.RESET,
    Ending.CAP: Transport.CAP,
    Ending.TIMEOUT: Transport.OPEN,
    Ending.DONE: Transport.OPEN,
}

AnyCase = WsCase | HandshakeCase


@dataclass(frozen=True)
class _Done:
    """One judged session, not yet counted (confirmation may still discard it)."""

    judgement: WsJudgement
    sent: bytes
    received: bytes
    elapsed: float


async def run(ctx: WalkerContext) -> None:
    """Run sessions until the walker's deadline."""
    large = ws_large_walk.Pacer(ctx)  # large valid messages, a share of the time
    if large.exclusive:
        return await large.run_alone(ctx)
    cases = _case_cycle(ctx)
    while not ctx.expired():
        if large.due():
            await large.run_next(ctx)
            continue
        case = next(cases)
        if isinstance(case, DeflateCase):  # permessage-deflate (RFC 7692): actors.ws_deflate
            await ws_deflate.session(ctx, case)
        else:
            await session(ctx, case)


def _case_cycle(ctx: WalkerContext) -> Iterator[AnyCase | DeflateCase]:
    wanted = ctx.settings.get("ws_cases")
    catalogue: list[AnyCase | DeflateCase] = [*CASES, *HANDSHAKE_CASES, *DEFLATE_CASES]
    if wanted:
        names = set(wanted)
        catalogue = [case for case in catalogue if case.name in names]
        if not catalogue:
            raise HarnessError(f"ws_cases names no known case: {sorted(names)}")
    ctx.rng.shuffle(catalogue)
    return itertools.cycle(catalogue)


async def session(ctx: WalkerContext, case: AnyCase) -> WsJudgement | None:
    """One connection, one case; returns the judgement (None when not judged).

    A violation is re-sent alone first (``actors.confirm``): only one that reproduces is
    counted; a hang also needs a valid handshake to the same path answered in that round.
    """
    ctx.begin_case(case.name)  # crash attribution (actors.flight)
    timeout = float(ctx.settings.get("ws_timeout", 5.0))
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        ctx.tally.incr(f"{SLICE}.errors")
        ctx.tally.incr(f"{SLICE}.connect_{exc.cause}")
        ctx.record_exchange(slice=SLICE, case=case.name, error=exc.cause)
        await trio.sleep(CONNECT_BACKOFF_S)
        return None
    ctx.tally.incr(f"{SLICE}.sessions")
    try:
        done = await _run_case(ctx, stream, case, timeout)
    finally:
        await net.aclose_quietly(stream)
    if done is None:
        return None
    decision: Decision | None = None
    if done.judgement.verdict is Verdict.VIOLATION and confirm.enabled(ctx):
        decision = await confirm.confirm(
            ctx, SLICE, case.name, _attempt(done.judgement),
            lambda _: _resend(ctx, case, timeout), _evidence(ctx, case, done))
    _account(ctx, case, done, decision)
    return done.judgement


async def _run_case(
    ctx: WalkerContext, stream: trio.SocketStream, case: AnyCase, timeout: float
) -> _Done | None:
    if isinstance(case, HandshakeCase):
        return await _handshake_case(ctx, stream, case, timeout)
    return await _frame_case(ctx, stream, case, timeout)


def _attempt(judgement: WsJudgement, baseline_answered: bool | None = None) -> Attempt:
    """A judged session reduced to what confirmation compares (its HIGH/MED counter)."""
    reaction = judgement.reaction.value
    return Attempt(
        violation=judgement.verdict is Verdict.VIOLATION,
        key=judgement.counter or "violation",
        hang=reaction == "hang",
        judged=judgement.verdict is not Verdict.UNJUDGED,
        baseline_answered=baseline_answered,
        detail=f"{judgement.verdict.value}: {reaction}",
    )


async def _resend(ctx: WalkerContext, case: AnyCase, timeout: float) -> Attempt:
    """One confirmation round: the case alone on a fresh connection, then a valid handshake
    to the same path (any HTTP answer to it within the deadline means "not saturated")."""
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        return Attempt.unjudged(f"connect failed: {exc.cause}")
    try:
        done = await _run_case(ctx, stream, case, timeout)
    finally:
        await net.aclose_quietly(stream)
    if done is None:
        return Attempt.unjudged("the re-send could not be judged (handshake or send failed)")
    ctx.record_exchange(slice=SLICE, case=case.name, confirm_round=True, sent=done.sent,
                        received=done.received, reaction=done.judgement.reaction.value,
                        verdict=done.judgement.verdict.value)
    answered = None
    if _attempt(done.judgement).hang:
        with ctx.aside_case("baseline"):  # the reproducer holds the case's bytes only
            answered = await _baseline_answered(ctx, timeout)
    return _attempt(done.judgement, baseline_answered=answered)


async def _baseline_answered(ctx: WalkerContext, timeout: float) -> bool:
    key = make_key(ctx.rng.randbytes(16))
    request = build_handshake(_path(ctx), ctx.target.host_header, key)
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError:
        return False
    try:
        await net.send_all(stream, request, timeout)
        answer = await net.read_until(stream, timeout, HEAD_CAP + 1, handshake_decided)
    except TransportError:
        return False
    finally:
        await net.aclose_quietly(stream)
    return parse_handshake_response(answer.data, key) is not None


async def _handshake_case(
    ctx: WalkerContext, stream: trio.SocketStream, case: HandshakeCase, timeout: float
) -> _Done | None:
    key = make_key(ctx.rng.randbytes(16)) if case.with_key else None
    request = build_handshake(_path(ctx), ctx.target.host_header, key, version=case.version)
    started = trio.current_time()
    if not await _send(ctx, stream, request, timeout, case):
        return None
    case_timeout = float(ctx.settings.get("ws_case_timeout", 5.0))
    result = await net.read_until(stream, case_timeout, HEAD_CAP + 1, handshake_decided)
    judgement = judge_handshake(case, result.data, _TRANSPORT[result.ending])
    return _Done(judgement, request, result.data, trio.current_time() - started)


async def _frame_case(
    ctx: WalkerContext, stream: trio.SocketStream, case: WsCase, timeout: float
) -> _Done | None:
    key = make_key(ctx.rng.randbytes(16))
    request = build_handshake(_path(ctx), ctx.target.host_header, key)
    if not await _send(ctx, stream, request, timeout, case):
        return None
    answer = await net.read_until(
        stream, timeout, HEAD_CAP + READ_CAP,
        lambda data: parse_handshake_response(data, key) is not None,
    )
    handshake = parse_handshake_response(answer.data, key)
    check_raw(ctx, request, answer.data, closed=answer.ending is Ending.EOF, stream=True)
    if handshake is None or not handshake.accepted:
        ctx.tally.incr(f"{SLICE}.handshake_failed")
        ctx.tally.incr(f"{SLICE}.case.{case.name}.{Verdict.UNJUDGED.value}")
        problem = handshake.problem if handshake else f"no answer ({answer.ending.value})"
        ctx.tally.keep_example(f"{SLICE}.handshake_failed",
                               {"sent": request, "received": answer.data, "problem": problem})
        ctx.record_exchange(slice=SLICE, case=case.name, sent=request, received=answer.data,
                            problem=problem)
        return None

    frames: list[Frame] = list(case.frames)
    if case.kind in (CaseKind.BAD_FRAME, CaseKind.ECHO):
        frames.append(CANARY_FRAME)
    wire = encode_frames(frames, (ctx.rng.randbytes(4) for _ in frames))
    oracle = WsOracle(case)
    oracle.feed(handshake.rest)
    started = trio.current_time()
    # A server that fails the connection early may reset our write; what it sent before
    # that is still worth reading, so a send failure is not the end of the case.
    try:
        await net.send_all(stream, wire, timeout)
    except TransportError:
        pass
    fed = 0

    def decided(data: bytes) -> bool:
        nonlocal fed
        oracle.feed(data[fed:])
        fed = len(data)
        return oracle.decided

    case_timeout = float(ctx.settings.get("ws_case_timeout", 5.0))
    result = (
        await net.read_until(stream, case_timeout, READ_CAP, decided)
        if not oracle.decided
        else net.ReadResult(b"", Ending.DONE, 0.0)
    )
    oracle.feed(result.data[fed:])
    judgement = oracle.finish(_TRANSPORT[result.ending])
    done = _Done(judgement, request + wire, answer.data + result.data,
                 trio.current_time() - started)
    we_closed = case.kind in (CaseKind.CLIENT_CLOSE, CaseKind.BAD_CLOSE)
    still_open = result.ending in (Ending.DONE, Ending.TIMEOUT)
    if still_open and oracle.close is not None and not we_closed:
        await _answer_close(ctx, stream, timeout)
    return done


async def _answer_close(ctx: WalkerContext, stream: trio.SocketStream, timeout: float) -> None:
    """RFC 6455 §5.5.1: answer the server's Close with ours before dropping TCP."""
    reply = Frame(Opcode.CLOSE, close_payload(1000))
    try:
        await net.send_all(stream, reply.encode(ctx.rng.randbytes(4)), min(timeout, 1.0))
    except TransportError:
        pass


async def _send(
    ctx: WalkerContext, stream: trio.SocketStream, data: bytes, timeout: float, case: AnyCase
) -> bool:
    try:
        await net.send_all(stream, data, timeout)
    except TransportError as exc:
        ctx.tally.incr(f"{SLICE}.errors")
        ctx.tally.incr(f"{SLICE}.case.{case.name}.{Verdict.UNJUDGED.value}")
        ctx.record_exchange(slice=SLICE, case=case.name, sent=data, error=exc.cause)
        return False
    return True


def _path(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("ws_path", "/ws"))


def _evidence(ctx: WalkerContext, case: AnyCase, done: _Done) -> dict[str, Any]:
    judgement = done.judgement
    return {
        "case": case.name,
        "rfc": case.rfc,
        "quote": case.quote,
        "requirement": case.requirement.value,
        "reaction": judgement.reaction.value,
        "verdict": judgement.verdict.value,
        "detail": judgement.detail,
        "close_code": judgement.close_code,
        "path": _path(ctx),
        "sent": done.sent,
        "received": done.received,
        "elapsed_s": round(done.elapsed, 6),
    }


def _account(
    ctx: WalkerContext, case: AnyCase, done: _Done, decision: Decision | None = None
) -> None:
    """Count a judged session; an unconfirmed violation was counted by ``actors.confirm``."""
    tally = ctx.tally
    judgement = done.judgement
    tally.record_latency(f"{SLICE}.latency", done.elapsed * 1e6)
    ctx.record_exchange(slice=SLICE, case=case.name, sent=done.sent, received=done.received,
                        reaction=judgement.reaction.value, verdict=judgement.verdict.value)
    if decision is not None and not isinstance(decision, Confirmed):
        return
    tally.incr(f"{SLICE}.case.{case.name}.{judgement.verdict.value}")
    if judgement.pongs_missing:
        tally.incr(f"{SLICE}.pongs_missing", judgement.pongs_missing)
    evidence = _evidence(ctx, case, done)
    if decision is not None:
        evidence.update(confirm.confirmation_note(decision))
    if judgement.verdict in (Verdict.VIOLATION, Verdict.LENIENT):
        tally.keep_example(f"{SLICE}.case.{case.name}.{judgement.verdict.value}", evidence)
    counter = judgement.counter
    if counter is None:
        return
    high = COUNTER_SEVERITY[counter] is Severity.HIGH
    if high and judgement.verdict is Verdict.VIOLATION:
        ctx.report_violation(counter, evidence)
    else:
        tally.incr(counter)
        tally.keep_example(counter, evidence)
    for extra in judgement.also_counts:  # ws.must_violation for a MED violation (I-WS-MUST)
        tally.incr(extra)
        tally.keep_example(extra, evidence)
