"""permessage-deflate sessions of the ws slice: the I/O around ``protocols.ws_deflate_*``.

How this works: one session per case. Connect, send the opening handshake with the case's
``Sec-WebSocket-Extensions`` offer, read the answer. A server that declines moves
``ws.deflate_unsupported`` and nothing else (the case does not apply); an answer that breaks
RFC 7692 §7 is judged at once. Otherwise the case's frames are built under the agreed
parameters, sent masked with a canary Ping behind them, and every server byte goes to the
oracle until it decides, the server closes, or the case deadline passes.

The bomb takes one more step when the server took it: the same size sent plain, without the
extension, on a fresh connection (``judge_bomb``). Reads stay capped throughout: the oracle
stops at the first frame or inflated message past its cap, so a server that inflates the
bomb and echoes it costs us one frame header, not 32 MiB.

A violation is re-sent alone first (``actors.confirm``), as in ``actors.ws_torture``.
"""

from __future__ import annotations

from typing import Any

import trio

from actors import confirm, net
from actors.net import Ending, TransportError
from actors.walker import WalkerContext
from protocols.confirmation import Attempt, Confirmed, Decision
from protocols.outcome import Severity, Verdict
from protocols.response_head import HEAD_CAP
from protocols.websocket_frames import (
    Frame,
    Opcode,
    build_handshake,
    close_payload,
    encode_frames,
    make_key,
    parse_handshake_response,
)
from protocols.websocket_oracle import CANARY_FRAME, Transport
from protocols.ws_deflate import DeflateOffer, DeflateParams, Status, negotiate
from protocols.ws_deflate_cases import DeflateCase, build_frames, plain_bomb_frame
from protocols.ws_deflate_oracle import (
    CAP,
    COUNTER_SEVERITY,
    UNSUPPORTED,
    DeflateJudgement,
    DeflateOracle,
    judge_bomb,
    judge_negotiation,
)

SLICE = "ws"
CONNECT_BACKOFF_S = 0.2
_TRANSPORT = {
    Ending.EOF: Transport.EOF,
    Ending.RESET: Transport.RESET,
    Ending.CAP: Transport.CAP,
    Ending.TIMEOUT: Transport.OPEN,
    Ending.DONE: Transport.OPEN,
}
#: Outcome of one attempt: (judgement, bytes sent, bytes received) or None (not judged).
Done = tuple[DeflateJudgement, bytes, bytes]


async def session(ctx: WalkerContext, case: DeflateCase) -> DeflateJudgement | None:
    """One case, counted; returns the judgement (None when not judged or not applicable)."""
    ctx.begin_case(case.name)
    started = trio.current_time()
    done = await _attempt_case(ctx, case, count=True)
    if done is None:
        return None
    decision: Decision | None = None
    if done[0].verdict is Verdict.VIOLATION and confirm.enabled(ctx):
        decision = await confirm.confirm(ctx, SLICE, case.name, _attempt(done[0]),
                                         lambda _: _resend(ctx, case), _evidence(case, done))
    _account(ctx, case, done, trio.current_time() - started, decision)
    return done[0]


async def _attempt_case(ctx: WalkerContext, case: DeflateCase, count: bool) -> Done | None:
    done = await _exchange(ctx, case, case.offer, count)
    if done is None or not done[0].took_bomb:
        return done
    with ctx.aside_case("plain-probe"):
        plain = await _exchange(ctx, case, None, count=False)
    return judge_bomb(done[0], plain[0] if plain else None), done[1], done[2]


async def _resend(ctx: WalkerContext, case: DeflateCase) -> Attempt:
    done = await _attempt_case(ctx, case, count=False)
    if done is None:
        return Attempt.unjudged("the re-send could not be judged")
    return _attempt(done[0])


def _attempt(judgement: DeflateJudgement) -> Attempt:
    return Attempt(
        violation=judgement.verdict is Verdict.VIOLATION,
        key=judgement.counter or "violation",
        hang=judgement.reaction.value == "hang",
        judged=judgement.verdict is not Verdict.UNJUDGED,
        detail=f"{judgement.verdict.value}: {judgement.reaction.value}",
    )


async def _exchange(
    ctx: WalkerContext, case: DeflateCase, offer: DeflateOffer | None, count: bool
) -> Done | None:
    """One connection: handshake with ``offer`` (None: no extension, the plain probe)."""
    timeout = float(ctx.settings.get("ws_timeout", 5.0))
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        if count:
            ctx.tally.incr(f"{SLICE}.errors")
            ctx.tally.incr(f"{SLICE}.connect_{exc.cause}")
            await trio.sleep(CONNECT_BACKOFF_S)
        return None
    if count:
        ctx.tally.incr(f"{SLICE}.sessions")
    try:
        return await _on_stream(ctx, stream, case, offer, count, timeout)
    finally:
        await net.aclose_quietly(stream)


