"""protocols.load_template: exact request bytes, seeded replay, the static fast path, header
replacement, and one-line errors for every invalid template."""

from __future__ import annotations

import random
import uuid

import pytest

from protocols.load_errors import LoadInputError
from protocols.load_model import RequestTemplate
from protocols.load_template import compile_request, parse_placeholders


def render(template: RequestTemplate, seq: int = 7, seed: int = 1, vu: int = 3,
           host: str = "example.test:8080") -> bytes:
    return compile_request(template, host).render(seq, random.Random(seed), vu)


def test_plain_get():
    assert render(RequestTemplate()) == b"GET / HTTP/1.1\r\nHost: example.test:8080\r\n\r\n"


def test_headers_in_order_and_body_with_content_length():
    t = RequestTemplate("PUT", "/items/1?x=y", (("Accept", "*/*"), ("X-A", "b c")), b"hello")
    assert render(t) == (b"PUT /items/1?x=y HTTP/1.1\r\nHost: example.test:8080\r\n"
                         b"Accept: */*\r\nX-A: b c\r\nContent-Length: 5\r\n\r\nhello")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_methods_without_a_body_send_content_length_zero(method):
    assert render(RequestTemplate(method, "/")) == (
        method.encode() + b" / HTTP/1.1\r\nHost: example.test:8080\r\nContent-Length: 0\r\n\r\n")


def test_get_with_an_empty_body_still_says_content_length_zero():
    assert render(RequestTemplate("GET", "/", body=b"")) == (
        b"GET / HTTP/1.1\r\nHost: example.test:8080\r\nContent-Length: 0\r\n\r\n")


def test_no_connection_close_and_no_duplicated_fields():
    raw = render(RequestTemplate("POST", "/{seq}", (("X", "{vu}"),), b"{uuid}"))
    assert b"connection" not in raw.lower()
    assert raw.lower().count(b"host:") == 1
    assert raw.lower().count(b"content-length:") == 1


def test_placeholders_render_exact_values():
    seeded = random.Random(42)
    rand_value = seeded.randint(10, 20)
    uuid_value = str(uuid.UUID(int=seeded.getrandbits(128), version=4))
    t = RequestTemplate("POST", "/u/{seq}/{vu}?r={rand:10..20}",
                        (("X-Id", "{uuid}"), ("X-Lit", "{{seq}")), b'{"n": {seq}}')
    raw = render(t, seq=123, seed=42, vu=9)
    assert raw == (f"POST /u/123/9?r={rand_value} HTTP/1.1\r\nHost: example.test:8080\r\n"
                   f"X-Id: {uuid_value}\r\nX-Lit: {{seq}}\r\nContent-Length: 10\r\n\r\n"
                   '{"n": 123}').encode()
    assert uuid.UUID(uuid_value).version == 4


def test_templated_body_content_length_follows_the_rendered_length():
    compiled = compile_request(RequestTemplate("POST", "/", body=b"id={seq}"), "h")
    rng = random.Random(0)
    assert compiled.render(5, rng, 0).endswith(b"Content-Length: 4\r\n\r\nid=5")
    assert compiled.render(123456, rng, 0).endswith(b"Content-Length: 9\r\n\r\nid=123456")
    assert compiled.static is None


def test_utf8_body_keeps_its_bytes_and_counts_bytes_not_characters():
    body = "{\"name\": \"Zoë\", \"seq\": {seq}}".encode()
    raw = render(RequestTemplate("POST", "/", body=body), seq=1)
    assert raw.endswith(b'Content-Length: 26\r\n\r\n{"name": "Zo\xc3\xab", "seq": 1}')


def test_non_utf8_body_is_sent_verbatim_braces_and_all():
    body = b"\xff{seq}\x00{"
    compiled = compile_request(RequestTemplate("POST", "/", body=body), "h")
    assert compiled.static == b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n" + body


def test_rendering_replays_for_a_seed_and_differs_across_seeds():
    t = RequestTemplate("GET", "/{rand:0..1000000}/{uuid}", (("X-R", "{rand:1..9}"),))
    compiled = compile_request(t, "h")
    rng_a, rng_b, rng_c = random.Random(7), random.Random(7), random.Random(8)
    run_a = [compiled.render(i, rng_a, 1) for i in range(50)]
    run_b = [compiled.render(i, rng_b, 1) for i in range(50)]
    run_c = [compiled.render(i, rng_c, 1) for i in range(50)]
    assert run_a == run_b
    assert run_a != run_c
    assert len(set(run_a)) == 50


