"""protocols.preflight from bytes alone: whole, byte by byte, and with trailing data."""

from __future__ import annotations

import random

import pytest

from protocols.preflight import EVIDENCE_CAP, AnswerWatcher, Behaviour, Ending, Finding


def _watch(data: bytes, ending: Ending = Ending.EOF, split: str = "whole",
           **caps: int) -> Finding:
    watcher = AnswerWatcher(**caps)
    if split == "bytes":
        for i in range(len(data)):
            watcher.feed(data[i:i + 1])
    else:
        watcher.feed(data)
    return watcher.finish(ending, 3.0)


SPLITS = ["whole", "bytes"]
OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"

ANSWERED = {
    "content-length": OK_HEAD + b"hello",
    "404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
    "500-empty": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n0\r\n\r\n",
    "chunked-trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "no-reason": b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
    "204": b"HTTP/1.1 204 No Content\r\n\r\n",
    "interim-100": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    "same-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", sorted(ANSWERED))
def test_complete_responses_are_answered(name: str, split: str) -> None:
    finding = _watch(ANSWERED[name], Ending.DEADLINE, split)
    assert finding.behaviour is Behaviour.ANSWERED, finding.detail


@pytest.mark.parametrize("split", SPLITS)
def test_trailing_data_after_a_complete_response_is_ignored(split: str) -> None:
    watcher = AnswerWatcher()
    data = OK_HEAD + b"hello" + b"\x00garbage after the response"
    chunks = [data] if split == "whole" else [data[i:i + 1] for i in range(len(data))]
    for chunk in chunks:
        watcher.feed(chunk)
    assert watcher.decided
    assert watcher.finish(Ending.DEADLINE, 1.0).behaviour is Behaviour.ANSWERED


@pytest.mark.parametrize("split", SPLITS)
def test_close_delimited_body_ends_at_eof(split: str) -> None:
    data = b"HTTP/1.0 200 OK\r\n\r\nbody until close"
    assert _watch(data, Ending.EOF, split).behaviour is Behaviour.ANSWERED
    assert _watch(data, Ending.DEADLINE, split).behaviour is Behaviour.ENDLESS


BROKEN = {
    # name: (bytes, how the read ended, behaviour, fragment of the detail)
    "garbage": (b"\x00\x01\x02 not http at all", Ending.EOF, Behaviour.GARBAGE, "not an HTTP"),
    "html-no-head": (b"<html>hello</html>", Ending.EOF, Behaviour.GARBAGE, "not an HTTP"),
    "bad-status-line": (b"HTTP/1.1 OK\r\n\r\n", Ending.EOF, Behaviour.GARBAGE, "status line"),
    "bad-header": (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", Ending.EOF,
                   Behaviour.GARBAGE, "header line"),
    "bad-length": (b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", Ending.EOF,
                   Behaviour.GARBAGE, "invalid Content-Length"),
    "two-lengths": (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                    Ending.EOF, Behaviour.GARBAGE, "invalid Content-Length"),
    "bad-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", Ending.EOF,
                  Behaviour.GARBAGE, "chunk-size"),
    "truncated-head": (b"HTTP/1.1 200 OK\r\nX-A: b\r\n", Ending.EOF, Behaviour.GARBAGE,
                       "truncated"),
    "truncated-body": (OK_HEAD + b"he", Ending.RESET, Behaviour.GARBAGE, "truncated"),
    "nothing-close": (b"", Ending.EOF, Behaviour.SILENT, "without sending a byte"),
    "nothing-reset": (b"", Ending.RESET, Behaviour.SILENT, "reset the connection"),
    "nothing-deadline": (b"", Ending.DEADLINE, Behaviour.SILENT, "sent nothing in 3.0 s"),
    "head-stalls": (b"HTTP/1.1 200 OK\r\nX-A: b\r\n", Ending.DEADLINE, Behaviour.ENDLESS,
                    "head unfinished"),
    "body-stalls": (OK_HEAD + b"he", Ending.DEADLINE, Behaviour.ENDLESS, "body unfinished"),
    "huge-length-stalls": (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nab",
                           Ending.DEADLINE, Behaviour.ENDLESS, "body unfinished"),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_answers(name: str, split: str) -> None:
    data, ending, behaviour, fragment = BROKEN[name]
    finding = _watch(data, ending, split)
    assert finding.behaviour is behaviour, finding.detail
    assert fragment in finding.detail
    # Bytes after the decision are not read (the prober stops): evidence is a prefix.
    assert finding.received <= len(data) and data.startswith(finding.evidence)
    assert finding.evidence == data[:finding.received]


def test_endless_header_lines_hit_the_head_cap_with_bounded_memory() -> None:
    watcher = AnswerWatcher(head_cap=4096)
    watcher.feed(b"HTTP/1.1 200 OK\r\n")
    fed = 0
    while not watcher.decided and fed < 1_000_000:
        watcher.feed(b"X-Filler: yes\r\n" * 16)
        fed += 1
    finding = watcher.finish(Ending.DEADLINE, 1.0)
    assert finding.behaviour is Behaviour.ENDLESS and "endless header lines" in finding.detail
    assert len(finding.evidence) == EVIDENCE_CAP and finding.received < 8192


def test_streaming_body_over_the_cap_is_endless() -> None:
    watcher = AnswerWatcher(body_cap=10_000)
    watcher.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(1000):
        watcher.feed(b"400\r\n" + b"x" * 0x400 + b"\r\n")
        if watcher.decided:
            break
    finding = watcher.finish(Ending.DEADLINE, 1.0)
    assert finding.behaviour is Behaviour.ENDLESS and "over 10000" in finding.detail


def test_declared_big_body_flowing_past_the_cap_is_an_answer() -> None:
    watcher = AnswerWatcher(body_cap=10_000)
    watcher.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n")
    for _ in range(20):
        watcher.feed(b"x" * 1000)
    finding = watcher.finish(Ending.DEADLINE, 1.0)
    assert finding.behaviour is Behaviour.ANSWERED and "50000-byte body" in finding.detail


@pytest.mark.parametrize("split", SPLITS)
def test_event_stream_is_judged_at_its_head(split: str) -> None:
    data = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\n\r\ndata: tick\n\n")
    assert _watch(data, Ending.DEADLINE, split).behaviour is Behaviour.ANSWERED


def test_any_input_yields_a_finding() -> None:
    rng = random.Random(7)
    pieces = [b"HTTP/1.1 ", b"200 OK", b"\r\n", b"\n", b"Content-Length: 3", b"\x00",
              b"Transfer-Encoding: chunked", b"0\r\n", b"zz", b":", b"abc", b"\xff"]
    for _ in range(2000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        watcher = AnswerWatcher()
        for i in range(0, len(data), rng.randint(1, 7)):
            watcher.feed(data[i:i + 7])
        finding = watcher.finish(rng.choice(list(Ending)), 1.0)
        assert isinstance(finding.behaviour, Behaviour) and finding.detail