async def _on_stream(
    ctx: WalkerContext, stream: trio.SocketStream, case: DeflateCase,
    offer: DeflateOffer | None, count: bool, timeout: float,
) -> Done | None:
    key = make_key(ctx.rng.randbytes(16))
    extra = [] if offer is None else [("Sec-WebSocket-Extensions", offer.header())]
    request = build_handshake(str(ctx.settings.get("ws_path", "/ws")), ctx.target.host_header,
                              key, extra_headers=extra)
    try:
        await net.send_all(stream, request, timeout)
    except TransportError:
        return None
    answer = await net.read_until(
        stream, timeout, HEAD_CAP + CAP,
        lambda data: parse_handshake_response(data, key, offered_extensions=True) is not None)
    handshake = parse_handshake_response(answer.data, key, offered_extensions=offer is not None)
    if handshake is None or not handshake.accepted or handshake.head is None:
        if count:
            ctx.tally.incr(f"{SLICE}.handshake_failed")
            ctx.tally.incr(f"{SLICE}.case.{case.name}.{Verdict.UNJUDGED.value}")
        return None
    params: DeflateParams | None = None
    if offer is not None:
        negotiation = negotiate(offer, handshake.head.get_all(b"sec-websocket-extensions"))
        if negotiation.status is Status.DECLINED:
            if count:
                ctx.tally.incr(UNSUPPORTED)
                ctx.tally.keep_example(UNSUPPORTED, {"sent": request, "received": answer.data})
            return None
        if negotiation.status is Status.INVALID:
            return judge_negotiation(case, negotiation), request, answer.data
        params = negotiation.params
    frames: list[Frame] = (list(build_frames(case, params)) if params is not None
                           else [plain_bomb_frame()])
    frames.append(CANARY_FRAME)
    wire = encode_frames(frames, (ctx.rng.randbytes(4) for _ in frames))
    oracle = DeflateOracle(case, params)
    oracle.feed(handshake.rest)
    try:
        await net.send_all(stream, wire, timeout)
    except TransportError:
        pass  # a server failing the connection early may reset our write; read what it sent
    fed = 0

    def decided(data: bytes) -> bool:
        nonlocal fed
        oracle.feed(data[fed:])
        fed = len(data)
        return oracle.decided

    case_timeout = float(ctx.settings.get("ws_case_timeout", 5.0))
    result = (await net.read_until(stream, case_timeout, 4 * CAP, decided)
              if not oracle.decided else net.ReadResult(b"", Ending.DONE, 0.0))
    oracle.feed(result.data[fed:])
    judgement = oracle.finish(_TRANSPORT[result.ending])
    if result.ending in (Ending.DONE, Ending.TIMEOUT) and oracle.close is not None:
        reply = Frame(Opcode.CLOSE, close_payload(1000)).encode(ctx.rng.randbytes(4))
        try:  # RFC 6455 §5.5.1: answer the server's Close before dropping TCP
            await net.send_all(stream, reply, min(timeout, 1.0))
        except TransportError:
            pass
    shown = wire if len(wire) <= 4096 else wire[:4096] + b"...(cut)"
    return judgement, request + shown, answer.data + result.data[:4096]


def _evidence(case: DeflateCase, done: Done) -> dict[str, Any]:
    judgement, sent, received = done
    return {
        "case": case.name, "rfc": case.rfc, "quote": case.quote,
        "requirement": case.requirement.value, "offer": case.offer.header(),
        "reaction": judgement.reaction.value, "verdict": judgement.verdict.value,
        "detail": judgement.detail, "close_code": judgement.close_code,
        "sent": sent, "received": received,
    }


def _account(ctx: WalkerContext, case: DeflateCase, done: Done, elapsed: float,
             decision: Decision | None) -> None:
    """Count a judged case; an unconfirmed violation was counted by ``actors.confirm``."""
    judgement, sent, received = done
    tally = ctx.tally
    tally.record_latency(f"{SLICE}.latency", elapsed * 1e6)
    ctx.record_exchange(slice=SLICE, case=case.name, sent=sent, received=received,
                        reaction=judgement.reaction.value, verdict=judgement.verdict.value)
    if decision is not None and not isinstance(decision, Confirmed):
        return
    tally.incr(f"{SLICE}.case.{case.name}.{judgement.verdict.value}")
    evidence = _evidence(case, done)
    if decision is not None:
        evidence.update(confirm.confirmation_note(decision))
    if judgement.verdict in (Verdict.VIOLATION, Verdict.LENIENT):
        tally.keep_example(f"{SLICE}.case.{case.name}.{judgement.verdict.value}", evidence)
    counter = judgement.counter
    if counter is None:
        return
    if COUNTER_SEVERITY[counter] is Severity.HIGH and judgement.verdict is Verdict.VIOLATION:
        ctx.report_violation(counter, evidence)
    else:
        tally.incr(counter)
        tally.keep_example(counter, evidence)
    for extra in judgement.also_counts:
        tally.incr(extra)
        tally.keep_example(extra, evidence)

