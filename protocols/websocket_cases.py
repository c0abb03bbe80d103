"""The WebSocket torture catalogue: what a client sends, and what RFC 6455 lets a server do.

How this works: every case is a frozen ``WsCase`` (or ``HandshakeCase``) with the frames to
send, the reactions that pass (``allowed``), the reactions that are only a SHOULD/MAY
deviation (``tolerated``, reported as lenient), the RFC section and the sentence it rests on.
Whatever is in neither set violates ``requirement``. The walker sends, the oracle
(``protocols.websocket_oracle``) observes one ``WsReaction``, and the verdict follows from
this table alone. Mask keys are not data: the walker draws them per frame from its PRNG.

"Fail the WebSocket Connection" (RFC 6455 §7.1.7) means: close the TCP connection, after
sending a Close frame with an appropriate code if possible. So a Close frame with the code
the RFC names passes, a plain FIN or RST passes too, and a Close with some other valid code
passes leniently (the code is a SHOULD). What fails is carrying on (an echo of the bad
payload, or an answer to a Ping sent after the bad frame while the socket stays open) and
hanging (no Close, no TCP close, no answer by the deadline).

The RFC sentences live in ``protocols.websocket_quotes``, the case record and reaction
vocabulary in ``protocols.websocket_case_model``, malformed opening handshakes in
``protocols.websocket_handshake_cases`` (all re-exported here, with ``BY_NAME`` over both).

``severity`` grades a miss of the case's own requirement, the sentence quoted with it: HIGH
where missing it lets a violation carry on or leaves a connection hanging after one, MED for
a MUST missed without that weight (e.g. a refusal without the header the RFC asks for, a Ping
left unanswered), LOW for a SHOULD. Each judgement's own weight is its counter's
(``websocket_oracle.COUNTER_SEVERITY``): accepting a bad frame or handshake is HIGH in any
case. Changes and their reasons: docs/severity-calibration.md.
"""

from __future__ import annotations

from protocols import websocket_quotes as q
from protocols import ws_cases_close, ws_cases_fragments, ws_cases_framing, ws_cases_utf8
from protocols.outcome import Requirement, Severity
from protocols.websocket_case_model import CaseKind, WsCase, WsReaction
from protocols.websocket_frames import (
    RESERVED_CONTROL_OPCODES,
    RESERVED_DATA_OPCODES,
    CloseCode,
    Frame,
    Opcode,
    close_payload,
)
from protocols.websocket_handshake_cases import HANDSHAKE_CASES, HandshakeCase
from protocols.ws_case_kit import ANY_CLOSE, FAILED, ODD_CLOSE, fail_case

# The reaction sets and the must-fail constructor are the kit's, shared with the grown
# catalogue modules (one reading of §7.1.7 and §7.4.1 for all of them).
_FAILED, _ODD_CLOSE, _ANY_CLOSE, _fail_case = FAILED, ODD_CLOSE, ANY_CLOSE, fail_case


# Invalid UTF-8 from the Autobahn "6.x UTF-8 handling" family: κόσμε, then a surrogate.
_KOSME = "κόσμε".encode()
_SURROGATE = b"\xed\xa0\x80"
_OUT_OF_RANGE = b"\xf4\x90\x80\x80"  # U+110000: beyond the Unicode range


