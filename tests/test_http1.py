"""protocols.http1: request builder and incremental response parser, bytes only.

Every parser case runs three ways (whole buffer, one byte at a time, with a pipelined second
response behind it), plus a fuzz property: any bytes give a Response, None, or one of our
typed ResponseErrors -- never another exception.
"""

from __future__ import annotations

import random
import time

import h11
import pytest

from protocols.errors import HarnessError, TargetError
from protocols.http1 import (
    MAX_INTERIM,
    RequestBuildError,
    Response,
    ResponseError,
    ResponseIncomplete,
    ResponseParser,
    ResponseProtocolError,
    ResponseTooLarge,
    build_request,
)

NEXT = b"HTTP/1.1 204 No Content\r\nServer: next\r\n\r\n"


def drain(parser: ResponseParser) -> list[Response]:
    out = []
    while (response := parser.next_response()) is not None:
        out.append(response)
    return out


def parse(data: bytes, methods: tuple[str, ...], mode: str, eof: bool) -> list[Response]:
    parser = ResponseParser()
    for method in methods:
        parser.expect(method)
    out: list[Response] = []
    if mode == "whole":
        parser.feed(data)
        out += drain(parser)
    else:
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
            out += drain(parser)
    if eof:
        parser.feed_eof()
        out += drain(parser)
    return out


def three_ways(
    data: bytes, methods: tuple[str, ...] = ("GET",), *, eof: bool = False, trailing: bool = True
) -> list[Response]:
    """Parse whole, byte by byte and (unless close-delimited) with a response behind it."""
    whole = parse(data, methods, "whole", eof)
    assert parse(data, methods, "bytes", eof) == whole
    if trailing:
        for mode in ("whole", "bytes"):
            both = parse(data + NEXT, (*methods, "GET"), mode, eof)
            assert both[:-1] == whole
            assert both[-1].status == 204
            assert both[-1].header("server") == b"next"
    return whole


def fails(
    data: bytes, error: type[ResponseError], methods: tuple[str, ...] = ("GET",), eof: bool = False
) -> None:
    for mode in ("whole", "bytes"):
        with pytest.raises(error):
            parse(data, methods, mode, eof)


# -- framing ---------------------------------------------------------------------------------


def test_content_length_response():
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
        b'Set-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n{"a":1}'
    )
    (response,) = three_ways(data)
    assert response.status == 200
    assert response.reason == b"OK"
    assert response.http_version == b"1.1"
    assert response.body == b'{"a":1}'
    assert response.keep_alive
    assert response.header("Content-Type") == b"application/json"
    assert response.header(b"missing") is None
    assert response.header_values("SET-COOKIE") == [b"a=1", b"b=2"]
    assert response.headers[0] == (b"content-type", b"application/json")


def test_field_values_lose_surrounding_whitespace_only():
    (response,) = three_ways(b"HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nContent-Length: 0\r\n\r\n")
    assert response.header("x-a") == b"a  b"


