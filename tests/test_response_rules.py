"""Response rules (protocols.response_rules, protocols.response_bytes): bytes in, findings out.

Every rule is shown both ways on raw response bytes; the raw reader is also fed every prefix
of a buffer (byte by byte) and random garbage, and must never raise. The actor side
(sampling, dedupe, probes, reproducers) is in tests/test_response_check.py.
"""

from __future__ import annotations

import random

import pytest

from protocols.outcome import Severity, Verdict
from protocols.response_bytes import parse_exchange, request_facts
from protocols.response_rules import (
    BY_NAME,
    RULES,
    SYNTAX_RULES,
    RequestFacts,
    ResponseFacts,
    check,
    excess_bytes,
)

DATE = b"Date: Thu, 03 Dec 2026 08:00:00 GMT\r\n"
GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


def judge(sent: bytes, received: bytes, *, closed: bool = False, clock: bool = True,
          stream: bool = False) -> dict[str, list[tuple[Verdict, Severity | None]]]:
    """rule -> [(verdict, severity)] over every response head in ``received``."""
    request = request_facts(sent)
    assert request is not None
    out: dict[str, list[tuple[Verdict, Severity | None]]] = {}
    for found in parse_exchange(request.method, received, closed=closed, stream=stream,
                                persistent=request.persistent):
        for finding in check(request, found.head, found.body, clock=clock):
            out.setdefault(finding.rule, []).append((finding.verdict, finding.severity))
    return out


def verdict(findings: dict, rule: str) -> Verdict | None:
    entries = findings.get(rule)
    if not entries:
        return None
    return Verdict.VIOLATION if any(v is Verdict.VIOLATION for v, _ in entries) else Verdict.PASS


def severity(findings: dict, rule: str) -> Severity | None:
    return next(s for v, s in findings[rule] if v is Verdict.VIOLATION)