def _bad_frame_cases() -> list[WsCase]:
    cases = [
        _fail_case(
            "unmasked_text",
            (Frame(Opcode.TEXT, b"assay-unmasked", masked=False),),
            "RFC 6455 §5.1",
            q.Q_UNMASKED,
            bad_payload=b"assay-unmasked",
        ),
        _fail_case(
            "unmasked_ping",
            (Frame(Opcode.PING, b"assay-unmasked-ping", masked=False),),
            "RFC 6455 §5.1",
            q.Q_UNMASKED,
            bad_payload=b"assay-unmasked-ping",
        ),
    ]
    for rsv, label in ((4, "rsv1"), (2, "rsv2"), (1, "rsv3"), (7, "rsv123")):
        payload = f"assay-{label}".encode()
        cases.append(
            _fail_case(
                f"{label}_text",
                (Frame(Opcode.TEXT, payload, rsv=rsv),),
                "RFC 6455 §5.2",
                q.Q_RSV,
                bad_payload=payload,
            )
        )
    cases.append(
        _fail_case(
            "rsv1_ping",
            (Frame(Opcode.PING, b"assay-rsv1-ping", rsv=4),),
            "RFC 6455 §5.2",
            q.Q_RSV,
            bad_payload=b"assay-rsv1-ping",
        )
    )
    for opcode in (*RESERVED_DATA_OPCODES, *RESERVED_CONTROL_OPCODES):
        payload = f"assay-opcode-{opcode:x}".encode()
        cases.append(
            _fail_case(
                f"reserved_opcode_{opcode:x}",
                (Frame(opcode, payload),),
                "RFC 6455 §5.2",
                q.Q_OPCODE,
                bad_payload=payload,
            )
        )
    big = b"assay-big-ping-" + b"x" * (126 - 15)
    cases += [
        _fail_case(
            "ping_payload_126",
            (Frame(Opcode.PING, big),),
            "RFC 6455 §5.5",
            q.Q_CONTROL,
            bad_payload=big,
        ),
        _fail_case(
            "fragmented_ping",
            (
                Frame(Opcode.PING, b"assay-frag", fin=False),
                Frame(Opcode.CONTINUATION, b"mented-ping"),
            ),
            "RFC 6455 §5.5",
            q.Q_CONTROL,
            bad_payload=b"assay-frag",
        ),
        _fail_case(
            "continuation_without_start",
            (Frame(Opcode.CONTINUATION, b"assay-orphan-continuation"),),
            "RFC 6455 §5.4",
            q.Q_FRAGMENT,
            bad_payload=b"assay-orphan-continuation",
        ),
        _fail_case(
            "data_inside_fragmented_message",
            (
                Frame(Opcode.TEXT, b"assay-start-", fin=False),
                Frame(Opcode.TEXT, b"assay-interleaved"),
            ),
            "RFC 6455 §5.4",
            q.Q_INTERLEAVE,
            bad_payload=b"assay-interleaved",
        ),
        _fail_case(
            "invalid_utf8_text",
            (Frame(Opcode.TEXT, _KOSME + _SURROGATE + b"edited"),),
            "RFC 6455 §8.1",
            q.Q_UTF8,
            codes=frozenset({CloseCode.INVALID_PAYLOAD}),
            bad_payload=_SURROGATE,
        ),
        _fail_case(
            "invalid_utf8_fragmented",
            (
                Frame(Opcode.TEXT, _KOSME, fin=False),
                Frame(Opcode.CONTINUATION, _OUT_OF_RANGE, fin=False),
                Frame(Opcode.CONTINUATION, b"edited"),
            ),
            "RFC 6455 §8.1",
            q.Q_UTF8,
            codes=frozenset({CloseCode.INVALID_PAYLOAD}),
            bad_payload=_OUT_OF_RANGE,
        ),
    ]
    return cases


def _length_cases() -> list[WsCase]:
    common = dict(
        kind=CaseKind.BAD_LENGTH,
        allowed=_ANY_CLOSE,
        # A server without a size limit legitimately waits for the rest of the payload.
        tolerated=frozenset({WsReaction.HANG}),
        requirement=Requirement.SHOULD,
        severity=Severity.LOW,
    )
    return [
        WsCase(
            name="declared_length_2_53",
            frames=(Frame(Opcode.BINARY, b"assay-huge", declared_length=1 << 53),),
            rfc="RFC 6455 §10.4",
            quote=q.Q_SIZE,
            codes=frozenset({CloseCode.MESSAGE_TOO_BIG}),
            **common,
        ),
        WsCase(
            name="declared_length_msb_set",
            frames=(Frame(Opcode.BINARY, b"assay-msb", declared_length=(1 << 63) | 10),),
            rfc="RFC 6455 §5.2",
            quote=q.Q_MSB,
            codes=frozenset({CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_BIG}),
            **common,
        ),
    ]


#: Close codes no endpoint may send or must treat as a protocol error, per RFC 6455 §7.4:
#: 0/999 ("0-999 are not used"), 1004 ("Reserved"), 1005/1006/1015 ("MUST NOT be set"),
#: unassigned protocol codes (1016-2999; 1012-1014 are IANA-registered and valid) and
#: codes beyond the defined ranges.
INVALID_CLOSE_CODES = (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)


