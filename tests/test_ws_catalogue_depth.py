"""The grown WebSocket catalogue (issue 19 item 1): its shape, and the oracle on scripted
server bytes for each new shape of case (empty messages, unsolicited Pongs, UTF-8, Close
structure, frames after Close, non-minimal lengths)."""

from __future__ import annotations

import pytest

from protocols import websocket_frames as wf
from protocols import websocket_quotes as q
from protocols import ws_cases_close, ws_cases_fragments, ws_cases_framing, ws_cases_utf8
from protocols.outcome import Requirement, Verdict
from protocols.websocket_cases import BY_NAME, CASES, CaseKind, WsCase, WsReaction
from protocols.websocket_frames import Opcode
from protocols.websocket_oracle import (
    ACCEPTED_BAD_FRAME,
    CANARY,
    CLOSE_NOT_ANSWERED,
    ECHO_MISSING,
    HANG_NO_CLOSE,
    SERVER_BAD_CLOSE,
    VALID_UNANSWERED,
    WsOracle,
)
from protocols.websocket_oracle import Transport as T

MODULES = (ws_cases_framing, ws_cases_fragments, ws_cases_utf8, ws_cases_close)
QUOTES = [v for k, v in vars(q).items() if k.startswith("Q_")]


def _judge(name: str, server: bytes, transport: T = T.OPEN):
    case = BY_NAME[name]
    assert isinstance(case, WsCase)
    oracle = WsOracle(case)
    oracle.feed(server)
    return oracle.finish(transport)


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    return wf.build_frame(opcode, payload)


def _close(code: int | None, reason: bytes = b"") -> bytes:
    return _frame(Opcode.CLOSE, wf.close_payload(code, reason))


PONG_CANARY = _frame(Opcode.PONG, CANARY)


def test_catalogue_has_the_depth_the_issue_asks_for() -> None:
    new = [case for module in MODULES for case in module.CASES]
    assert len(new) >= 200 and len(CASES) >= 250
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.name for c in new} <= set(BY_NAME)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_new_case_is_grounded_in_a_quoted_sentence(module) -> None:
    for case in module.CASES:
        assert case.rfc.startswith("RFC 6455 §"), case.name
        assert case.requirement is Requirement.MUST and case.frames, case.name
        assert not case.allowed & case.tolerated, case.name
        # The quote carries at least one verbatim RFC sentence from websocket_quotes.
        assert any(sentence in case.quote for sentence in QUOTES), (case.name, case.quote)
        assert all(f.opcode != Opcode.CLOSE or len(f.payload) <= 125 or
                   case.kind is not CaseKind.CLIENT_CLOSE for f in case.frames)


def test_groups_cover_every_edge_named_in_the_issue() -> None:
    names = set(BY_NAME)
    for length in (0, 125, 126, 127, 65535, 65536):
        assert {f"echo_text_len_{length}", f"echo_binary_len_{length}"} <= names
    assert {"ping_len_0", "ping_len_125", "unsolicited_pong_len_0",
            "unsolicited_pong_burst", "ping_between_fragments_text"} <= names
    for opcode in (*wf.RESERVED_DATA_OPCODES, *wf.RESERVED_CONTROL_OPCODES):
        assert f"reserved_opcode_{opcode:x}_inside_message" in names
    for rsv in ("rsv1", "rsv2", "rsv3"):
        assert {f"{rsv}_binary", f"{rsv}_pong", f"{rsv}_close", f"{rsv}_continuation"} <= names
    assert {"continuation_without_start_empty", "interleaved_binary_in_text",
            "fragments_1_byte_text", "fragmented_pong", "fragmented_close"} <= names
    for label, _ in ws_cases_utf8.INVALID_SEQUENCES:
        for where in ("start", "middle", "end", "first_fragment", "last_fragment"):
            assert f"utf8_{label}_{where}" in names
    assert {"utf8_valid_u10000_split_1", "utf8_valid_u10ffff_split_3",
            "utf8_fail_fast_surrogate_high"} <= names
    assert {"close_body_1_byte", "close_reason_123_bytes", "close_reason_124_bytes",
            "close_then_text", "close_inside_fragmented_text", "close_valid_code_4999",
            "close_reason_surrogate_start", "close_code_5001"} <= names


# --- the oracle on the new shapes --------------------------------------------------------


@pytest.mark.parametrize("name, opcode", [("echo_text_len_0", Opcode.TEXT),
                                          ("echo_binary_len_0", Opcode.BINARY)])
def test_empty_message_echoed_passes_and_dropped_is_reported(name: str, opcode: int) -> None:
    echoed = _judge(name, _frame(opcode, b"") + PONG_CANARY)
    assert (echoed.reaction, echoed.verdict) == (WsReaction.RESPONDED, Verdict.PASS)
    dropped = _judge(name, PONG_CANARY)  # daphne: no echo, connection alive
    assert (dropped.reaction, dropped.verdict) == (WsReaction.ALIVE_NO_ECHO, Verdict.LENIENT)
    assert dropped.counter == ECHO_MISSING
    assert _judge(name, b"").counter == VALID_UNANSWERED


