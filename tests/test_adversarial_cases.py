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
    CATEGORIES,
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
#: MUST cases resting on a definition of the protocol (framing, field names, the length
#: grammar) rather than a keyword.
DEFINITIONAL = {
    "get-with-body", "cl-underscore-name", "cl-leading-zeros", "cl-name-lowercase",
    "cl-name-uppercase", "cl-zero", "get-cl-zero", "te-underscore-name-cl", "te-space-name-cl",
    "expect-100-early-smuggle", "te-name-lowercase",
}
#: Cases whose request-target is not the path (asterisk, authority and relative forms).
NO_PATH = {"target-asterisk-get", "target-missing", "target-asterisk-head",
           "target-asterisk-post", "target-asterisk-delete", "authority-form-get",
           "connect-origin", "options-asterisk", "target-relative"}
RFC_SECTION = re.compile(r"^RFC (9110|9112|9113|6455) §\d+(\.\d+)*( \(\d\))?$")


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
        if event is h11.NEED_DATA or event is h11.PAUSED:
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
            if conn.our_state is h11.MUST_CLOSE:
                return found  # Connection: close or HTTP/1.0: nothing after is a request
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


def test_at_least_two_hundred_cases_with_unique_names() -> None:
    assert len(CASES) >= 200
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
    assert case.category in CATEGORIES
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
    assert case.responses >= 1 and len(case.methods) <= case.responses
    if case.valid:
        assert Reaction.ACCEPTED in case.allowed
    assert all(400 <= status < 500 for status in case.tolerated_statuses)
    if case.forbid_interim:
        assert b" HTTP/1.0\r\n" in case.build(HOST, PATH).split(b"\r\n", 1)[0] + b"\r\n"
    if case.forbid_switch:
        assert b"upgrade:" in case.build(HOST, PATH).lower()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_builder_is_pure_bytes(case: AdversarialCase) -> None:
    first = case.build(HOST, PATH)
    assert isinstance(first, bytes) and first
    assert case.build(HOST, PATH) == first
    # The smuggled request is present exactly when the case says so.
    assert (SMUGGLED_PATH.encode() in first) == case.smuggles
    if case.category not in {"connection"} or case.name.startswith(("get-", "garbage", "lead")):
        assert PATH.encode() in first or case.name in NO_PATH


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


# -- the grown catalogue (issues 10 and 18) --------------------------------------------------

URI_HOST = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(:[0-9]*)?")
TE_SPLIT = [c.name for c in CASES if c.name.startswith("te-") and c.name.endswith("-cl")
            and c.smuggles and c.name not in {"te-underscore-name-cl", "te-space-name-cl",
                                              "te-tab-before-colon-cl"}]
LENIENT_SIZES = [c.name for c in CASES if c.name.startswith("chunk-size-")
                 and c.name.endswith("-smuggle")]


@pytest.mark.parametrize("name", TE_SPLIT)
def test_te_with_cl_hides_the_smuggled_request_from_te_framing(name: str) -> None:
    data = built(name)
    _, _, body = split(data)
    (cl,) = field_values(data, "Content-Length")
    assert body[int(cl):].startswith(smuggled_request(HOST))  # CL framing: two requests
    content, rest = decode_chunked(body)  # chunked framing: the smuggled one is data
    assert content == smuggled_request(HOST) and rest == b""
    assert BY_NAME[name].must_close and BY_NAME[name].smuggles


@pytest.mark.parametrize(
    ("name", "value"),
    [("te-empty-cl", b""), ("te-identity-cl", b"identity"), ("te-vt-cl", b"\x0bchunked"),
     ("te-ff-cl", b"\x0cchunked"), ("te-nul-cl", b"chunked\x00"),
     ("te-list-empty-cl", b"chunked, ,"), ("te-param-cl", b"chunked; assay=1")],
)
def test_te_obfuscation_values_are_sent_verbatim(name: str, value: bytes) -> None:
    data = built(name)
    line = next(f for f in split(data)[1] if f.lower().startswith(b"transfer-encoding:"))
    assert line.split(b":", 1)[1].strip(b" ") == value


def test_invalid_te_with_cl_sends_a_five_octet_body() -> None:
    for name in ("te-empty-cl", "te-identity-cl", "te-vt-cl", "te-chunkedx-cl"):
        data = built(name)
        assert field_values(data, "Content-Length") == [b"5"] and split(data)[2] == BODY
        names = [f.split(b":")[0].lower() for f in split(data)[1]]
        assert names.index(b"transfer-encoding") < names.index(b"content-length")


def test_invalid_te_with_cl_allows_only_a_closing_refusal() -> None:
    for name in ("te-empty-cl", "te-identity-cl", "te-vt-cl", "te-ff-cl", "te-quoted-cl"):
        assert BY_NAME[name].allowed == frozenset(
            {Reaction.REJECTED_CLOSED, Reaction.SILENT_CLOSE, Reaction.RESET}), name
        assert BY_NAME[name].requirement is Requirement.MUST
        assert BY_NAME[name].severity is Severity.HIGH


@pytest.mark.parametrize("name", ["te-underscore-name-cl", "te-space-name-cl"])
def test_te_name_variants_frame_by_content_length_for_a_strict_parser(name: str) -> None:
    ((_, body),) = h11_requests(built(name)) if name == "te-underscore-name-cl" else [
        (None, split(built(name))[2])]
    assert body == b"0\r\n\r\n" + smuggled_request(HOST)


