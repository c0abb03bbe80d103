"""What a WebSocket case is: the reactions a server can show, the case kinds, the case record.

``protocols.websocket_cases`` fills the table with these; ``protocols.websocket_oracle`` reads
a server's answer into one ``WsReaction`` and judges it against the case's sets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.outcome import Requirement, Severity
from protocols.websocket_frames import Frame, Opcode


class WsReaction(enum.Enum):
    """How a server reacted to one WebSocket case, as seen from the client socket."""

    #: A Close frame whose code is one the RFC names for this case (RFC 6455 §7.4.1).
    CLOSED_EXPECTED = "closed_expected"
    #: A Close frame with another valid code, or with no code (§5.5.1 allows an empty body).
    CLOSED_OTHER = "closed_other"
    #: A Close frame whose code §7.4 does not define (0-999, 1004, unregistered 1016-2999,
    #: >= 5000): §5.5.1 "the first two bytes of the body MUST be ... a status code with value
    #: /code/ defined in Section 7.4". The server's own MUST miss, whatever the case (tornado
    #: echoes such codes). Kept apart from ``CLOSED_BAD`` so a report says which rule broke;
    #: before issue 19 this reaction was graded lenient (docs/severity-calibration.md).
    CLOSED_UNDEFINED = "closed_undefined"
    #: A Close frame the RFC forbids outright: code 1005/1006/1015 (§7.4.1 "MUST NOT be
    #: set"), a 1-byte body or a reason that is not UTF-8 (§5.5.1).
    CLOSED_BAD = "closed_bad"
    #: TCP FIN with no Close frame: a legitimate way to fail the connection (§7.1.7).
    SILENT_CLOSE = "silent_close"
    #: TCP RST: also failing the connection (a close with unread data sends RST).
    RESET = "reset"
    #: The server carried on: echoed the bad payload, or answered the Ping sent after the bad
    #: frame and kept the connection open (§7.1.7 wants it closed).
    ACCEPTED = "accepted"
    #: A valid case got its answer (the echo, or the Pong to the last Ping).
    RESPONDED = "responded"
    #: A valid message got no echo, but the Ping after it was answered: alive, not an echo.
    ALIVE_NO_ECHO = "alive_no_echo"
    #: No Close, no TCP close and no answer by the deadline.
    HANG = "hang"
    #: The server's bytes are not valid WebSocket frames (masked, reserved opcode, ...).
    GARBAGE = "garbage"
    #: The read cap was reached before a decision: not judged.
    OVERFLOW = "overflow"


class CaseKind(enum.Enum):
    """How the oracle reads a case's answer."""

    #: Frames the server MUST fail; a Ping canary follows to tell "carried on" from "hung".
    BAD_FRAME = "bad_frame"
    #: A frame header declaring a length we never send: nothing can follow it.
    BAD_LENGTH = "bad_length"
    #: A Close frame whose body is invalid; the answer must be a Close or a TCP close.
    BAD_CLOSE = "bad_close"
    #: A valid Close; RFC 6455 §5.5.1 requires a Close in response.
    CLIENT_CLOSE = "client_close"
    #: Pings; the last one must get its Pong (earlier ones MAY be coalesced).
    PING_FLOOD = "ping_flood"
    #: A valid message that an echo endpoint sends back; a Ping canary follows.
    ECHO = "echo"


@dataclass(frozen=True)
class WsCase:
    name: str
    kind: CaseKind
    frames: tuple[Frame, ...]
    #: Reactions that pass.
    allowed: frozenset[WsReaction]
    #: Reactions that only miss a SHOULD/MAY: judged lenient, never a violation.
    tolerated: frozenset[WsReaction]
    rfc: str
    quote: str
    requirement: Requirement
    severity: Severity
    #: Close codes the RFC names for this case.
    codes: frozenset[int] = frozenset()
    #: Bytes that must never come back in a data frame (an echo of them = carried on).
    bad_payload: bytes = b""

    def message(self) -> tuple[int, bytes]:
        """(opcode, payload) of the data message the frames carry (for ECHO cases)."""
        data = [f for f in self.frames if not f.opcode & 0x8]
        return (data[0].opcode if data else Opcode.TEXT), b"".join(f.payload for f in data)
