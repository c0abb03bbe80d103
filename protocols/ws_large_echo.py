"""Judging a server's answer to one large valid message, streamed, from bytes alone.

How this works: ``EchoCheck`` reads the server's frames incrementally and compares each echo
payload byte range with the expected message as it arrives (a memoryview comparison, no
reassembly), so a 16 MiB echo costs the frame headers and nothing else. It records the first
decisive event: the echo complete and equal, the first differing byte, a data frame of the
wrong kind, a Close frame, the Pong to the canary Ping sent after the message, or server
bytes that are not frames. ``judge(check, transport)`` turns that plus how the read ended
into a ``LargeJudgement`` (verdict, counter, detail).

What a server may do with a valid message (RFC 6455), and what assay makes of it:

* echo it identically: pass;
* refuse it with Close 1009 (§7.4.1 "a message that is too big for it to process"; §10.4
  wants limits): pass, counted as information (``ws.size_limit``) with the size;
* close with another code: §7.4.1 codes are the server's choice; lenient at most
  (``ws.large_refused``), a forbidden code is the usual ``ws.server_bad_close_code``;
* drop TCP (FIN or RST) with no Close before the echo is complete: ``ws.large_dropped``
  (MED, I-WS-DROP). §7.1.7 "the endpoint SHOULD send a Close frame with an appropriate status
  code" even when it fails the connection; a valid message is no error, so the client loses
  it with nothing to tell a size limit from a crash (§7.1.5: close code 1006);
* alter it (other bytes, other length, other opcode): ``ws.large_echo_altered`` (HIGH,
  I-WS-ECHO): a lost or corrupted message carried on as if delivered;
* neither echo nor Pong to the canary, connection open at the deadline: the §5.5.2 MUST
  ("Upon receipt of a Ping frame, an endpoint MUST send a Pong frame") missed:
  ``ws.valid_unanswered`` (MED, I-WS-MUST), a hang that confirmation re-sends alone;
* Pong but no (or part of the) echo: ``ws.echo_missing`` (lenient): alive, not an echo.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from protocols.outcome import Verdict
from protocols.websocket_frames import (
    MAX_CONTROL_PAYLOAD,
    CloseInfo,
    CodeStanding,
    Opcode,
    is_control,
    parse_close,
)
from protocols.websocket_oracle import (
    CANARY,
    ECHO_MISSING,
    MUST_VIOLATION,
    SERVER_BAD_CLOSE,
    SERVER_BAD_FRAME,
    VALID_UNANSWERED,
    Transport,
)

#: Close 1009 (RFC 6455 §7.4.1): the documented refusal of a message too big. Information.
SIZE_LIMIT = "ws.size_limit"
#: A Close with another code before the echo: a refusal the RFC does not name. Lenient.
LARGE_REFUSED = "ws.large_refused"
#: TCP dropped (FIN/RST) without a Close before the echo was complete (MED, I-WS-DROP).
LARGE_DROPPED = "ws.large_dropped"
#: The echo differs from the message (bytes, length or opcode) (HIGH, I-WS-ECHO).
LARGE_ECHO_ALTERED = "ws.large_echo_altered"

_DATA_OPCODES = (Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY)


class LargeReaction(enum.Enum):
    """How the server answered one large valid message."""

    ECHOED = "echoed"
    REFUSED_1009 = "refused_1009"
    CLOSED_OTHER = "closed_other"
    CLOSED_BAD = "closed_bad"
    DROPPED = "dropped"
    ALTERED = "altered"
    ALIVE_NO_ECHO = "alive_no_echo"
    HANG = "hang"
    GARBAGE = "garbage"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True)
class LargeJudgement:
    reaction: LargeReaction
    verdict: Verdict
    #: The counter this judgement moves (None for a plain pass).
    counter: str | None
    detail: str
    close_code: int | None = None
    #: Echo bytes that matched before the decision.
    echoed: int = 0

    @property
    def also_counts(self) -> tuple[str, ...]:
        """I-WS-MUST sums every MED MUST miss of the ws slice."""
        musts = (VALID_UNANSWERED, SERVER_BAD_FRAME, SERVER_BAD_CLOSE)
        if self.verdict is Verdict.VIOLATION and self.counter in musts:
            return (MUST_VIOLATION,)
        return ()


class EchoCheck:
    """Streamed reader of the server's frames against the expected echo.

    ``feed(data)`` accepts any split of the server's bytes; ``decided`` says the walker may
    stop reading. Memory: one frame header and at most one control payload are held.
    """

    def __init__(self, expected: bytes, opcode: Opcode) -> None:
        self._expected = memoryview(expected)
        self._opcode = opcode
        self._head = bytearray()
        self._remaining = 0  # payload bytes left in the current frame
        self._frame_opcode = -1
        self._frame_fin = False
        self._control = bytearray()
        self._in_message = False
        self.echoed = 0
        self.complete = False
        self.altered: str | None = None
        self.close: CloseInfo | None = None
        self.pong = False
        self.garbage: str | None = None
        self.received = 0

    @property
    def decided(self) -> bool:
        return bool(self.complete or self.altered or self.close or self.garbage)

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        view = memoryview(data)
        while view and not self.decided:
            if self._remaining == 0 and self._frame_opcode < 0:
                view = self._read_head(view)
                continue
            take = min(self._remaining, len(view))
            self._payload(view[:take])
            if self.decided:  # the first difference is the finding; nothing after it
                return
            self._remaining -= take
            view = view[take:]
            if self._remaining == 0:
                self._frame_end()

    def _read_head(self, view: memoryview) -> memoryview:
        need = _head_size(self._head)
        while len(self._head) < need and view:
            self._head.append(view[0])
            view = view[1:]
            need = _head_size(self._head)
        if len(self._head) < need:
            return view
        problem, opcode, fin, length = _parse_head(bytes(self._head))
        self._head.clear()
        if problem:
            self.garbage = problem
            return view
        self._frame_opcode, self._frame_fin, self._remaining = opcode, fin, length
        if opcode in _DATA_OPCODES:
            self._data_start(opcode)
        if self._remaining == 0 and not self.decided:
            self._frame_end()
        return view

    def _data_start(self, opcode: int) -> None:
        if self._in_message != (opcode == Opcode.CONTINUATION):
            what = "a continuation with no message" if opcode == 0 else "a new message"
            self.altered = f"{what} at echo byte {self.echoed}"
        elif opcode != Opcode.CONTINUATION and opcode != self._opcode:
            self.altered = f"echo opcode {opcode:#x}, sent {int(self._opcode):#x}"
        self._in_message = True

    def _payload(self, chunk: memoryview) -> None:
        if self._frame_opcode not in _DATA_OPCODES:
            self._control += chunk
            return
        start, end = self.echoed, self.echoed + len(chunk)
        if end > len(self._expected):
            self.altered = f"echo longer than the {len(self._expected)}-byte message"
            return
        if self._expected[start:end] != chunk:
            first = next(i for i in range(len(chunk)) if chunk[i] != self._expected[start + i])
            self.altered = f"echo differs at byte {start + first}"
            return
        self.echoed = end

    def _frame_end(self) -> None:
        opcode, body = self._frame_opcode, bytes(self._control)
        self._frame_opcode, self._control = -1, bytearray()
        if opcode == Opcode.CLOSE:
            self.close = parse_close(body)
        elif opcode == Opcode.PONG:
            self.pong = self.pong or body == CANARY
        elif opcode in _DATA_OPCODES and self._frame_fin:
            self._in_message = False
            if self.echoed == len(self._expected):
                self.complete = True
            else:
                self.altered = (f"echo ended after {self.echoed} of "
                                f"{len(self._expected)} bytes")


def _head_size(head: bytearray) -> int:
    if len(head) < 2:
        return 2
    length = head[1] & 0x7F
    return 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if head[1] & 0x80 else 0)


def _parse_head(head: bytes) -> tuple[str, int, bool, int]:
    """(problem, opcode, fin, payload length) of one server frame header (RFC 6455 §5.2)."""
    fin, rsv, opcode = bool(head[0] & 0x80), (head[0] >> 4) & 0x7, head[0] & 0x0F
    length = head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack_from("!H", head, 2)
    elif length == 127:
        (length,) = struct.unpack_from("!Q", head, 2)
    if head[1] & 0x80:
        return "server frame is masked (§5.1)", opcode, fin, length
    if rsv:
        return f"server frame sets RSV bits {rsv:03b} with no extension", opcode, fin, length
    if opcode not in (*_DATA_OPCODES, Opcode.CLOSE, Opcode.PING, Opcode.PONG):
        return f"server frame uses reserved opcode {opcode:#x}", opcode, fin, length
    if is_control(opcode) and (not fin or length > MAX_CONTROL_PAYLOAD):
        return "control frame fragmented or over 125 bytes (§5.5)", opcode, fin, length
    if length >> 63:
        return "64-bit payload length with the most significant bit set", opcode, fin, length
    return "", opcode, fin, length


def judge(check: EchoCheck, transport: Transport) -> LargeJudgement:
    """The verdict on one large message, from what ``check`` saw and how the read ended."""
    echoed = check.echoed
    if check.garbage:
        return LargeJudgement(LargeReaction.GARBAGE, Verdict.VIOLATION, SERVER_BAD_FRAME,
                              check.garbage, echoed=echoed)
    if check.altered:
        return LargeJudgement(LargeReaction.ALTERED, Verdict.VIOLATION, LARGE_ECHO_ALTERED,
                              check.altered, echoed=echoed)
    if check.complete:
        return LargeJudgement(LargeReaction.ECHOED, Verdict.PASS, None, "echoed identically",
                              echoed=echoed)
    close = check.close
    if close is not None:
        code = close.code
        if close.problem or close.standing is CodeStanding.FORBIDDEN:
            return LargeJudgement(LargeReaction.CLOSED_BAD, Verdict.VIOLATION,
                                  SERVER_BAD_CLOSE, close.problem, code, echoed)
        if code == 1009:
            return LargeJudgement(LargeReaction.REFUSED_1009, Verdict.PASS, SIZE_LIMIT,
                                  "refused with 1009 (message too big)", code, echoed)
        return LargeJudgement(LargeReaction.CLOSED_OTHER, Verdict.LENIENT, LARGE_REFUSED,
                              f"closed with {code} before echoing a valid message", code,
                              echoed)
    if transport in (Transport.EOF, Transport.RESET):
        how = "FIN" if transport is Transport.EOF else "RST"
        return LargeJudgement(LargeReaction.DROPPED, Verdict.VIOLATION, LARGE_DROPPED,
                              f"TCP {how} with no Close after {echoed} echoed bytes: the "
                              "valid message is lost (RFC 6455 §7.1.7 SHOULD send a Close)",
                              echoed=echoed)
    if transport is Transport.CAP:
        return LargeJudgement(LargeReaction.OVERFLOW, Verdict.UNJUDGED, None,
                              "read cap reached", echoed=echoed)
    if check.pong:
        return LargeJudgement(LargeReaction.ALIVE_NO_ECHO, Verdict.LENIENT, ECHO_MISSING,
                              f"Pong to the canary, {echoed} echo bytes by the deadline",
                              echoed=echoed)
    return LargeJudgement(LargeReaction.HANG, Verdict.VIOLATION, VALID_UNANSWERED,
                          f"no echo complete ({echoed} bytes), no Pong to the canary Ping "
                          "(RFC 6455 §5.5.2 MUST), no Close by the deadline", echoed=echoed)


__all__ = [
    "LARGE_DROPPED",
    "LARGE_ECHO_ALTERED",
    "LARGE_REFUSED",
    "SIZE_LIMIT",
    "EchoCheck",
    "LargeJudgement",
    "LargeReaction",
    "judge",
]
