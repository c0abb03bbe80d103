"""Bytes-only tests for the WebSocket catalogue and oracle.

A correct server is played by wsproto (sans-IO) and must never produce a violation; defective
servers are scripted as the bytes they would send.
"""

from __future__ import annotations

import random

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping

from protocols import websocket_frames as wf
from protocols.outcome import Reaction, Requirement, Severity, Verdict
from protocols.websocket_cases import BY_NAME, CASES, HANDSHAKE_CASES, CaseKind, WsCase, WsReaction
from protocols.websocket_frames import Opcode
from protocols.websocket_oracle import (
    ACCEPTED_BAD_FRAME,
    CANARY,
    CANARY_FRAME,
    HANG_NO_CLOSE,
    MUST_VIOLATION,
    SERVER_BAD_CLOSE,
    SERVER_FAULTS,
    VALID_UNANSWERED,
    WsOracle,
    judge_handshake,
)
from protocols.websocket_oracle import Transport as T


def _case(name: str) -> WsCase:
    case = BY_NAME[name]
    assert isinstance(case, WsCase)
    return case


def _frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return wf.build_frame(opcode, payload, fin=fin)


def _close(code: int | None, reason: bytes = b"") -> bytes:
    return _frame(Opcode.CLOSE, wf.close_payload(code, reason))


def _judge(name: str, server: bytes, transport: T = T.OPEN, how: str = "whole"):
    oracle = WsOracle(_case(name))
    if how == "bytewise":
        for byte in server:
            oracle.feed(bytes([byte]))
    else:
        oracle.feed(server + (b"\x81\x7fjunk-after" if how == "trailing" else b""))
    return oracle.finish(transport)


# --- catalogue shape ----------------------------------------------------------------------


def test_catalogue_is_data_with_rfc_grounding() -> None:
    names = [case.name for case in (*CASES, *HANDSHAKE_CASES)]
    assert len(names) == len(set(names))
    for case in CASES:
        assert case.rfc.startswith("RFC 6455 §") and len(case.quote) > 40
        assert case.frames and not (case.allowed & case.tolerated)
        assert case.severity is not None and case.requirement in Requirement
    wanted = {
        "unmasked_text", "rsv1_text", "rsv2_text", "rsv3_text", "reserved_opcode_3",
        "reserved_opcode_7", "reserved_opcode_b", "reserved_opcode_f", "ping_payload_126",
        "fragmented_ping", "continuation_without_start", "data_inside_fragmented_message",
        "invalid_utf8_text", "invalid_utf8_fragmented", "close_reason_invalid_utf8",
        "close_code_0", "close_code_999", "close_code_1004", "close_code_1005",
        "close_code_1006", "close_code_1015", "close_code_1016", "close_code_2999",
        "close_code_5000", "declared_length_2_53", "declared_length_msb_set", "ping_flood",
        "handshake_missing_key", "handshake_wrong_version", "client_close", "echo_text",
        "echo_binary",
    }
    assert wanted <= set(names)


# --- a correct server (wsproto) never violates ------------------------------------------


def _wsproto_server(handshake: bytes, frames: bytes) -> tuple[bytes, bool]:
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(handshake)
    out = b"".join(ws.send(AcceptConnection()) for _ in ws.events())
    ws.receive_data(frames)
    for event in ws.events():
        if isinstance(event, Message):
            out += ws.send(type(event)(data=event.data, message_finished=event.message_finished))
        elif isinstance(event, Ping):
            out += ws.send(event.response())
        elif isinstance(event, CloseConnection):
            if ws.state not in (ConnectionState.CLOSED, ConnectionState.LOCAL_CLOSING):
                out += ws.send(event.response())
            return out, True
    return out, False


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_wsproto_reference_server_passes_every_case(case: WsCase) -> None:
    rng = random.Random(case.name)
    key = wf.make_key(rng.randbytes(16))
    frames = list(case.frames)
    if case.kind in (CaseKind.BAD_FRAME, CaseKind.ECHO):
        frames.append(CANARY_FRAME)
    wire = wf.encode_frames(frames, (rng.randbytes(4) for _ in frames))
    out, closed = _wsproto_server(wf.build_handshake("/ws", "h", key), wire)
    answer = wf.parse_handshake_response(out, key)
    assert answer is not None and answer.accepted
    for how in ("whole", "bytewise"):
        oracle = WsOracle(case)
        if how == "whole":
            oracle.feed(answer.rest)
        else:
            for byte in answer.rest:
                oracle.feed(bytes([byte]))
        judgement = oracle.finish(T.EOF if closed else T.OPEN)
        assert judgement.verdict in (Verdict.PASS, Verdict.LENIENT), judgement
        assert judgement.counter not in (ACCEPTED_BAD_FRAME, HANG_NO_CLOSE)


