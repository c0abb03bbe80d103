"""Judging a server's answer to one WebSocket case, from bytes alone.

How this works: the walker completes a valid handshake, sends the case's frames (plus, for
BAD_FRAME and ECHO cases, a Ping "canary" after them) and then feeds every byte the server
sends into ``WsOracle.feed``. The oracle parses server frames incrementally and records the
first decisive event: a Close frame, an echo of the bad payload, the awaited Pong or echo,
or server bytes that are not frames at all. ``decided`` tells the walker it may stop reading
early; otherwise it reads until the server closes or the deadline passes. ``finish(transport)``
turns what was seen plus how the read ended into a ``WsJudgement``: one ``WsReaction``, the
``Verdict`` from the case table, and the slice counter that the verdict moves (if any).

Why a canary Ping: "carrying on normally" is invisible on an endpoint that does not echo, but
every endpoint MUST answer a Ping (RFC 6455 §5.5.2). A server that answers the canary and keeps
the socket open after a frame it MUST fail has carried on; one that answers nothing has hung.
A Pong that arrives *before* a Close is not held against the server (a framing layer may
answer Pings before the application validates a message); only staying open is.

Handshake cases (malformed opening handshakes) are judged by ``judge_handshake`` with the
generic HTTP ``Reaction`` vocabulary.

Severity (``COUNTER_SEVERITY``) follows what a miss lets happen, not the RFC keyword alone:
HIGH where a violation carries on (a bad frame or handshake accepted) or a connection is left
hanging after one; MED for a MUST the server misses without that (a missing header on a
refusal, a Close code that is forbidden or not defined in §7.4, a Close or Ping left
unanswered while nothing else goes wrong); every MED violation also moves
``ws.must_violation`` (I-WS-MUST); LOW for what is only information (a SHOULD/MAY, an odd
but allowed reaction).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.outcome import Reaction, Requirement, Severity, Verdict
from protocols.response_head import HeadError, ResponseHead, parse_response_head
from protocols.websocket_cases import CaseKind, HandshakeCase, WsCase, WsReaction
from protocols.websocket_frames import (
    DEFAULT_MAX_PAYLOAD,
    CloseInfo,
    CodeStanding,
    Frame,
    FrameError,
    Opcode,
    ServerFrame,
    ServerFrameParser,
    parse_close,
)

#: Payload of the Ping sent after a case's frames; its Pong proves the server still reads.
CANARY = b"assay-canary"
CANARY_FRAME = Frame(Opcode.PING, CANARY)

# Counters this oracle can move (slice "ws"); HIGH ones are registered invariants.
ACCEPTED_BAD_FRAME = "ws.accepted_bad_frame"  # I-WS-ACCEPTED
HANG_NO_CLOSE = "ws.hang_no_close"  # I-WS-HANG
SERVER_BAD_FRAME = "ws.server_bad_frame"
SERVER_BAD_CLOSE = "ws.server_bad_close_code"
CLOSE_NOT_ANSWERED = "ws.close_not_answered"
REJECTED_VALID = "ws.rejected_valid"
ECHO_MISSING = "ws.echo_missing"
UNEXPECTED_CLOSE_CODE = "ws.unexpected_close_code"
NO_FRAME_SIZE_LIMIT = "ws.no_frame_size_limit"
VERSION_HEADER_MISSING = "ws.version_header_missing"
HANDSHAKE_NOT_REFUSED = "ws.handshake_not_refused"
HANDSHAKE_GARBAGE = "ws.handshake_garbage"
#: A valid message or Ping got no answer (no echo, no Pong) and no close: RFC 6455 §5.5.2
#: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response".
VALID_UNANSWERED = "ws.valid_unanswered"
#: Every MED violation above, summed: the counter I-WS-MUST reads.
MUST_VIOLATION = "ws.must_violation"

COUNTER_SEVERITY: dict[str, Severity] = {
    ACCEPTED_BAD_FRAME: Severity.HIGH,
    HANG_NO_CLOSE: Severity.HIGH,
    SERVER_BAD_FRAME: Severity.MED,
    SERVER_BAD_CLOSE: Severity.MED,
    CLOSE_NOT_ANSWERED: Severity.MED,
    VERSION_HEADER_MISSING: Severity.MED,
    HANDSHAKE_GARBAGE: Severity.MED,
    VALID_UNANSWERED: Severity.MED,
    MUST_VIOLATION: Severity.MED,
    REJECTED_VALID: Severity.LOW,
    ECHO_MISSING: Severity.LOW,
    UNEXPECTED_CLOSE_CODE: Severity.LOW,
    NO_FRAME_SIZE_LIMIT: Severity.LOW,
    HANDSHAKE_NOT_REFUSED: Severity.LOW,
}

#: Reactions in which the server broke a MUST itself, whatever the case asked for: a Close
#: with a forbidden body or code (``CLOSED_BAD``, §7.4.1/§5.5.1), a Close whose code §7.4
#: does not define (``CLOSED_UNDEFINED``, §5.5.1), bytes that are not frames (``GARBAGE``).
SERVER_FAULTS = frozenset({WsReaction.CLOSED_BAD, WsReaction.CLOSED_UNDEFINED,
                           WsReaction.GARBAGE})

#: Cap on everything read for one case; beyond it the case is not judged.
READ_CAP = 4 * DEFAULT_MAX_PAYLOAD


class Transport(enum.Enum):
    """How the walker's read ended (mapped from the socket layer by the walker)."""

    #: The connection was still open: deadline reached, or the oracle had decided.
    OPEN = "open"
    #: The server closed (FIN).
    EOF = "eof"
    #: The connection was reset.
    RESET = "reset"
    #: The read cap was hit.
    CAP = "cap"


