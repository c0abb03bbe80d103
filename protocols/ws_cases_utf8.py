"""WebSocket catalogue: UTF-8 validation of text messages (RFC 6455 §5.6, §8.1).

Why these: a text message that is not valid UTF-8 MUST fail the connection (§8.1), and a
server usually validates incrementally, fragment by fragment, carrying a partial code point
across frame boundaries. So every class of invalid sequence (stray continuation bytes,
truncated sequences, overlong forms, UTF-16 surrogates, code points past U+10FFFF, bytes
that never occur) is sent at the start, middle and end of a single frame and in the first,
last and across fragments of a split message; the valid edges of each sequence length must
pass, whole and split at every byte. Failing early ("fail-fast", before the message ends) is
allowed but never required: a fail-fast case always sends the rest of the message, so a
server that validates only at the end is judged the same.
"""

from __future__ import annotations

from protocols import websocket_quotes as q
from protocols.websocket_case_model import WsCase
from protocols.websocket_frames import CloseCode, Frame, Opcode
from protocols.ws_case_kit import echo_case, fail_case

C = Opcode.CONTINUATION
#: The close code §7.4.1 names for "non-UTF-8 [RFC3629] data within a text message".
_UTF8_CODES = frozenset({CloseCode.INVALID_PAYLOAD})

#: Invalid sequences, one per class (RFC 3629 §3/§4 define what is well-formed).
INVALID_SEQUENCES: tuple[tuple[str, bytes], ...] = (
    ("continuation_80", b"\x80"),
    ("continuation_bf", b"\xbf"),
    ("continuation_run", b"\x80\x81\x82\x83"),
    ("truncated_2_byte", b"\xc3"),
    ("truncated_3_byte_after_1", b"\xe2"),
    ("truncated_3_byte_after_2", b"\xe2\x82"),
    ("truncated_4_byte_after_3", b"\xf0\x9f\x98"),
    ("lead_then_lead", b"\xc3\xc3"),
    ("lead_then_ascii", b"\xe2\x28\xa1"),
    ("overlong_2_byte_c0", b"\xc0\xaf"),
    ("overlong_2_byte_c1", b"\xc1\xbf"),
    ("overlong_3_byte", b"\xe0\x80\xaf"),
    ("overlong_3_byte_max", b"\xe0\x9f\xbf"),
    ("overlong_4_byte", b"\xf0\x80\x80\xaf"),
    ("overlong_4_byte_max", b"\xf0\x8f\xbf\xbf"),
    ("overlong_nul", b"\xc0\x80"),
    ("surrogate_high", b"\xed\xa0\x80"),
    ("surrogate_low", b"\xed\xbf\xbf"),
    ("surrogate_pair", b"\xed\xa0\x80\xed\xb0\x80"),
    ("beyond_10ffff", b"\xf4\x90\x80\x80"),
    ("lead_f5", b"\xf5\x80\x80\x80"),
    ("five_byte_form", b"\xf8\x88\x80\x80\x80"),
    ("six_byte_form", b"\xfc\x84\x80\x80\x80\x80"),
    ("byte_fe", b"\xfe"),
    ("byte_ff", b"\xff"),
)

#: Code points at each edge of the UTF-8 sequence lengths and around the surrogate gap.
VALID_CODE_POINTS = (0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
                     0x10000, 0x1F600, 0x10FFFF)


def _fail(name: str, frames: tuple[Frame, ...], bad: bytes) -> WsCase:
    return fail_case(f"utf8_{name}", frames, "RFC 6455 §8.1", q.Q_UTF8, codes=_UTF8_CODES,
                     bad_payload=bad)


def _invalid_cases() -> list[WsCase]:
    cases = []
    for label, seq in INVALID_SEQUENCES:
        head, tail = f"assay-{label}-".encode(), b"-tail"
        for where, payload in (("start", seq + tail), ("middle", head + seq + tail),
                               ("end", head + seq)):
            cases.append(_fail(f"{label}_{where}", (Frame(Opcode.TEXT, payload),), payload))
        whole = head + seq + tail
        cases.append(_fail(f"{label}_first_fragment",
                           (Frame(Opcode.TEXT, head + seq, fin=False), Frame(C, tail)), whole))
        cases.append(_fail(f"{label}_last_fragment",
                           (Frame(Opcode.TEXT, head, fin=False), Frame(C, seq + tail)), whole))
        if len(seq) > 1:
            cases.append(_fail(
                f"{label}_split",
                (Frame(Opcode.TEXT, head + seq[:1], fin=False), Frame(C, seq[1:] + tail)),
                whole,
            ))
    return cases