# --- defective servers --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])
def test_close_1002_passes_three_ways(how: str) -> None:
    judgement = _judge("unmasked_text", _close(1002, b"masking"), how=how)
    assert (judgement.reaction, judgement.verdict) == (WsReaction.CLOSED_EXPECTED, Verdict.PASS)
    assert judgement.close_code == 1002 and judgement.counter is None


@pytest.mark.parametrize("transport", [T.EOF, T.RESET])
def test_plain_tcp_close_is_failing_the_connection(transport: T) -> None:
    assert _judge("rsv1_text", b"", transport).verdict is Verdict.PASS


def test_echo_of_unmasked_frame_is_accepted_bad_frame() -> None:
    judgement = _judge("unmasked_text", _frame(Opcode.TEXT, b"assay-unmasked"))
    assert judgement.reaction is WsReaction.ACCEPTED
    assert (judgement.verdict, judgement.counter) == (Verdict.VIOLATION, ACCEPTED_BAD_FRAME)


def test_echo_before_close_is_still_accepted() -> None:
    server = _frame(Opcode.TEXT, b"assay-rsv1") + _close(1002)
    assert _judge("rsv1_text", server, T.EOF).reaction is WsReaction.ACCEPTED


def test_pong_to_the_unmasked_ping_is_accepted() -> None:
    judgement = _judge("unmasked_ping", _frame(Opcode.PONG, b"assay-unmasked-ping"))
    assert judgement.counter == ACCEPTED_BAD_FRAME


def test_canary_answered_and_left_open_is_accepted() -> None:
    judgement = _judge("reserved_opcode_b", _frame(Opcode.PONG, CANARY))
    assert (judgement.reaction, judgement.counter) == (WsReaction.ACCEPTED, ACCEPTED_BAD_FRAME)


def test_canary_pong_then_close_is_not_held_against_the_server() -> None:
    server = _frame(Opcode.PONG, CANARY) + _close(1007)
    assert _judge("invalid_utf8_text", server).verdict is Verdict.PASS


def test_silence_with_socket_open_is_a_hang() -> None:
    judgement = _judge("continuation_without_start", b"")
    assert (judgement.reaction, judgement.counter) == (WsReaction.HANG, HANG_NO_CLOSE)
    assert judgement.verdict is Verdict.VIOLATION


def test_unrelated_server_traffic_is_neither_echo_nor_answer() -> None:
    server = _frame(Opcode.TEXT, b"tick") + _frame(Opcode.PING, b"heartbeat")
    assert _judge("rsv2_text", server).reaction is WsReaction.HANG


def test_other_close_code_is_lenient_information() -> None:
    judgement = _judge("invalid_utf8_fragmented", _close(1002))
    assert (judgement.reaction, judgement.verdict) == (WsReaction.CLOSED_OTHER, Verdict.LENIENT)
    assert judgement.counter == "ws.unexpected_close_code"


def test_forbidden_close_code_from_server_is_its_own_violation() -> None:
    judgement = _judge("unmasked_text", _close(1006))
    assert (judgement.reaction, judgement.verdict) == (WsReaction.CLOSED_BAD, Verdict.VIOLATION)
    assert judgement.counter == "ws.server_bad_close_code"


def test_masked_server_frame_is_garbage() -> None:
    server = wf.build_frame(Opcode.CLOSE, wf.close_payload(1002), mask_key=b"abcd")
    judgement = _judge("rsv3_text", server, T.EOF)
    assert (judgement.reaction, judgement.counter) == (WsReaction.GARBAGE, "ws.server_bad_frame")


@pytest.mark.parametrize("code", [1005, 1006, 1015])
def test_reflecting_a_forbidden_close_code_is_a_med_must_violation(code: int) -> None:
    """The Close ends the connection either way: a MUST NOT broken, nothing carried on."""
    judgement = _judge(f"close_code_{code}", _close(code, b"assay"), T.EOF)
    assert (judgement.verdict, judgement.counter) == (Verdict.VIOLATION, SERVER_BAD_CLOSE)
    assert judgement.severity is Severity.MED and judgement.also_counts == (MUST_VIOLATION,)