@pytest.mark.parametrize("name", LENIENT_SIZES)
def test_lenient_chunk_sizes_end_the_body_only_for_a_lenient_parser(name: str) -> None:
    data = built(name)
    _, _, body = split(data)
    size_line, _, rest = body.partition(b"\r\n")
    assert not re.fullmatch(rb"[0-9A-Fa-f]+", size_line)  # not 1*HEXDIG
    size = int(size_line, 16)  # what Python's lenient int() reads
    if size:
        assert rest[size:size + 2] == b"\r\n" and rest[size + 2:].startswith(b"0\r\n\r\n")
        rest = rest[size + 7:]
    else:
        assert rest.startswith(b"\r\n")
        rest = rest[2:]
    assert rest == smuggled_request(HOST)
    with pytest.raises(h11.RemoteProtocolError):
        h11_requests(data)


@pytest.mark.parametrize(
    "name", [c.name for c in CASES if c.name.startswith("host-") and c.allowed == frozenset(
        {Reaction.REJECTED_CLOSED, Reaction.REJECTED_KEPT_ALIVE})
        and len(field_values(c.build(HOST, PATH), "Host")) == 1
        and c.name not in {"host-obs-fold", "host-ws-before-colon"}],
)
def test_invalid_host_values_are_outside_the_host_grammar(name: str) -> None:
    (value,) = field_values(built(name), "Host")
    assert not URI_HOST.fullmatch(value), value


def test_host_grammar_admits_the_valid_values() -> None:
    for name in ("host-empty", "host-pct-encoded", "host-underscore", "host-ipv6-literal",
                 "host-ows"):
        (value,) = field_values(built(name), "Host")
        assert URI_HOST.fullmatch(value), (name, value)
    assert len(field_values(built("host-duplicate-identical"), "Host")) == 2


def test_absolute_form_authority_differs_from_host() -> None:
    start, _, _ = split(built("absolute-form-host-differs"))
    assert start == f"GET http://{HOST}{PATH} HTTP/1.1".encode()
    assert field_values(built("absolute-form-host-differs"), "Host") == [b"assay-other.invalid"]
    ((request, _),) = h11_requests(built("absolute-form"))
    assert request.target == f"http://{HOST}{PATH}".encode()


@pytest.mark.parametrize("case", [c for c in CASES if c.responses > 1], ids=lambda c: c.name)
def test_pipelines_hold_as_many_requests_as_responses_expected(case: AdversarialCase) -> None:
    found = h11_requests(case.build(HOST, PATH))
    assert len(found) == case.responses
    methods = [request.method.decode() for request, _ in found]
    if case.methods:
        assert methods == list(case.methods)
    assert case.method == methods[0] or methods[0] == "HEAD"


def test_pipeline_close_stops_sends_a_second_request_after_close() -> None:
    data = built("pipeline-close-stops")
    assert data.count(b" HTTP/1.1\r\n") == 2 and b"Connection: close" in data.split(b"\r\n\r\n")[0]
    assert BY_NAME["pipeline-close-stops"].must_close


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.valid and c.name not in {
        "te-chunked-ows", "te-list-empty-element", "http10-default-close", "host-ows",
        "field-value-obs-text"}], ids=lambda c: c.name)
def test_valid_cases_are_valid_for_a_strict_parser(case: AdversarialCase) -> None:
    found = h11_requests(case.build(HOST, PATH))
    assert len(found) == case.responses
    for _request, body in found:
        if case.responses == 1 and "chunk" in case.name and "empty" not in case.name:
            assert body  # the chunked body decodes


def test_expect_and_upgrade_cases() -> None:
    for name in ("expect-100-http10", "expect-100-http10-keep-alive"):
        case = BY_NAME[name]
        assert case.forbid_interim and b"Expect: 100-continue" in built(name)
    smuggle = built("expect-100-early-smuggle")
    ((request, body),) = h11_requests(smuggle)
    assert body == smuggled_request(HOST) and (b"expect", b"100-continue") in request.headers
    for name in ("upgrade-ws-http10", "upgrade-h2c-http10", "upgrade-ws-no-connection",
                 "upgrade-ws-post"):
        assert BY_NAME[name].forbid_switch and BY_NAME[name].requirement is Requirement.MUST
    assert b"Connection:" not in built("upgrade-ws-no-connection")


def test_request_line_of_8000_octets() -> None:
    start = split(built("request-line-8000"))[0]
    assert len(start) == 8000
    assert BY_NAME["request-line-8000"].allowed == frozenset({Reaction.ACCEPTED})


def test_method_cases_keep_the_method_token() -> None:
    assert split(built("method-lowercase"))[0].startswith(b"get ")
    assert split(built("method-long"))[0].startswith(b"A" * 1024 + b" ")
    assert BY_NAME["head"].methods == ("HEAD",)


def test_old_case_bytes_are_unchanged() -> None:
    # The Tier 3 generator pins digests of these bytes; spot-check a few exact encodings.
    assert built("cl-hex") == (f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0x5"
                               "\r\n\r\nhello").encode()
    assert built("chunk-size-hex-prefix").endswith(b"\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n")