def _fail_fast_cases() -> list[WsCase]:
    """The invalid bytes come first and many valid fragments follow: a server may fail at
    once or at the end; the rest of the message is always sent, so both are judged alike."""
    cases = []
    for label, seq in (("surrogate_high", b"\xed\xa0\x80"), ("byte_ff", b"\xff"),
                       ("beyond_10ffff", b"\xf4\x90\x80\x80"), ("overlong_2_byte_c0", b"\xc0\xaf")):
        rest = tuple(Frame(C, b"assay-valid-%02d" % i, fin=False) for i in range(8))
        frames = (Frame(Opcode.TEXT, b"assay-" + seq, fin=False), *rest, Frame(C, b"-end"))
        cases.append(_fail(f"fail_fast_{label}", frames, b"assay-" + seq))
    # The first fragment is valid but ends in the middle of a code point that the next
    # fragment cannot complete.
    cases.append(_fail(
        "fail_fast_bad_continuation_next_fragment",
        (Frame(Opcode.TEXT, b"assay-\xe2\x82", fin=False), Frame(C, b"A-rest", fin=False),
         Frame(C, b"-end")),
        b"assay-\xe2\x82A",
    ))
    # Invalid UTF-8 inside a message that carries a Ping between its fragments.
    cases.append(_fail(
        "invalid_after_ping_between_fragments",
        (Frame(Opcode.TEXT, b"assay-ok-", fin=False), Frame(Opcode.PING, b"assay-mid"),
         Frame(C, b"\xed\xa0\x80-end")),
        b"assay-ok-\xed\xa0\x80",
    ))
    return cases


def _valid_cases() -> list[WsCase]:
    cases = []
    for cp in VALID_CODE_POINTS:
        encoded = chr(cp).encode()
        payload = b"assay-" + encoded + b"-ok"
        cases.append(echo_case(f"utf8_valid_u{cp:04x}", (Frame(Opcode.TEXT, payload),),
                               "RFC 6455 §5.6", q.Q_TEXT))
        for cut in range(1, len(encoded)):
            at = len(b"assay-") + cut
            cases.append(echo_case(
                f"utf8_valid_u{cp:04x}_split_{cut}",
                (Frame(Opcode.TEXT, payload[:at], fin=False), Frame(C, payload[at:])),
                "RFC 6455 §5.6", f"{q.Q_TEXT} [§5.4] {q.Q_FRAGMENT}",
            ))
    mixed = "assay κόσμε \u2603 \U0001f600 \U0010ffff".encode()
    cases.append(echo_case("utf8_valid_mixed", (Frame(Opcode.TEXT, mixed),),
                           "RFC 6455 §5.6", q.Q_TEXT))
    cases.append(echo_case(
        "utf8_valid_mixed_1_byte_fragments",
        (Frame(Opcode.TEXT, mixed[:1], fin=False),
         *(Frame(C, mixed[i : i + 1], fin=False) for i in range(1, len(mixed) - 1)),
         Frame(C, mixed[-1:])),
        "RFC 6455 §5.6", f"{q.Q_TEXT} [§5.4] {q.Q_FRAGMENT}",
    ))
    cases.append(echo_case("utf8_valid_nul", (Frame(Opcode.TEXT, b"assay-\x00-nul"),),
                           "RFC 6455 §5.6", q.Q_TEXT))
    # Binary messages are not UTF-8: invalid sequences in them MUST pass.
    cases.append(echo_case("binary_with_invalid_utf8",
                           (Frame(Opcode.BINARY, b"assay-\xed\xa0\x80\xff\xc0\xaf"),),
                           "RFC 6455 §5.6", q.Q_BINARY))
    return cases


CASES: tuple[WsCase, ...] = (*_invalid_cases(), *_fail_fast_cases(), *_valid_cases())
