"""Message-length cases: Content-Length values and Transfer-Encoding, alone and together.

How this works: the rows quote RFC 9112 §6 (§6.1 Transfer-Encoding, §6.3 message body
length). Every case whose wrong framing could hand a request to the next hop carries the
smuggled request (``SMUGGLE``) so that a server framing it differently answers a request we
never sent. Two layouts are used for Transfer-Encoding obfuscation next to a Content-Length:

* ``te_split``: the Content-Length ends after the chunk-size line, so a server that ignored
  (or misread away) the Transfer-Encoding sees the smuggled request; one that decoded
  chunked sees it as chunk data. Used where the field *is* a Transfer-Encoding (valid or
  not): a valid one must be processed by it and the connection closed, an invalid one
  refused with 400 and a close.
* ``hidden_te``: the Content-Length covers ``0 CRLF CRLF`` and the smuggled request. Used
  where the field is *not* a Transfer-Encoding (``Transfer_Encoding``): a conforming server
  frames by Content-Length and sees one request.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    ACCEPT,
    CLOSE_OR_ACCEPT,
    CLOSING_REFUSALS,
    FRAMING,
    HIGH,
    HUGE_BODY,
    LENGTH,
    LOW,
    MAY,
    MED,
    MUST,
    NOT_IMPL,
    POST,
    REFUSALS,
    REFUSE_OR_ACCEPT,
    REJECTED,
    SHOULD,
    SMUGGLE,
    VALID,
    AdversarialCase,
    case,
)

S63_4, S63_5, S61 = "RFC 9112 §6.3 (4)", "RFC 9112 §6.3 (5)", "RFC 9112 §6.1"


def _te_cl(name: str, *te_lines: str) -> AdversarialCase:
    """An invalid Transfer-Encoding, then ``Content-Length: 5`` and ``hello``: 400 and close
    (§6.3 (4)). A server that took the length (aiohttp, waitress with an empty value) answers
    200: accepted against a MUST, HIGH. A smuggling layout would hide that: the junk after a
    smuggled request makes such servers fail the connection before answering anything."""
    return case(name, LENGTH, b.post(*te_lines, "Content-Length: 5"), CLOSING_REFUSALS,
                MUST, HIGH, S63_4, q.Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL,
                must_close=True, **POST, **FRAMING)


def _te_cl_split(name: str, *te_lines: str) -> AdversarialCase:
    """The same with the smuggling layout (``te_split``, length first): a server that
    frames by the length answers the smuggled request."""
    return case(name, LENGTH, b.te_split(*te_lines), CLOSING_REFUSALS, MUST, HIGH, S63_4,
                q.Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL, must_close=True, **POST,
                **SMUGGLE)


def _te_cl_valid(name: str, *te_lines: str, quote: str = q.Q_CL_TE) -> AdversarialCase:
    """A valid chunked Transfer-Encoding (odd spelling) next to a Content-Length: reject, or
    process by Transfer-Encoding alone, and close either way (§6.1)."""
    return case(name, LENGTH, b.te_split(*te_lines), CLOSE_OR_ACCEPT, MUST, HIGH, S61, quote,
                rejection_statuses=NOT_IMPL, must_close=True, **POST, **SMUGGLE)


OLD: tuple[AdversarialCase, ...] = (
    case("cl-conflicting", LENGTH, b.cl_pair("Content-Length: {short}\nContent-Length: {long}"),
         CLOSING_REFUSALS, MUST, HIGH, S63_5, q.Q_CL_INVALID, **POST, **SMUGGLE),
    case("cl-conflicting-list", LENGTH, b.cl_pair("Content-Length: {short}, {long}"),
         CLOSING_REFUSALS, MUST, HIGH, S63_5, q.Q_CL_INVALID, **POST, **SMUGGLE),
    case("cl-duplicate-same", LENGTH, b.post("Content-Length: 5", "Content-Length: 5"),
         REFUSE_OR_ACCEPT, MAY, LOW, S63_5, q.Q_CL_LIST, **POST, **FRAMING),
    case("cl-hex", LENGTH, b.post("Content-Length: 0x5"), CLOSING_REFUSALS, MUST, HIGH,
         S63_5, q.Q_CL_INVALID, **POST, **FRAMING),
    case("cl-plus-sign", LENGTH, b.post("Content-Length: +5"), CLOSING_REFUSALS, MUST, HIGH,
         S63_5, q.Q_CL_INVALID, **POST, **FRAMING),
    case("cl-negative", LENGTH, b.post("Content-Length: -1"), CLOSING_REFUSALS, MUST, HIGH,
         S63_5, q.Q_CL_INVALID, **POST, **FRAMING),
    case("cl-underscore", LENGTH, b.post("Content-Length: 0_5"), CLOSING_REFUSALS, MUST, HIGH,
         S63_5, q.Q_CL_INVALID, **POST, **FRAMING),
    case("cl-empty", LENGTH, b.post("Content-Length: "), CLOSING_REFUSALS, MUST, HIGH,
         S63_5, q.Q_CL_INVALID, **POST, **FRAMING),
    case("cl-overflow", LENGTH, b.overflow_cl(), HUGE_BODY, MUST, HIGH, "RFC 9110 §8.6",
         q.Q_CL_BIG, **POST, **SMUGGLE),
    case("cl-te-aligned", LENGTH, b.cl_te_aligned, CLOSE_OR_ACCEPT, MUST, MED, S61,
         q.Q_CL_TE, must_close=True, **POST, **FRAMING),
    case("cl-te-smuggle", LENGTH, b.cl_te_split(te_first=False), CLOSE_OR_ACCEPT, MUST, HIGH,
         S61, q.Q_CL_TE, must_close=True, **POST, **SMUGGLE),
    case("te-cl-smuggle", LENGTH, b.cl_te_split(te_first=True), CLOSE_OR_ACCEPT, MUST, HIGH,
         S61, q.Q_CL_TE, must_close=True, **POST, **SMUGGLE),
    case("te-http10", LENGTH, b.cl_te_split(True, "HTTP/1.0", keep_alive=True),
         CLOSE_OR_ACCEPT, MUST, HIGH, S61, q.Q_TE_HTTP10, must_close=True, **POST, **SMUGGLE),
    case("te-chunked-not-final", LENGTH,
         b.post("Transfer-Encoding: chunked, gzip", body=b.CHUNKED_HELLO),
         CLOSING_REFUSALS, MUST, HIGH, S63_4, q.Q_TE_NOT_FINAL,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    case("te-gzip-only", LENGTH, b.post("Transfer-Encoding: gzip"), CLOSING_REFUSALS, MUST,
         HIGH, S63_4, q.Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    case("te-xchunked", LENGTH, b.post("Transfer-Encoding: xchunked", body=b.CHUNKED_HELLO),
         CLOSING_REFUSALS, MUST, HIGH, S63_4, q.Q_TE_NOT_FINAL,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    # Re-graded MED -> LOW: a SHOULD is never failed, so its severity only misled.
    case("te-unknown-then-chunked", LENGTH,
         b.post("Transfer-Encoding: assay-unknown, chunked", body=b.CHUNKED_HELLO),
         REFUSALS, SHOULD, LOW, S61, q.Q_TE_UNKNOWN,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    case("te-chunked-twice", LENGTH,
         b.post("Transfer-Encoding: chunked, chunked", body=b.CHUNKED_HELLO),
         REFUSALS, SHOULD, LOW, S61, q.Q_TE_TWICE,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
    case("te-duplicate-header", LENGTH,
         b.post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                body=b.CHUNKED_HELLO),
         REFUSALS, SHOULD, LOW, S61, q.Q_TE_TWICE,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
)

#: Invalid Content-Length values: 400 and close (§6.3 (5)); framing, so a server that read a
#: number out of them shows it on the canary.
_BAD_LENGTHS = {
    "cl-space-inside": "1 0", "cl-trailing-letter": "5a", "cl-decimal-point": "5.0",
    "cl-semicolon": "5;", "cl-negative-zero": "-0", "cl-fullwidth-digit": "\xef\xbc\x95",
    "cl-quoted": '"5"', "cl-exponent": "5e0",
}

CONTENT_LENGTH: tuple[AdversarialCase, ...] = (
    *(case(name, LENGTH, b.post(f"Content-Length: {value}"), CLOSING_REFUSALS, MUST, HIGH,
           S63_5, q.Q_CL_INVALID, **POST, **FRAMING) for name, value in _BAD_LENGTHS.items()),
    case("cl-overflow-32bit", LENGTH, b.overflow_cl(2**32), HUGE_BODY, MUST, HIGH,
         "RFC 9110 §8.6", q.Q_CL_BIG, **POST, **SMUGGLE),
    case("cl-list-same", LENGTH, b.post("Content-Length: 5, 5"), REFUSE_OR_ACCEPT, MAY, LOW,
         S63_5, q.Q_CL_LIST, **POST, **FRAMING),
    case("cl-trailing-comma", LENGTH, b.post("Content-Length: 5,"), REFUSE_OR_ACCEPT, MAY, LOW,
         S63_5, q.Q_CL_LIST, **POST, **FRAMING),
    # Not a Content-Length at all: a server that reads "Content_Length" as one (CGI-style
    # name mangling) takes its 5 and answers the smuggled request.
    case("cl-underscore-name", LENGTH,
         b.cl_pair("Content_Length: {short}\nContent-Length: {long}"), REFUSE_OR_ACCEPT, MUST,
         HIGH, "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN, **POST, **SMUGGLE),
    case("cl-ws-before-colon", LENGTH,
         b.cl_pair("Content-Length : {short}\nContent-Length: {long}"), REJECTED, MUST, HIGH,
         "RFC 9112 §5.1", q.Q_WS_COLON, **POST, **SMUGGLE),
    # §5.2's reject branch ("MUST either reject the message by sending a 400") asks no close.
    case("cl-obs-fold", LENGTH, b.post("Content-Length: 5", " 0"), REFUSALS, MUST,
         HIGH, "RFC 9112 §5.2", q.Q_OBS_FOLD, **POST, **FRAMING),
    case("cl-nul", LENGTH, b.post("Content-Length: 5\x00"), REFUSE_OR_ACCEPT, MUST, MED,
         "RFC 9110 §5.5", q.Q_NUL, **POST, **FRAMING),
    # Valid spellings: refusing them is the violation.
    case("cl-leading-zeros", LENGTH, b.post("Content-Length: 005"), ACCEPT, MUST, MED,
         "RFC 9112 §6.2", q.Q_CL_GRAMMAR, **POST, **FRAMING, **VALID),
    case("cl-ows", LENGTH, b.post("Content-Length:  5 "), ACCEPT, MUST, MED, "RFC 9110 §5.5",
         q.Q_OWS_VALUE, **POST, **FRAMING, **VALID),
    # A 400 to valid HTAB whitespace is a MUST missed safely (stock nginx): LOW, reported.
    case("cl-tab-ows", LENGTH, b.post("Content-Length:\t5\t"), ACCEPT, MUST, LOW,
         "RFC 9110 §5.5", q.Q_OWS_VALUE, **POST, **FRAMING, **VALID),
    case("cl-name-lowercase", LENGTH, b.post("content-length: 5"), ACCEPT, MUST, MED,
         "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN, **POST, **FRAMING, **VALID),
    case("cl-name-uppercase", LENGTH, b.post("CONTENT-LENGTH: 5"), ACCEPT, MUST, MED,
         "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN, **POST, **FRAMING, **VALID),
    case("cl-zero", LENGTH, b.post("Content-Length: 0", body=b""), ACCEPT, MUST, MED,
         "RFC 9112 §6.3 (6)", q.Q_CL_VALID, **POST, **FRAMING, **VALID),
    case("get-cl-zero", LENGTH, b.get("Content-Length: 0"), ACCEPT, MUST, MED,
         "RFC 9112 §6.3 (6)", q.Q_CL_VALID, **FRAMING, **VALID),
)

TRANSFER_ENCODING: tuple[AdversarialCase, ...] = (
    # Not chunked (or not a coding at all) next to a Content-Length: 400 and close.
    _te_cl("te-empty-cl", "Transfer-Encoding: "),
    _te_cl_split("te-empty-after-cl", "Transfer-Encoding: "),
    _te_cl_split("te-identity-after-cl", "Transfer-Encoding: identity"),
    _te_cl("te-identity-cl", "Transfer-Encoding: identity"),
    _te_cl("te-vt-cl", "Transfer-Encoding: \x0bchunked"),
    _te_cl("te-ff-cl", "Transfer-Encoding: \x0cchunked"),
    _te_cl("te-quoted-cl", 'Transfer-Encoding: "chunked"'),
    _te_cl("te-chunkedx-cl", "Transfer-Encoding: chunkedx"),
    _te_cl("te-chunked-identity-cl", "Transfer-Encoding: chunked, identity"),
    _te_cl("te-space-inside-cl", "Transfer-Encoding: chun ked"),
    _te_cl("te-comma-only-cl", "Transfer-Encoding: ,"),
    # Chunked after all (empty list elements, OWS, case, NUL replaced by SP, parameters a
    # server may take as chunked): process by TE alone or reject, and close either way.
    _te_cl_valid("te-list-empty-cl", "Transfer-Encoding: chunked, ,"),
    _te_cl_valid("te-leading-comma-cl", "Transfer-Encoding: , chunked"),
    _te_cl_valid("te-trailing-comma-cl", "Transfer-Encoding: chunked,"),
    _te_cl_valid("te-uppercase-cl", "Transfer-Encoding: CHUNKED"),
    _te_cl_valid("te-mixed-case-cl", "Transfer-Encoding: Chunked"),
    _te_cl_valid("te-name-lowercase-cl", "transfer-encoding: chunked"),
    _te_cl_valid("te-ows-cl", "Transfer-Encoding:   chunked   "),
    _te_cl_valid("te-tab-cl", "Transfer-Encoding:\tchunked\t"),
    _te_cl_valid("te-nul-cl", "Transfer-Encoding: chunked\x00", quote=q.Q_NUL),
    _te_cl_valid("te-param-cl", "Transfer-Encoding: chunked; assay=1"),
    _te_cl_valid("te-identity-lines-cl", "Transfer-Encoding: identity",
                 "Transfer-Encoding: chunked"),
    # A field that is no Transfer-Encoding: frame by Content-Length (one request).
    case("te-underscore-name-cl", LENGTH, b.hidden_te("Transfer_Encoding: chunked"),
         REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN, **POST,
         **SMUGGLE),
    case("te-space-name-cl", LENGTH, b.hidden_te("Transfer Encoding: chunked"),
         REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9110 §5.1", q.Q_FIELD_NAME_TOKEN, **POST,
         **SMUGGLE),
    case("te-tab-before-colon-cl", LENGTH, b.hidden_te("Transfer-Encoding\t: chunked"),
         REJECTED, MUST, HIGH, "RFC 9112 §5.1", q.Q_WS_COLON, **POST, **SMUGGLE),
    # No Content-Length: an invalid coding must still be refused, with a close.
    case("te-empty", LENGTH, b.post("Transfer-Encoding: ", body=b.CHUNKED_HELLO),
         CLOSING_REFUSALS, MUST, HIGH, S63_4, q.Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL,
         **POST, **FRAMING),
    case("te-identity", LENGTH, b.post("Transfer-Encoding: identity", body=b.CHUNKED_HELLO),
         CLOSING_REFUSALS, MUST, HIGH, S63_4, q.Q_TE_NOT_FINAL, rejection_statuses=NOT_IMPL,
         **POST, **FRAMING),
    case("te-http10-chunked", LENGTH,
         b.raw("POST {p} HTTP/1.0", "Host: {h}", "Transfer-Encoding: chunked",
               "Connection: keep-alive", body=b.CHUNKED_HELLO),
         CLOSE_OR_ACCEPT, MUST, MED, S61, q.Q_TE_HTTP10, must_close=True,
         rejection_statuses=NOT_IMPL, **POST, **FRAMING),
)

CASES: tuple[AdversarialCase, ...] = OLD + CONTENT_LENGTH + TRANSFER_ENCODING