def test_rand_is_inclusive_and_uniform_enough():
    compiled = compile_request(RequestTemplate("GET", "/{rand:1..3}"), "h")
    rng = random.Random(3)
    seen = [compiled.render(0, rng, 0).split(b" ")[1] for _ in range(600)]
    assert set(seen) == {b"/1", b"/2", b"/3"}
    assert all(150 < seen.count(v) < 250 for v in set(seen))
    assert render(RequestTemplate("GET", "/{rand:5..5}")).startswith(b"GET /5 ")


def test_static_request_returns_the_same_bytes_object():
    compiled = compile_request(RequestTemplate("POST", "/a", (("A", "b"),), b"x"), "h")
    assert compiled.static == b"POST /a HTTP/1.1\r\nHost: h\r\nA: b\r\nContent-Length: 1\r\n\r\nx"
    first = compiled.render(1, random.Random(1), 1)
    assert first is compiled.static
    assert compiled.render(2, random.Random(2), 2) is first
    assert compiled.method == "POST"


def test_literal_braces_alone_are_still_static():
    compiled = compile_request(RequestTemplate("GET", "/{{x}"), "h")
    assert compiled.static == b"GET /{x} HTTP/1.1\r\nHost: h\r\n\r\n"


def test_user_host_replaces_the_generated_one_first_in_the_head():
    t = RequestTemplate("GET", "/", (("Accept", "*/*"), ("hOsT", "api-{vu}.test")))
    assert render(t, vu=4) == b"GET / HTTP/1.1\r\nHost: api-4.test\r\nAccept: */*\r\n\r\n"


def test_user_content_length_replaces_the_generated_one():
    t = RequestTemplate("POST", "/", (("content-length", "3"), ("X", "y")), b"abc")
    assert render(t, host="h") == (
        b"POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\nX: y\r\n\r\nabc")
    t = RequestTemplate("POST", "/", (("Content-Length", "0"),))
    assert render(t, host="h") == b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"


def test_user_transfer_encoding_frames_a_fixed_body_itself():
    t = RequestTemplate("POST", "/", (("Transfer-Encoding", "chunked"),), b"1\r\na\r\n0\r\n\r\n")
    assert render(t, host="h") == (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
                                   b"\r\n\r\n1\r\na\r\n0\r\n\r\n")


def test_latin1_header_value_is_sent_as_latin1():
    raw = render(RequestTemplate("GET", "/", (("X-Name", "café"),)), host="h")
    assert b"X-Name: caf\xe9\r\n" in raw


