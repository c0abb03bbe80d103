"""The pure parts of the large-message cases: the ladder, payloads, wire and echo oracle."""

from __future__ import annotations

import random

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

from protocols.outcome import Verdict
from protocols.websocket_frames import Opcode, build_frame, close_payload
from protocols.websocket_oracle import CANARY, Transport
from protocols.ws_large_echo import (
    LARGE_DROPPED,
    LARGE_ECHO_ALTERED,
    LARGE_REFUSED,
    SIZE_LIMIT,
    EchoCheck,
    LargeReaction,
    judge,
)
from protocols.ws_large_plan import (
    KIB,
    MAX_FRAGMENTS,
    MIB,
    LargeCase,
    deadline_s,
    ladder,
    payload,
    wire_chunks,
)

SMALL_TEXT = LargeCase(4 * KIB, 64, Opcode.TEXT)
SMALL_BINARY = LargeCase(4 * KIB, None, Opcode.BINARY)


def test_ladder_is_bounded_by_budget_and_fragment_count() -> None:
    cases = ladder(16 * MIB)
    assert [c.size for c in cases] == sorted(c.size for c in cases)
    assert all(c.frames <= MAX_FRAGMENTS for c in cases)
    names = {c.name for c in cases}
    assert "large_text_4MiB_f64" in names and "large_text_16MiB_f64" not in names
    assert "large_binary_16MiB_f256" in names and len(names) == len(cases)
    assert ladder(0) == ()
    assert max(c.size for c in ladder(5 * MIB)) == 5 * MIB
    assert {c.size for c in ladder(2 * MIB)} == {64 * KIB, MIB, 2 * MIB}


def test_deadline_grows_with_bytes_and_frames() -> None:
    whole, fine = LargeCase(4 * MIB, None, Opcode.BINARY), LargeCase(4 * MIB, 64, Opcode.TEXT)
    assert 5.0 < deadline_s(whole, 5.0) < deadline_s(fine, 5.0)


@pytest.mark.parametrize("case", [c for c in ladder(MIB) if c.opcode is Opcode.TEXT])
def test_text_payload_is_valid_utf8_and_fragments_split_code_points(case: LargeCase) -> None:
    data = payload(case, 7)
    assert len(data) == case.size
    data.decode("utf-8")
    assert case.fragment is not None
    splits = sum(1 for i in range(case.fragment, len(data), case.fragment)
                 if data[i] & 0xC0 == 0x80)
    assert splits > case.frames // 4  # most boundaries fall inside a code point


def test_payload_is_deterministic_and_differs_per_case_and_seed() -> None:
    a, b = LargeCase(64 * KIB, None, Opcode.BINARY), LargeCase(64 * KIB, 256, Opcode.BINARY)
    assert payload(a, 1) == payload(a, 1)
    assert payload(a, 1) != payload(a, 2) and payload(a, 1) != payload(b, 1)


@pytest.mark.parametrize("case", [SMALL_TEXT, SMALL_BINARY, LargeCase(64 * KIB, 1024,
                                                                       Opcode.TEXT)])
def test_wire_is_the_message_for_a_real_parser(case: LargeCase) -> None:
    data = payload(case, 3)
    rng = random.Random(1)
    chunks = list(wire_chunks(case, data, lambda: rng.randbytes(4), batch=1000))
    server = Connection(ConnectionType.SERVER)
    got, frames = [], 0
    for chunk in chunks:
        server.receive_data(chunk)
        for event in server.events():
            assert isinstance(event, TextMessage | BytesMessage)
            got.append(event.data.encode() if isinstance(event, TextMessage) else event.data)
            frames += event.frame_finished  # a large frame arrives in several pieces
    assert b"".join(got) == data and frames == case.frames


def _server(case: LargeCase, data: bytes, step: int | None = None) -> bytes:
    """An echo as a server sends it (unmasked), split every ``step`` bytes."""
    step = step or len(data)
    starts = range(0, len(data), step)
    return b"".join(build_frame(case.opcode if i == 0 else 0, data[s:s + step],
                                fin=s == starts[-1]) for i, s in enumerate(starts))


