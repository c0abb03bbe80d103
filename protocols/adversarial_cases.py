"""The adversarial catalogue: malformed HTTP/1.1 requests as data, each grounded in an RFC.

How this works: every ``AdversarialCase`` names a pure builder ``build(host, path) -> bytes``,
the reactions the RFC permits (``allowed``), the RFC 2119 keyword behind them
(``requirement``) and how much a wrong answer matters (``severity``). The oracle
(``protocols.adversarial_oracle``) observes what the server did and judges it against the
case; the walker (``actors.adversarial``) only moves bytes.

Design rules the cases follow, so that a correct server is never blamed:

* Where the RFC lets a recipient either reject or recover (replace a bare CR with SP, ignore a
  whitespace-preceded line, accept a bare LF line terminator, ignore a leading CRLF), both are
  allowed: a recovery looks like acceptance from outside and is correct.
* Such recoveries are checked where they matter, on the wire: the *framing* cases carry a
  complete request for ``SMUGGLED_PATH`` that a server only sees if it frames the message
  differently from the RFC (it believed a hidden ``Transfer-Encoding``, wrapped an
  overflowing length, ignored a GET body...). A canary request follows on the same socket;
  an answer to a request we did not send is a desync (I-ADV-DESYNC), whatever the status.
* ``severity`` HIGH marks cases whose acceptance is a smuggling or routing hazard: accepting
  one where the RFC says MUST reject trips I-ADV-ACCEPTED. A MUST violation of MED/LOW
  severity (a missing Host accepted, a silent close where a 400 is required) is counted, not
  failed. SHOULD/MAY deviations are leniency, reported as information.
* Statuses other than 4xx that the RFC names as a refusal (501 for an unknown transfer coding,
  505 for a version, 301 for a malformed target) are listed per case in
  ``rejection_statuses``; any other 5xx is a server error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from protocols.outcome import REFUSALS, Reaction, Requirement, Severity

#: Target of the request hidden inside framing cases; a response to it means desync.
SMUGGLED_PATH = "/assay-smuggled"
#: Query parameter that marks the canary sent after a framing case.
CANARY_PARAM = "assay-canary"
#: The body of every baseline and ordinary POST case.
BODY = b"hello"

R = Reaction
#: 400 then close, a bare close or a reset: what "MUST respond 400 and close" permits in
#: practice (a server racing our bytes may reset before its 400 is read).
CLOSING_REFUSALS = frozenset({R.REJECTED_CLOSED, R.SILENT_CLOSE, R.RESET})
#: A 4xx response, with or without close: what "MUST respond with 400" permits.
REJECTED = frozenset({R.REJECTED_CLOSED, R.REJECTED_KEPT_ALIVE})
#: Reject in any way, or recover and process (the RFC allows a silent repair).
REFUSE_OR_ACCEPT = REFUSALS | {R.ACCEPTED}
#: Closing refusals or processing (CL+TE: "MAY reject ... or process", then MUST close).
CLOSE_OR_ACCEPT = CLOSING_REFUSALS | {R.ACCEPTED}
#: Reactions that are correct for a message whose declared length is enormous: reject it,
#: or wait for the body (a hang), or answer early without reading it.
HUGE_BODY = REFUSALS | {R.HANG, R.ACCEPTED}

MUST, SHOULD, MAY = Requirement.MUST, Requirement.SHOULD, Requirement.MAY
HIGH, MED, LOW = Severity.HIGH, Severity.MED, Severity.LOW

Builder = Callable[[str, str], bytes]


@dataclass(frozen=True, slots=True)
class AdversarialCase:
    """One malformed (or deliberately odd) request and what the RFC lets a server do."""

    name: str
    category: str
    #: Pure: ``build(host_header_value, path) -> bytes`` sent as is.
    build: Builder
    allowed: frozenset[Reaction]
    requirement: Requirement
    severity: Severity
    #: e.g. ``"RFC 9112 §6.3 (5)"``: section, and the numbered item where there is one.
    rfc: str
    #: The RFC sentence the expectation rests on (verbatim, possibly shortened with "...").
    quote: str
    #: Send a canary on the same socket afterwards and check for desync.
    framing: bool = False
    #: Slow-loris: seconds between single bytes (the walker caps the total drip time).
    drip: float | None = None
    #: Drip only the body: the head (up to the blank line) goes out at once.
    drip_body_only: bool = False
    #: Method of the valid baseline this case is compared with (the routing trap).
    method: str = "GET"
    #: The RFC requires the server to close the connection after responding.
    must_close: bool = False
    #: Non-4xx statuses that count as a refusal for this case (e.g. 501, 505, 301).
    rejection_statuses: frozenset[int] = frozenset()
    #: The status the RFC names for a refusal; another 4xx is counted as a mismatch (info).
    preferred_status: frozenset[int] = frozenset()
    #: The bytes carry a complete request for ``SMUGGLED_PATH``.
    smuggles: bool = False
    #: The defect is in the body only: a route may answer before reading it (see oracle).
    body_defect: bool = False


# -- builders ------------------------------------------------------------------------------


def _message(start: str, fields: Sequence[str], body: bytes = b"", eol: str = "\r\n") -> bytes:
    """Start line, field lines and the blank line, ``eol``-terminated; latin-1 keeps bytes."""
    head = start + eol + "".join(field + eol for field in fields) + eol
    return head.encode("latin-1") + body


def smuggled_request(host: str) -> bytes:
    """The complete request hidden in framing cases (seen only by a desynced parser)."""
    return f"GET {SMUGGLED_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1")


def baseline_request(method: str, host: str, path: str) -> bytes:
    """A valid request to the same route, for the routing trap (404 vs 404 is acceptance)."""
    if method == "GET":
        return _message(f"GET {path} HTTP/1.1", [f"Host: {host}"])
    return _message(f"{method} {path} HTTP/1.1", [f"Host: {host}", "Content-Length: 5"], BODY)


def canary_request(host: str, path: str, nonce: str) -> bytes:
    """The valid request sent after a framing case on the same connection."""
    sep = "&" if "?" in path else "?"
    return _message(f"GET {path}{sep}{CANARY_PARAM}={nonce} HTTP/1.1", [f"Host: {host}"])


def _get(*fields: str, start: str = "GET {p} HTTP/1.1", eol: str = "\r\n") -> Builder:
    """A GET with ``Host`` first and extra ``fields`` ({h}/{p} are substituted)."""

    def build(host: str, path: str) -> bytes:
        lines = [f"Host: {host}", *(f.format(h=host, p=path) for f in fields)]
        return _message(start.format(h=host, p=path), lines, eol=eol)

    return build


def _raw(start: str, *fields: str, body: bytes = b"") -> Builder:
    """Exactly these lines (no implicit Host): {h}/{p} are substituted."""

    def build(host: str, path: str) -> bytes:
        lines = [f.format(h=host, p=path) for f in fields]
        return _message(start.format(h=host, p=path), lines, body)

    return build


def _post(*fields: str, body: bytes = BODY) -> Builder:
    """A POST with Host and the given framing ``fields``, then ``body`` verbatim."""
    return _raw("POST {p} HTTP/1.1", "Host: {h}", *fields, body=body)


CHUNK: dict[str, Any] = {"method": "POST", "framing": True, "body_defect": True}


def _chunked(body: bytes) -> Builder:
    return _post("Transfer-Encoding: chunked", body=body)


def _cl_pair(template: str) -> Builder:
    """Two lengths: 5 (just ``hello``) and the whole body (``hello`` + smuggled request)."""

    def build(host: str, path: str) -> bytes:
        body = BODY + smuggled_request(host)
        header = template.format(short=len(BODY), long=len(body))
        return _message(f"POST {path} HTTP/1.1", [f"Host: {host}", *header.split("\n")], body)

    return build


def _hidden_te(hide: str) -> Builder:
    """A Content-Length covering ``0 CRLF CRLF`` + smuggled request, and a Transfer-Encoding
    that only a misparsing server sees (``hide`` is the field line that smuggles it)."""

    def build(host: str, path: str) -> bytes:
        body = b"0\r\n\r\n" + smuggled_request(host)
        if hide.startswith(" "):  # whitespace-preceded line right after the request line
            fields = [hide, f"Host: {host}", f"Content-Length: {len(body)}"]
        else:
            fields = [f"Host: {host}", hide, f"Content-Length: {len(body)}"]
        return _message(f"POST {path} HTTP/1.1", fields, body)

    return build


def _cl_te_split(te_first: bool, version: str = "HTTP/1.1", keep_alive: bool = False) -> Builder:
    """CL and TE disagree: chunked data holds the smuggled request; CL ends before it."""

    def build(host: str, path: str) -> bytes:
        data = smuggled_request(host)
        size_line = f"{len(data):x}\r\n".encode()
        body = size_line + data + b"\r\n0\r\n\r\n"
        cl, te = f"Content-Length: {len(size_line)}", "Transfer-Encoding: chunked"
        fields = [f"Host: {host}", *([te, cl] if te_first else [cl, te])]
        if keep_alive:
            fields.append("Connection: keep-alive")
        return _message(f"POST {path} {version}", fields, body)

    return build


def _chunked_then_smuggle(size: str) -> Builder:
    """A chunk of declared ``size`` holding ``hello``, the last chunk, then the smuggled
    request: correct parsers read the smuggled bytes as chunk data (or reject)."""

    def build(host: str, path: str) -> bytes:
        body = f"{size}\r\n".encode() + BODY + b"\r\n0\r\n\r\n" + smuggled_request(host)
        return _message(f"POST {path} HTTP/1.1", [f"Host: {host}", "Transfer-Encoding: chunked"],
                        body)

    return build


def _overflow_cl(host: str, path: str) -> bytes:
    body = BODY + smuggled_request(host)
    fields = [f"Host: {host}", f"Content-Length: {2**64 + len(BODY)}"]
    return _message(f"POST {path} HTTP/1.1", fields, body)


def _get_with_body(host: str, path: str) -> bytes:
    body = smuggled_request(host)
    return _message(f"GET {path} HTTP/1.1", [f"Host: {host}", f"Content-Length: {len(body)}"],
                    body)


def _cl_te_aligned(host: str, path: str) -> bytes:
    body = b"5\r\nhello\r\n0\r\n\r\n"
    fields = [f"Host: {host}", f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"]
    return _message(f"POST {path} HTTP/1.1", fields, body)


def _prefixed(prefix: bytes, inner: Builder) -> Builder:
    return lambda host, path: prefix + inner(host, path)


def _suffixed(inner: Builder, suffix: bytes) -> Builder:
    return lambda host, path: inner(host, path) + suffix


def _const(data: bytes) -> Builder:
    return lambda host, path: data


def _many_fields(count: int) -> Builder:
    return _get(*(f"X-Assay-{i}: {i}" for i in range(count)))


def _http09(host: str, path: str) -> bytes:
    """An HTTP/0.9 simple request: a request line without a version, nothing else."""
    return f"GET {path}\r\n".encode("latin-1")


def _tls_client_hello(server_name: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello record, what an https client sends first."""

    def vec(data: bytes, width: int) -> bytes:
        return len(data).to_bytes(width, "big") + data

    sni = vec(vec(b"\x00" + vec(server_name, 2), 2), 2)
    extensions = b"\x00\x00" + sni + b"\x00\x0a" + vec(vec(b"\x00\x1d", 2), 2)
    hello = (b"\x03\x03" + bytes(32) + vec(b"", 1) + vec(b"\xc0\x2f", 2) + vec(b"\x00", 1)
             + vec(extensions, 2))
    return b"\x16\x03\x01" + vec(b"\x01" + vec(hello, 3), 2)


