"""Valid traffic that MUST work: refusing it is the violation.

How this works: every case here is a correct HTTP/1.1 (or HTTP/1.0) message, so the only
allowed reaction is acceptance, judged like any other case against the baseline (a route
that answers the valid POST with 405 and this one with 405 accepted it). Three RFC texts
carry the weight: RFC 9112 §7.1 "A recipient MUST be able to parse and decode the chunked
transfer coding" (odd but valid chunked bodies, trailers, extensions); RFC 9112 §9.3.2 on
pipelining, "it MUST send the corresponding responses in the same order that the requests
were received" (several requests in one write, ``responses`` of them expected: one missing
while the connection stays open is a dropped request); RFC 9112 §9.6 on ``Connection:
close``, after which the server MUST close and MUST NOT process further requests.

A server MAY refuse a chunked request with 411 (RFC 9112 §6.3), so valid chunked cases
tolerate it; a 411 is no proof of a broken parser.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    ACCEPT,
    CLOSE_OR_ACCEPT,
    FRAMING,
    LENGTH_REQUIRED,
    LOW,
    MED,
    MUST,
    NOT_IMPL,
    REJECTED,
    SHOULD,
    VALID,
    VALID_TRAFFIC,
    AdversarialCase,
    case,
)

S71, S932, S96 = "RFC 9112 §7.1", "RFC 9112 §9.3.2", "RFC 9112 §9.6"
BODY_OK: dict[str, object] = {"method": "POST", "tolerated_statuses": LENGTH_REQUIRED,
                              **FRAMING, **VALID}


def _chunked_ok(name: str, body: bytes, te: str = "Transfer-Encoding: chunked",
                rfc: str = S71, quote: str = q.Q_CHUNKED_PARSE) -> AdversarialCase:
    return case(name, VALID_TRAFFIC, b.chunked(body, te), ACCEPT, MUST, MED, rfc, quote,
                **BODY_OK)


def _pipelined(name: str, *parts: b.Builder, method: str = "GET",
               methods: tuple[str, ...] = (), **extra: object) -> AdversarialCase:
    return case(name, VALID_TRAFFIC, b.pipeline(*parts), ACCEPT, MUST, MED, S932, q.Q_PIPELINE,
                method=method, responses=len(parts), methods=methods, **FRAMING, **VALID,
                **extra)


_MANY = b"".join(b"1\r\n" + bytes([97 + i % 26]) + b"\r\n" for i in range(64)) + b"0\r\n\r\n"
_TRAILER = b"5\r\nhello\r\n0\r\nX-Assay-Trailer: 1\r\n\r\n"

CHUNKED: tuple[AdversarialCase, ...] = (
    _chunked_ok("chunked-many-chunks", _MANY),
    _chunked_ok("chunked-empty-body", b"0\r\n\r\n"),
    _chunked_ok("chunked-upper-hex", b"A\r\n0123456789\r\n0\r\n\r\n"),
    _chunked_ok("chunked-lower-hex", b"a\r\n0123456789\r\n0\r\n\r\n"),
    _chunked_ok("chunked-leading-zeros", b"005\r\nhello\r\n000\r\n\r\n"),
    _chunked_ok("chunked-large-chunk", b"2000\r\n" + b"a" * 0x2000 + b"\r\n0\r\n\r\n"),
    _chunked_ok("chunked-extension", b"5;assay=1\r\nhello\r\n0\r\n\r\n", rfc="RFC 9112 §7.1.1",
                quote=q.Q_CHUNK_EXT_IGNORE),
    _chunked_ok("chunked-extension-quoted", b'5;assay="a b"\r\nhello\r\n0\r\n\r\n',
                rfc="RFC 9112 §7.1.1", quote=q.Q_CHUNK_EXT_IGNORE),
    _chunked_ok("chunked-extension-name-only", b"5;assay\r\nhello\r\n0;assay\r\n\r\n",
                rfc="RFC 9112 §7.1.1", quote=q.Q_CHUNK_EXT_IGNORE),
    _chunked_ok("chunked-trailer", _TRAILER),
    _chunked_ok("chunked-trailers-two",
                b"5\r\nhello\r\n0\r\nX-Assay-A: 1\r\nX-Assay-B: 2\r\n\r\n"),
    _chunked_ok("te-chunked-mixed-case", b.CHUNKED_HELLO, "Transfer-Encoding: Chunked",
                "RFC 9112 §6.1", q.Q_TE_CODING_CASE),
    _chunked_ok("te-chunked-uppercase", b.CHUNKED_HELLO, "Transfer-Encoding: CHUNKED",
                "RFC 9112 §6.1", q.Q_TE_CODING_CASE),
    case("te-chunked-ows", VALID_TRAFFIC,
         b.chunked(b.CHUNKED_HELLO, "Transfer-Encoding: \t chunked \t"), ACCEPT, MUST, LOW,
         "RFC 9110 §5.5", q.Q_OWS_VALUE, **BODY_OK),
    _chunked_ok("te-name-lowercase", b.CHUNKED_HELLO, "transfer-encoding: chunked",
                "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN),
)

#: RFC 9110 §5.6.1 makes ignoring an empty list element a MUST, but RFC 9112 §6.1 lets a
#: server that does not understand a coding refuse it (501, or a plain 400): a strict parser
#: that reads ", chunked" as an unknown coding refused safely. What remains judged is a 5xx
#: other than 501, a hang, garbage, or a desync.
LIST_EMPTY = case("te-list-empty-element", VALID_TRAFFIC,
                  b.chunked(b.CHUNKED_HELLO, "Transfer-Encoding: , chunked"),
                  ACCEPT | REJECTED, MUST, MED, "RFC 9110 §5.6.1", q.Q_LIST_EMPTY,
                  rejection_statuses=NOT_IMPL, **BODY_OK)

_GET = b.get()
PIPELINING: tuple[AdversarialCase, ...] = (
    _pipelined("pipeline-get-3", _GET, _GET, _GET),
    _pipelined("pipeline-get-10", *([_GET] * 10)),
    _pipelined("pipeline-after-cl-body", b.post("Content-Length: 5"), _GET, _GET,
               method="POST"),
    _pipelined("pipeline-after-cl-zero", b.post("Content-Length: 0", body=b""), _GET,
               method="POST"),
    # A server that does not take chunked request bodies MAY answer 411 (RFC 9112 §6.3).
    _pipelined("pipeline-after-chunked-body", b.chunked(b.CHUNKED_HELLO), _GET,
               method="POST", tolerated_statuses=LENGTH_REQUIRED),
    _pipelined("pipeline-after-chunked-trailer", b.chunked(_TRAILER), _GET, method="POST",
               tolerated_statuses=LENGTH_REQUIRED),
    _pipelined("pipeline-head-then-get", b.raw("HEAD {p} HTTP/1.1", "Host: {h}"), _GET,
               methods=("HEAD", "GET")),
    _pipelined("pipeline-post-post", b.post("Content-Length: 5"), b.post("Content-Length: 5"),
               method="POST"),
)

CLOSING: tuple[AdversarialCase, ...] = (
    case("connection-close", VALID_TRAFFIC, b.get("Connection: close"), ACCEPT, MUST, MED,
         S96, q.Q_CLOSE_RECEIVED, must_close=True, **VALID),
    case("connection-close-post", VALID_TRAFFIC, b.post("Content-Length: 5",
                                                        "Connection: close"),
         ACCEPT, MUST, MED, S96, q.Q_CLOSE_RECEIVED, must_close=True, method="POST", **VALID),
    case("connection-close-mixed-case", VALID_TRAFFIC, b.get("Connection: Close"), ACCEPT,
         MUST, MED, S96, q.Q_CLOSE_RECEIVED, must_close=True, **VALID),
    # Two requests in one write, the first asking to close: the second MUST NOT be served.
    # Sending it breaks the client's own MUST NOT, so a refusal is allowed too.
    case("pipeline-close-stops", VALID_TRAFFIC, b.pipeline(b.get("Connection: close"), _GET),
         CLOSE_OR_ACCEPT, MUST, MED, S96, q.Q_CLOSE_RECEIVED, must_close=True),
    case("http10-default-close", VALID_TRAFFIC, b.raw("GET {p} HTTP/1.0", "Host: {h}"),
         ACCEPT, SHOULD, LOW, "RFC 9112 §9.3", q.Q_HTTP10_CLOSE, must_close=True, **VALID),
)

CASES: tuple[AdversarialCase, ...] = (*CHUNKED, LIST_EMPTY, *PIPELINING, *CLOSING)