def test_status_line_without_reason():
    (response,) = three_ways(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
    assert response.status == 200 and response.reason == b""
    (response,) = three_ways(b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n")
    assert response.reason == b""


def test_chunked_with_extensions_and_trailers():
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;name=value;quoted="a;b"\r\nhello\r\n'
        b"1 ; bare\r\n,\r\n"
        b"6\r\n world\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    (response,) = three_ways(data)
    assert response.body == b"hello, world"
    assert response.trailers == ((b"x-checksum", b"abc"), (b"x-other", b"1"))
    assert response.keep_alive


def test_chunked_without_trailers_and_uppercase_hex():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"
    (response,) = three_ways(data)
    assert response.body == b"0123456789"
    assert response.trailers == ()


def test_close_delimited_body_completes_on_eof():
    data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until close"
    (response,) = three_ways(data, eof=True, trailing=False)
    assert response.body == b"all of this, until close"
    assert not response.keep_alive
    parser = ResponseParser()
    parser.feed(data)
    assert parser.next_response() is None  # not complete before EOF


def test_transfer_coding_other_than_chunked_reads_until_close():
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b raw"
    (response,) = three_ways(data, eof=True, trailing=False)
    assert response.body == b"\x1f\x8b raw"
    assert not response.keep_alive


def test_head_response_has_no_body_despite_content_length():
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    (response,) = three_ways(data, ("HEAD",))
    assert response.body == b"" and response.header("content-length") == b"1234"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int):
    data = b"HTTP/1.1 %d X\r\nContent-Length: 5\r\n\r\n" % status
    (response,) = three_ways(data)
    assert response.status == status and response.body == b""


def test_interim_responses_are_skipped():
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    (response,) = three_ways(data, ("POST",))
    assert response.status == 201 and response.body == b"ok"


def test_101_is_returned_and_ends_http():
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    for mode in ("whole", "bytes"):
        parser = ResponseParser()
        parser.expect("GET")
        got = []
        for chunk in [data] if mode == "whole" else [data[i : i + 1] for i in range(len(data))]:
            parser.feed(chunk)
            got += drain(parser)
        assert [r.status for r in got] == [101]
        assert not got[0].keep_alive
        assert parser.switched
        assert parser.trailing_data == b"\x81\x02hi"


def test_connect_2xx_switches_to_tunnel():
    parser = ResponseParser()
    parser.expect("CONNECT")
    parser.feed(b"HTTP/1.1 200 Connection Established\r\n\r\ntunnel bytes")
    (response,) = drain(parser)
    assert response.status == 200 and parser.switched
    assert parser.trailing_data == b"tunnel bytes"


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Keep-Alive, Close", False),
        (b"1.1", b"upgrade", True),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"foo, keep-alive", True),
    ],
)
def test_keep_alive_rules(version: bytes, connection: bytes | None, keep_alive: bool):
    head = b"HTTP/" + version + b" 200 OK\r\nContent-Length: 0\r\n"
    if connection is not None:
        head += b"Connection: " + connection + b"\r\n"
    (response,) = three_ways(head + b"\r\n")
    assert response.keep_alive is keep_alive
    assert response.http_version == version


def test_bare_lf_line_endings_are_accepted():
    data = b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nhi"
    (response,) = three_ways(data)
    assert response.body == b"hi" and response.header("x-a") == b"b"
    data = b"HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 2\r\n\r\nhi"
    (response,) = three_ways(data)
    assert response.header("x-a") == b"b" and response.body == b"hi"


def test_identical_repeated_content_length_is_one_value():
    (response,) = three_ways(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert response.body == b"abc"
    (response,) = three_ways(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc")
    assert response.body == b"abc"


def test_pipelined_responses_follow_expectations():
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"  # HEAD: no body
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    )
    got = three_ways(data, ("HEAD", "GET"))
    assert [r.body for r in got] == [b"", b"abc"]


def test_clean_close_between_responses_is_not_an_error():
    parser = ResponseParser()
    parser.expect("GET")
    parser.feed_eof()
    assert parser.next_response() is None
    assert parser.eof and parser.idle
    with pytest.raises(HarnessError):
        parser.feed(b"late")


# -- malformed server output ------------------------------------------------------------------


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 200OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1  200 OK",
        b"HTTP/1.1 099 Low",
        b"HTTP/1.1 600 High",
        b"HTTX/1.1 200 OK",
        b"http/1.1 200 OK",
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"HTTP/1.1",
        b"",
        b"garbage",
        b"\x16\x03\x01\x02\x00",
    ],
)
def test_bad_status_line(status_line: bytes):
    fails(status_line + b"\r\nContent-Length: 0\r\n\r\n", ResponseProtocolError)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (b"NoColon\r\n", "no colon"),
        (b": empty-name\r\n", "empty name"),
        (b"Bad Name: x\r\n", "space in name"),
        (b"Name : x\r\n", "space before colon"),
        (b"N\x7fme: x\r\n", "DEL in name"),
        (b"X-A: a\r\n b\r\n", "obs-fold"),
        (b"X-A: a\r\n\tb\r\n", "obs-fold tab"),
        (b"X-A: a\rb\r\n", "bare CR"),
        (b"X-A: a\x00b\r\n", "NUL"),
        (b"X-A: a\x1bb\r\n", "ESC"),
        (b"Content-Length: abc\r\n", "non-numeric CL"),
        (b"Content-Length: -1\r\n", "negative CL"),
        (b"Content-Length: +1\r\n", "signed CL"),
        (b"Content-Length: 0x1\r\n", "hex CL"),
        (b"Content-Length: \r\n", "empty CL"),
        (b"Content-Length: 1\r\nContent-Length: 2\r\n", "conflicting CL"),
        (b"Content-Length: 1, 2\r\n", "conflicting CL list"),
        (b"Content-Length: 99999999999999999999\r\n", "absurd CL"),
        (b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n", "CL and TE"),
        (b"Transfer-Encoding: chunked, chunked\r\n", "chunked twice"),
        (b"Transfer-Encoding: chunked,\r\n", "empty coding"),
    ],
)
def test_bad_header_section(fields: bytes, why: str):
    fails(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n0\r\n\r\n", ResponseProtocolError)


def test_transfer_encoding_in_http10_is_faulty_framing():
    fails(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ResponseProtocolError)


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"5;\r\nhello\r\n0\r\n\r\n",
        b'5;a="open\r\nhello\r\n0\r\n\r\n',
        b"5;a b\r\nhello\r\n0\r\n\r\n",
        b"3\r\nhello\r\n0\r\n\r\n",  # data longer than the size: no CRLF after it
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n",
        b"11111111111111111\r\n",
    ],
)
def test_bad_chunking(chunks: bytes):
    fails(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, ResponseProtocolError)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ],
)
def test_truncated_by_close_is_incomplete(data: bytes):
    fails(data, ResponseIncomplete, eof=True)
    assert issubclass(ResponseIncomplete, ResponseProtocolError)


