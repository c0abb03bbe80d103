"""WebSocket catalogue: frame-level boundaries (lengths, empty payloads, RSV bits, opcodes,
masking).

Why these: a frame header has three length encodings (RFC 6455 §5.2) and each edge between
them (125/126, 65535/65536) is where a parser miscounts; an empty payload is the edge a
server may drop (daphne does: no echo, connection alive); reserved bits and opcodes MUST
fail the connection on every frame type, not only on text. Everything is data; grading
comes from ``protocols.ws_case_kit``.
"""

from __future__ import annotations

from dataclasses import replace

from protocols import websocket_quotes as q
from protocols.websocket_case_model import WsCase
from protocols.websocket_frames import (
    RESERVED_CONTROL_OPCODES,
    RESERVED_DATA_OPCODES,
    Frame,
    LengthWidth,
    Opcode,
    close_payload,
)
from protocols.ws_case_kit import ANY_CLOSE, echo_case, fail_case, ping_case

#: Payload lengths on both sides of each encoding edge (7-bit, 16-bit, 64-bit fields).
ECHO_LENGTHS = (0, 1, 2, 124, 125, 126, 127, 128, 65535, 65536)
#: (length, forced width) pairs the sender encoded with more bytes than needed.
NON_MINIMAL = ((0, LengthWidth.MEDIUM), (5, LengthWidth.MEDIUM), (125, LengthWidth.MEDIUM),
               (5, LengthWidth.LONG), (126, LengthWidth.LONG), (65535, LengthWidth.LONG))