@dataclass(frozen=True)
class WsJudgement:
    case: str
    reaction: WsReaction | Reaction
    verdict: Verdict
    #: The slice counter this judgement moves, or None.
    counter: str | None
    detail: str
    close_code: int | None = None
    #: PING_FLOOD: Pings whose Pong never came (allowed: earlier ones MAY be coalesced).
    pongs_missing: int = 0

    @property
    def severity(self) -> Severity | None:
        return None if self.counter is None else COUNTER_SEVERITY[self.counter]

    @property
    def also_counts(self) -> tuple[str, ...]:
        """Counters moved besides ``counter``: a MED violation also moves
        ``ws.must_violation``, the sum that I-WS-MUST judges."""
        if self.verdict is Verdict.VIOLATION and self.severity is Severity.MED:
            return (MUST_VIOLATION,)
        return ()


def verdict_for(
    reaction: WsReaction | Reaction,
    allowed: frozenset,
    tolerated: frozenset,
    requirement: Requirement,
) -> Verdict:
    """Allowed passes, tolerated is lenient, anything else violates ``requirement``."""
    if reaction is WsReaction.OVERFLOW:
        return Verdict.UNJUDGED
    if reaction in SERVER_FAULTS:
        return Verdict.VIOLATION  # the server itself broke a MUST, whatever the case
    if reaction in allowed:
        return Verdict.PASS
    if reaction in tolerated or requirement is not Requirement.MUST:
        return Verdict.LENIENT
    return Verdict.VIOLATION