@pytest.mark.parametrize("code", [0, 999, 1004, 1016, 1100, 2000, 2999, 5000, 65535])
def test_reflecting_an_undefined_close_code_is_a_med_must_violation(code: int) -> None:
    """RFC 6455 §5.5.1: a Close body's code "MUST be ... a status code ... defined in
    Section 7.4"; tornado echoes these back. The Close ends the session: MED, not HIGH."""
    judgement = _judge(f"close_code_{code}", _close(code, b"assay"), T.EOF)
    assert (judgement.reaction, judgement.verdict) == (WsReaction.CLOSED_UNDEFINED,
                                                       Verdict.VIOLATION)
    assert judgement.counter == SERVER_BAD_CLOSE and judgement.severity is Severity.MED
    assert "§7.4" in judgement.detail and judgement.also_counts == (MUST_VIOLATION,)


@pytest.mark.parametrize("case", ["client_close", "echo_text", "rsv2_text", "ping_flood",
                                  "close_valid_code_3000", "utf8_byte_ff_middle"])
def test_an_undefined_code_in_the_servers_close_violates_in_every_case(case: str) -> None:
    """§5.5.1 binds the server's own Close whatever the client sent: even where a Close
    passes (a bad frame) or is tolerated (a valid message), an undefined code violates."""
    judgement = _judge(case, _close(1016), T.EOF)
    assert (judgement.reaction, judgement.verdict) == (WsReaction.CLOSED_UNDEFINED,
                                                       Verdict.VIOLATION)
    assert judgement.counter == SERVER_BAD_CLOSE


def test_forbidden_code_stays_closed_bad_and_undefined_wins_over_a_bad_reason() -> None:
    """The split names the rule broken: 1005 is §7.4.1's MUST NOT (CLOSED_BAD), 5000 is
    §5.5.1's undefined code even when its reason is not UTF-8 either."""
    assert _judge("client_close", _close(1005), T.EOF).reaction is WsReaction.CLOSED_BAD
    bad_reason = _judge("client_close", _close(5000, b"\xff"), T.EOF)
    assert bad_reason.reaction is WsReaction.CLOSED_UNDEFINED


def test_no_case_tolerates_a_server_fault() -> None:
    """A reaction the oracle always grades as a violation must not be listed as passing or
    lenient anywhere: ``assay cases`` prints those sets as the RFC's reading."""
    for case in CASES:
        assert not (case.allowed | case.tolerated) & SERVER_FAULTS, case.name


@pytest.mark.parametrize("code", [1000, 1002, 1012, 1014, 3000, 3999, 4000, 4999])
def test_a_defined_code_in_the_servers_close_is_no_violation(code: int) -> None:
    judgement = _judge("close_code_999", _close(code, b"x"), T.EOF)
    assert judgement.verdict is not Verdict.VIOLATION and judgement.reaction is not (
        WsReaction.CLOSED_BAD)


def test_reflecting_an_invalid_utf8_reason_is_a_med_must_violation() -> None:
    judgement = _judge("close_reason_invalid_utf8", _close(1000, b"assay-\xed\xa0\x80"))
    assert judgement.counter == SERVER_BAD_CLOSE and judgement.also_counts == (MUST_VIOLATION,)


def test_unanswered_close_hangs() -> None:
    assert _judge("close_code_0", b"").counter == HANG_NO_CLOSE


def test_client_close_needs_a_close_back() -> None:
    assert _judge("client_close", _close(1000, b"assay-bye"), T.EOF).verdict is Verdict.PASS
    silent = _judge("client_close", b"", T.EOF)
    assert (silent.verdict, silent.counter) == (Verdict.VIOLATION, "ws.close_not_answered")
    assert _judge("client_close", b"", T.RESET).verdict is Verdict.LENIENT


def test_huge_length_hang_is_lenient_and_close_passes() -> None:
    hang = _judge("declared_length_2_53", b"")
    assert (hang.verdict, hang.counter) == (Verdict.LENIENT, "ws.no_frame_size_limit")
    assert _judge("declared_length_2_53", _close(1009)).verdict is Verdict.PASS
    assert _judge("declared_length_msb_set", _close(1002)).verdict is Verdict.PASS


def test_ping_flood_coalesced_pongs_pass_and_are_counted() -> None:
    last = _case("ping_flood").frames[-1].payload
    judgement = _judge("ping_flood", _frame(Opcode.PONG, last))
    assert judgement.verdict is Verdict.PASS and judgement.pongs_missing == 31
    everything = b"".join(_frame(Opcode.PONG, f.payload) for f in _case("ping_flood").frames)
    assert _judge("ping_flood", everything, how="bytewise").pongs_missing == 0


def test_ping_flood_without_last_pong_hangs() -> None:
    first = _case("ping_flood").frames[0].payload
    judgement = _judge("ping_flood", _frame(Opcode.PONG, first))
    assert judgement.counter == VALID_UNANSWERED and judgement.pongs_missing == 31
    assert judgement.severity is Severity.MED and judgement.also_counts == (MUST_VIOLATION,)


