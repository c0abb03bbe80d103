"""Response-side conformance: what every response a server sends must satisfy.

How this works: the rules are data (``RULES``, one frozen ``ResponseRule`` each, with the
RFC section, the sentence quoted, the requirement and severity). ``check(request, head,
body)`` evaluates every rule that applies to one response and returns one ``RuleFinding``
per applicable rule, ``PASS`` or ``VIOLATION``; a rule that does not apply (Date on a 5xx,
Allow on a 200) yields nothing. The facts are small frozen values the caller builds from
whatever it parsed: the Markov slice from ``protocols.http1.Response`` (cheap, no re-parse),
the raw-byte slices (adversarial baselines, WebSocket and SSE handshakes) through
``protocols.response_bytes.parse_exchange``, which reads the request line and every
response head in a buffer leniently and records field-syntax faults instead of refusing
them.

Severity: every rule is a MUST. A violation is MED (``I-RESP-MUST``) unless the rule is a
framing rule and the bytes the server sent past the message's end reached a connection
that stays open for the next response: that desynchronises the next exchange (a response
splitting hazard behind any shared connection) and is HIGH (``I-RESP-FRAMING``).

What is not judged, and why: a 1xx or 5xx without Date (RFC 9110 §6.6.1: MAY); Date at
all when the target declares no clock (``clock=False``, ``--no-clock``); body bytes that a
caller could not see (a late segment after the head is indistinguishable from the next
response); bytes past the end that are only CR/LF (harmless padding that any robust
client skips before a status line).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.outcome import Requirement, Severity, Verdict

MUST = Requirement.MUST
HIGH, MED = Severity.HIGH, Severity.MED


@dataclass(frozen=True, slots=True)
class ResponseRule:
    """One response-side requirement, grounded in its RFC sentence."""

    name: str
    rfc: str
    quote: str
    requirement: Requirement
    #: Severity of a violation that opens no framing hazard.
    severity: Severity
    #: A violation leaves bytes on the connection that the next response is read from:
    #: HIGH when the connection stays open, MED when the server closed it.
    framing: bool = False
    summary: str = ""


RULES: tuple[ResponseRule, ...] = (
    ResponseRule(
        "date", "RFC 9110 §6.6.1",
        "An origin server with a clock (as defined in Section 5.6.7) MUST generate a Date "
        "header field in all 2xx (Successful), 3xx (Redirection), and 4xx (Client Error) "
        "responses, and MAY generate a Date header field in 1xx (Informational) and 5xx "
        "(Server Error) responses.", MUST, MED,
        summary="Date on every 2xx/3xx/4xx (off with --no-clock)"),
    ResponseRule(
        "allow_on_405", "RFC 9110 §15.5.6",
        "The origin server MUST generate an Allow header field in a 405 response containing "
        "a list of the target resource's currently supported methods.", MUST, MED,
        summary="Allow on 405"),
    ResponseRule(
        "www_authenticate_on_401", "RFC 9110 §15.5.2",
        "The server generating a 401 response MUST send a WWW-Authenticate header field "
        "(Section 11.6.1) containing at least one challenge applicable to the target "
        "resource.", MUST, MED,
        summary="WWW-Authenticate on 401"),
    ResponseRule(
        "no_content_after_head", "RFC 9110 §9.3.2",
        "The HEAD method is identical to GET except that the server MUST NOT send content in "
        "the response. (RFC 9112 §6.3 (1): any response to a HEAD request ... is always "
        "terminated by the first empty line after the header fields)", MUST, MED,
        framing=True, summary="no body bytes after the head of a response to HEAD"),
    ResponseRule(
        "no_content_in_204_304", "RFC 9112 §6.3",
        "(1) ... any response with a 1xx (Informational), 204 (No Content), or 304 (Not "
        "Modified) status code is always terminated by the first empty line after the header "
        "fields, regardless of the header fields present in the message, and thus cannot "
        "contain a message body or trailer section. (RFC 9110 §15.3.5, §15.4.5)", MUST, MED,
        framing=True, summary="no body bytes after a 204/304 head"),
    ResponseRule(
        "no_content_length_in_1xx_204", "RFC 9110 §8.6",
        "A server MUST NOT send a Content-Length header field in any response with a status "
        "code of 1xx (Informational) or 204 (No Content).", MUST, MED,
        summary="no Content-Length in 1xx/204"),
    ResponseRule(
        "no_transfer_encoding_in_1xx_204", "RFC 9112 §6.1",
        "A server MUST NOT send a Transfer-Encoding header field in any response with a "
        "status code of 1xx (Informational) or 204 (No Content).", MUST, MED,
        summary="no Transfer-Encoding in 1xx/204"),
    ResponseRule(
        "no_1xx_to_http10", "RFC 9110 §15.2",
        "Since HTTP/1.0 did not define any 1xx status codes, a server MUST NOT send a 1xx "
        "response to an HTTP/1.0 client.", MUST, MED,
        summary="no 1xx to an HTTP/1.0 request"),
    ResponseRule(
        "no_transfer_encoding_to_http10", "RFC 9112 §6.1",
        "A server MUST NOT send a response containing Transfer-Encoding unless the "
        "corresponding request indicates HTTP/1.1 (or later minor revisions).", MUST, MED,
        summary="no Transfer-Encoding to an HTTP/1.0 request"),
    ResponseRule(
        "no_content_length_with_transfer_encoding", "RFC 9112 §6.2",
        "A sender MUST NOT send a Content-Length header field in any message that contains a "
        "Transfer-Encoding header field.", MUST, MED, framing=True,
        summary="not both Content-Length and Transfer-Encoding"),
    ResponseRule(
        "content_length_matches_body", "RFC 9112 §6.3",
        "(6) If a valid Content-Length header field is present without Transfer-Encoding, "
        "its decimal value defines the expected message body length in octets. (RFC 9110 "
        "§2.2: a sender MUST NOT generate protocol elements that do not match the grammar)",
        MUST, MED, framing=True,
        summary="Content-Length equal to the body sent (no bytes past it, none missing)"),
    ResponseRule(
        "field_name_token", "RFC 9110 §5.1",
        "field-name = token (RFC 9110 §2.2: a sender MUST NOT generate protocol elements "
        "that do not match the grammar defined by the corresponding ABNF rules.)", MUST, MED,
        summary="every field name is a token"),
    ResponseRule(
        "no_whitespace_before_colon", "RFC 9112 §5.1",
        "No whitespace is allowed between the field name and colon. (RFC 9110 §2.2: a "
        "sender MUST NOT generate protocol elements that do not match the grammar)", MUST, MED,
        summary="no whitespace between field name and colon"),
    ResponseRule(
        "no_obs_fold", "RFC 9112 §5.2",
        "A sender MUST NOT generate a message that includes line folding (i.e., that has any "
        "field line value that contains a match to the obs-fold rule) unless the message is "
        "intended for packaging within the message/http media type.", MUST, MED,
        summary="no obs-fold"),
    ResponseRule(
        "no_bare_cr", "RFC 9112 §2.2",
        "A sender MUST NOT generate a bare CR (a CR character not immediately followed by "
        "LF) within any protocol elements other than the content.", MUST, MED,
        summary="no bare CR in the head"),
    ResponseRule(
        "field_value_chars", "RFC 9110 §5.5",
        "Field values containing CR, LF, or NUL characters are invalid and dangerous ... "
        "field-value = *field-content (VCHAR, obs-text, SP, HTAB only; RFC 9110 §2.2: a "
        "sender MUST NOT generate protocol elements that do not match the grammar)", MUST, MED,
        summary="no control bytes in field values"),
    ResponseRule(
        "crlf_line_endings", "RFC 9112 §2.1",
        "HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ] (RFC 9110 "
        "§2.2: a sender MUST NOT generate protocol elements that do not match the grammar; "
        "only a recipient MAY accept a bare LF, RFC 9112 §2.2)", MUST, MED,
        summary="head lines end with CRLF"),
)

BY_NAME: dict[str, ResponseRule] = {rule.name: rule for rule in RULES}
#: Rules that come from ``ResponseFacts.syntax`` (found while splitting raw head bytes).
SYNTAX_RULES = ("field_name_token", "no_whitespace_before_colon", "no_obs_fold", "no_bare_cr",
                "field_value_chars", "crlf_line_endings")


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What about the request decides which rules apply."""

    method: str
    #: The request's HTTP-version digits (b"1.1", b"1.0").
    version: bytes = b"1.1"
    #: The request asked for a persistent connection (RFC 9112 §9.3: HTTP/1.1 without
    #: ``close``, or HTTP/1.0 with ``keep-alive``): only then can a next response be read
    #: from bytes left past this one's end.
    persistent: bool = True


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    """One response head: final, or interim (1xx) when ``status < 200``."""

    status: int
    version: bytes
    #: Field names lower-cased, values without surrounding whitespace.
    headers: tuple[tuple[bytes, bytes], ...]
    #: Names of the ``SYNTAX_RULES`` this head broke; None when the caller saw no raw bytes
    #: (the syntax rules are then not judged).
    syntax: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class BodyFacts:
    """What the caller saw of the body and of the bytes after it."""

    #: Body bytes received for this response (None: not judged, e.g. an endless stream).
    received: int | None = None
    #: Bytes (other than CR/LF padding) that arrived after the message's framed end and
    #: before the next request was sent: the next response would be read from them.
    excess: int = 0
    #: The connection stays open for another exchange (keep-alive).
    reused: bool = False
    #: The server closed the connection before the Content-Length bytes arrived (not
    #: judged: aborting a response by closing breaks no sender rule).
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class RuleFinding:
    rule: str
    verdict: Verdict
    #: Severity of this finding (None for a pass).
    severity: Severity | None = None
    detail: str = ""