def test_errors_are_sticky_and_typed_as_target_errors():
    parser = ResponseParser()
    parser.feed(b"HTTP/9.9 200 OK\r\n\r\n")
    with pytest.raises(ResponseProtocolError) as first:
        parser.next_response()
    assert isinstance(first.value, TargetError) and first.value.reason
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ResponseProtocolError) as again:
        parser.next_response()
    assert again.value is first.value
    assert parser.buffered_bytes == 0


# -- caps ---------------------------------------------------------------------------------------


def test_endless_header_section_is_cut_at_the_cap():
    parser = ResponseParser(max_header_bytes=4096)
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ResponseTooLarge):
        for _ in range(10_000):
            parser.feed(b"X-Endless: " + b"a" * 100 + b"\r\n")
            assert parser.next_response() is None
            assert parser.buffered_bytes <= 4096 + 200
    assert parser.buffered_bytes == 0


def test_head_over_the_cap_even_when_complete():
    fails(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
        ResponseTooLarge,
    )


def test_too_many_fields():
    parser = ResponseParser(max_headers=10)
    parser.feed(b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 11 + b"Content-Length: 0\r\n\r\n")
    with pytest.raises(ResponseTooLarge):
        parser.next_response()
    parser = ResponseParser(max_headers=10)
    parser.feed(b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 9 + b"Content-Length: 0\r\n\r\n")
    assert parser.next_response() is not None


def test_declared_body_over_the_cap_fails_before_reading_it():
    parser = ResponseParser(max_body_bytes=1000)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n")
    with pytest.raises(ResponseTooLarge):
        parser.next_response()


def test_chunked_body_over_the_cap():
    parser = ResponseParser(max_body_bytes=1000)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(ResponseTooLarge):
        for _ in range(100):
            parser.feed(b"64\r\n" + b"x" * 100 + b"\r\n")
            assert parser.next_response() is None
            assert parser.buffered_bytes <= 1000 + 110


def test_close_delimited_body_over_the_cap():
    parser = ResponseParser(max_body_bytes=1000)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(ResponseTooLarge):
        for _ in range(100):
            parser.feed(b"x" * 100)
            parser.next_response()


def test_large_body_streams_with_bounded_buffering():
    body = bytes(range(256)) * 4096  # 1 MiB
    parser = ResponseParser()
    parser.expect("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    response = None
    for offset in range(0, len(body), 65536):
        parser.feed(body[offset : offset + 65536])
        response = parser.next_response()
        assert parser.buffered_bytes <= len(body)
    assert response is not None and response.body == body


def test_interim_flood_is_capped():
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" * (MAX_INTERIM + 1))
    with pytest.raises(ResponseTooLarge):
        parser.next_response()


def test_feeding_without_draining_is_bounded():
    parser = ResponseParser(max_header_bytes=100, max_body_bytes=100)
    for _ in range(100):
        parser.feed(b"x" * 1000)
    assert parser.buffered_bytes == 0
    with pytest.raises(ResponseTooLarge):
        parser.next_response()


# -- fuzz ----------------------------------------------------------------------------------------

SEEDS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n\x00\x01",
]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, len(buf))
        if op < 0.4 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice(b"\r\n :;0123456789aZ\x00\x7f\xff\t")
        elif op < 0.7:
            buf[pos:pos] = rng.choice([b"\r\n", b"\n", b"\r", b" ", b"0", b"ff", b":", b";"])
        else:
            del buf[pos : pos + rng.randint(1, 4)]
    return bytes(buf)