#: Deterministic non-HTTP bytes: none is a token character at the start, no CRLF inside.
JUNK = bytes((0x80 + (i * 151) % 0x7F) for i in range(256))
#: What an https client sends first on a plaintext port.
TLS_CLIENT_HELLO = _tls_client_hello(b"assay.invalid")
#: RFC 9113 §3.4 client preface followed by an empty SETTINGS frame.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


# -- quotes --------------------------------------------------------------------------------

Q_CL_INVALID = (
    "If a message is received without Transfer-Encoding and with an invalid Content-Length "
    "header field, then the message framing is invalid and the recipient MUST treat it as an "
    "unrecoverable error ... the server MUST respond with a 400 (Bad Request) status code and "
    "then close the connection."
)
Q_CL_LIST = (
    "... unless the field value can be successfully parsed as a comma-separated list ..., all "
    "values in the list are valid, and all values in the list are the same (in which case, the "
    "message is processed with that single value used as the Content-Length field value)."
)
Q_CL_BIG = (
    "a recipient MUST anticipate potentially large decimal numerals and prevent parsing errors "
    "due to integer conversion overflows or precision loss due to integer conversion"
)
Q_CL_TE = (
    "A server MAY reject a request that contains both Content-Length and Transfer-Encoding or "
    "process such a request in accordance with the Transfer-Encoding alone. Regardless, the "
    "server MUST close the connection after responding to such a request to avoid the "
    "potential attacks."
)
Q_TE_NOT_FINAL = (
    "If a Transfer-Encoding header field is present in a request and the chunked transfer "
    "coding is not the final encoding, the message body length cannot be determined reliably; "
    "the server MUST respond with the 400 (Bad Request) status code and then close the "
    "connection."
)
Q_TE_UNKNOWN = (
    "A server that receives a request message with a transfer coding it does not understand "
    "SHOULD respond with 501 (Not Implemented)."
)
Q_TE_TWICE = (
    "A sender MUST NOT apply the chunked transfer coding more than once to a message body "
    "(i.e., chunking an already chunked message is not allowed)."
)
Q_TE_HTTP10 = (
    "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding "
    "header field MUST treat the message as if the framing is faulty, even if a Content-Length "
    "is present, and close the connection after processing the message."
)
Q_GRAMMAR = (
    "When a server listening only for HTTP request messages ... receives a sequence of octets "
    "that does not match the HTTP-message grammar aside from the robustness exceptions listed "
    "above, the server SHOULD respond with a 400 (Bad Request) response and close the "
    "connection."
)
Q_WS_COLON = (
    "A server MUST reject, with a response status code of 400 (Bad Request), any received "
    "request message that contains whitespace between a header field name and colon."
)
Q_WS_LINE = (
    "A recipient that receives whitespace between the start-line and the first header field "
    "MUST either reject the message as invalid or consume each whitespace-preceded line "
    "without further processing of it"
)
Q_OBS_FOLD = (
    "A server that receives an obs-fold in a request message that is not within a "
    '"message/http" container MUST either reject the message by sending a 400 (Bad Request) '
    "... or replace each received obs-fold with one or more SP octets prior to interpreting "
    "the field value or forwarding the message downstream."
)
Q_BARE_CR = (
    "A recipient of such a bare CR MUST consider that element to be invalid or replace each "
    "bare CR with SP before processing the element or forwarding the message."
)
Q_NUL = (
    "a recipient of CR, LF, or NUL within a field value MUST either reject the message or "
    "replace each of those characters with SP before further processing or forwarding of that "
    "message."
)
Q_CTL = (
    "Field values containing other CTL characters are also invalid; however, recipients MAY "
    "retain such characters for the sake of robustness when they appear within a safe context"
)
Q_BARE_LF = (
    "Although the line terminator for the start-line and fields is the sequence CRLF, a "
    "recipient MAY recognize a single LF as a line terminator and ignore any preceding CR."
)
Q_FIELD_LIMIT = (
    "A server that receives a request header field line, field value, or set of fields larger "
    "than it wishes to process MUST respond with an appropriate 4xx (Client Error) status code."
)
Q_HOST = (
    "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request "
    "message that lacks a Host header field and to any request message that contains more "
    "than one Host header field line or a Host header field with an invalid field value."
)
Q_TARGET = (
    "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad Request) "
    "error or a 301 (Moved Permanently) redirect with the request-target properly encoded."
)
Q_TARGET_LONG = (
    "A server that receives a request-target longer than any URI it wishes to parse MUST "
    "respond with a 414 (URI Too Long) status code"
)
Q_WS_SPLIT = (
    "recipients MAY instead parse on whitespace-delimited word boundaries and, aside from the "
    "CRLF terminator, treat any form of whitespace as the SP separator while ignoring "
    "preceding or trailing whitespace"
)
Q_VERSION = "HTTP-version is case-sensitive. HTTP-version = HTTP-name \"/\" DIGIT \".\" DIGIT"
Q_VERSION_MAJOR = (
    "A server can send a 505 (HTTP Version Not Supported) response if it wishes, for any "
    "reason, to refuse service of the client's major protocol version."
)
Q_VERSION_MINOR = (
    "A recipient that receives a message with a major version number that it implements and "
    "a minor version number higher than what it implements SHOULD process the message as if "
    "it were in the highest minor version within that major version to which the recipient is "
    "conformant."
)
Q_ASTERISK = (
    'The "asterisk-form" of request-target is only used for a server-wide OPTIONS request'
)
Q_CHUNK_GRAMMAR = (
    "chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG"
)
Q_CHUNK_BIG = (
    "recipients MUST anticipate potentially large hexadecimal numerals and prevent parsing "
    "errors due to integer conversion overflows or precision loss due to integer "
    "representation."
)
Q_CHUNK_EXT = (
    'chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ); '
    "chunk-ext-val = token / quoted-string"
)
Q_INCOMPLETE = (
    "A server that receives an incomplete request message, usually due to a canceled request "
    "or a triggered timeout exception, MAY send an error response prior to closing the "
    "connection."
)
Q_GET_BODY = (
    "content received in a GET request has no generally defined semantics, cannot alter the "
    "meaning or target of the request, and might lead some implementations to reject the "
    "request and close the connection because of its potential as a request smuggling attack"
)
#: Definitional, not a keyword: a parser that frames a GET body otherwise is not HTTP/1.1.
Q_CL_FRAMING = (
    "The presence of a message body in a request is signaled by a Content-Length or "
    "Transfer-Encoding header field. Request message framing is independent of method "
    "semantics."
)
Q_LEADING_CRLF = (
    "In the interest of robustness, a server that is expecting to receive and parse a "
    "request-line SHOULD ignore at least one empty line (CRLF) received prior to the "
    "request-line."
)
Q_H2_PREFACE = (
    "The client connection preface is selected so that a large proportion of HTTP/1.1 or "
    "HTTP/1.0 servers and intermediaries do not attempt to process further frames."
)
Q_TIMEOUT = (
    "The 408 (Request Timeout) status code indicates that the server did not receive a "
    "complete request message within the time that it was prepared to wait."
)