def ok200(extra: bytes = b"", body: bytes = b"ok") -> bytes:
    return (b"HTTP/1.1 200 OK\r\n" + DATE + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# -- the catalogue ---------------------------------------------------------------------------

def test_catalogue_is_data_with_rfc_quotes() -> None:
    assert len(RULES) == len(BY_NAME) >= 15
    for rule in RULES:
        assert rule.rfc.startswith("RFC 91"), rule.name
        assert "MUST" in rule.quote or "=" in rule.quote or "cannot" in rule.quote, rule.name
        assert rule.severity is Severity.MED  # HIGH only through a framing hazard
        assert "." not in rule.name  # counter names are split on dots
    assert set(SYNTAX_RULES) <= set(BY_NAME)


def test_clean_response_passes_every_rule() -> None:
    findings = judge(GET, ok200())
    assert findings
    assert all(verdict(findings, rule) is Verdict.PASS for rule in findings), findings


# -- Date -------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 301, 404, 401, 405])
def test_date_required_on_2xx_3xx_4xx(status: int) -> None:
    head = ResponseFacts(status, b"1.1", ((b"content-length", b"0"),))
    found = {f.rule: f for f in check(RequestFacts("GET"), head)}
    assert found["date"].verdict is Verdict.VIOLATION
    assert found["date"].severity is Severity.MED
    with_date = ResponseFacts(status, b"1.1", ((b"date", b"x"),))
    assert {f.rule: f for f in check(RequestFacts("GET"), with_date)}["date"].verdict \
        is Verdict.PASS


@pytest.mark.parametrize("status", [100, 101, 103, 500, 503])
def test_date_not_required_on_1xx_5xx(status: int) -> None:
    head = ResponseFacts(status, b"1.1", ())
    assert "date" not in {f.rule for f in check(RequestFacts("GET"), head)}


def test_no_clock_turns_date_off() -> None:
    received = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert verdict(judge(GET, received), "date") is Verdict.VIOLATION
    assert verdict(judge(GET, received, clock=False), "date") is None


# -- Allow, WWW-Authenticate ------------------------------------------------------------------

def test_allow_on_405() -> None:
    bad = b"HTTP/1.1 405 Method Not Allowed\r\n" + DATE + b"Content-Length: 0\r\n\r\n"
    good = b"HTTP/1.1 405 Method Not Allowed\r\n" + DATE + b"Allow: GET, HEAD\r\n" \
        b"Content-Length: 0\r\n\r\n"
    assert verdict(judge(GET, bad), "allow_on_405") is Verdict.VIOLATION
    assert verdict(judge(GET, good), "allow_on_405") is Verdict.PASS
    assert verdict(judge(GET, ok200()), "allow_on_405") is None


def test_www_authenticate_on_401() -> None:
    bad = b"HTTP/1.1 401 Unauthorized\r\n" + DATE + b"Content-Length: 0\r\n\r\n"
    good = (b"HTTP/1.1 401 Unauthorized\r\n" + DATE + b'WWW-Authenticate: Basic realm="x"\r\n'
            b"Content-Length: 0\r\n\r\n")
    assert verdict(judge(GET, bad), "www_authenticate_on_401") is Verdict.VIOLATION
    assert verdict(judge(GET, good), "www_authenticate_on_401") is Verdict.PASS


# -- bodies where none may be ------------------------------------------------------------------

HEAD = b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"


def test_body_after_head_is_a_framing_hazard_on_a_kept_connection() -> None:
    received = ok200(body=b"hello")
    findings = judge(HEAD, received)
    assert verdict(findings, "no_content_after_head") is Verdict.VIOLATION
    assert severity(findings, "no_content_after_head") is Severity.HIGH
    # The same bytes, but the server closed: a MUST broken, no desync.
    findings = judge(HEAD, received, closed=True)
    assert severity(findings, "no_content_after_head") is Severity.MED
    # The correct answer: the head alone (Content-Length of the GET body is fine).
    head_only = received[: received.index(b"\r\n\r\n") + 4]
    assert verdict(judge(HEAD, head_only), "no_content_after_head") is Verdict.PASS


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_body_in_204_304(status: bytes) -> None:
    head = b"HTTP/1.1 " + status + b"\r\n" + DATE + b"\r\n"
    findings = judge(GET, head + b"surprise")
    assert verdict(findings, "no_content_in_204_304") is Verdict.VIOLATION
    assert severity(findings, "no_content_in_204_304") is Severity.HIGH
    assert verdict(judge(GET, head), "no_content_in_204_304") is Verdict.PASS
    # CR/LF padding is not a body.
    assert verdict(judge(GET, head + b"\r\n"), "no_content_in_204_304") is Verdict.PASS


def test_content_length_and_transfer_encoding_in_204_and_1xx() -> None:
    bad = b"HTTP/1.1 204 No Content\r\n" + DATE + b"Content-Length: 0\r\n\r\n"
    assert verdict(judge(GET, bad), "no_content_length_in_1xx_204") is Verdict.VIOLATION
    te = b"HTTP/1.1 204 No Content\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n"
    assert verdict(judge(GET, te), "no_transfer_encoding_in_1xx_204") is Verdict.VIOLATION
    good = b"HTTP/1.1 204 No Content\r\n" + DATE + b"\r\n"
    assert verdict(judge(GET, good), "no_content_length_in_1xx_204") is Verdict.PASS
    assert verdict(judge(GET, good), "no_transfer_encoding_in_1xx_204") is Verdict.PASS
    interim = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n" + ok200()
    assert verdict(judge(GET, interim), "no_content_length_in_1xx_204") is Verdict.VIOLATION
    assert verdict(judge(GET, ok200()), "no_content_length_in_1xx_204") is None


# -- HTTP/1.0 requests -----------------------------------------------------------------------

POST10 = b"POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"


def test_no_1xx_to_http10() -> None:
    bad = b"HTTP/1.1 100 Continue\r\n\r\n" + ok200()
    assert verdict(judge(POST10, bad), "no_1xx_to_http10") is Verdict.VIOLATION
    assert verdict(judge(POST10, ok200()), "no_1xx_to_http10") is None
    post11 = POST10.replace(b"HTTP/1.0", b"HTTP/1.1")
    assert verdict(judge(post11, bad), "no_1xx_to_http10") is None


def test_no_transfer_encoding_to_http10() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked\r\n\r\n"
               b"2\r\nok\r\n0\r\n\r\n")
    get10 = GET.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert verdict(judge(get10, chunked), "no_transfer_encoding_to_http10") is Verdict.VIOLATION
    assert verdict(judge(get10, ok200()), "no_transfer_encoding_to_http10") is Verdict.PASS
    assert verdict(judge(GET, chunked), "no_transfer_encoding_to_http10") is None
    assert verdict(judge(GET, chunked), "content_length_matches_body") is None


# -- framing ------------------------------------------------------------------------------------

