"""WebSocket catalogue: the closing handshake and the Close frame's structure (RFC 6455 §5.5.1,
§7.4).

Why these: every valid Close MUST be answered with a Close (§5.5.1), whatever code class it
carries (defined, IANA-registered, 3000-4999), whatever valid reason, and whatever the
client sends after it (§1.4: the receiver discards it) or while a message is still open
(§5.4: control frames may come between fragments). A Close whose body breaks §5.5.1 (a
1-byte body, a code not defined in §7.4, a reason that is not UTF-8, a body over 125 bytes)
must fail the connection; what the server MUST NOT do is repeat the bad code or reason in
its own Close (the oracle grades that as the server's own MUST miss, ``CLOSED_UNDEFINED``
or ``CLOSED_BAD``).
"""

from __future__ import annotations

from dataclasses import replace

from protocols import websocket_quotes as q
from protocols.websocket_case_model import WsCase
from protocols.websocket_frames import (
    IANA_REGISTERED_CODES,
    CloseCode,
    Frame,
    Opcode,
    close_payload,
)
from protocols.ws_case_kit import FAILED, bad_close_case, client_close_case

#: Codes a client may send (§7.4.1 defined, IANA-registered 1012-1014, §7.4.2 3000-4999).
VALID_CLIENT_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                      3000, 3999, 4000, 4999)
#: Undefined codes beyond those of ``protocols.websocket_cases.INVALID_CLOSE_CODES``.
MORE_UNDEFINED_CODES = (1, 100, 500, 1017, 1999, 2500, 5001, 9999, 32768, 65534)
#: Invalid UTF-8 put into Close reasons, one per failure class.
_BAD_REASON_BYTES = (("surrogate", b"\xed\xa0\x80"), ("byte_ff", b"\xff"),
                     ("overlong", b"\xc0\xaf"), ("continuation", b"\x80"),
                     ("beyond_10ffff", b"\xf4\x90\x80\x80"))
_UTF8_OR_PROTOCOL = frozenset({CloseCode.INVALID_PAYLOAD, CloseCode.PROTOCOL_ERROR})
_NORMAL = frozenset({CloseCode.NORMAL})


def _close(code: int | None, reason: bytes = b"") -> Frame:
    return Frame(Opcode.CLOSE, close_payload(code, reason))


