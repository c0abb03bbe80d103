"""protocols.h2_oracle: server frames in, reaction and verdict out; pure, never raising."""

from __future__ import annotations

import random

import pytest

from protocols import h2_frames as fr
from protocols.h2_case_model import H2Reaction as R
from protocols.h2_cases import BY_NAME, CASES
from protocols.h2_oracle import (
    ACCEPTED_COUNTER,
    LENIENT_COUNTER,
    MUST_COUNTER,
    H2Judgement,
    H2Oracle,
)
from protocols.outcome import Verdict

E = fr.ErrorCode
CANARY = b"canary!!"
SERVER_PREFACE = [fr.Frame(fr.FrameType.SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x80"),
                  fr.Frame(fr.FrameType.SETTINGS, fr.FLAG_ACK, 0)]
PONG = fr.Frame(fr.FrameType.PING, fr.FLAG_ACK, 0, CANARY)


def goaway(code: int) -> fr.Frame:
    return fr.FrameReader().feed(fr.goaway(0, code))[0]


def rst(stream: int, code: int) -> fr.Frame:
    return fr.FrameReader().feed(fr.rst_stream(stream, code))[0]


def response(status: int, stream: int = 1) -> fr.Frame:
    block = fr.header_block([(":status", str(status)), ("content-length", "0")])
    return fr.Frame(fr.FrameType.HEADERS, fr.FLAG_END_HEADERS | fr.FLAG_END_STREAM, stream,
                    block)


def judge(name: str, frames: list[fr.Frame], ending: str = "open", garbage: str = "",
          skip: frozenset[int] = frozenset()) -> H2Judgement:
    oracle = H2Oracle(BY_NAME[name], CANARY, skip)
    oracle.feed(SERVER_PREFACE + frames)
    return oracle.finish(ending, garbage)


@pytest.mark.parametrize("frames,ending,reaction,verdict", [
    ([goaway(E.FRAME_SIZE_ERROR)], "open", R.GOAWAY_EXPECTED, Verdict.PASS),
    ([goaway(E.PROTOCOL_ERROR)], "eof", R.GOAWAY_EXPECTED, Verdict.PASS),  # §5.4 generic
    ([goaway(E.INTERNAL_ERROR)], "open", R.GOAWAY_EXPECTED, Verdict.PASS),
    ([], "eof", R.CLOSED, Verdict.PASS),
    ([], "reset", R.CLOSED, Verdict.PASS),
    ([goaway(E.FLOW_CONTROL_ERROR)], "eof", R.GOAWAY_OTHER, Verdict.LENIENT),
    ([goaway(E.NO_ERROR)], "eof", R.GOAWAY_GRACEFUL, Verdict.LENIENT),
    ([PONG], "open", R.ALIVE, Verdict.VIOLATION),
    ([rst(1, E.FRAME_SIZE_ERROR), PONG], "open", R.RST_EXPECTED, Verdict.VIOLATION),
    ([], "open", R.HANG, Verdict.VIOLATION),
    ([], "cap", R.OVERFLOW, Verdict.UNJUDGED),
])
def test_connection_error_case(frames, ending, reaction, verdict) -> None:
    result = judge("ping_length_7", frames, ending)
    assert (result.reaction, result.verdict) == (reaction, verdict)
    expected_counter = {Verdict.VIOLATION: MUST_COUNTER, Verdict.LENIENT: LENIENT_COUNTER}
    assert result.counter == expected_counter.get(verdict)


def test_garbage_is_a_violation_except_after_a_bad_preface() -> None:
    assert judge("ping_length_7", [], "eof", garbage="HTTP/1.1").verdict is Verdict.VIOLATION
    assert judge("preface_bad_magic", [], "eof", garbage="HTTP/1.1").verdict is Verdict.PASS
    assert judge("preface_bad_magic", [PONG]).verdict is Verdict.VIOLATION


@pytest.mark.parametrize("frames,ending,reaction,verdict", [
    ([rst(1, E.FRAME_SIZE_ERROR), PONG], "open", R.RST_EXPECTED, Verdict.PASS),
    ([rst(1, E.PROTOCOL_ERROR), PONG], "open", R.RST_EXPECTED, Verdict.PASS),
    ([rst(1, E.CANCEL), PONG], "open", R.RST_OTHER, Verdict.LENIENT),
    ([goaway(E.FRAME_SIZE_ERROR)], "eof", R.GOAWAY_EXPECTED, Verdict.PASS),  # §5.4.1
    ([], "eof", R.CLOSED, Verdict.PASS),
    ([rst(1, E.NO_ERROR), PONG], "open", R.ALIVE, Verdict.VIOLATION),  # NO_ERROR: no error
    ([PONG], "open", R.ALIVE, Verdict.VIOLATION),
])
def test_stream_error_case(frames, ending, reaction, verdict) -> None:
    result = judge("priority_length_4", frames, ending)
    assert (result.reaction, result.verdict) == (reaction, verdict)


def test_tolerated_race_is_lenient() -> None:
    result = judge("window_update_overflows_stream", [response(405), PONG])
    assert (result.reaction, result.verdict) == (R.ALIVE, Verdict.LENIENT)
    assert result.counter == LENIENT_COUNTER


@pytest.mark.parametrize("frames,ending,reaction,verdict", [
    ([PONG], "open", R.ALIVE, Verdict.PASS),
    ([response(200), PONG], "open", R.ALIVE, Verdict.PASS),
    ([goaway(E.PROTOCOL_ERROR)], "eof", R.GOAWAY_EXPECTED, Verdict.VIOLATION),
    ([goaway(E.NO_ERROR)], "eof", R.GOAWAY_GRACEFUL, Verdict.LENIENT),
    ([rst(1, E.PROTOCOL_ERROR), PONG], "open", R.RST_EXPECTED, Verdict.VIOLATION),
    ([], "eof", R.CLOSED, Verdict.VIOLATION),
    ([], "open", R.HANG, Verdict.VIOLATION),
])
def test_ignore_case(frames, ending, reaction, verdict) -> None:
    result = judge("unknown_frame_type_ignored", frames, ending)
    assert (result.reaction, result.verdict) == (reaction, verdict)


def test_answering_a_ping_ack_is_a_violation() -> None:
    echoed = fr.Frame(fr.FrameType.PING, fr.FLAG_ACK, 0, b"assay-ak")
    result = judge("ping_with_ack_not_answered", [echoed, PONG])
    assert (result.reaction, result.verdict) == (R.PING_ECHOED, Verdict.VIOLATION)
    assert judge("ping_with_ack_not_answered", [PONG]).verdict is Verdict.PASS
    # an answer followed by a GOAWAY is still an answer
    result = judge("ping_with_ack_not_answered", [echoed, goaway(E.PROTOCOL_ERROR)], "eof")
    assert (result.reaction, result.verdict) == (R.PING_ECHOED, Verdict.VIOLATION)


@pytest.mark.parametrize("frames,ending", [
    ([goaway(E.PROTOCOL_ERROR)], "eof"), ([goaway(E.ENHANCE_YOUR_CALM)], "open"),
    ([], "eof"), ([], "reset")])
def test_ending_the_connection_over_a_ping_ack_is_not_a_violation(frames, ending) -> None:
    """§6.7 "An endpoint MUST NOT respond to PING frames containing this flag" forbids an
    answer; no sentence makes the server carry on (§5.4.1 "An endpoint can end a
    connection at any time"): lenient, like a graceful GOAWAY on an ignore case."""
    result = judge("ping_with_ack_not_answered", frames, ending)
    assert result.verdict is Verdict.LENIENT and result.counter == LENIENT_COUNTER


@pytest.mark.parametrize("frames,reaction,verdict,counter", [
    ([response(200), PONG], R.ACCEPTED, Verdict.VIOLATION, ACCEPTED_COUNTER),
    ([response(301), goaway(E.PROTOCOL_ERROR)], R.ACCEPTED, Verdict.VIOLATION,
     ACCEPTED_COUNTER),
    ([response(400), PONG], R.REFUSED, Verdict.PASS, None),
    ([response(400), rst(1, E.PROTOCOL_ERROR), PONG], R.RST_EXPECTED, Verdict.PASS, None),
    ([rst(1, E.PROTOCOL_ERROR), PONG], R.RST_EXPECTED, Verdict.PASS, None),
    ([response(503), PONG], R.SERVER_ERROR, Verdict.LENIENT, LENIENT_COUNTER),
    ([PONG], R.ALIVE, Verdict.VIOLATION, MUST_COUNTER),
])
def test_malformed_request(frames, reaction, verdict, counter) -> None:
    result = judge("field_value_lf", frames)
    assert (result.reaction, result.verdict, result.counter) == (reaction, verdict, counter)


def test_med_malformed_served_is_must_and_should_is_lenient() -> None:
    assert judge("connection_header", [response(200), PONG]).counter == MUST_COUNTER
    result = judge("te_not_trailers", [response(200), PONG])
    assert (result.reaction, result.verdict) == (R.ACCEPTED, Verdict.LENIENT)


def test_late_malformed_response_is_not_proof() -> None:
    assert judge("content_length_mismatch", [response(200), PONG]).verdict is Verdict.LENIENT
    result = judge("content_length_mismatch", [response(200), rst(1, E.PROTOCOL_ERROR), PONG])
    assert result.verdict is Verdict.PASS


def test_response_decoding_keeps_one_hpack_context() -> None:
    """The second response uses the dynamic table entry the first one added."""
    import hpack

    encoder = hpack.Encoder()
    first = encoder.encode([(":status", "404"), ("x-seen", "twice")])
    second = encoder.encode([(":status", "200"), ("x-seen", "twice")])
    split = [fr.Frame(fr.FrameType.HEADERS, fr.FLAG_END_HEADERS | fr.FLAG_END_STREAM, 3, first),
             fr.Frame(fr.FrameType.HEADERS, 0, 1, second[:1]),
             fr.Frame(fr.FrameType.CONTINUATION, fr.FLAG_END_HEADERS, 1, second[1:]), PONG]
    oracle = H2Oracle(BY_NAME["field_value_lf"], CANARY, frozenset({3}))
    oracle.feed(split)
    assert oracle.status == 200 and not oracle.undecodable
    assert oracle.finish("open").reaction is R.ACCEPTED


def test_skipped_stream_is_not_the_case() -> None:
    """Under an h2c upgrade, stream 1's response and reset belong to the upgrade request."""
    result = judge("field_value_lf", [response(200, 1), rst(1, E.CANCEL), PONG],
                   skip=frozenset({1}))
    assert result.reaction is R.ALIVE


def test_decided() -> None:
    oracle = H2Oracle(BY_NAME["unknown_frame_type_ignored"], CANARY)
    oracle.feed(SERVER_PREFACE)
    assert not oracle.decided
    oracle.feed([PONG])
    assert oracle.decided
    malformed = H2Oracle(BY_NAME["field_value_lf"], CANARY)
    malformed.feed([PONG])
    assert not malformed.decided  # the stream's outcome may lag the PING answer
    malformed.feed([response(400)])
    assert malformed.decided
    conn = H2Oracle(BY_NAME["ping_length_7"], CANARY)
    conn.feed([goaway(E.FRAME_SIZE_ERROR)])
    assert conn.decided


def test_never_raises_on_any_input() -> None:
    rng = random.Random(11)
    endings = ("open", "eof", "reset", "cap")
    for round_ in range(400):
        case = CASES[round_ % len(CASES)]
        oracle = H2Oracle(case, CANARY, frozenset({1}) if round_ % 3 else frozenset())
        frames = [fr.Frame(rng.choice([0, 1, 3, 5, 6, 7, 9, 0xFA]), rng.randrange(256),
                           rng.randrange(6), rng.randbytes(rng.randrange(0, 30)))
                  for _ in range(rng.randrange(0, 8))]
        if rng.random() < 0.3:
            frames.append(PONG)
        oracle.feed(frames)
        _ = oracle.decided
        result = oracle.finish(rng.choice(endings), rng.choice(["", "junk"]))
        assert isinstance(result, H2Judgement) and isinstance(result.reaction, R)
        assert result.detail