def _feed_three_ways(wire: bytes, case: LargeCase, data: bytes) -> list[EchoCheck]:
    whole, bytewise, trailing = (EchoCheck(data, case.opcode) for _ in range(3))
    whole.feed(wire)
    for i in range(len(wire)):
        bytewise.feed(wire[i:i + 1])
    trailing.feed(wire + build_frame(Opcode.TEXT, b"more"))
    return [whole, bytewise, trailing]


@pytest.mark.parametrize("step", [None, 1000, 7])
def test_identical_echo_passes_however_the_server_fragments_it(step: int | None) -> None:
    data = payload(SMALL_TEXT, 5)
    for check in _feed_three_ways(_server(SMALL_TEXT, data, step), SMALL_TEXT, data):
        assert check.decided
        result = judge(check, Transport.OPEN)
        assert result.verdict is Verdict.PASS and result.counter is None


def test_altered_short_long_and_wrong_opcode_echoes_are_high() -> None:
    data = payload(SMALL_BINARY, 5)
    flipped = bytearray(data)
    flipped[3000] ^= 1
    bad = {
        "differs at byte 3000": _server(SMALL_BINARY, bytes(flipped)),
        "ended after": _server(SMALL_BINARY, data[:-1]),
        "longer": _server(SMALL_BINARY, data + b"x"),
        "opcode": build_frame(Opcode.TEXT, data),
    }
    for needle, wire in bad.items():
        for check in _feed_three_ways(wire, SMALL_BINARY, data):
            result = judge(check, Transport.EOF)
            assert result.counter == LARGE_ECHO_ALTERED and result.verdict is Verdict.VIOLATION
            assert needle in result.detail


def test_close_1009_is_information_other_codes_lenient() -> None:
    data = payload(SMALL_BINARY, 5)
    for code, counter, verdict in ((1009, SIZE_LIMIT, Verdict.PASS),
                                   (1008, LARGE_REFUSED, Verdict.LENIENT),
                                   (1011, LARGE_REFUSED, Verdict.LENIENT)):
        for check in _feed_three_ways(build_frame(Opcode.CLOSE, close_payload(code)),
                                      SMALL_BINARY, data):
            result = judge(check, Transport.EOF)
            assert (result.counter, result.verdict, result.close_code) == (counter, verdict, code)


def test_forbidden_close_code_is_the_usual_must_miss() -> None:
    check = EchoCheck(b"x", Opcode.BINARY)
    check.feed(build_frame(Opcode.CLOSE, close_payload(1006)))
    result = judge(check, Transport.EOF)
    assert result.reaction is LargeReaction.CLOSED_BAD and result.also_counts


def test_drop_without_close_and_stall_and_alive() -> None:
    data = payload(SMALL_BINARY, 5)
    partial = EchoCheck(data, Opcode.BINARY)
    partial.feed(build_frame(Opcode.BINARY, data[:100], fin=False))
    for transport in (Transport.EOF, Transport.RESET):
        result = judge(partial, transport)
        assert result.counter == LARGE_DROPPED and result.echoed == 100
    stalled = judge(EchoCheck(data, Opcode.BINARY), Transport.OPEN)
    assert stalled.reaction is LargeReaction.HANG and stalled.also_counts
    alive = EchoCheck(data, Opcode.BINARY)
    alive.feed(build_frame(Opcode.PONG, CANARY))
    assert judge(alive, Transport.OPEN).verdict is Verdict.LENIENT


def test_masked_server_frame_is_garbage() -> None:
    check = EchoCheck(b"abc", Opcode.BINARY)
    check.feed(build_frame(Opcode.BINARY, b"abc", mask_key=b"\x01\x02\x03\x04"))
    assert judge(check, Transport.OPEN).reaction is LargeReaction.GARBAGE


def test_any_bytes_yield_a_judgement() -> None:
    rng = random.Random(11)
    for _ in range(300):
        check = EchoCheck(rng.randbytes(rng.randrange(0, 64)), Opcode.BINARY)
        check.feed(rng.randbytes(rng.randrange(0, 300)))
        for transport in Transport:
            assert judge(check, transport).verdict in Verdict
