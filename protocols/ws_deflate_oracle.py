"""Judging a server's answer to one permessage-deflate case, from bytes alone.

How this works: like ``protocols.websocket_oracle``, the walker feeds every server byte to
``DeflateOracle.feed`` and asks ``decided``; ``finish(transport)`` turns what was seen into
a ``DeflateJudgement``. The differences: frames may carry RSV1 (only on a first data frame,
RFC 7692 §6), and a compressed message is inflated with the window and context takeover the
server agreed to, never past ``cap``. So a server that promised ``server_max_window_bits=10``
or ``server_no_context_takeover`` and broke it shows up as output that does not inflate.

For the bomb, the evidence that the server inflated it is any sign that it took the message
(the echo, even cut short by our cap, or the canary Pong with the socket left open); a
refusal is a Close, FIN or RST. ``judge_bomb`` then weighs it against the server's answer to
the same size sent plain (module docstring of ``protocols.ws_deflate_cases``).

Counters (slice "ws"): HIGH ones are the ws slice's own (``ws.accepted_bad_frame``,
``ws.hang_no_close``); MED ones also move ``ws.must_violation`` (I-WS-MUST).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from protocols.outcome import Severity, Verdict
from protocols.websocket_case_model import WsReaction
from protocols.websocket_frames import (
    DEFAULT_MAX_PAYLOAD,
    CloseInfo,
    CodeStanding,
    FrameError,
    Opcode,
    ServerFrame,
    ServerFrameParser,
    is_control,
    parse_close,
)
from protocols.websocket_oracle import CANARY, Transport
from protocols.ws_deflate import DeflateParams, Inflater, Negotiation
from protocols.ws_deflate_cases import RSV1, DeflateCase, DeflateKind

ACCEPTED_BAD_FRAME = "ws.accepted_bad_frame"
HANG_NO_CLOSE = "ws.hang_no_close"
SERVER_BAD_FRAME = "ws.server_bad_frame"
SERVER_BAD_CLOSE = "ws.server_bad_close_code"
VALID_UNANSWERED = "ws.valid_unanswered"
MUST_VIOLATION = "ws.must_violation"
#: The 101 answered our offer with parameters RFC 7692 §7 forbids.
BAD_NEGOTIATION = "ws.deflate_bad_negotiation"
#: A compressed server message does not inflate under the agreed parameters.
BAD_OUTPUT = "ws.deflate_bad_output"
#: The bomb was inflated past the limit the server keeps for plain messages.
BOMB_INFLATED = "ws.deflate_bomb_inflated"
#: The bomb was inflated and so was the same size sent plain: no limit at all (SHOULD).
NO_INFLATE_LIMIT = "ws.deflate_no_inflate_limit"
#: Invalid deflate data did not fail the connection (no MUST obliges it).
INVALID_ACCEPTED = "ws.deflate_invalid_accepted"
REJECTED_VALID = "ws.rejected_valid"
ECHO_MISSING = "ws.echo_missing"
UNEXPECTED_CLOSE_CODE = "ws.unexpected_close_code"
#: Not a verdict: the server declined permessage-deflate, so no deflate case applies.
UNSUPPORTED = "ws.deflate_unsupported"

COUNTER_SEVERITY: dict[str, Severity] = {
    ACCEPTED_BAD_FRAME: Severity.HIGH,
    HANG_NO_CLOSE: Severity.HIGH,
    SERVER_BAD_FRAME: Severity.MED,
    SERVER_BAD_CLOSE: Severity.MED,
    VALID_UNANSWERED: Severity.MED,
    BAD_NEGOTIATION: Severity.MED,
    BAD_OUTPUT: Severity.MED,
    BOMB_INFLATED: Severity.MED,
    NO_INFLATE_LIMIT: Severity.LOW,
    INVALID_ACCEPTED: Severity.LOW,
    REJECTED_VALID: Severity.LOW,
    ECHO_MISSING: Severity.LOW,
    UNEXPECTED_CLOSE_CODE: Severity.LOW,
}
#: Cap on one inflated or reassembled server message, and on one frame.
CAP = DEFAULT_MAX_PAYLOAD
#: Ways to end the session that the server may choose. Not ``CLOSED_UNDEFINED``: a code
#: §7.4 does not define breaks §5.5.1, the server's own violation (as ``CLOSED_BAD``).
_CLOSED = (WsReaction.CLOSED_EXPECTED, WsReaction.CLOSED_OTHER, WsReaction.SILENT_CLOSE,
           WsReaction.RESET)


@dataclass(frozen=True)
class DeflateJudgement:
    case: str
    reaction: WsReaction
    verdict: Verdict
    counter: str | None
    detail: str
    close_code: int | None = None
    #: The bomb was taken (inflated): ``judge_bomb`` needs the plain probe's answer.
    took_bomb: bool = False

    @property
    def severity(self) -> Severity | None:
        return None if self.counter is None else COUNTER_SEVERITY[self.counter]

    @property
    def also_counts(self) -> tuple[str, ...]:
        """A MED violation also moves ``ws.must_violation`` (I-WS-MUST)."""
        if self.verdict is Verdict.VIOLATION and self.severity is Severity.MED:
            return (MUST_VIOLATION,)
        return ()


def judge_negotiation(case: DeflateCase, negotiation: Negotiation) -> DeflateJudgement:
    """An invalid answer to the offer: the server broke RFC 7692 §7 (MED, nothing carried)."""
    return DeflateJudgement(case.name, WsReaction.GARBAGE, Verdict.VIOLATION, BAD_NEGOTIATION,
                            f"{negotiation.rfc}: {negotiation.problem}")


class DeflateOracle:
    """Incremental observer of one deflate case's answer (see the module docstring).

    ``params`` None reads a session with no extension (the bomb's plain probe).
    """

    def __init__(self, case: DeflateCase, params: DeflateParams | None) -> None:
        self.case = case
        self._parser = ServerFrameParser(CAP, allowed_rsv=RSV1 if params else 0)
        self._inflater = (Inflater(params.server_max_window_bits,
                                   params.server_no_context_takeover) if params else None)
        self._parts: list[bytes] | None = None
        self._opcode = 0
        self._compressed = False
        self._expected = list(case.messages) if case.kind is DeflateKind.ECHO else []
        self.echoes: list[tuple[int, bytes]] = []
        self.close: CloseInfo | None = None
        self.garbage = ""
        self.bad_output = ""
        self.over_cap = False
        self.canary_answered = False
        self.echoed_bad = False

    @property
    def responded(self) -> bool:
        return bool(self._expected) and self.echoes[: len(self._expected)] == self._expected

    @property
    def took_message(self) -> bool:
        """A data message (or its start past our cap) came back."""
        return bool(self.echoes) or self.over_cap

    @property
    def decided(self) -> bool:
        if self.close is not None or self.garbage or self.bad_output or self.echoed_bad:
            return True
        if self.case.kind is DeflateKind.ECHO:
            return self.responded or len(self.echoes) >= len(self._expected) + 2
        return self.took_message

    def feed(self, data: bytes) -> None:
        """Take the next server bytes (any split); never raises."""
        if self.decided:
            return
        for item in self._parser.feed(data):
            if isinstance(item, FrameError):
                if item.over_cap:
                    self.over_cap = True
                else:
                    self.garbage = item.reason
                return
            self._on_frame(item)
            if self.decided:
                return

    def _on_frame(self, frame: ServerFrame) -> None:
        if frame.rsv and (is_control(frame.opcode) or frame.opcode == Opcode.CONTINUATION):
            self.garbage = "server set RSV1 on a control or continuation frame (RFC 7692 §6)"
        elif frame.opcode == Opcode.CLOSE:
            self.close = parse_close(frame.payload)
        elif frame.opcode == Opcode.PONG:
            self.canary_answered |= frame.payload == CANARY
            self.echoed_bad |= bool(self.case.bad_payload) and self.case.bad_payload in (
                frame.payload)
        elif frame.opcode == Opcode.CONTINUATION:
            if self._parts is None:
                self.garbage = "server sent a continuation frame with no message open"
                return
            self._add(frame)
        elif frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._parts is not None:
                self.garbage = "server started a new message inside a fragmented one"
                return
            self._parts, self._opcode, self._compressed = [], frame.opcode, bool(frame.rsv)
            self._add(frame)

    def _add(self, frame: ServerFrame) -> None:
        assert self._parts is not None
        self._parts.append(frame.payload)
        if sum(map(len, self._parts)) > CAP:
            self.over_cap = True
            return
        if not frame.fin:
            return
        payload, self._parts = b"".join(self._parts), None
        if self._compressed:
            if self._inflater is None:
                self.garbage = "server sent RSV1 with no extension agreed"
                return
            inflated = self._inflater.inflate(payload, CAP)
            if inflated.over_limit:
                self.over_cap = True
                return
            if inflated.error:
                self.bad_output = inflated.error
                return
            payload = inflated.data
        bad = self.case.bad_payload
        self.echoed_bad |= bool(bad) and bad in payload
        self.echoes.append((self._opcode, payload))

    def finish(self, transport: Transport) -> DeflateJudgement:
        """Judge what was seen, given how the read ended."""
        reaction, detail = self._reaction(transport)
        verdict, counter = _grade(self.case.kind, reaction)
        if reaction is WsReaction.GARBAGE and self.bad_output:
            counter = BAD_OUTPUT
        return DeflateJudgement(
            self.case.name, reaction, verdict, counter, detail,
            close_code=None if self.close is None else self.close.code,
            took_bomb=self.case.kind is DeflateKind.BOMB and reaction is WsReaction.ACCEPTED,
        )

    def _reaction(self, transport: Transport) -> tuple[WsReaction, str]:
        kind = self.case.kind
        if self.garbage:
            return WsReaction.GARBAGE, self.garbage
        if self.bad_output:
            return WsReaction.GARBAGE, f"server output does not inflate: {self.bad_output}"
        if kind is DeflateKind.ECHO and self.responded:
            return WsReaction.RESPONDED, "every message came back byte for byte"
        if kind is not DeflateKind.ECHO and (self.echoed_bad or self.took_message):
            return WsReaction.ACCEPTED, "the message came back"
        if self.close is not None:
            return _close_reaction(self.close)
        if self.over_cap or transport is Transport.CAP:
            return WsReaction.OVERFLOW, "read cap reached before a decision"
        if transport is Transport.EOF:
            return WsReaction.SILENT_CLOSE, "TCP close without a Close frame"
        if transport is Transport.RESET:
            return WsReaction.RESET, "connection reset without a Close frame"
        if self.canary_answered:
            if kind is DeflateKind.ECHO:
                return WsReaction.ALIVE_NO_ECHO, "the Ping was answered, the echo differs"
            return WsReaction.ACCEPTED, "answered the Ping after the frame and stayed open"
        return WsReaction.HANG, "no Close, no TCP close and no answer by the deadline"


def _close_reaction(close: CloseInfo) -> tuple[WsReaction, str]:
    code = close.code
    if code is not None and close.standing is CodeStanding.UNDEFINED:
        return WsReaction.CLOSED_UNDEFINED, close.problem
    if close.problem:
        return WsReaction.CLOSED_BAD, close.problem
    return WsReaction.CLOSED_OTHER, f"Close {code if code is not None else '(no code)'}"


def _grade(kind: DeflateKind, reaction: WsReaction) -> tuple[Verdict, str | None]:
    """(verdict, counter) for one reaction; the table the module docstring explains."""
    if reaction is WsReaction.OVERFLOW:
        return Verdict.UNJUDGED, None
    if reaction is WsReaction.GARBAGE:
        return Verdict.VIOLATION, SERVER_BAD_FRAME
    if reaction in (WsReaction.CLOSED_BAD, WsReaction.CLOSED_UNDEFINED):
        return Verdict.VIOLATION, SERVER_BAD_CLOSE
    if kind is DeflateKind.ECHO:
        if reaction is WsReaction.RESPONDED:
            return Verdict.PASS, None
        if reaction is WsReaction.HANG:
            return Verdict.VIOLATION, VALID_UNANSWERED  # the canary's Pong (§5.5.2)
        if reaction is WsReaction.ALIVE_NO_ECHO:
            return Verdict.LENIENT, ECHO_MISSING
        return Verdict.LENIENT, REJECTED_VALID
    if reaction in _CLOSED:
        return Verdict.PASS, None
    if kind is DeflateKind.BAD_FRAME:
        counter = ACCEPTED_BAD_FRAME if reaction is WsReaction.ACCEPTED else HANG_NO_CLOSE
        return Verdict.VIOLATION, counter
    if kind is DeflateKind.BAD_DATA:
        if reaction is WsReaction.ACCEPTED:
            return Verdict.LENIENT, INVALID_ACCEPTED
        return Verdict.VIOLATION, VALID_UNANSWERED  # hang: the canary's Pong (§5.5.2)
    if reaction is WsReaction.ACCEPTED:  # the bomb taken: judge_bomb decides
        return Verdict.LENIENT, NO_INFLATE_LIMIT
    return Verdict.UNJUDGED, None  # no answer: it may still be inflating


def judge_bomb(first: DeflateJudgement, plain: DeflateJudgement | None) -> DeflateJudgement:
    """The bomb taken, weighed against the same size sent plain (``plain``, None = no probe).

    RFC 6455 §10.4: a server that refuses the plain message has a limit, and inflating past
    it missed "MUST protect themselves against exceeding those limits" (MED). One that takes
    both has no limit: only the SHOULD missed (LOW). A probe that says neither: unjudged.
    """
    if not first.took_bomb:
        return first
    if plain is None or plain.reaction not in (*_CLOSED, WsReaction.ACCEPTED):
        return replace(first, verdict=Verdict.UNJUDGED, counter=None,
                       detail=first.detail + "; the plain probe gave no answer")
    if plain.reaction is WsReaction.ACCEPTED:
        return replace(first, detail=first.detail + "; the same size sent plain was taken "
                       "too: no message limit at all")
    return replace(first, verdict=Verdict.VIOLATION, counter=BOMB_INFLATED,
                   detail=first.detail + f"; the same size sent plain was refused "
                   f"({plain.detail}): inflated past the server's own limit")
