"""The adversarial catalogue: every builder sends the defect it claims, and nothing else.

A strict server-side parser (h11) is used as the reference for bytes that must be *valid*
(baselines, canaries, and the RFC reading of framing cases); the defects themselves are
checked by looking at the raw bytes.
"""

from __future__ import annotations

import re

import h11
import pytest

from protocols.adversarial_cases import (
    BODY,
    BY_NAME,
    CANARY_PARAM,
    CASES,
    JUNK,
    SMUGGLED_PATH,
    TLS_CLIENT_HELLO,
    AdversarialCase,
    baseline_request,
    canary_request,
    smuggled_request,
)
from protocols.outcome import Reaction, Requirement, Severity

HOST, PATH = "target.test:8080", "/items"
#: MUST cases resting on a definition of the protocol rather than a keyword.
DEFINITIONAL = {"get-with-body"}
RFC_SECTION = re.compile(r"^RFC (9110|9112|9113) §\d+(\.\d+)*( \(\d\))?$")


def built(name: str) -> bytes:
    return BY_NAME[name].build(HOST, PATH)


def split(message: bytes, eol: bytes = b"\r\n") -> tuple[bytes, list[bytes], bytes]:
    """(start line, field lines, body) of a message whose head ends with eol eol."""
    head, _, body = message.partition(eol + eol)
    start, *fields = head.split(eol)
    return start, fields, body


def field_values(message: bytes, name: str) -> list[bytes]:
    _, fields, _ = split(message)
    prefix = name.lower().encode() + b":"
    return [f.split(b":", 1)[1].strip() for f in fields if f.lower().startswith(prefix)]