def test_content_length_with_transfer_encoding() -> None:
    both = (b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    findings = judge(GET, both)
    assert verdict(findings, "no_content_length_with_transfer_encoding") is Verdict.VIOLATION
    assert severity(findings, "no_content_length_with_transfer_encoding") is Severity.HIGH
    assert verdict(judge(GET, ok200()), "no_content_length_with_transfer_encoding") \
        is Verdict.PASS
    # Content-Length equal to the chunked body's length: both framings end at the same
    # byte, so the MUST is broken without a desync (MED, not HIGH).
    agree = (b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 12\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    findings = judge(GET, agree)
    assert verdict(findings, "no_content_length_with_transfer_encoding") is Verdict.VIOLATION
    assert severity(findings, "no_content_length_with_transfer_encoding") is Severity.MED
    # A connection the request did not ask to keep carries no next response.
    get10 = b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n"
    assert severity(judge(get10, both), "no_content_length_with_transfer_encoding") \
        is Severity.MED


def test_content_length_matches_body() -> None:
    exact = ok200(body=b"hello")
    assert verdict(judge(GET, exact), "content_length_matches_body") is Verdict.PASS
    findings = judge(GET, exact + b"XYZ")  # 3 bytes past the declared body
    assert verdict(findings, "content_length_matches_body") is Verdict.VIOLATION
    assert severity(findings, "content_length_matches_body") is Severity.HIGH
    closing = ok200(b"Connection: close\r\n", b"hello") + b"XYZ"
    assert severity(judge(GET, closing, closed=True), "content_length_matches_body") \
        is Severity.MED
    # Cut short by a close: how a server aborts a response; the recipient's to handle
    # (RFC 9112 §8), no sender rule broken: not judged, open or closed.
    short = exact[:-2]
    assert verdict(judge(GET, short, closed=True), "content_length_matches_body") is None
    assert verdict(judge(GET, short, closed=False), "content_length_matches_body") is None
    # Bytes past the body of a response to an HTTP/1.0 request without keep-alive reach
    # no next response: MED; with keep-alive they do: HIGH.
    get10 = b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n"
    keep10 = b"GET /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
    assert severity(judge(get10, exact + b"XYZ"), "content_length_matches_body") is Severity.MED
    assert severity(judge(keep10, exact + b"XYZ"), "content_length_matches_body") \
        is Severity.HIGH
    # Trailing CR/LF and a later 408 on an idle connection are not this body's bytes.
    assert verdict(judge(GET, exact + b"\r\n"), "content_length_matches_body") is Verdict.PASS
    late_408 = exact + b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
    assert verdict(judge(GET, late_408), "content_length_matches_body") is Verdict.PASS


def test_stream_bodies_and_101_are_not_judged() -> None:
    switching = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\n\r\n\x81\x02hi")
    findings = judge(GET, switching, stream=True)
    assert "content_length_matches_body" not in findings
    assert verdict(findings, "field_name_token") is Verdict.PASS
    sse = b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Type: text/event-stream\r\n\r\ndata: x\n\n"
    assert verdict(judge(GET, sse, stream=True), "date") is Verdict.PASS
    assert "content_length_matches_body" not in judge(GET, sse, stream=True)


# -- field syntax -----------------------------------------------------------------------------

@pytest.mark.parametrize("rule,line", [
    ("no_obs_fold", b"X-A: one\r\n two\r\n"),
    ("no_whitespace_before_colon", b"X-A : one\r\n"),
    ("field_name_token", b"X(A): one\r\n"),
    ("field_name_token", b"no colon here\r\n"),
    ("no_bare_cr", b"X-A: o\rne\r\n"),
    ("field_value_chars", b"X-A: o\x01ne\r\n"),
    ("crlf_line_endings", b"X-A: one\n"),
])
def test_field_syntax(rule: str, line: bytes) -> None:
    findings = judge(GET, ok200(line))
    assert verdict(findings, rule) is Verdict.VIOLATION, findings
    assert severity(findings, rule) is Severity.MED
    assert verdict(judge(GET, ok200(b"X-A: one\r\n")), rule) is Verdict.PASS


def test_parsed_response_has_no_syntax_verdicts() -> None:
    head = ResponseFacts(200, b"1.1", ((b"date", b"x"),))
    assert not {f.rule for f in check(RequestFacts("GET"), head)} & set(SYNTAX_RULES)


# -- the raw reader: prefixes, garbage, request lines ------------------------------------------

def test_every_prefix_and_garbage_never_raises() -> None:
    whole = b"HTTP/1.1 100 Continue\r\n\r\n" + ok200(b"X-A : b\r\n", b"hello") + b"tail"
    for end in range(len(whole) + 1):
        for method in ("GET", "HEAD"):
            for found in parse_exchange(method, whole[:end], closed=bool(end % 2)):
                check(RequestFacts(method, b"1.0"), found.head, found.body)
    rng = random.Random(7)
    alphabet = b"HTTP/1.1 200\r\n:; \t\x00\x7fabcContent-Length0123chunked"
    for _ in range(500):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        for found in parse_exchange("GET", b"HTTP/1.1 200 OK\r\n" + data, closed=True):
            check(RequestFacts("GET"), found.head, found.body)


def test_request_facts() -> None:
    assert request_facts(POST10) == RequestFacts("POST", b"1.0", persistent=False)
    assert request_facts(GET) == RequestFacts("GET", b"1.1")
    assert request_facts(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n") == RequestFacts(
        "GET", b"1.1", persistent=False)
    assert request_facts(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n") == RequestFacts(
        "GET", b"1.0", persistent=True)
    assert request_facts(b"\x16\x03\x01garbage") is None
    assert excess_bytes(b"\r\n\r\n") == 0 and excess_bytes(b"xy") == 2