def _valid_close_cases() -> list[WsCase]:
    cases = [
        client_close_case(
            f"close_valid_code_{code}", (_close(code, b"assay-bye"),), "RFC 6455 §7.4",
            f"{q.Q_CODE_RANGES} [§5.5.1] {q.Q_CLOSE_ECHO}", frozenset({code, 1000}),
        )
        for code in VALID_CLIENT_CODES
    ]
    # 1012-1014 were registered with IANA after RFC 6455; an endpoint that knows only the
    # RFC sees an undefined code in 1000-2999 and may fail the connection (FIN/RST) too.
    cases = [replace(c, allowed=c.allowed | FAILED, tolerated=c.tolerated - FAILED)
             if int(c.name.rsplit("_", 1)[1]) in IANA_REGISTERED_CODES else c for c in cases]
    cases += [
        client_close_case("close_empty_body", (_close(None),), "RFC 6455 §5.5.1",
                          q.Q_CLOSE_REPLY, _NORMAL),
        client_close_case("close_code_without_reason", (_close(1000),), "RFC 6455 §5.5.1",
                          q.Q_CLOSE_BODY, _NORMAL),
        client_close_case("close_reason_123_bytes",
                          (_close(1000, (b"assay-123-" + b"r" * 123)[:123]),),
                          "RFC 6455 §5.5", q.Q_CONTROL, _NORMAL),
        client_close_case("close_reason_4_byte_utf8",
                          (_close(1000, "assay \U0001f600 \U0010ffff".encode()),),
                          "RFC 6455 §5.5.1", q.Q_CLOSE_REASON, _NORMAL),
        client_close_case("close_reason_multibyte_at_125",
                          (_close(1000, (b"assay-" + b"x" * 113) + "\U0001f600".encode()),),
                          "RFC 6455 §5.5.1", q.Q_CLOSE_REASON, _NORMAL),
    ]
    after = (
        ("text", Frame(Opcode.TEXT, b"assay-after-close")),
        ("binary", Frame(Opcode.BINARY, b"assay-after-close-bin")),
        ("ping", Frame(Opcode.PING, b"assay-after-close-ping")),
        ("close", _close(1000, b"assay-second-close")),
        ("fragment", Frame(Opcode.TEXT, b"assay-after-close-frag", fin=False)),
        ("reserved_opcode", Frame(0x3, b"assay-after-close-op3")),
    )
    for label, frame in after:
        cases.append(client_close_case(
            f"close_then_{label}", (_close(1000, b"assay-bye"), frame), "RFC 6455 §1.4",
            q.Q_CLOSE_DISCARD, _NORMAL,
        ))
    for opcode, label in ((Opcode.TEXT, "text"), (Opcode.BINARY, "binary")):
        cases.append(client_close_case(
            f"close_inside_fragmented_{label}",
            (Frame(opcode, b"assay-unfinished-", fin=False), _close(1000, b"assay-bye")),
            "RFC 6455 §5.4", q.Q_CONTROL_MIDDLE, _NORMAL,
        ))
    cases.append(client_close_case(
        "close_after_ping", (Frame(Opcode.PING, b"assay-before-close"), _close(1000)),
        "RFC 6455 §5.5.1", q.Q_CLOSE_REPLY, _NORMAL,
    ))
    cases.append(client_close_case(
        "close_after_echo", (Frame(Opcode.TEXT, b"assay-before-close"), _close(1000)),
        "RFC 6455 §5.5.1", q.Q_CLOSE_REPLY, _NORMAL,
    ))
    return cases


def _bad_close_cases() -> list[WsCase]:
    cases = [
        bad_close_case(f"close_code_{code}", close_payload(code, b"assay"), "RFC 6455 §5.5.1",
                       f"{q.Q_CLOSE_BODY} [§7.4.2] {q.Q_CODE_RANGES}")
        for code in MORE_UNDEFINED_CODES
    ]
    for code in (0, 1005, 2999, 65535):
        cases.append(bad_close_case(f"close_code_{code}_no_reason", close_payload(code),
                                    "RFC 6455 §5.5.1", q.Q_CLOSE_BODY))
    cases.append(bad_close_case("close_body_1_byte", b"\x03", "RFC 6455 §5.5.1",
                                q.Q_CLOSE_BODY))
    cases.append(bad_close_case("close_body_1_byte_zero", b"\x00", "RFC 6455 §5.5.1",
                                q.Q_CLOSE_BODY))
    cases.append(bad_close_case(
        "close_reason_124_bytes", close_payload(1000, (b"assay-124-" + b"r" * 124)[:124]),
        "RFC 6455 §5.5", q.Q_CONTROL,
    ))
    for label, bad in _BAD_REASON_BYTES:
        for where, reason in (("start", bad + b"-assay"), ("middle", b"assay-" + bad + b"-x"),
                              ("end", b"assay-reason-" + bad)):
            cases.append(bad_close_case(
                f"close_reason_{label}_{where}", close_payload(1000, reason), "RFC 6455 §8.1",
                q.Q_UTF8, codes=_UTF8_OR_PROTOCOL,
            ))
    cases.append(bad_close_case(
        "close_reason_truncated_at_125",
        close_payload(1000, b"assay-" + b"t" * 114 + b"\xf0\x9f\x98"),
        "RFC 6455 §8.1", q.Q_UTF8, codes=_UTF8_OR_PROTOCOL,
    ))
    return cases


CASES: tuple[WsCase, ...] = (*_valid_close_cases(), *_bad_close_cases())
