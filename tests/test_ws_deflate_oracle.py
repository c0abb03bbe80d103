"""The permessage-deflate oracle from bytes alone: whole, byte by byte, with trailing data."""

from __future__ import annotations

import pytest

from protocols.outcome import Verdict
from protocols.websocket_frames import build_frame
from protocols.websocket_oracle import CANARY, Transport
from protocols.ws_deflate import DeflateParams, Deflater, negotiate
from protocols.ws_deflate_cases import BY_NAME, build_frames
from protocols.ws_deflate_oracle import DeflateOracle, judge_bomb, judge_negotiation

PARAMS = DeflateParams()


def _frame(opcode: int, payload: bytes, rsv: int = 0) -> bytes:
    return build_frame(opcode, payload, rsv=rsv)


def _judge(name: str, data: bytes, split: str, params: DeflateParams | None = PARAMS,
           transport: Transport = Transport.OPEN):
    oracle = DeflateOracle(BY_NAME[name], params)
    if split == "bytes":
        for i in range(len(data)):
            oracle.feed(data[i : i + 1])
    else:
        oracle.feed(data + (b"\x81\x05extra" if split == "trailing" else b""))
    return oracle.finish(transport)


SPLITS = ["whole", "bytes", "trailing"]


@pytest.mark.parametrize("split", SPLITS)
def test_compressed_and_plain_echoes_pass(split: str) -> None:
    case = BY_NAME["pmd_context_takeover"]
    deflater = Deflater()
    answer = b"".join(_frame(op, deflater.compress(m), 4) for op, m in case.messages)
    assert _judge(case.name, answer, split).verdict is Verdict.PASS
    plain = b"".join(_frame(op, m) for op, m in case.messages)
    assert _judge(case.name, plain, split).verdict is Verdict.PASS


def test_server_that_kept_its_context_after_promising_not_to() -> None:
    case = BY_NAME["pmd_no_context_takeover"]
    deflater = Deflater()  # keeps the window: the second message refers into the first
    answer = b"".join(_frame(op, deflater.compress(m), 4) for op, m in case.messages)
    judged = _judge(case.name, answer, "whole", DeflateParams(server_no_context_takeover=True))
    assert judged.verdict is Verdict.VIOLATION and judged.counter == "ws.deflate_bad_output"


def test_window_larger_than_agreed_does_not_inflate() -> None:
    case = BY_NAME["pmd_server_window_10"]
    ((opcode, message),) = case.messages
    answer = _frame(opcode, Deflater(15).compress(message), 4)
    judged = _judge(case.name, answer, "whole", DeflateParams(server_max_window_bits=10))
    assert judged.counter == "ws.deflate_bad_output"
    fine = _frame(opcode, Deflater(10).compress(message), 4)
    ok = _judge(case.name, fine, "whole", DeflateParams(server_max_window_bits=10))
    assert ok.verdict is Verdict.PASS


@pytest.mark.parametrize("split", SPLITS)
def test_rsv1_ping_answered_and_open_is_accepted(split: str) -> None:
    judged = _judge("pmd_rsv1_ping", _frame(0xA, CANARY), split)
    assert judged.verdict is Verdict.VIOLATION and judged.counter == "ws.accepted_bad_frame"
    closed = _judge("pmd_rsv1_ping", _frame(0x8, b"\x03\xea"), split)
    assert closed.verdict is Verdict.PASS


def test_server_rsv1_on_a_control_frame_is_its_own_violation() -> None:
    judged = _judge("pmd_text_echo", _frame(0xA, CANARY, 4), "whole")
    assert judged.counter == "ws.server_bad_frame"


def test_bomb_graded_against_the_plain_probe() -> None:
    took = _judge("pmd_bomb", _frame(0xA, CANARY), "whole")
    assert took.took_bomb and took.verdict is Verdict.LENIENT
    refused = _judge("pmd_bomb", _frame(0x8, b"\x03\xf1"), "whole", None)
    assert judge_bomb(took, refused).counter == "ws.deflate_bomb_inflated"
    assert judge_bomb(took, refused).verdict is Verdict.VIOLATION
    taken = _judge("pmd_bomb", _frame(0xA, CANARY), "whole", None)
    assert judge_bomb(took, taken).counter == "ws.deflate_no_inflate_limit"
    assert judge_bomb(took, None).verdict is Verdict.UNJUDGED
    over = _judge("pmd_bomb", b"\x82\x7f" + (64 << 20).to_bytes(8, "big"), "whole")
    assert over.took_bomb


def test_invalid_deflate_carried_on_is_only_lenient() -> None:
    judged = _judge("pmd_invalid_deflate", _frame(0xA, CANARY), "whole")
    assert judged.verdict is Verdict.LENIENT and judged.counter == "ws.deflate_invalid_accepted"


def test_frames_follow_the_agreement() -> None:
    frames = build_frames(BY_NAME["pmd_fragmented_echo"], PARAMS)
    assert [f.rsv for f in frames] == [4, 0, 0] and [f.fin for f in frames] == [0, 0, 1]
    bent = build_frames(BY_NAME["pmd_rsv1_continuation"], PARAMS)
    assert [(f.opcode, f.rsv) for f in bent] == [(1, 4), (0, 4)]


def test_bad_negotiation_is_med() -> None:
    case = BY_NAME["pmd_text_echo"]
    bad = negotiate(case.offer, [b"permessage-deflate; client_max_window_bits=9"])
    judged = judge_negotiation(case, bad)
    assert judged.verdict is Verdict.VIOLATION and judged.also_counts == ("ws.must_violation",)


BAD_SERVER_CODES = [(5000, "closed_undefined"), (1016, "closed_undefined"), (1006, "closed_bad")]


@pytest.mark.parametrize(("code", "reaction"), BAD_SERVER_CODES)
def test_a_server_close_code_outside_section_7_4_is_its_own_violation(code: int,
                                                                       reaction: str) -> None:
    """RFC 6455 §5.5.1 (undefined) and §7.4.1 (1005/1006/1015) bind the server's own Close
    here as in the plain catalogue; the reaction names which rule broke."""
    judged = _judge("pmd_rsv1_ping", _frame(0x8, code.to_bytes(2, "big")), "whole")
    assert (judged.reaction.value, judged.verdict) == (reaction, Verdict.VIOLATION)
    assert judged.counter == "ws.server_bad_close_code"