def _payload(length: int, seed: str) -> bytes:
    """``length`` printable ASCII bytes that start with a marker (valid UTF-8 text too)."""
    marker = f"assay-{seed}-".encode()
    body = (marker + b"abcdefghijklmnopqrstuvwxyz0123456789" * (length // 36 + 1))
    return body[:length]


def _length_cases() -> list[WsCase]:
    cases = []
    for opcode, label, quote in ((Opcode.TEXT, "text", q.Q_TEXT),
                                 (Opcode.BINARY, "binary", q.Q_BINARY)):
        for length in ECHO_LENGTHS:
            cases.append(echo_case(
                f"echo_{label}_len_{length}",
                (Frame(opcode, _payload(length, f"{label}{length}")),),
                "RFC 6455 §5.2", f"{q.Q_LENGTH} [§5.6] {quote}",
            ))
    cases.append(echo_case(
        "echo_binary_all_byte_values",
        (Frame(Opcode.BINARY, bytes(range(256))),),
        "RFC 6455 §5.6", q.Q_BINARY,
    ))
    for length, width in NON_MINIMAL:
        # The minimal-length MUST binds the sender; a receiver may take or fail the frame.
        cases.append(echo_case(
            f"echo_non_minimal_len_{length}_{width.value}bit",
            (Frame(Opcode.BINARY, _payload(length, f"nm{length}"), width=width),),
            "RFC 6455 §5.2", f"{q.Q_MINIMAL_LENGTH} [§5.2] {q.Q_LENGTH}", may_fail=True,
        ))
    return cases


def _ping_cases() -> list[WsCase]:
    cases = [
        ping_case(f"ping_len_{n}", (Frame(Opcode.PING, _payload(n, f"p{n}")),),
                  "RFC 6455 §5.5.2", q.Q_PING)
        for n in (0, 1, 124, 125)
    ]
    cases += [
        ping_case("ping_binary_payload", (Frame(Opcode.PING, bytes(range(0x80, 0xFD))),),
                  "RFC 6455 §5.5.2", q.Q_PING),
        ping_case("ping_invalid_utf8_payload", (Frame(Opcode.PING, b"assay-\xff\xfe\xc0"),),
                  "RFC 6455 §5.5.2", "A Ping frame MAY include \"Application data\"."),
        ping_case("ping_three_distinct",
                  tuple(Frame(Opcode.PING, f"assay-three-{i}".encode()) for i in range(3)),
                  "RFC 6455 §5.5.3", q.Q_PING),
    ]
    for n in (0, 1, 125):
        cases.append(ping_case(
            f"unsolicited_pong_len_{n}",
            (Frame(Opcode.PONG, _payload(n, f"u{n}")), Frame(Opcode.PING, b"assay-after-pong")),
            "RFC 6455 §5.5.3", q.Q_PONG_UNSOLICITED,
        ))
    cases.append(ping_case(
        "unsolicited_pong_burst",
        (*(Frame(Opcode.PONG, f"assay-beat-{i}".encode()) for i in range(8)),
         Frame(Opcode.PING, b"assay-after-pongs")),
        "RFC 6455 §5.5.3", q.Q_PONG_UNSOLICITED,
    ))
    cases.append(ping_case(
        "unsolicited_pong_binary",
        (Frame(Opcode.PONG, b"\x00\xff\xfe\x80"), Frame(Opcode.PING, b"assay-after-bin-pong")),
        "RFC 6455 §5.5.3", q.Q_PONG_UNSOLICITED,
    ))
    for opcode, label in ((Opcode.PONG, "pong"), (Opcode.CLOSE, "close")):
        big = _payload(126, f"big-{label}")
        cases.append(fail_case(f"{label}_payload_126", (Frame(opcode, big),), "RFC 6455 §5.5",
                               q.Q_CONTROL, bad_payload=big))
    huge = _payload(65536, "huge-ping")
    cases.append(fail_case("ping_payload_65536", (Frame(Opcode.PING, huge),), "RFC 6455 §5.5",
                           q.Q_CONTROL))
    wide = ping_case("ping_non_minimal_16bit",
                     (Frame(Opcode.PING, _payload(5, "wide"), width=LengthWidth.MEDIUM),),
                     "RFC 6455 §5.2", f"{q.Q_MINIMAL_LENGTH} [§5.5.2] {q.Q_PING}")
    # A receiver may take the non-minimal Ping (answer it) or fail the frame: both pass.
    cases.append(replace(wide, allowed=wide.allowed | ANY_CLOSE, tolerated=frozenset()))
    return cases


_FRAME_TYPES = (
    ("text", Opcode.TEXT, b"assay-%s-text"),
    ("binary", Opcode.BINARY, b"assay-%s-binary"),
    ("ping", Opcode.PING, b"assay-%s-ping"),
    ("pong", Opcode.PONG, b"assay-%s-pong"),
)


def _rsv_cases() -> list[WsCase]:
    cases = []
    for rsv, label in ((4, "rsv1"), (2, "rsv2"), (1, "rsv3"), (6, "rsv12"), (3, "rsv23")):
        for kind, opcode, template in _FRAME_TYPES:
            if (kind == "text" and label in ("rsv1", "rsv2", "rsv3")) or label + kind == "rsv1ping":
                continue  # already in protocols.websocket_cases
            payload = template % label.encode()
            cases.append(fail_case(f"{label}_{kind}", (Frame(opcode, payload, rsv=rsv),),
                                   "RFC 6455 §5.2", q.Q_RSV, bad_payload=payload))
        close = close_payload(1000, f"assay-{label}-close".encode())
        cases.append(fail_case(f"{label}_close", (Frame(Opcode.CLOSE, close, rsv=rsv),),
                               "RFC 6455 §5.2", q.Q_RSV))
        first = f"assay-{label}-first-".encode()
        cases.append(fail_case(
            f"{label}_continuation",
            (Frame(Opcode.TEXT, first, fin=False),
             Frame(Opcode.CONTINUATION, b"assay-rsv-cont", rsv=rsv)),
            "RFC 6455 §5.2", q.Q_RSV, bad_payload=first + b"assay-rsv-cont",
        ))
        cases.append(fail_case(f"{label}_empty_text", (Frame(Opcode.TEXT, b"", rsv=rsv),),
                               "RFC 6455 §5.2", q.Q_RSV))
    return cases


def _opcode_cases() -> list[WsCase]:
    cases = []
    for opcode in (*RESERVED_DATA_OPCODES, *RESERVED_CONTROL_OPCODES):
        cases.append(fail_case(f"reserved_opcode_{opcode:x}_empty", (Frame(opcode, b""),),
                               "RFC 6455 §5.2", q.Q_OPCODE))
        # The reserved opcode opens a fragmented message and the rest of it is sent: §5.2
        # sets no moment for failing, and a server that checks the opcode when the message
        # is complete (tornado 6 does) would otherwise wait forever for a final fragment we
        # never send and be graded as carrying on (same design as the UTF-8 fail-fast cases).
        payload = f"assay-op{opcode:x}-first-".encode()
        cases.append(fail_case(f"reserved_opcode_{opcode:x}_fragmented",
                               (Frame(opcode, payload, fin=False),
                                Frame(Opcode.CONTINUATION, b"assay-op-end")),
                               "RFC 6455 §5.2", q.Q_OPCODE, bad_payload=payload))
        first = f"assay-op{opcode:x}-mid-".encode()
        cases.append(fail_case(
            f"reserved_opcode_{opcode:x}_inside_message",
            (Frame(Opcode.TEXT, first, fin=False), Frame(opcode, b"assay-reserved"),
             Frame(Opcode.CONTINUATION, b"assay-end")),
            "RFC 6455 §5.2", q.Q_OPCODE, bad_payload=first + b"assay-end",
        ))
    return cases


def _unmasked_cases() -> list[WsCase]:
    cases = []
    for kind, opcode, template in (_FRAME_TYPES[1], _FRAME_TYPES[3],
                                   ("empty_text", Opcode.TEXT, b"")):
        payload = template % b"unmasked" if template else b""
        cases.append(fail_case(f"unmasked_{kind}_frame", (Frame(opcode, payload, masked=False),),
                               "RFC 6455 §5.1", q.Q_UNMASKED, bad_payload=payload))
    cases.append(fail_case(
        "unmasked_close",
        (Frame(Opcode.CLOSE, close_payload(1000, b"assay-unmasked-close"), masked=False),),
        "RFC 6455 §5.1", q.Q_UNMASKED,
    ))
    cases.append(fail_case(
        "unmasked_continuation",
        (Frame(Opcode.TEXT, b"assay-masked-start-", fin=False),
         Frame(Opcode.CONTINUATION, b"assay-unmasked-end", masked=False)),
        "RFC 6455 §5.1", q.Q_UNMASKED, bad_payload=b"assay-unmasked-end",
    ))
    return cases


CASES: tuple[WsCase, ...] = (
    *_length_cases(),
    *_ping_cases(),
    *_rsv_cases(),
    *_opcode_cases(),
    *_unmasked_cases(),
)