def _run_fuzz_case(data: bytes, chunk: int, methods: list[str]) -> None:
    parser = ResponseParser(max_header_bytes=512, max_headers=8, max_body_bytes=256)
    for method in methods:
        parser.expect(method)
    try:
        for offset in range(0, len(data), chunk):
            parser.feed(data[offset : offset + chunk])
            while (response := parser.next_response()) is not None:
                assert isinstance(response, Response)
        parser.feed_eof()
        while (response := parser.next_response()) is not None:
            assert isinstance(response, Response)
    except ResponseError as exc:
        assert isinstance(exc.reason, str)


def test_fuzz_any_bytes_give_a_response_none_or_a_typed_error():
    rng = random.Random(9112)
    for _ in range(1500):
        if rng.random() < 0.3:
            data = rng.randbytes(rng.randint(0, 120))
        else:
            data = _mutate(rng, rng.choice(SEEDS) * rng.randint(1, 2))
        methods = [rng.choice(["GET", "HEAD", "POST", "CONNECT"]) for _ in range(3)]
        _run_fuzz_case(data, rng.choice([1, 2, 7, 4096]), methods)


# -- build_request ----------------------------------------------------------------------------


def test_build_get():
    assert build_request("GET", "/items?x=1", "example.com:8080", [("Accept", "*/*")]) == (
        b"GET /items?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n"
    )


def test_build_with_body_adds_content_length():
    wire = build_request("PUT", "/items/1", "h", [("Content-Type", "application/json")], b"{}")
    assert wire == (
        b"PUT /items/1 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    assert build_request("POST", "/x", "h").endswith(b"Content-Length: 0\r\n\r\n")
    assert b"Content-Length" not in build_request("DELETE", "/x", "h")


def test_built_requests_are_valid_http11():
    """h11 (as a server) accepts what we build, body included."""
    wire = build_request(
        "POST", "/items", "h:1", [("Cookie", "a=1; b=2"), ("X-Tab", "a\tb")], b'{"n":1}'
    )
    server = h11.Connection(h11.SERVER)
    server.receive_data(wire)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.method == b"POST" and request.target == b"/items"
    assert (b"host", b"h:1") in request.headers
    data = server.next_event()
    assert isinstance(data, h11.Data) and data.data == b'{"n":1}'
    assert isinstance(server.next_event(), h11.EndOfMessage)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "GE T"},
        {"method": ""},
        {"method": "GET\r\n"},
        {"target": "/a b"},
        {"target": "/a\r\nX-Injected: 1"},
        {"target": ""},
        {"target": "/caf\u00e9"},
        {"host": "h\r\nX: 1"},
        {"headers": [("X-A", "v\r\nX-Injected: 1")]},
        {"headers": [("X-A", "v\nw")]},
        {"headers": [("X-A", "v\x00")]},
        {"headers": [("Bad Name", "v")]},
        {"headers": [("X:A", "v")]},
        {"headers": [("Host", "other")]},
        {"headers": [("content-length", "5")]},
        {"headers": [("X-A", "caf\u00e9")]},
    ],
)
def test_build_refuses_injection(kwargs: dict):
    args = {"method": "GET", "target": "/", "host": "h", "headers": ()} | kwargs
    with pytest.raises(RequestBuildError) as info:
        build_request(**args)
    assert isinstance(info.value, HarnessError) and isinstance(info.value, ValueError)


# -- speed (reported, not asserted) -------------------------------------------------------------

TYPICAL = (
    b"HTTP/1.1 200 OK\r\nDate: Sat, 22 Nov 2025 03:00:00 GMT\r\nServer: refapp\r\n"
    b"Content-Type: application/json\r\nContent-Length: 50\r\nConnection: keep-alive\r\n"
    b"Cache-Control: no-store\r\n\r\n" + b"x" * 50
)


def test_parse_speed_report():
    """Typical 200 with 6 fields and a 50-byte body; run with -s to see the rate."""
    parser = ResponseParser()
    count = 20_000
    started = time.perf_counter()
    for _ in range(count):
        parser.expect("GET")
        parser.feed(TYPICAL)
        response = parser.next_response()
        assert parser.next_response() is None
    elapsed = time.perf_counter() - started
    assert response is not None and len(response.body) == 50
    print(
        f"\nhttp1 parse: {count / elapsed:,.0f} responses/s ({elapsed / count * 1e6:.1f} us each)"
    )
