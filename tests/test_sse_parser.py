"""Bytes-only tests for protocols.sse (WHATWG "Interpreting an event stream")."""

from __future__ import annotations

import random

import pytest

from protocols.sse import SseComment, SseEvent, SseOverflow, SseParser, SseRetry


def _feed(data: bytes, how: str, **caps: int) -> list:
    parser = SseParser(**caps)
    if how == "bytewise":
        out = []
        for byte in data:
            out += parser.feed(bytes([byte]))
        return out
    if how == "trailing":
        return parser.feed(data + b"data: unfinished")
    return parser.feed(data)


THREE_WAYS = pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])


@THREE_WAYS
def test_spec_example_stocks(how: str) -> None:
    data = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert _feed(data, how) == [SseEvent("message", "YHOO\n+2\n10", "")]


@THREE_WAYS
def test_spec_example_ids_and_comments(how: str) -> None:
    data = (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    assert _feed(data, how) == [
        SseComment(" test stream"),
        SseEvent("message", "first event", "1"),
        SseEvent("message", "second event", ""),
        SseEvent("message", " third event", ""),
    ]


@THREE_WAYS
def test_spec_example_empty_data(how: str) -> None:
    data = b"data\n\ndata\ndata\n\ndata:\n"
    # The last block never gets its blank line: not dispatched.
    assert _feed(data, how) == [SseEvent("message", "", ""), SseEvent("message", "\n", "")]


@THREE_WAYS
def test_line_ends_cr_lf_crlf_mixed(how: str) -> None:
    data = b"event: a\rdata: 1\r\n\r\nevent: b\ndata: 2\r\rdata: 3\n\r\n"
    assert _feed(data, how) == [
        SseEvent("a", "1", ""),
        SseEvent("b", "2", ""),
        SseEvent("message", "3", ""),
    ]


def test_cr_at_chunk_end_then_lf_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n") == []  # the LF belongs to the CR: no blank line yet
    assert parser.feed(b"\r\n") == [SseEvent("message", "x", "")]


@THREE_WAYS
def test_bom_only_at_stream_start(how: str) -> None:
    data = "\ufeffdata: a\n\n\ufeffdata: b\n\n".encode()
    # A second BOM is part of a field name ("\ufeffdata"), which is ignored.
    assert _feed(data, how) == [SseEvent("message", "a", "")]


@THREE_WAYS
def test_id_with_nul_is_ignored_and_id_persists(how: str) -> None:
    data = b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\ndata: c\n\n"
    assert _feed(data, how) == [
        SseEvent("message", "a", "7"),
        SseEvent("message", "b", "7"),
        SseEvent("message", "c", "7"),
    ]


@THREE_WAYS
def test_retry_only_ascii_digits(how: str) -> None:
    data = b"retry: 1500\nretry: 12a\nretry: \xd9\xa3\nretry:\nretry: 20\n\n"
    assert _feed(data, how) == [SseRetry(1500), SseRetry(20)]


@THREE_WAYS
def test_event_type_resets_and_unknown_fields_are_ignored(how: str) -> None:
    data = b"event: tick\nfoo: bar\n\ndata: x\n\nevent: up\ndata: y\nevent\n\n"
    # "event" without colon sets the type buffer to "" -> default "message".
    assert _feed(data, how) == [SseEvent("message", "x", ""), SseEvent("message", "y", "")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert SseParser().feed(b"data: \xff\xfe\n\n") == [SseEvent("message", "\ufffd\ufffd", "")]


def test_close_discards_the_pending_event() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.mid_event
    assert parser.close() == []
    assert not parser.mid_event


def test_caps_stop_the_parser() -> None:
    parser = SseParser(max_line=16)
    (overflow,) = parser.feed(b"data: " + b"x" * 20)
    assert isinstance(overflow, SseOverflow) and parser.stopped is overflow
    assert parser.feed(b"\n\n") == []
    parser = SseParser(max_event=10)
    out = parser.feed(b"data: 123456\ndata: 123456\n\n")
    assert len(out) == 1 and isinstance(out[0], SseOverflow)


def test_trickled_long_line_is_linear_and_capped() -> None:
    parser = SseParser(max_line=5000)
    out = []
    for _ in range(4000):
        out += parser.feed(b"y")
    assert out == [] and parser.mid_event
    out = parser.feed(b"y" * 1001)
    assert isinstance(out[-1], SseOverflow)


def test_fuzz_any_bytes_yield_items() -> None:
    rng = random.Random(2024)
    alphabet = b"data:id event\r\n\x00\xff\xef\xbb\xbfretry:12"
    for _ in range(2000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        parser = SseParser(max_line=32, max_event=64)
        out = []
        step = rng.randrange(1, 9)
        for i in range(0, len(data), step):
            out += parser.feed(data[i : i + step])
        out += parser.close()
        assert all(isinstance(i, (SseEvent, SseComment, SseRetry, SseOverflow)) for i in out)
