"""Large and finely fragmented valid WebSocket messages: I/O for ``protocols.ws_large_plan``.

How this works: the ws walker (``actors.ws_torture.run``) asks its ``Pacer`` before each
session whether a large case is due; the pacer runs one large case at a time per actor
process, for at most ``LARGE_SHARE`` of the process's time, so a short run covers part of
the ladder and the catalogue cases keep their rate. One large session is: connect, valid
handshake, then two tasks under one deadline scaled with the message
(``protocols.ws_large_plan.deadline_s``): a sender that streams the masked frames in
batches and then a canary Ping, and a reader that feeds every server byte to ``EchoCheck``
(the echo is compared as it arrives, never reassembled). Reading while sending matters: a
server that echoes each fragment as it comes would otherwise block on a full socket buffer
and look stalled.

A violation (dropped, altered, stalled) is re-sent alone on a fresh connection first
(``actors.confirm``); a stall also needs a valid handshake to the same path answered in that
round. A target that dies of a message is the liveness machinery's verdict; ``begin_case``
names the case for crash attribution.

Settings: ``ws_max_message`` (bytes, the largest message sent; absent or 0: no large
cases), plus the ws slice's ``ws_path``, ``ws_timeout``, ``ws_case_timeout``, ``ws_cases``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from actors import confirm, flight, net
from actors.net import TransportError
from actors.walker import WalkerContext
from protocols.confirmation import Attempt, Confirmed, Decision
from protocols.outcome import Verdict
from protocols.response_head import HEAD_CAP
from protocols.websocket_frames import (
    Frame,
    Opcode,
    build_handshake,
    close_payload,
    make_key,
    parse_handshake_response,
)
from protocols.websocket_oracle import CANARY_FRAME, Transport, handshake_decided
from protocols.ws_large_echo import (
    LARGE_ECHO_ALTERED,
    SIZE_LIMIT,
    EchoCheck,
    LargeJudgement,
    LargeReaction,
    judge,
)
from protocols.ws_large_plan import LargeCase, deadline_s, ladder, payload, wire_chunks

SLICE = "ws"
#: Most of an actor process's time large cases may take, one at a time (the rest of every
#: walker's time runs the catalogue). Pacing per process, not per walker: with a share per
#: walker, 8 walkers at the 16 MiB default ran 8 large messages at once and cut the
#: catalogue's rate to 0.15 of what it was without them (benchmarks/bench_ws_depth.py).
LARGE_SHARE = 0.5
#: Large sessions one actor process runs at once.
PROCESS_IN_FLIGHT = 1
#: Bytes of the wire and of the answer kept in evidence.
EVIDENCE_BYTES = 4096
CONNECT_BACKOFF_S = 0.2


@dataclass(frozen=True)
class _Done:
    judgement: LargeJudgement
    sent_head: bytes
    received_head: bytes
    elapsed: float


@dataclass
class _Shared:
    """Pacing state of every ws walker of one trio run (one actor process)."""

    started: float
    spent: float = 0.0
    running: int = 0
    index: int = 0


_STATE: list[tuple[object, _Shared]] = []


def _shared() -> _Shared:
    """The current trio run's pacing state (a new run, e.g. the next test, starts afresh)."""
    root = trio.lowlevel.current_root_task()
    if not _STATE or _STATE[0][0] is not root:
        _STATE[:] = [(root, _Shared(trio.current_time()))]
    return _STATE[0][1]


class Pacer:
    """Which large case runs next, and whether one is due.

    One is due when no other walker of this process runs one (``PROCESS_IN_FLIGHT``) and
    large cases have taken at most ``LARGE_SHARE`` of the process's time so far. The ladder
    is walked smallest first, pass after pass, by the process as a whole (walkers take
    turns, none repeats a case another just ran); sizes above the smallest one the server
    refused with 1009 are skipped (a documented limit needs no second proof).
    """

    def __init__(self, ctx: WalkerContext) -> None:
        budget = int(ctx.settings.get("ws_max_message") or 0)
        cases = ladder(budget)
        wanted = ctx.settings.get("ws_cases")
        if wanted:
            cases = tuple(case for case in cases if case.name in set(wanted))
        self.cases = cases
        #: ``ws_cases`` names only large cases: the walker runs nothing else.
        self.exclusive = bool(wanted and cases and len(cases) == len(set(wanted)))
        self._shared = _shared()
        self.refused_at: int | None = None

    def due(self) -> bool:
        if not self.cases:
            return False
        if self.exclusive:
            return True
        shared = self._shared
        if shared.running >= PROCESS_IN_FLIGHT:
            return False
        return shared.spent <= LARGE_SHARE * (trio.current_time() - shared.started)

    def next_case(self) -> LargeCase:
        for _ in range(len(self.cases)):
            case = self.cases[self._shared.index % len(self.cases)]
            self._shared.index += 1
            if self.refused_at is None or case.size <= self.refused_at:
                return case
        return self.cases[0]

    async def run_alone(self, ctx: WalkerContext) -> None:
        """``ws_cases`` names only large cases: run them until the walker's deadline."""
        while not ctx.expired():
            await self.run_next(ctx)

    async def run_next(self, ctx: WalkerContext) -> LargeJudgement | None:
        started = trio.current_time()
        self._shared.running += 1
        try:
            judgement = await session(ctx, self.next_case())
        finally:
            self._shared.running -= 1
            self._shared.spent += trio.current_time() - started
        if judgement is not None and judgement.counter == SIZE_LIMIT:
            refused = _refused_size(ctx)
            self.refused_at = refused if self.refused_at is None else min(self.refused_at,
                                                                          refused)
        return judgement