def test_rendered_requests_parse_as_one_request_each():
    """The bytes are well framed: two renders back to back split cleanly on the wire."""
    compiled = compile_request(RequestTemplate("POST", "/{seq}", body=b"v={rand:1..99}"), "h")
    rng = random.Random(5)
    raw = compiled.render(1, rng, 0) + compiled.render(22, rng, 0)
    first_end = raw.index(b"\r\n\r\n") + 4
    length = int(raw[:first_end].split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert raw[first_end + length:].startswith(b"POST /22 HTTP/1.1\r\n")


ERRORS = [
    (RequestTemplate("GE T"), "method is not a token: 'GE T'"),
    (RequestTemplate(""), "method is not a token: ''"),
    (RequestTemplate("GET\r\n"), "method is not a token: 'GET\\r\\n'"),
    (RequestTemplate("GET", "x"), "path must start with / and be printable ASCII without "
     "spaces (percent-encode the rest): 'x'"),
    (RequestTemplate("GET", "*"), "path must start with / and be printable ASCII without "
     "spaces (percent-encode the rest): '*'"),
    (RequestTemplate("GET", "/a b"), "path must start with / and be printable ASCII without "
     "spaces (percent-encode the rest): '/a b'"),
    (RequestTemplate("GET", "/a\r\nX: y"), "path must start with / and be printable ASCII "
     "without spaces (percent-encode the rest): '/a\\r\\nX: y'"),
    (RequestTemplate("GET", "/\x00"), "path must start with / and be printable ASCII "
     "without spaces (percent-encode the rest): '/\\x00'"),
    (RequestTemplate("GET", "/é"), "path must start with / and be printable ASCII "
     "without spaces (percent-encode the rest): '/é'"),
    (RequestTemplate(headers=(("X Y", "1"),)), "header name is not a token: 'X Y'"),
    (RequestTemplate(headers=(("", "1"),)), "header name is not a token: ''"),
    (RequestTemplate(headers=(("X:", "1"),)), "header name is not a token: 'X:'"),
    (RequestTemplate(headers=(("X", "a\r\nEvil: 1"),)), "header X value has CR/LF, controls "
     "or characters beyond latin-1: 'a\\r\\nEvil: 1'"),
    (RequestTemplate(headers=(("X", "a\nb"),)), "header X value has CR/LF, controls or "
     "characters beyond latin-1: 'a\\nb'"),
    (RequestTemplate(headers=(("X", "a\x00"),)), "header X value has CR/LF, controls or "
     "characters beyond latin-1: 'a\\x00'"),
    (RequestTemplate(headers=(("X", "☃"),)), "header X value has CR/LF, controls or "
     "characters beyond latin-1: '☃'"),
    (RequestTemplate(headers=(("Host", "a"), ("host", "b"))), "header host given twice"),
    (RequestTemplate("POST", headers=(("Content-Length", "1"), ("content-length", "1")),
                     body=b"x"), "header content-length given twice"),
    (RequestTemplate("POST", headers=(("Content-Length", "4"),), body=b"abc"),
     "Content-Length '4' does not match the 3-byte body (it would desync keep-alive)"),
    (RequestTemplate("GET", headers=(("Content-Length", "x"),)),
     "Content-Length 'x' does not match the 0-byte body (it would desync keep-alive)"),
    (RequestTemplate("POST", headers=(("Content-Length", "2"),), body=b"{seq}"),
     "Content-Length cannot be given with a templated body (its length varies; it is "
     "computed)"),
    (RequestTemplate("POST", headers=(("Content-Length", "1"), ("Transfer-Encoding", "x")),
                     body=b"a"), "Content-Length with Transfer-Encoding: send one of them"),
    (RequestTemplate("POST", headers=(("Transfer-Encoding", "chunked"),), body=b"{seq}"),
     "Transfer-Encoding cannot frame a templated body (its chunk sizes would not match): "
     "drop the header"),
    (RequestTemplate("GET", "/{foo}"), "unknown placeholder '{foo}' in path (use {seq}, "
     "{vu}, {uuid}, {rand:A..B}; write {{ for a literal brace)"),
    (RequestTemplate("GET", "/{SEQ}"), "unknown placeholder '{SEQ}' in path (use {seq}, "
     "{vu}, {uuid}, {rand:A..B}; write {{ for a literal brace)"),
    (RequestTemplate("GET", "/{rand:1..}"), "placeholder '{rand:1..}' in path: write "
     "{rand:A..B} with integers 0 <= A <= B"),
    (RequestTemplate("GET", "/{rand:-1..5}"), "placeholder '{rand:-1..5}' in path: write "
     "{rand:A..B} with integers 0 <= A <= B"),
    (RequestTemplate("GET", "/{rand:9..1}"), "placeholder '{rand:9..1}' in path: 9 is above 1"),
    (RequestTemplate("GET", "/{seq"), "unclosed placeholder '{seq' in path (write {{ for a "
     "literal brace)"),
    (RequestTemplate(headers=(("X", "{nope}"),)), "unknown placeholder '{nope}' in header X "
     "(use {seq}, {vu}, {uuid}, {rand:A..B}; write {{ for a literal brace)"),
    (RequestTemplate("POST", body=b'{"a": {' + b"x" * 60), "unclosed placeholder "
     "'{" + "x" * 19 + "' in body (write {{ for a literal brace)"),
]


@pytest.mark.parametrize(("template", "message"), ERRORS)
def test_errors_are_one_line(template, message):
    with pytest.raises(LoadInputError) as info:
        compile_request(template, "h")
    assert "\n" not in str(info.value)
    assert str(info.value) == message


@pytest.mark.parametrize("host", ["", "a b", "h\r\nX: 1", "hé"])
def test_bad_host_header(host):
    with pytest.raises(LoadInputError) as info:
        compile_request(RequestTemplate(), host)
    assert str(info.value) == f"host must be printable ASCII without spaces: {host!r}"


def test_parse_placeholders_pieces():
    pieces = parse_placeholders("a{{b}{seq}c", "x")
    assert pieces[0] == b"a{b}"
    assert callable(pieces[1])
    assert pieces[2] == b"c"
    assert pieces[1](12, random.Random(0), 0) == b"12"


def test_json_bodies_need_no_escaping() -> None:
    compiled = compile_request(RequestTemplate("POST", "/a", (), b'{"a": {"id": {seq}}}'), "h")
    assert compiled.render(7, random.Random(0), 1).endswith(b'\r\n\r\n{"a": {"id": 7}}')
    static = compile_request(RequestTemplate("POST", "/a", (), b'{"a": 1}, }'), "h")
    assert static.static is not None and static.static.endswith(b'{"a": 1}, }')