S9112_63_4, S9112_63_5 = "RFC 9112 §6.3 (4)", "RFC 9112 §6.3 (5)"
NOT_IMPL = frozenset({501})
VERSION_REFUSAL = frozenset({505})
TARGET_REFUSAL = frozenset({301})
P400, P414, P431 = frozenset({400}), frozenset({414}), frozenset({431, 400})


def _case(name: str, category: str, build: Builder, allowed: frozenset[Reaction],
          requirement: Requirement, severity: Severity, rfc: str, quote: str,
          **extra: Any) -> AdversarialCase:
    return AdversarialCase(name, category, build, allowed, requirement, severity, rfc, quote,
                           **extra)


_LEN, _FLD, _HOST, _LINE, _CHK, _CONN = (
    "length", "fields", "host", "request-line", "chunked", "connection")
POST: dict[str, Any] = {"method": "POST"}
FRAMING: dict[str, Any] = {"framing": True}
SMUGGLE: dict[str, Any] = {"framing": True, "smuggles": True}

CASES: tuple[AdversarialCase, ...] = (
    # -- message length: Content-Length ----------------------------------------------------
    _case("cl-conflicting", _LEN, _cl_pair("Content-Length: {short}\nContent-Length: {long}"),
          CLOSING_REFUSALS, MUST, HIGH, S9112_63_5, Q_CL_INVALID, **POST, **SMUGGLE),
    _case("cl-conflicting-list", _LEN, _cl_pair("Content-Length: {short}, {long}"),
          CLOSING_REFUSALS, MUST, HIGH, S9112_63_5, Q_CL_INVALID, **POST, **SMUGGLE),
    _case("cl-duplicate-same", _LEN, _post("Content-Length: 5", "Content-Length: 5"),
          REFUSE_OR_ACCEPT, MAY, LOW, S9112_63_5, Q_CL_LIST, **POST, **FRAMING),
    _case("cl-hex", _LEN, _post("Content-Length: 0x5"), CLOSING_REFUSALS, MUST, HIGH,
          S9112_63_5, Q_CL_INVALID, **POST, **FRAMING),
    _case("cl-plus-sign", _LEN, _post("Content-Length: +5"), CLOSING_REFUSALS, MUST, HIGH,
          S9112_63_5, Q_CL_INVALID, **POST, **FRAMING),
    _case("cl-negative", _LEN, _post("Content-Length: -1"), CLOSING_REFUSALS, MUST, HIGH,
          S9112_63_5, Q_CL_INVALID, **POST, **FRAMING),
    _case("cl-underscore", _LEN, _post("Content-Length: 0_5"), CLOSING_REFUSALS, MUST, HIGH,
          S9112_63_5, Q_CL_INVALID, **POST, **FRAMING),
    _case("cl-empty", _LEN, _post("Content-Length: "), CLOSING_REFUSALS, MUST, HIGH,
          S9112_63_5, Q_CL_INVALID, **POST, **FRAMING),
    _case("cl-overflow", _LEN, _overflow_cl, HUGE_BODY, MUST, HIGH, "RFC 9110 §8.6", Q_CL_BIG,
          **POST, **SMUGGLE),
    # -- message length: Transfer-Encoding -------------------------------------------------
    _case("cl-te-aligned", _LEN, _cl_te_aligned, CLOSE_OR_ACCEPT, MUST, MED, "RFC 9112 §6.1",
          Q_CL_TE, must_close=True, **POST, **FRAMING),
    _case("cl-te-smuggle", _LEN, _cl_te_split(te_first=False), CLOSE_OR_ACCEPT, MUST, HIGH,
          "RFC 9112 §6.1", Q_CL_TE, must_close=True, **POST, **SMUGGLE),
    _case("te-cl-smuggle", _LEN, _cl_te_split(te_first=True), CLOSE_OR_ACCEPT, MUST, HIGH,
          "RFC 9112 §6.1", Q_CL_TE, must_close=True, **POST, **SMUGGLE),
    _case("te-http10", _LEN, _cl_te_split(True, "HTTP/1.0", keep_alive=True), CLOSE_OR_ACCEPT,
          MUST, HIGH, "RFC 9112 §6.1", Q_TE_HTTP10, must_close=True, **POST, **SMUGGLE),
    _case("te-chunked-not-final", _LEN,
          _post("Transfer-Encoding: chunked, gzip", body=b"5\r\nhello\r\n0\r\n\r\n"),
          CLOSING_REFUSALS, MUST, HIGH, S9112_63_4, Q_TE_NOT_FINAL,
          rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    _case("te-gzip-only", _LEN, _post("Transfer-Encoding: gzip"), CLOSING_REFUSALS, MUST,
          HIGH, S9112_63_4, Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    _case("te-xchunked", _LEN, _post("Transfer-Encoding: xchunked",
                                     body=b"5\r\nhello\r\n0\r\n\r\n"),
          CLOSING_REFUSALS, MUST, HIGH, S9112_63_4, Q_TE_NOT_FINAL,
          rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    _case("te-unknown-then-chunked", _LEN,
          _post("Transfer-Encoding: assay-unknown, chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
          REFUSALS, SHOULD, LOW, "RFC 9112 §6.1", Q_TE_UNKNOWN,
          rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    _case("te-chunked-twice", _LEN,
          _post("Transfer-Encoding: chunked, chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
          REFUSALS, SHOULD, MED, "RFC 9112 §6.1", Q_TE_TWICE,
          rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    _case("te-duplicate-header", _LEN,
          _post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                body=b"5\r\nhello\r\n0\r\n\r\n"),
          REFUSALS, SHOULD, MED, "RFC 9112 §6.1", Q_TE_TWICE,
          rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    # -- field lines -------------------------------------------------------------------------
    _case("ws-before-colon", _FLD, _get("X-Assay : 1"), REJECTED, MUST, HIGH, "RFC 9112 §5.1",
          Q_WS_COLON, preferred_status=P400),
    _case("ws-before-colon-te", _FLD, _hidden_te("Transfer-Encoding : chunked"), REJECTED,
          MUST, HIGH, "RFC 9112 §5.1", Q_WS_COLON, preferred_status=P400, **POST, **SMUGGLE),
    _case("leading-ws-line-te", _FLD, _hidden_te(" Transfer-Encoding: chunked"),
          REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9112 §2.2", Q_WS_LINE, **POST, **SMUGGLE),
    _case("obs-fold", _FLD, _get("X-Assay: a", " b"), REJECTED | {R.ACCEPTED}, MUST, MED,
          "RFC 9112 §5.2", Q_OBS_FOLD),
    _case("obs-fold-te", _FLD, _hidden_te("X-Assay: a\r\n Transfer-Encoding: chunked"),
          REJECTED | {R.ACCEPTED}, MUST, HIGH, "RFC 9112 §5.2", Q_OBS_FOLD, **POST, **SMUGGLE),
    _case("bare-cr-value-te", _FLD, _hidden_te("X-Assay: a\rTransfer-Encoding: chunked"),
          REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9112 §2.2", Q_BARE_CR, **POST, **SMUGGLE),
    _case("bare-cr-request-line", _FLD, _raw("GET {p} HTTP/1.1\rHost: {h}"), REFUSALS, MUST,
          HIGH, "RFC 9112 §2.2", Q_BARE_CR),
    _case("nul-in-value", _FLD, _get("X-Assay: a\x00b"), REFUSE_OR_ACCEPT, MUST, LOW,
          "RFC 9110 §5.5", Q_NUL),
    _case("ctl-in-value", _FLD, _get("X-Assay: a\x01b"), REFUSE_OR_ACCEPT, MAY, LOW,
          "RFC 9110 §5.5", Q_CTL),
    _case("bare-lf-line-ends", _FLD, _get("X-Assay: 1", eol="\n"), REFUSE_OR_ACCEPT, MAY, LOW,
          "RFC 9112 §2.2", Q_BARE_LF, **FRAMING),
    _case("invalid-field-name", _FLD, _get("X-Ass(y: 1"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.2", Q_GRAMMAR),
    _case("empty-field-name", _FLD, _get(": assay"), REFUSALS, SHOULD, LOW, "RFC 9112 §2.2",
          Q_GRAMMAR),
    _case("field-oversized", _FLD, _get("X-Assay: " + "a" * 98304), REFUSE_OR_ACCEPT, MUST,
          LOW, "RFC 9110 §5.4", Q_FIELD_LIMIT, preferred_status=P431),
    _case("fields-too-many", _FLD, _many_fields(5000), REFUSE_OR_ACCEPT, MUST, LOW,
          "RFC 9110 §5.4", Q_FIELD_LIMIT, preferred_status=P431),
    # -- Host ----------------------------------------------------------------------------------
    _case("host-missing", _HOST, _raw("GET {p} HTTP/1.1", "X-Assay: 1"), REJECTED, MUST, MED,
          "RFC 9112 §3.2", Q_HOST, preferred_status=P400),
    _case("host-duplicate", _HOST, _get("Host: assay-other.invalid"), REJECTED, MUST, HIGH,
          "RFC 9112 §3.2", Q_HOST, preferred_status=P400),
    _case("host-invalid", _HOST, _raw("GET {p} HTTP/1.1", "Host: assay/in valid"), REJECTED,
          MUST, MED, "RFC 9112 §3.2", Q_HOST, preferred_status=P400),
    # -- request line and target -----------------------------------------------------------
    _case("target-space", _LINE, _get(start="GET {p}?assay=a b HTTP/1.1"), REFUSALS, SHOULD,
          LOW, "RFC 9112 §3.2", Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    _case("target-ctl", _LINE, _get(start="GET {p}?assay=a\x01b HTTP/1.1"), REFUSALS, SHOULD,
          LOW, "RFC 9112 §3.2", Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    _case("target-fragment", _LINE, _get(start="GET {p}#assay HTTP/1.1"), REFUSALS, SHOULD,
          LOW, "RFC 9112 §3.2", Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    _case("target-too-long", _LINE, _get(start="GET {p}?assay=" + "a" * 65536 + " HTTP/1.1"),
          REFUSE_OR_ACCEPT, MUST, LOW, "RFC 9112 §3", Q_TARGET_LONG, preferred_status=P414),
    _case("target-asterisk-get", _LINE, _get(start="GET * HTTP/1.1"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §3.2.4", Q_ASTERISK),
    _case("target-missing", _LINE, _get(start="GET HTTP/1.1"), REFUSALS | {R.GARBAGE}, SHOULD,
          LOW, "RFC 9112 §2.2", Q_GRAMMAR),
    _case("method-invalid-token", _LINE, _get(start="G(T {p} HTTP/1.1"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.2", Q_GRAMMAR, rejection_statuses=NOT_IMPL),
    _case("sep-tab", _LINE, _get(start="GET\t{p}\tHTTP/1.1"), REFUSE_OR_ACCEPT, MAY, LOW,
          "RFC 9112 §3", Q_WS_SPLIT),
    _case("sep-double-space", _LINE, _get(start="GET  {p}  HTTP/1.1"), REFUSE_OR_ACCEPT, MAY,
          LOW, "RFC 9112 §3", Q_WS_SPLIT),
    _case("version-invalid", _LINE, _get(start="GET {p} HTTP/1.x"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.3", Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    _case("version-lowercase", _LINE, _get(start="GET {p} http/1.1"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.3", Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    _case("version-multi-digit", _LINE, _get(start="GET {p} HTTP/1.10"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.3", Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    _case("version-major-2", _LINE, _get(start="GET {p} HTTP/2.0"), REFUSE_OR_ACCEPT, MAY, LOW,
          "RFC 9110 §2.5", Q_VERSION_MAJOR, rejection_statuses=VERSION_REFUSAL),
    _case("version-minor-high", _LINE, _get(start="GET {p} HTTP/1.9"), frozenset({R.ACCEPTED}),
          SHOULD, LOW, "RFC 9110 §2.5", Q_VERSION_MINOR),
    _case("http09", _LINE, _http09, REFUSE_OR_ACCEPT | {R.GARBAGE, R.HANG}, MAY, LOW,
          "RFC 9112 §2.3", Q_VERSION),
    # -- chunked bodies ----------------------------------------------------------------------
    _case("chunk-size-hex-prefix", _CHK, _chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), REFUSALS,
          SHOULD, MED, "RFC 9112 §7.1", Q_CHUNK_GRAMMAR, **CHUNK),
    _case("chunk-size-invalid", _CHK, _chunked(b"5g\r\nhello\r\n0\r\n\r\n"), REFUSALS, SHOULD,
          MED, "RFC 9112 §7.1", Q_CHUNK_GRAMMAR, **CHUNK),
    _case("chunk-size-overflow", _CHK, _chunked_then_smuggle("10000000000000005"), HUGE_BODY,
          MUST, HIGH, "RFC 9112 §7.1", Q_CHUNK_BIG, body_defect=True, **POST, **SMUGGLE),
    _case("chunk-data-overrun", _CHK, _chunked(b"3\r\nhello\r\n0\r\n\r\n"), REFUSALS, SHOULD,
          MED, "RFC 9112 §7.1", Q_CHUNK_GRAMMAR, **CHUNK),
    _case("chunk-size-bare-lf", _CHK, _chunked(b"5\nhello\r\n0\r\n\r\n"), REFUSALS, SHOULD,
          MED, "RFC 9112 §7.1", Q_CHUNK_GRAMMAR, **CHUNK),
    _case("chunk-data-bare-lf", _CHK, _chunked(b"5\r\nhello\n0\r\n\r\n"), REFUSALS, SHOULD,
          MED, "RFC 9112 §7.1", Q_CHUNK_GRAMMAR, **CHUNK),
    _case("chunk-ext-invalid", _CHK, _chunked(b'5;assay="open\r\nhello\r\n0\r\n\r\n'),
          REFUSALS, SHOULD, LOW, "RFC 9112 §7.1.1", Q_CHUNK_EXT, **CHUNK),
    _case("chunk-ext-bare-lf", _CHK, _chunked(b"5;assay\nhello\r\n0\r\n\r\n"), REFUSALS,
          SHOULD, MED, "RFC 9112 §7.1.1", Q_CHUNK_EXT, **CHUNK),
    _case("chunk-missing-last", _CHK, _chunked(b"5\r\nhello\r\n"), HUGE_BODY, MAY, LOW,
          "RFC 9112 §8", Q_INCOMPLETE, body_defect=True, **POST),
    # -- connection level --------------------------------------------------------------------
    _case("get-with-body", _CONN, _get_with_body, REFUSE_OR_ACCEPT, MUST, HIGH,
          "RFC 9112 §6", Q_CL_FRAMING, **SMUGGLE),
    _case("garbage-after-request", _CONN, _suffixed(_get(), b"\x00\x01\x02assay-junk\r\n\r\n"),
          frozenset({R.ACCEPTED}), SHOULD, LOW, "RFC 9112 §2.2", Q_GRAMMAR),
    _case("leading-crlf", _CONN, _prefixed(b"\r\n", _get()), REFUSE_OR_ACCEPT, SHOULD, LOW,
          "RFC 9112 §2.2", Q_LEADING_CRLF, **FRAMING),
    _case("leading-crlf-many", _CONN, _prefixed(b"\r\n" * 64, _get()), REFUSE_OR_ACCEPT, MAY,
          LOW, "RFC 9112 §2.2", Q_LEADING_CRLF, **FRAMING),
    _case("binary-junk", _CONN, _const(JUNK + b"\r\n\r\n"), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.2", Q_GRAMMAR),
    _case("tls-client-hello", _CONN, _const(TLS_CLIENT_HELLO), REFUSALS, SHOULD, LOW,
          "RFC 9112 §2.2", Q_GRAMMAR),
    _case("h2-prior-knowledge", _CONN, _const(H2_PREFACE), REFUSE_OR_ACCEPT | {R.GARBAGE}, MAY,
          LOW, "RFC 9113 §3.4", Q_H2_PREFACE, rejection_statuses=VERSION_REFUSAL),
    _case("slow-loris-head", _CONN, _get("X-Assay: slow"), REFUSALS, MAY, LOW,
          "RFC 9110 §15.5.9", Q_TIMEOUT, drip=0.5),
    _case("slow-loris-body", _CONN, _post("Content-Length: 4096", body=b"a" * 4096),
          REFUSE_OR_ACCEPT,
          MAY, LOW, "RFC 9112 §8", Q_INCOMPLETE, drip=0.5, drip_body_only=True, **POST),
)


BY_NAME: dict[str, AdversarialCase] = {case.name: case for case in CASES}