class WsOracle:
    """Incremental observer of one case's answer; see the module docstring."""

    def __init__(self, case: WsCase, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.case = case
        self._parser = ServerFrameParser(max_payload)
        self._max_message = max_payload
        self._message: bytearray | None = None
        self._message_opcode = 0
        self.close: CloseInfo | None = None
        self.garbage: str = ""
        self.echoed_bad = False
        self.canary_answered = False
        self.responded = False
        self.overflow = False
        self.pongs: set[bytes] = set()
        self._pings = [f.payload for f in case.frames if f.opcode == Opcode.PING]
        self._expected = case.message() if case.kind is CaseKind.ECHO else None
        self.received = 0

    @property
    def decided(self) -> bool:
        """True once nothing later can change the judgement."""
        if self.close is not None or self.garbage or self.echoed_bad or self.overflow:
            return True
        return self.responded and self.case.kind in (CaseKind.PING_FLOOD, CaseKind.ECHO)

    def feed(self, data: bytes) -> None:
        """Take the next server bytes (any split); never raises."""
        self.received += len(data)
        if self.decided:
            return
        for item in self._parser.feed(data):
            if isinstance(item, FrameError):
                if item.over_cap:
                    self.overflow = True
                else:
                    self.garbage = item.reason
                return
            self._on_frame(item)
            if self.decided:
                return

    def _on_frame(self, frame: ServerFrame) -> None:
        bad = self.case.bad_payload
        if frame.opcode == Opcode.CLOSE:
            self.close = parse_close(frame.payload)
        elif frame.opcode == Opcode.PONG:
            if bad and bad in frame.payload:
                self.echoed_bad = True
            if frame.payload == CANARY:
                self.canary_answered = True
            self.pongs.add(frame.payload)
            if self._pings and frame.payload == self._pings[-1]:
                self.responded = self.case.kind is CaseKind.PING_FLOOD
        elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
            self._on_data(frame)

    def _on_data(self, frame: ServerFrame) -> None:
        if frame.opcode == Opcode.CONTINUATION:
            if self._message is None:
                self.garbage = "server sent a continuation frame with no message open"
                return
            self._message += frame.payload
        else:
            if self._message is not None:
                self.garbage = "server started a new message inside a fragmented one"
                return
            self._message = bytearray(frame.payload)
            self._message_opcode = frame.opcode
        if len(self._message) > self._max_message:
            self.overflow = True
            return
        bad = self.case.bad_payload
        if bad and bad in self._message:
            self.echoed_bad = True
        if frame.fin:
            message = bytes(self._message)
            self._message = None
            if self._expected is not None and (self._message_opcode, message) == self._expected:
                self.responded = True

    def finish(self, transport: Transport) -> WsJudgement:
        """Judge what was seen, given how the read ended."""
        case = self.case
        reaction, detail = self._reaction(transport)
        verdict = verdict_for(reaction, case.allowed, case.tolerated, case.requirement)
        missing = 0
        if case.kind is CaseKind.PING_FLOOD:
            missing = sum(1 for p in self._pings if p not in self.pongs)
        return WsJudgement(
            case=case.name,
            reaction=reaction,
            verdict=verdict,
            counter=self._counter(reaction, verdict),
            detail=detail,
            close_code=None if self.close is None else self.close.code,
            pongs_missing=missing,
        )

    def _reaction(self, transport: Transport) -> tuple[WsReaction, str]:
        kind = self.case.kind
        if self.garbage:
            return WsReaction.GARBAGE, self.garbage
        if self.echoed_bad:
            return WsReaction.ACCEPTED, "the bad payload came back from the server"
        if self.responded:
            return WsReaction.RESPONDED, "answered as expected"
        if self.close is not None:
            return self._close_reaction(self.close)
        if self.overflow or transport is Transport.CAP:
            return WsReaction.OVERFLOW, "read cap reached before a decision"
        if transport is Transport.EOF:
            return WsReaction.SILENT_CLOSE, "TCP close without a Close frame"
        if transport is Transport.RESET:
            return WsReaction.RESET, "connection reset without a Close frame"
        if self.canary_answered and kind is CaseKind.BAD_FRAME:
            return WsReaction.ACCEPTED, "answered the Ping after the bad frame and stayed open"
        if self.canary_answered and kind is CaseKind.ECHO:
            return WsReaction.ALIVE_NO_ECHO, "the Ping was answered but nothing was echoed"
        return WsReaction.HANG, "no Close, no TCP close and no answer by the deadline"

    def _close_reaction(self, close: CloseInfo) -> tuple[WsReaction, str]:
        code = close.code
        if close.standing is CodeStanding.UNDEFINED:
            return WsReaction.CLOSED_UNDEFINED, close.problem
        if close.problem:
            return WsReaction.CLOSED_BAD, close.problem
        if code is not None and code in self.case.codes:
            return WsReaction.CLOSED_EXPECTED, f"Close {code}"
        return WsReaction.CLOSED_OTHER, f"Close {code if code is not None else '(no code)'}"

    def _counter(self, reaction: WsReaction, verdict: Verdict) -> str | None:
        kind = self.case.kind
        if verdict in (Verdict.PASS, Verdict.UNJUDGED):
            return None
        if reaction is WsReaction.ACCEPTED:
            return ACCEPTED_BAD_FRAME if verdict is Verdict.VIOLATION else None
        if reaction is WsReaction.HANG:
            if verdict is Verdict.VIOLATION:
                # After a valid message nothing was violated that could carry on: the miss
                # is the Pong (or echo) itself. After a bad frame or Close, a hang.
                valid = kind in (CaseKind.ECHO, CaseKind.PING_FLOOD)
                return VALID_UNANSWERED if valid else HANG_NO_CLOSE
            return NO_FRAME_SIZE_LIMIT if kind is CaseKind.BAD_LENGTH else None
        if reaction is WsReaction.GARBAGE:
            return SERVER_BAD_FRAME
        if reaction in (WsReaction.CLOSED_BAD, WsReaction.CLOSED_UNDEFINED):
            # Even when it repeats the code or reason we sent, a bad Close ends the
            # connection: a MUST (NOT) broken (RFC 6455 §7.4.1, §5.5.1) with nothing carried on.
            return SERVER_BAD_CLOSE
        if reaction is WsReaction.ALIVE_NO_ECHO:
            return ECHO_MISSING
        if kind is CaseKind.CLIENT_CLOSE:
            closed = (WsReaction.SILENT_CLOSE, WsReaction.RESET)
            return CLOSE_NOT_ANSWERED if reaction in closed else UNEXPECTED_CLOSE_CODE
        if kind in (CaseKind.ECHO, CaseKind.PING_FLOOD):
            return REJECTED_VALID
        return UNEXPECTED_CLOSE_CODE


# --- malformed opening handshakes -------------------------------------------------------


def handshake_decided(data: bytes) -> bool:
    """Whether the answer to a handshake is complete enough to judge."""
    return parse_response_head(data) is not None


def judge_handshake(case: HandshakeCase, data: bytes, transport: Transport) -> WsJudgement:
    """Judge the answer to a malformed opening handshake (RFC 6455 §4.2.1, §4.2.2, §4.4).

    Any 4xx refuses properly, 426 being only the RFC's example; the version case also needs
    a ``Sec-WebSocket-Version`` header in it. A 101 accepted what the RFC says MUST be
    refused. 5xx, FIN and RST are refusals that miss "an appropriate error code": lenient.
    Another 1xx/2xx/3xx did not perform the upgrade but did not refuse either: lenient.
    """
    head = parse_response_head(data)
    if isinstance(head, HeadError):
        return _hs(case, Reaction.GARBAGE, Verdict.VIOLATION, HANDSHAKE_GARBAGE, head.reason)
    if head is None:
        if transport is Transport.CAP:
            return _hs(case, Reaction.GARBAGE, Verdict.UNJUDGED, None, "read cap reached")
        if transport is Transport.OPEN:
            return _hs(
                case, Reaction.HANG, Verdict.VIOLATION, HANG_NO_CLOSE, "no answer by deadline"
            )
        reaction = Reaction.SILENT_CLOSE if transport is Transport.EOF else Reaction.RESET
        verdict = verdict_for(reaction, case.allowed, case.tolerated, case.requirement)
        return _hs(case, reaction, verdict, None, "closed without an HTTP answer")
    return _judge_head(case, head, transport)


def _judge_head(case: HandshakeCase, head: ResponseHead, transport: Transport) -> WsJudgement:
    status = head.status
    if status == 101:
        return _hs(case, Reaction.ACCEPTED, Verdict.VIOLATION, ACCEPTED_BAD_FRAME,
                   "101 Switching Protocols to a malformed handshake")
    if 400 <= status <= 499:
        closed = transport is not Transport.OPEN or head.has_token(b"connection", b"close")
        reaction = Reaction.REJECTED_CLOSED if closed else Reaction.REJECTED_KEPT_ALIVE
        if case.required_header is not None and head.get(case.required_header) is None:
            return _hs(case, reaction, Verdict.VIOLATION, VERSION_HEADER_MISSING,
                       f"{status} without {case.required_header.decode()}")
        return _hs(case, reaction, Verdict.PASS, None, f"refused with {status}")
    if status >= 500:
        return _hs(case, Reaction.SERVER_ERROR, Verdict.LENIENT, HANDSHAKE_NOT_REFUSED,
                   f"refused with {status}")
    return _hs(case, Reaction.ACCEPTED, Verdict.LENIENT, HANDSHAKE_NOT_REFUSED,
               f"answered {status} instead of refusing the handshake")


def _hs(
    case: HandshakeCase,
    reaction: Reaction,
    verdict: Verdict,
    counter: str | None,
    detail: str,
) -> WsJudgement:
    return WsJudgement(case=case.name, reaction=reaction, verdict=verdict, counter=counter,
                       detail=detail)