def _refused_size(ctx: WalkerContext) -> int:
    sizes = [int(key.rsplit(".", 1)[1]) for key in ctx.tally.counters
             if key.startswith(f"{SIZE_LIMIT}.")]
    return min(sizes)


async def session(ctx: WalkerContext, case: LargeCase) -> LargeJudgement | None:
    """One connection, one large message; the judgement (None when not judged)."""
    ctx.begin_case(case.name)  # crash attribution (actors.flight)
    # 16 MiB of text take ~0.2 s to draw: in a thread, other walkers' deadlines keep ticking.
    data = await trio.to_thread.run_sync(payload, case, ctx.seed)
    done = await _attempt(ctx, case, data, first=True)
    if done is None:
        return None
    decision: Decision | None = None
    if done.judgement.verdict is Verdict.VIOLATION and confirm.enabled(ctx):
        decision = await confirm.confirm(
            ctx, SLICE, case.name, _as_attempt(done.judgement),
            lambda _: _resend(ctx, case, data), _evidence(ctx, case, done))
    _account(ctx, case, done, decision)
    return done.judgement


def _as_attempt(judgement: LargeJudgement, baseline_answered: bool | None = None) -> Attempt:
    return Attempt(
        violation=judgement.verdict is Verdict.VIOLATION,
        key=judgement.counter or "violation",
        hang=judgement.reaction is LargeReaction.HANG,
        judged=judgement.verdict is not Verdict.UNJUDGED,
        baseline_answered=baseline_answered,
        detail=f"{judgement.verdict.value}: {judgement.reaction.value}",
    )


async def _resend(ctx: WalkerContext, case: LargeCase, data: bytes) -> Attempt:
    done = await _attempt(ctx, case, data, first=False)
    if done is None:
        return Attempt.unjudged("the re-send could not be judged (connect or handshake failed)")
    ctx.record_exchange(slice=SLICE, case=case.name, confirm_round=True,
                        reaction=done.judgement.reaction.value,
                        verdict=done.judgement.verdict.value)
    answered = None
    if done.judgement.reaction is LargeReaction.HANG:
        with ctx.aside_case("baseline"):
            answered = await _baseline_answered(ctx)
    return _as_attempt(done.judgement, baseline_answered=answered)


async def _baseline_answered(ctx: WalkerContext) -> bool:
    """A valid handshake to the same path, answered in time: the server is not saturated."""
    timeout = float(ctx.settings.get("ws_timeout", 5.0))
    key = make_key(ctx.rng.randbytes(16))
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError:
        return False
    try:
        await net.send_all(stream, build_handshake(_path(ctx), ctx.target.host_header, key),
                           timeout)
        answer = await net.read_until(stream, timeout, HEAD_CAP + 1, handshake_decided)
    except TransportError:
        return False
    finally:
        await net.aclose_quietly(stream)
    return parse_handshake_response(answer.data, key) is not None


async def _attempt(
    ctx: WalkerContext, case: LargeCase, data: bytes, *, first: bool
) -> _Done | None:
    """Connect, handshake, send the message while reading the echo; None if not judged."""
    timeout = float(ctx.settings.get("ws_timeout", 5.0))
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        if first:
            ctx.tally.incr(f"{SLICE}.errors")
            ctx.tally.incr(f"{SLICE}.connect_{exc.cause}")
            ctx.record_exchange(slice=SLICE, case=case.name, error=exc.cause)
            await trio.sleep(CONNECT_BACKOFF_S)
        return None
    try:
        if first:
            ctx.tally.incr(f"{SLICE}.sessions")
        return await _exchange(ctx, stream, case, data, timeout, first)
    finally:
        await net.aclose_quietly(stream)