def _close_cases() -> list[WsCase]:
    cases = []
    for code in INVALID_CLOSE_CODES:
        forbidden = code in (1005, 1006, 1015)
        cases.append(
            WsCase(
                name=f"close_code_{code}",
                kind=CaseKind.BAD_CLOSE,
                frames=(Frame(Opcode.CLOSE, close_payload(code, b"assay")),),
                allowed=_FAILED,
                # The client's body breaks §5.5.1 (an undefined code) or §7.4.1 (1005/1006/
                # 1015): failing the connection passes. Echoing the code back is the server's
                # own miss of the same rule (CLOSED_UNDEFINED / CLOSED_BAD, a violation).
                tolerated=_ODD_CLOSE,
                rfc="RFC 6455 §7.4.1" if forbidden else "RFC 6455 §5.5.1",
                quote=(
                    f"{code} is a reserved value and MUST NOT be set as a status code in a "
                    "Close control frame by an endpoint."
                    if forbidden
                    else f"{q.Q_CLOSE_BODY} [§7.4.2] {q.Q_CODE_RANGES}"
                )
                + " [§5.5.1] "
                + q.Q_CLOSE_REPLY,
                requirement=Requirement.MUST,
                severity=Severity.HIGH,
                codes=frozenset({CloseCode.PROTOCOL_ERROR}),
            )
        )
    cases.append(
        WsCase(
            name="close_reason_invalid_utf8",
            kind=CaseKind.BAD_CLOSE,
            frames=(Frame(Opcode.CLOSE, close_payload(1000, b"assay-" + _SURROGATE)),),
            allowed=_FAILED,
            tolerated=_ODD_CLOSE,
            rfc="RFC 6455 §8.1",
            quote=q.Q_UTF8 + " [§5.5.1] " + q.Q_CLOSE_REPLY,
            requirement=Requirement.MUST,
            severity=Severity.HIGH,
            codes=frozenset({CloseCode.INVALID_PAYLOAD, CloseCode.PROTOCOL_ERROR}),
        )
    )
    cases.append(
        WsCase(
            name="client_close",
            kind=CaseKind.CLIENT_CLOSE,
            frames=(Frame(Opcode.CLOSE, close_payload(CloseCode.NORMAL, b"assay-bye")),),
            allowed=frozenset({WsReaction.CLOSED_EXPECTED, WsReaction.CLOSED_OTHER}),
            # RST can destroy a Close frame already in flight; FIN alone cannot.
            tolerated=frozenset({WsReaction.RESET}),
            rfc="RFC 6455 §5.5.1",
            quote=q.Q_CLOSE_REPLY,
            requirement=Requirement.MUST,
            severity=Severity.MED,
            codes=frozenset({CloseCode.NORMAL}),
        )
    )
    return cases


#: Pings in the flood; each carries its index so a Pong names the Ping it answers.
PING_FLOOD_COUNT = 32


def _valid_cases() -> list[WsCase]:
    pings = tuple(
        Frame(Opcode.PING, f"assay-ping-{i:02d}".encode()) for i in range(PING_FLOOD_COUNT)
    )
    answered = dict(
        allowed=frozenset({WsReaction.RESPONDED}),
        # Closing instead (a ping policy, text-only endpoint, ...) is the server's choice.
        tolerated=_ANY_CLOSE | frozenset({WsReaction.ALIVE_NO_ECHO}),
        requirement=Requirement.MUST,
    )
    split = "κόσμε".encode()
    return [
        WsCase(
            name="ping_flood",
            kind=CaseKind.PING_FLOOD,
            frames=pings,
            rfc="RFC 6455 §5.5.2",
            quote=q.Q_PING,
            # A Pong MUST miss: nothing the client did wrong carries on (MED, not HIGH).
            severity=Severity.MED,
            codes=frozenset({CloseCode.POLICY_VIOLATION}),
            **answered,
        ),
        WsCase(
            name="ping_max_payload",
            kind=CaseKind.PING_FLOOD,
            frames=(Frame(Opcode.PING, b"assay-ping-125-" + b"y" * 110),),
            rfc="RFC 6455 §5.5.2",
            quote=q.Q_PING,
            severity=Severity.MED,
            **answered,
        ),
        WsCase(
            name="echo_text",
            kind=CaseKind.ECHO,
            frames=(Frame(Opcode.TEXT, b"assay-echo-text"),),
            rfc="RFC 6455 §5.6",
            # What fails the case is the canary Ping left unanswered (§5.5.2), hence q.Q_PING.
            quote="Text: The \"Payload data\" is text data encoded as UTF-8. [§5.5.2] " + q.Q_PING,
            severity=Severity.MED,
            **answered,
        ),
        WsCase(
            name="echo_binary",
            kind=CaseKind.ECHO,
            frames=(Frame(Opcode.BINARY, b"assay-echo-\x00\xff\x80binary"),),
            rfc="RFC 6455 §5.6",
            quote="Binary: The \"Payload data\" is arbitrary binary data [§5.5.2] " + q.Q_PING,
            severity=Severity.MED,
            **answered,
        ),
        WsCase(
            name="echo_fragmented_split_codepoint",
            kind=CaseKind.ECHO,
            # Valid UTF-8 split inside a code point, with a Ping between the fragments.
            frames=(
                Frame(Opcode.TEXT, b"assay-" + split[:3], fin=False),
                Frame(Opcode.PING, b"assay-mid-message"),
                Frame(Opcode.CONTINUATION, split[3:]),
            ),
            rfc="RFC 6455 §5.4",
            quote="An endpoint MUST be capable of handling control frames in the middle of "
            "a fragmented message. [§5.5.2] " + q.Q_PING,
            severity=Severity.MED,
            **answered,
        ),
    ]


CASES: tuple[WsCase, ...] = (
    *_bad_frame_cases(),
    *_length_cases(),
    *_close_cases(),
    *_valid_cases(),
    *ws_cases_framing.CASES,
    *ws_cases_fragments.CASES,
    *ws_cases_utf8.CASES,
    *ws_cases_close.CASES,
)

BY_NAME: dict[str, WsCase | HandshakeCase] = {c.name: c for c in (*CASES, *HANDSHAKE_CASES)}