def test_echo_cases() -> None:
    echo = _frame(Opcode.TEXT, b"assay-echo", fin=False) + _frame(Opcode.CONTINUATION, b"-text")
    assert _judge("echo_text", echo, how="bytewise").reaction is WsReaction.RESPONDED
    wrong_type = _frame(Opcode.BINARY, b"assay-echo-text") + _frame(Opcode.PONG, CANARY)
    judgement = _judge("echo_text", wrong_type)
    assert (judgement.reaction, judgement.counter) == (
        WsReaction.ALIVE_NO_ECHO,
        "ws.echo_missing",
    )
    assert _judge("echo_binary", _close(1003)).counter == "ws.rejected_valid"
    assert _judge("echo_binary", b"").counter == VALID_UNANSWERED


def test_overflow_is_unjudged() -> None:
    oracle = WsOracle(_case("echo_text"), max_payload=8)
    oracle.feed(_frame(Opcode.TEXT, b"x" * 9))
    assert oracle.finish(T.OPEN).verdict is Verdict.UNJUDGED


# --- handshake cases ----------------------------------------------------------------------

MISSING_KEY, WRONG_VERSION = HANDSHAKE_CASES


def test_handshake_refusals() -> None:
    bad_request = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    judgement = judge_handshake(MISSING_KEY, bad_request, T.OPEN)
    assert (judgement.reaction, judgement.verdict) == (Reaction.REJECTED_KEPT_ALIVE, Verdict.PASS)
    upgrade_required = (
        b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n"
    )
    judgement = judge_handshake(WRONG_VERSION, upgrade_required, T.EOF)
    assert (judgement.reaction, judgement.verdict) == (Reaction.REJECTED_CLOSED, Verdict.PASS)
    missing = judge_handshake(WRONG_VERSION, bad_request, T.EOF)
    assert (missing.verdict, missing.counter) == (Verdict.VIOLATION, "ws.version_header_missing")
    # A MUST miss without security weight: MED (I-WS-MUST), not HIGH.
    assert missing.severity is Severity.MED and missing.also_counts == (MUST_VIOLATION,)
    assert WRONG_VERSION.severity is Severity.MED


def test_handshake_acceptance_hang_and_leniency() -> None:
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    judgement = judge_handshake(MISSING_KEY, switching, T.OPEN)
    assert (judgement.verdict, judgement.counter) == (Verdict.VIOLATION, ACCEPTED_BAD_FRAME)
    assert judgement.also_counts == ()  # HIGH goes through its own invariant only
    accepted = judge_handshake(WRONG_VERSION, switching, T.OPEN)
    assert accepted.counter == ACCEPTED_BAD_FRAME and accepted.severity is Severity.HIGH
    assert judge_handshake(MISSING_KEY, b"", T.OPEN).counter == HANG_NO_CLOSE
    assert judge_handshake(MISSING_KEY, b"", T.EOF).verdict is Verdict.LENIENT
    five = b"HTTP/1.1 503 Busy\r\n\r\n"
    assert judge_handshake(WRONG_VERSION, five, T.EOF).verdict is Verdict.LENIENT
    ok = b"HTTP/1.1 200 OK\r\n\r\n"
    assert judge_handshake(MISSING_KEY, ok, T.EOF).verdict is Verdict.LENIENT
    assert judge_handshake(MISSING_KEY, b"\x16\x03\x01", T.EOF).reaction is Reaction.GARBAGE


# --- fuzz: any input yields a judgement ---------------------------------------------------


def test_fuzz_any_server_bytes_yield_a_judgement() -> None:
    rng = random.Random(1002)
    frames = [_frame(Opcode.PONG, CANARY), _close(1002), _frame(Opcode.TEXT, b"assay-rsv1")]
    for _ in range(1500):
        case = rng.choice(CASES)
        parts = [rng.choice(frames) if rng.random() < 0.3 else rng.randbytes(rng.randrange(9))
                 for _ in range(rng.randrange(4))]
        data = b"".join(parts)
        oracle = WsOracle(case, max_payload=256)
        for i in range(0, len(data), 3):
            oracle.feed(data[i : i + 3])
        for transport in T:
            judgement = oracle.finish(transport)
            assert isinstance(judgement.reaction, WsReaction)
            assert judgement.verdict in Verdict
        for hs in HANDSHAKE_CASES:
            assert judge_handshake(hs, data, rng.choice(list(T))).verdict in Verdict