async def _exchange(ctx: WalkerContext, stream: trio.SocketStream, case: LargeCase,
                    data: bytes, timeout: float, first: bool) -> _Done | None:
    key = make_key(ctx.rng.randbytes(16))
    request = build_handshake(_path(ctx), ctx.target.host_header, key)
    try:
        await net.send_all(stream, request, timeout)
    except TransportError:
        return None
    answer = await net.read_until(stream, timeout, HEAD_CAP + 65536,
                                  lambda got: parse_handshake_response(got, key) is not None)
    handshake = parse_handshake_response(answer.data, key)
    if handshake is None or not handshake.accepted:
        if first:
            ctx.tally.incr(f"{SLICE}.handshake_failed")
            ctx.tally.incr(f"{SLICE}.case.{case.name}.{Verdict.UNJUDGED.value}")
        return None
    check = EchoCheck(data, case.opcode)
    check.feed(handshake.rest)
    mask_key = lambda: ctx.rng.randbytes(4)  # noqa: E731 - one fresh key per frame
    head = bytearray(request)
    received = bytearray(answer.data[:EVIDENCE_BYTES])
    transport = Transport.OPEN
    cap = 2 * case.size + (1 << 20)
    started = trio.current_time()

    async def send_message() -> None:
        try:
            for chunk in wire_chunks(case, data, mask_key):
                if len(head) < EVIDENCE_BYTES:
                    head.extend(chunk[:EVIDENCE_BYTES - len(head)])
                await stream.send_all(chunk)
                flight.note_write(chunk, stream)
            await stream.send_all(CANARY_FRAME.encode(mask_key()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the reader sees how the server ended the connection

    limit = deadline_s(case, float(ctx.settings.get("ws_case_timeout", 5.0)))
    with trio.move_on_after(limit):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_message)
            transport = await _read_echo(stream, check, received, cap, limit + 1.0)
            nursery.cancel_scope.cancel()
    judgement = judge(check, transport)
    if check.close is not None and transport is Transport.OPEN:
        reply = Frame(Opcode.CLOSE, close_payload(1000)).encode(mask_key())
        try:
            await net.send_all(stream, reply, min(timeout, 1.0))
        except TransportError:
            pass
    return _Done(judgement, bytes(head), bytes(received), trio.current_time() - started)


async def _read_echo(stream: trio.SocketStream, check: EchoCheck, received: bytearray,
                     cap: int, timeout: float) -> Transport:
    """Feed the server's bytes to ``check`` until decided, closed, reset or ``cap``."""
    while not check.decided:
        try:
            chunk = await net.receive_some(stream, timeout)
        except TransportError as exc:
            return Transport.OPEN if exc.cause == "timeout" else Transport.RESET
        if not chunk:
            return Transport.EOF
        if len(received) < EVIDENCE_BYTES:
            received.extend(chunk[:EVIDENCE_BYTES - len(received)])
        check.feed(chunk)
        if check.received > cap:
            return Transport.CAP
    return Transport.OPEN


def _path(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("ws_path", "/ws"))


def _evidence(ctx: WalkerContext, case: LargeCase, done: _Done) -> dict[str, Any]:
    judgement = done.judgement
    return {
        "case": case.name, "rfc": case.rfc, "size": case.size, "fragment": case.fragment,
        "frames": case.frames, "opcode": case.opcode.name.lower(), "seed": ctx.seed,
        "reaction": judgement.reaction.value, "verdict": judgement.verdict.value,
        "detail": judgement.detail, "close_code": judgement.close_code,
        "echoed_bytes": judgement.echoed, "path": _path(ctx),
        "sent": done.sent_head, "received": done.received_head,
        "elapsed_s": round(done.elapsed, 6),
    }


def _account(ctx: WalkerContext, case: LargeCase, done: _Done,
             decision: Decision | None) -> None:
    """Count a judged large session (an unconfirmed violation was counted by confirm)."""
    tally, judgement = ctx.tally, done.judgement
    tally.incr(f"{SLICE}.large.sessions")
    tally.incr(f"{SLICE}.large.bytes_sent", case.size)
    ctx.record_exchange(slice=SLICE, case=case.name, size=case.size, fragment=case.fragment,
                        reaction=judgement.reaction.value, verdict=judgement.verdict.value,
                        elapsed_s=round(done.elapsed, 3))
    if decision is not None and not isinstance(decision, Confirmed):
        return
    tally.incr(f"{SLICE}.case.{case.name}.{judgement.verdict.value}")
    counter = judgement.counter
    if counter is None:
        return
    evidence = _evidence(ctx, case, done)
    if decision is not None:
        evidence.update(confirm.confirmation_note(decision))
    if counter == SIZE_LIMIT:  # information: the smallest refused size is the lowest key
        tally.incr(f"{SIZE_LIMIT}.{case.size}")
    if judgement.verdict in (Verdict.VIOLATION, Verdict.LENIENT):
        tally.keep_example(f"{SLICE}.case.{case.name}.{judgement.verdict.value}", evidence)
    if counter == LARGE_ECHO_ALTERED and judgement.verdict is Verdict.VIOLATION:
        ctx.report_violation(counter, evidence)  # HIGH: an incident at once
    else:
        tally.incr(counter)
        tally.keep_example(counter, evidence)
    for extra in judgement.also_counts:
        tally.incr(extra)
        tally.keep_example(extra, evidence)


__all__ = ["LARGE_SHARE", "Pacer", "session"]