def _has(headers: tuple[tuple[bytes, bytes], ...], name: bytes) -> bool:
    return any(key == name for key, _ in headers)


def _pass(name: str) -> RuleFinding:
    return RuleFinding(name, Verdict.PASS)


def _fail(name: str, detail: str, hazard: bool = False) -> RuleFinding:
    rule = BY_NAME[name]
    return RuleFinding(name, Verdict.VIOLATION, HIGH if hazard and rule.framing else rule.severity,
                       detail)


def _judge(out: list[RuleFinding], name: str, ok: bool, detail: str,
           hazard: bool = False) -> None:
    out.append(_pass(name) if ok else _fail(name, detail, hazard))


def check(
    request: RequestFacts, head: ResponseFacts, body: BodyFacts | None = None, *,
    clock: bool = True,
) -> list[RuleFinding]:
    """Judge one response head (and what followed it) against every rule that applies.

    Args:
        request: the request it answers. head: the response head (a 1xx is judged by the
        rules about interim responses only). body: None for an interim head or when
        nothing about the body was seen. clock: False when the target declares no clock.
    Returns:
        One finding per applicable rule; never raises on any facts.
    """
    out: list[RuleFinding] = []
    status, headers = head.status, head.headers
    has_cl = _has(headers, b"content-length")
    has_te = _has(headers, b"transfer-encoding")
    if head.syntax is not None:
        for name in SYNTAX_RULES:
            _judge(out, name, name not in head.syntax, f"{name} broken in the response head")
    if status < 200:
        if request.version == b"1.0":
            _judge(out, "no_1xx_to_http10", False, f"{status} sent to an HTTP/1.0 request")
        _judge(out, "no_content_length_in_1xx_204", not has_cl, f"Content-Length in a {status}")
        _judge(out, "no_transfer_encoding_in_1xx_204", not has_te,
               f"Transfer-Encoding in a {status}")
        return out
    if status < 500 and clock:
        _judge(out, "date", _has(headers, b"date"), f"no Date in a {status}")
    if status == 405:
        _judge(out, "allow_on_405", _has(headers, b"allow"), "no Allow in a 405")
    elif status == 401:
        _judge(out, "www_authenticate_on_401", _has(headers, b"www-authenticate"),
               "no WWW-Authenticate in a 401")
    elif status == 204:
        _judge(out, "no_content_length_in_1xx_204", not has_cl, "Content-Length in a 204")
        _judge(out, "no_transfer_encoding_in_1xx_204", not has_te, "Transfer-Encoding in a 204")
    if request.version == b"1.0":
        _judge(out, "no_transfer_encoding_to_http10", not has_te,
               "Transfer-Encoding in a response to an HTTP/1.0 request")
    if has_te and has_cl:
        # A hazard only where a client framing by Content-Length would end elsewhere than
        # the chunked body does, on a connection that carries a next response.
        length = _content_length(headers)
        desyncs = (body is not None and body.reused and body.received is not None
                   and length != body.received)
        out.append(_fail("no_content_length_with_transfer_encoding",
                         "both Content-Length and Transfer-Encoding", desyncs))
    elif has_te or has_cl:
        out.append(_pass("no_content_length_with_transfer_encoding"))
    if body is None:
        return out
    excess, hazard = body.excess, body.reused
    if request.method == "HEAD":
        _judge(out, "no_content_after_head", excess <= 0,
               f"{excess} bytes after the head of a response to HEAD", hazard)
        return out
    if status in (204, 304):
        _judge(out, "no_content_in_204_304", excess <= 0,
               f"{excess} bytes after the head of a {status}", hazard)
        return out
    if status == 101 or has_te or not has_cl or request.method == "CONNECT":
        return out
    if excess > 0:
        out.append(_fail("content_length_matches_body",
                         f"{excess} bytes past the Content-Length body", hazard))
    elif body.truncated:
        # A close before the Content-Length bytes is how a server aborts a response it
        # cannot finish; RFC 9112 §8 makes it the recipient's to treat as incomplete, and
        # no sender rule is broken by it: not judged.
        return out
    elif body.received is not None:
        out.append(_pass("content_length_matches_body"))
    return out


def _content_length(headers: tuple[tuple[bytes, bytes], ...]) -> int | None:
    """The one Content-Length value (None: absent, invalid or several differing)."""
    values = {v.strip() for key, value in headers if key == b"content-length"
              for v in value.split(b",")}
    if len(values) != 1:
        return None
    (text,) = values
    return int(text) if text.isdigit() and len(text) <= 18 else None


def excess_bytes(rest: bytes) -> int:
    """How many of ``rest`` (bytes after a message's end, before the next request) the next
    response would be read from. CR/LF padding is not counted, nor a 408 (RFC 9110
    §15.5.9): servers send one before closing a connection that stayed idle, and that is a
    message of its own, not this response's body."""
    rest = rest.strip(b"\r\n")
    if rest[:12] in (b"HTTP/1.1 408", b"HTTP/1.0 408"):
        return 0
    return len(rest)