def test_unsolicited_pong_must_be_ignored_and_the_ping_after_it_answered() -> None:
    answered = _judge("unsolicited_pong_len_0", _frame(Opcode.PONG, b"assay-after-pong"))
    assert answered.verdict is Verdict.PASS
    closed = _judge("unsolicited_pong_burst", _close(1002), T.EOF)
    assert closed.verdict is Verdict.LENIENT
    silent = _judge("unsolicited_pong_len_125", b"")
    assert (silent.verdict, silent.counter) == (Verdict.VIOLATION, VALID_UNANSWERED)


def test_invalid_utf8_echoed_or_carried_on_is_accepted_and_close_1007_passes() -> None:
    case = BY_NAME["utf8_surrogate_high_middle"]
    assert isinstance(case, WsCase)
    payload = case.frames[0].payload
    echoed = _judge(case.name, _frame(Opcode.TEXT, payload))
    assert (echoed.verdict, echoed.counter) == (Verdict.VIOLATION, ACCEPTED_BAD_FRAME)
    carried = _judge("utf8_byte_ff_first_fragment", PONG_CANARY)
    assert carried.counter == ACCEPTED_BAD_FRAME
    assert _judge("utf8_lead_f5_split", _close(1007)).verdict is Verdict.PASS
    assert _judge("utf8_fail_fast_byte_ff", b"", T.EOF).verdict is Verdict.PASS
    assert _judge("utf8_overlong_nul_end", _close(1002)).verdict is Verdict.LENIENT


def test_valid_four_byte_text_split_must_come_back_whole() -> None:
    case = BY_NAME["utf8_valid_u1f600_split_2"]
    assert isinstance(case, WsCase)
    _, message = case.message()
    assert message.decode() == "assay-\U0001f600-ok"
    assert _judge(case.name, _frame(Opcode.TEXT, message)).verdict is Verdict.PASS
    assert _judge(case.name, _close(1007)).verdict is Verdict.LENIENT  # refusing is a choice


def test_non_minimal_length_may_be_taken_or_failed() -> None:
    name = "echo_non_minimal_len_5_16bit"
    assert _judge(name, _close(1002)).verdict is Verdict.PASS
    case = BY_NAME[name]
    assert isinstance(case, WsCase)
    _, message = case.message()
    assert _judge(name, _frame(Opcode.BINARY, message)).verdict is Verdict.PASS
    assert _judge(name, b"").counter == VALID_UNANSWERED


def test_close_cases() -> None:
    assert _judge("close_then_text", _close(1000), T.EOF).verdict is Verdict.PASS
    assert _judge("close_then_text", b"", T.EOF).counter == CLOSE_NOT_ANSWERED
    assert _judge("close_inside_fragmented_binary", b"").counter == HANG_NO_CLOSE
    assert _judge("close_valid_code_3000", _close(3000)).reaction is WsReaction.CLOSED_EXPECTED
    # The server's own Close breaks §5.5.1 when it repeats what it was sent.
    for name, server, reaction in (
        ("close_body_1_byte", _frame(Opcode.CLOSE, b"\x03"), WsReaction.CLOSED_BAD),
        ("close_code_5001", _close(5001, b"assay"), WsReaction.CLOSED_UNDEFINED),
        ("close_reason_byte_ff_end", _close(1000, b"assay-reason-\xff"), WsReaction.CLOSED_BAD),
    ):
        judgement = _judge(name, server, T.EOF)
        assert (judgement.reaction, judgement.counter) == (reaction, SERVER_BAD_CLOSE), name
        assert judgement.verdict is Verdict.VIOLATION, name
    assert _judge("close_reason_124_bytes", _close(1002), T.EOF).verdict is Verdict.PASS
    assert _judge("close_body_1_byte", b"", T.EOF).verdict is Verdict.PASS


def _leaves_a_message_open(case: WsCase) -> bool:
    """Whether the case's data frames end with a fragmented message still unfinished."""
    open_ = False
    for frame in case.frames:
        if frame.opcode & 0x8:
            continue
        if frame.opcode != Opcode.CONTINUATION or open_:
            open_ = not frame.fin
    return open_


def test_bad_frame_cases_finish_the_message_they_open() -> None:
    """RFC 6455 sets no moment for failing the connection: a server that judges a message
    when it is complete must not wait forever for a fragment we never send and be graded as
    carrying on. (An orphan continuation, even with FIN clear, opens nothing: it is wrong
    on receipt, so ``continuation_without_start_no_fin`` stays as it is.)"""
    assert "continuation_without_start_no_fin" in BY_NAME
    open_cases = {c.name for c in CASES
                  if c.kind is CaseKind.BAD_FRAME and _leaves_a_message_open(c)}
    assert open_cases == set()


def test_a_reserved_opcode_failed_when_its_message_ends_passes() -> None:
    """tornado 6 checks a fragmented message's opcode once the message is complete, then
    drops TCP: a failure, not a server carrying on."""
    assert _judge("reserved_opcode_3_fragmented", b"", T.EOF).verdict is Verdict.PASS
    carried_on = _judge("reserved_opcode_3_fragmented", PONG_CANARY)
    assert (carried_on.reaction, carried_on.counter) == (WsReaction.ACCEPTED, ACCEPTED_BAD_FRAME)
