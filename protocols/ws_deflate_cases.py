"""The permessage-deflate catalogue (RFC 7692): what a client sends once a server agreed.

How this works: every ``DeflateCase`` names the offer its handshake makes, the messages it
compresses (or the frame it bends), the RFC sentence it rests on and the requirement
behind it. Frames are not stored: they depend on what the server agreed (our window, our
context takeover), so ``build_frames(case, params)`` makes them, pure, after the handshake.
Each case's handshake also judges the answer to its offer (``protocols.ws_deflate``), so
the four parameters are each offered by some case. A server that declines is not judged.

The oracle (``protocols.ws_deflate_oracle``) inflates what comes back with the window and
context the server agreed to, so "honoured" is tested on the server's own output.

Grading, and why (docs/severity-calibration.md): RSV1 on a continuation or control frame is
RFC 7692 §6's receiver MUST ("MUST _Fail the WebSocket Connection_"), HIGH when carried on
like every other bad frame. Invalid deflate data has no sentence of its own in RFC 7692 that
obliges the receiver, so carrying on is only reported (LOW). The compression bomb rests on
RFC 6455 §10.4: a server that inflates past a limit it enforces on plain messages missed
"MUST protect themselves against exceeding those limits" (MED); one with no limit at all
only missed the SHOULD (LOW).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.outcome import Requirement, Severity
from protocols.websocket_frames import Frame, Opcode
from protocols.websocket_quotes import Q_PING, Q_SIZE
from protocols.ws_deflate import DeflateOffer, DeflateParams, Deflater, zeros_bomb

#: RSV1, the "Per-Message Compressed" bit (RFC 7692 §6), as ``Frame.rsv`` counts it.
RSV1 = 4
#: What the bomb inflates to: past the usual limits (aiohttp 4 MiB, tornado 10 MiB,
#: uvicorn/hypercorn 16 MiB), for about 32 KiB on the wire.
BOMB_BYTES = 32 << 20

Q_RSV1 = (
    "An endpoint MUST NOT set the \"Per-Message Compressed\" bit of control frames and "
    "non-first fragments of a data message. An endpoint receiving such a frame MUST _Fail "
    "the WebSocket Connection_."
)
Q_DECOMPRESS = (
    "An endpoint uses the following algorithm to decompress a message. 1. Append 4 octets "
    "of 0x00 0x00 0xff 0xff to the tail end of the payload of the message. 2. Decompress "
    "the resulting data using DEFLATE."
)
Q_NO_TAKEOVER = (
    "If the \"agreed parameters\" contain the \"server_no_context_takeover\" extension "
    "parameter, the server MUST start compressing each new message with an empty LZ77 "
    "sliding window. Otherwise, the server MAY take over the LZ77 sliding window used to "
    "build the last compressed message."
)
Q_WINDOW = (
    "By including this parameter in an extension negotiation offer, a client limits the "
    "LZ77 sliding window size that the server will use to compress messages."
)


class DeflateKind(enum.Enum):
    #: Valid compressed messages: each must come back (compressed or not), byte for byte.
    ECHO = "echo"
    #: RSV1 where RFC 7692 §6 forbids it: the server MUST fail the connection.
    BAD_FRAME = "bad_frame"
    #: A compressed message whose payload is not DEFLATE data.
    BAD_DATA = "bad_data"
    #: A small frame that inflates to ``BOMB_BYTES``; then the same size sent plain.
    BOMB = "bomb"


class Bend(enum.Enum):
    """How a case departs from well-formed compressed frames."""

    NONE = "none"
    RSV1_CONTINUATION = "rsv1_continuation"
    RSV1_PING = "rsv1_ping"
    BAD_DEFLATE = "bad_deflate"
    BOMB = "bomb"


@dataclass(frozen=True)
class DeflateCase:
    name: str
    kind: DeflateKind
    offer: DeflateOffer
    rfc: str
    quote: str
    requirement: Requirement
    #: Weight of a miss of ``requirement`` (each judgement's own weight is its counter's).
    severity: Severity
    #: (opcode, message) pairs sent compressed, in order; echo cases expect them back.
    messages: tuple[tuple[int, bytes], ...] = ()
    #: Frames per compressed message (RSV1 on the first only, RFC 7692 §6.1).
    fragments: int = 1
    bend: Bend = Bend.NONE
    #: Bytes that must never come back (an echo of them = carried on).
    bad_payload: bytes = b""


_TEXT = b"assay permessage-deflate echo: " + "κόσμε ".encode() * 40
_BINARY = bytes(range(256)) * 8
#: Distinct 2000 bytes, twice: a window over 1 KiB reaches back 2000 bytes for the repeat,
#: so an answer built with one cannot be inflated under server_max_window_bits=10.
_FAR = b"".join(i.to_bytes(2, "big") for i in range(1000)) * 2
_INVALID = b"\xff\xff\xff\xffassay-pmd-invalid"  # BTYPE 11: a reserved block type (RFC 1951)
_PING = b"assay-pmd-rsv1-ping"
_CONT = b"assay-pmd-rsv1-continuation"

_ECHO = dict(kind=DeflateKind.ECHO, requirement=Requirement.MUST, severity=Severity.MED)
_FAIL = dict(kind=DeflateKind.BAD_FRAME, requirement=Requirement.MUST, severity=Severity.HIGH,
             rfc="RFC 7692 §6", quote=Q_RSV1)

CASES: tuple[DeflateCase, ...] = (
    DeflateCase("pmd_text_echo", offer=DeflateOffer(), rfc="RFC 7692 §7.2.2, RFC 6455 "
                "§5.5.2", quote=Q_DECOMPRESS, messages=((Opcode.TEXT, _TEXT),), **_ECHO),
    DeflateCase("pmd_binary_echo", offer=DeflateOffer(client_max_window_bits=True),
                rfc="RFC 7692 §7.2.2", quote=Q_DECOMPRESS,
                messages=((Opcode.BINARY, _BINARY),), **_ECHO),
    DeflateCase("pmd_fragmented_echo", offer=DeflateOffer(), rfc="RFC 7692 §6.1",
                quote=Q_DECOMPRESS, messages=((Opcode.TEXT, _TEXT),), fragments=3, **_ECHO),
    DeflateCase("pmd_context_takeover", offer=DeflateOffer(), rfc="RFC 7692 §7.2.1",
                quote=Q_NO_TAKEOVER, messages=((Opcode.TEXT, _TEXT),) * 3, **_ECHO),
    DeflateCase("pmd_no_context_takeover",
                offer=DeflateOffer(server_no_context_takeover=True,
                                   client_no_context_takeover=True),
                rfc="RFC 7692 §7.2.1", quote=Q_NO_TAKEOVER,
                messages=((Opcode.TEXT, _TEXT),) * 3, **_ECHO),
    DeflateCase("pmd_server_window_10", offer=DeflateOffer(server_max_window_bits=10),
                rfc="RFC 7692 §7.1.2.1", quote=Q_WINDOW,
                messages=((Opcode.BINARY, _FAR),), **_ECHO),
    DeflateCase("pmd_rsv1_continuation", offer=DeflateOffer(), bend=Bend.RSV1_CONTINUATION,
                messages=((Opcode.TEXT, _CONT),), fragments=2, bad_payload=_CONT, **_FAIL),
    DeflateCase("pmd_rsv1_ping", offer=DeflateOffer(), bend=Bend.RSV1_PING,
                bad_payload=_PING, **_FAIL),
    DeflateCase("pmd_invalid_deflate", kind=DeflateKind.BAD_DATA, offer=DeflateOffer(),
                rfc="RFC 7692 §7.2.2", quote=Q_DECOMPRESS, requirement=Requirement.SHOULD,
                severity=Severity.LOW, bend=Bend.BAD_DEFLATE),
    DeflateCase("pmd_bomb", kind=DeflateKind.BOMB, offer=DeflateOffer(), rfc="RFC 6455 §10.4",
                quote=Q_SIZE, requirement=Requirement.SHOULD, severity=Severity.MED,
                bend=Bend.BOMB),
)
BY_NAME = {case.name: case for case in CASES}
#: The canary Ping's rule, quoted for echo cases whose only miss is the Pong.
PING_QUOTE = Q_PING


def build_frames(case: DeflateCase, params: DeflateParams) -> tuple[Frame, ...]:
    """The case's frames under what the server agreed (our window and context)."""
    if case.bend is Bend.RSV1_PING:
        return (Frame(Opcode.PING, _PING, rsv=RSV1),)
    if case.bend is Bend.BAD_DEFLATE:
        return (Frame(Opcode.TEXT, _INVALID, rsv=RSV1),)
    if case.bend is Bend.BOMB:
        return (Frame(Opcode.BINARY, zeros_bomb(BOMB_BYTES), rsv=RSV1),)
    deflater = Deflater(params.client_max_window_bits, params.client_no_context_takeover)
    frames: list[Frame] = []
    for opcode, message in case.messages:
        frames.extend(_fragment(opcode, deflater.compress(message), case.fragments))
    if case.bend is Bend.RSV1_CONTINUATION:
        frames[-1] = Frame(Opcode.CONTINUATION, frames[-1].payload, fin=True, rsv=RSV1)
    return tuple(frames)


def _fragment(opcode: int, payload: bytes, count: int) -> list[Frame]:
    """Split one compressed payload over ``count`` frames; RSV1 on the first only."""
    step = max(1, -(-len(payload) // count))
    pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
    while len(pieces) < count:
        pieces.append(b"")
    last = len(pieces) - 1
    return [
        Frame(opcode if i == 0 else Opcode.CONTINUATION, piece, fin=i == last,
              rsv=RSV1 if i == 0 else 0)
        for i, piece in enumerate(pieces)
    ]


def plain_bomb_frame() -> Frame:
    """The bomb's size as one uncompressed message: does the server refuse that?"""
    return Frame(Opcode.BINARY, bytes(BOMB_BYTES))