def h11_requests(data: bytes) -> list[tuple[h11.Request, bytes]]:
    """Requests (and bodies) a strict RFC parser sees in ``data``; raises on invalid bytes."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    found: list[tuple[h11.Request, bytes]] = []
    body = b""
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            return found
        if isinstance(event, h11.Request):
            request, body = event, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            found.append((request, body))
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()


def decode_chunked(body: bytes) -> tuple[bytes, bytes]:
    """(decoded content, bytes after the chunked body) for a well-formed chunked body."""
    content = b""
    while True:
        line, _, body = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            assert body.startswith(b"\r\n")
            return content, body[2:]
        content += body[:size]
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


# -- the catalogue as a whole --------------------------------------------------------------


def test_at_least_forty_cases_with_unique_names() -> None:
    assert len(CASES) >= 40
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert set(BY_NAME) == set(names)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_is_grounded_and_consistent(case: AdversarialCase) -> None:
    assert RFC_SECTION.match(case.rfc), case.rfc
    assert len(case.quote) > 30
    assert isinstance(case.requirement, Requirement)
    assert isinstance(case.severity, Severity)
    assert case.allowed and all(isinstance(r, Reaction) for r in case.allowed)
    assert case.category in {"length", "fields", "host", "request-line", "chunked", "connection"}
    # A MUST-level quote for MUST cases (or the definition of framing itself).
    if case.requirement is Requirement.MUST:
        assert "MUST" in case.quote or case.name in DEFINITIONAL
    if case.smuggles:
        assert case.framing
    if case.must_close:
        assert Reaction.REJECTED_KEPT_ALIVE not in case.allowed
    if case.drip is not None:
        assert case.drip > 0 and not case.framing
    assert not (case.rejection_statuses & set(range(400, 500)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_builder_is_pure_bytes(case: AdversarialCase) -> None:
    first = case.build(HOST, PATH)
    assert isinstance(first, bytes) and first
    assert case.build(HOST, PATH) == first
    # The smuggled request is present exactly when the case says so.
    assert (SMUGGLED_PATH.encode() in first) == case.smuggles
    if case.category not in {"connection"} or case.name.startswith(("get-", "garbage", "lead")):
        assert PATH.encode() in first or case.name in {"target-asterisk-get", "target-missing"}


def test_baseline_and_canary_are_valid_requests() -> None:
    for method in ("GET", "POST"):
        ((request, body),) = h11_requests(baseline_request(method, HOST, PATH))
        assert request.method == method.encode() and request.target == PATH.encode()
        assert body == (b"" if method == "GET" else BODY)
    ((request, _),) = h11_requests(canary_request(HOST, PATH, "abc123"))
    assert request.target == f"{PATH}?{CANARY_PARAM}=abc123".encode()
    ((request, _),) = h11_requests(canary_request(HOST, "/q?x=1", "n"))
    assert request.target == f"/q?x=1&{CANARY_PARAM}=n".encode()
    ((request, _),) = h11_requests(smuggled_request(HOST))
    assert request.target == SMUGGLED_PATH.encode()


# -- message length ----------------------------------------------------------------------


def test_cl_conflicting_sends_two_different_lengths() -> None:
    data = built("cl-conflicting")
    lengths = field_values(data, "Content-Length")
    assert len(lengths) == 2 and lengths[0] != lengths[1]
    _, _, body = split(data)
    assert body == BODY + smuggled_request(HOST)
    assert [int(v) for v in lengths] == [len(BODY), len(body)]


def test_cl_conflicting_list_is_one_field_with_two_values() -> None:
    data = built("cl-conflicting-list")
    (value,) = field_values(data, "Content-Length")
    first, second = (int(v) for v in value.split(b","))
    assert first == len(BODY) and second == len(split(data)[2])


def test_cl_duplicate_same_is_valid_per_the_list_rule() -> None:
    data = built("cl-duplicate-same")
    assert field_values(data, "Content-Length") == [b"5", b"5"]
    assert split(data)[2] == BODY


@pytest.mark.parametrize(
    ("name", "value"),
    [("cl-hex", b"0x5"), ("cl-plus-sign", b"+5"), ("cl-negative", b"-1"),
     ("cl-underscore", b"0_5"), ("cl-empty", b"")],
)
def test_invalid_content_length_values(name: str, value: bytes) -> None:
    data = built(name)
    assert field_values(data, "Content-Length") == [value]
    assert not re.fullmatch(rb"[0-9]+", value)  # not 1*DIGIT
    assert split(data)[2] == BODY
    with pytest.raises(h11.RemoteProtocolError):
        h11_requests(data)


def test_cl_overflow_exceeds_64_bits_and_wraps_to_hello() -> None:
    data = built("cl-overflow")
    (value,) = field_values(data, "Content-Length")
    assert int(value) >= 2**64 and int(value) % 2**64 == len(BODY)
    assert split(data)[2] == BODY + smuggled_request(HOST)


def test_cl_te_aligned_lengths_agree() -> None:
    data = built("cl-te-aligned")
    _, _, body = split(data)
    assert field_values(data, "Transfer-Encoding") == [b"chunked"]
    assert field_values(data, "Content-Length") == [str(len(body)).encode()]
    assert decode_chunked(body) == (BODY, b"")


@pytest.mark.parametrize("name", ["cl-te-smuggle", "te-cl-smuggle", "te-http10"])
def test_cl_te_split_hides_the_smuggled_request_from_te_framing(name: str) -> None:
    data = built(name)
    start, fields, body = split(data)
    (cl,) = field_values(data, "Content-Length")
    content, rest = decode_chunked(body)
    assert content == smuggled_request(HOST) and rest == b""  # TE framing: one request
    assert body[int(cl) :].startswith(smuggled_request(HOST))  # CL framing: two
    names = [f.split(b":")[0].lower() for f in fields]
    te_first = names.index(b"transfer-encoding") < names.index(b"content-length")
    assert te_first == (name != "cl-te-smuggle")
    if name == "te-http10":
        assert start.endswith(b"HTTP/1.0") and b"Connection: keep-alive" in fields
    else:
        # h11 (a TE-first parser) sees exactly one request carrying the smuggled bytes.
        ((_, parsed_body),) = h11_requests(data)
        assert parsed_body == smuggled_request(HOST)


@pytest.mark.parametrize(
    ("name", "coding"),
    [("te-chunked-not-final", b"chunked, gzip"), ("te-gzip-only", b"gzip"),
     ("te-xchunked", b"xchunked"), ("te-unknown-then-chunked", b"assay-unknown, chunked"),
     ("te-chunked-twice", b"chunked, chunked")],
)
def test_transfer_codings(name: str, coding: bytes) -> None:
    assert field_values(built(name), "Transfer-Encoding") == [coding]
    assert not field_values(built(name), "Content-Length")


def test_te_duplicate_header_sends_two_lines() -> None:
    assert field_values(built("te-duplicate-header"), "Transfer-Encoding") == [b"chunked"] * 2


# -- field lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hidden"),
    [("ws-before-colon-te", b"\r\nTransfer-Encoding : chunked\r\n"),
     ("leading-ws-line-te", b"HTTP/1.1\r\n Transfer-Encoding: chunked\r\n"),
     ("obs-fold-te", b"\r\nX-Assay: a\r\n Transfer-Encoding: chunked\r\n"),
     ("bare-cr-value-te", b"\r\nX-Assay: a\rTransfer-Encoding: chunked\r\n")],
)
def test_hidden_transfer_encoding(name: str, hidden: bytes) -> None:
    data = built(name)
    assert hidden in data
    assert data.count(b"Transfer-Encoding") == 1
    _, _, body = split(data)
    assert field_values(data, "Content-Length") == [str(len(body)).encode()]
    assert body == b"0\r\n\r\n" + smuggled_request(HOST)


def test_obs_fold_te_read_by_the_rfc_is_one_request_with_a_body() -> None:
    # h11 replaces obs-fold with SP (RFC 9112 §5.2): the TE is part of X-Assay's value.
    ((request, body),) = h11_requests(built("obs-fold-te"))
    assert dict(request.headers)[b"x-assay"] == b"a Transfer-Encoding: chunked"
    assert body == b"0\r\n\r\n" + smuggled_request(HOST)


def test_ws_before_colon() -> None:
    assert b"\r\nX-Assay : 1\r\n" in built("ws-before-colon")


def test_obs_fold() -> None:
    assert b"\r\nX-Assay: a\r\n b\r\n\r\n" in built("obs-fold")


def test_bare_cr_request_line() -> None:
    data = built("bare-cr-request-line")
    assert data.startswith(f"GET {PATH} HTTP/1.1\rHost".encode())
    assert re.search(rb"\r(?!\n)", data)


@pytest.mark.parametrize(("name", "byte"), [("nul-in-value", b"\x00"), ("ctl-in-value", b"\x01")])
def test_control_bytes_in_values(name: str, byte: bytes) -> None:
    assert b"X-Assay: a" + byte + b"b\r\n" in built(name)


def test_bare_lf_line_ends_has_no_cr() -> None:
    data = built("bare-lf-line-ends")
    assert b"\r" not in data and data.endswith(b"\n\n")
    ((request, _),) = h11_requests(data)  # MAY accept: a real parser does
    assert request.target == PATH.encode()


def test_invalid_field_names() -> None:
    assert b"\r\nX-Ass(y: 1\r\n" in built("invalid-field-name")
    assert b"\r\n: assay\r\n" in built("empty-field-name")


def test_oversized_header_section() -> None:
    assert max(len(line) for line in built("field-oversized").split(b"\r\n")) > 64 * 1024
    assert len(split(built("fields-too-many"))[1]) > 1000


# -- Host ----------------------------------------------------------------------------------


def test_host_cases() -> None:
    assert field_values(built("host-missing"), "Host") == []
    assert len(field_values(built("host-duplicate"), "Host")) == 2
    (invalid,) = field_values(built("host-invalid"), "Host")
    assert b"/" in invalid and b" " in invalid  # neither is allowed in uri-host [":" port]


# -- request line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start"),
    [("target-space", b"GET /items?assay=a b HTTP/1.1"),
     ("target-ctl", b"GET /items?assay=a\x01b HTTP/1.1"),
     ("target-fragment", b"GET /items#assay HTTP/1.1"),
     ("target-asterisk-get", b"GET * HTTP/1.1"),
     ("target-missing", b"GET HTTP/1.1"),
     ("method-invalid-token", b"G(T /items HTTP/1.1"),
     ("sep-tab", b"GET\t/items\tHTTP/1.1"),
     ("sep-double-space", b"GET  /items  HTTP/1.1"),
     ("version-invalid", b"GET /items HTTP/1.x"),
     ("version-lowercase", b"GET /items http/1.1"),
     ("version-multi-digit", b"GET /items HTTP/1.10"),
     ("version-major-2", b"GET /items HTTP/2.0"),
     ("version-minor-high", b"GET /items HTTP/1.9")],
)
def test_request_lines(name: str, start: bytes) -> None:
    data = built(name)
    assert split(data)[0] == start
    assert field_values(data, "Host") == [HOST.encode()]


def test_target_too_long_exceeds_the_recommended_minimum_many_times() -> None:
    start = split(built("target-too-long"))[0]
    assert len(start) > 8 * 8000


def test_http09_has_no_version_and_no_fields() -> None:
    assert built("http09") == f"GET {PATH}\r\n".encode()


# -- chunked -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body"),
    [("chunk-size-hex-prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
     ("chunk-size-invalid", b"5g\r\nhello\r\n0\r\n\r\n"),
     ("chunk-data-overrun", b"3\r\nhello\r\n0\r\n\r\n"),
     ("chunk-size-bare-lf", b"5\nhello\r\n0\r\n\r\n"),
     ("chunk-data-bare-lf", b"5\r\nhello\n0\r\n\r\n"),
     ("chunk-ext-invalid", b'5;assay="open\r\nhello\r\n0\r\n\r\n'),
     ("chunk-ext-bare-lf", b"5;assay\nhello\r\n0\r\n\r\n"),
     ("chunk-missing-last", b"5\r\nhello\r\n")],
)
def test_chunked_bodies(name: str, body: bytes) -> None:
    data = built(name)
    assert field_values(data, "Transfer-Encoding") == [b"chunked"]
    assert split(data)[2] == body
    assert BY_NAME[name].body_defect


def test_chunk_size_overflow_wraps_to_five() -> None:
    _, _, body = split(built("chunk-size-overflow"))
    size = int(body.split(b"\r\n", 1)[0], 16)
    assert size >= 2**64 and size % 2**64 == len(BODY)
    assert body.endswith(b"hello\r\n0\r\n\r\n" + smuggled_request(HOST))


# -- connection level ----------------------------------------------------------------------


def test_get_with_body_is_valid_framing() -> None:
    data = built("get-with-body")
    ((request, body),) = h11_requests(data)
    assert request.method == b"GET" and body == smuggled_request(HOST)


def test_garbage_after_a_valid_request() -> None:
    data = built("garbage-after-request")
    valid = BY_NAME["garbage-after-request"].build(HOST, PATH).split(b"\r\n\r\n", 1)[0]
    assert h11_requests(valid + b"\r\n\r\n")
    assert data.endswith(b"\x00\x01\x02assay-junk\r\n\r\n")


def test_leading_crlf() -> None:
    assert built("leading-crlf").startswith(b"\r\nGET ")
    assert built("leading-crlf-many").startswith(b"\r\n" * 64 + b"GET ")


def test_binary_junk_and_tls_and_h2() -> None:
    assert built("binary-junk") == JUNK + b"\r\n\r\n"
    assert not any(0x21 <= b <= 0x7E for b in JUNK[:1]) and b"\n" not in JUNK
    hello = built("tls-client-hello")
    assert hello == TLS_CLIENT_HELLO and hello[:3] == b"\x16\x03\x01"
    assert int.from_bytes(hello[3:5], "big") == len(hello) - 5  # record length
    assert hello[5] == 1  # handshake type: ClientHello
    assert built("h2-prior-knowledge").startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def test_slow_loris_cases_drip() -> None:
    head, body = BY_NAME["slow-loris-head"], BY_NAME["slow-loris-body"]
    assert head.drip and not head.drip_body_only
    assert body.drip and body.drip_body_only
    assert len(split(built("slow-loris-body"))[2]) == int(
        field_values(built("slow-loris-body"), "Content-Length")[0])
