"""HTTP/2 catalogue, field blocks and messages: HPACK decoding errors (RFC 7541, RFC 9113
§4.3) and malformed requests (RFC 9113 §8.1-§8.3).

Why these: a field block the server cannot decode leaves its HPACK context out of step with
ours, so RFC 9113 §4.3 makes it a connection error of type COMPRESSION_ERROR; each HPACK
case breaks one "MUST be treated as a decoding error" sentence of RFC 7541. A request that
HPACK decodes but that breaks a §8 rule is malformed (§8.1.1): a stream error of type
PROTOCOL_ERROR, optionally after a 4xx response; a server that serves it (2xx/3xx) accepted
what the RFC calls an attack vector ("being permissive can expose implementations to these
vulnerabilities"): HIGH (I-H2-ACCEPTED).
"""

from __future__ import annotations

from collections.abc import Callable

from protocols import h2_frames as fr
from protocols.h2_case_model import (
    Builder,
    Expect,
    Group,
    H2Case,
    H2Env,
    H2Reaction,
    request_block,
)
from protocols.outcome import Requirement, Severity

E = fr.ErrorCode
COMPRESSION = frozenset({E.COMPRESSION_ERROR})
PROTOCOL = frozenset({E.PROTOCOL_ERROR})
MED = Severity.MED

Q_DECODE = ("[RFC 9113 §4.3] A decoding error in a field block MUST be treated as a connection "
            "error (Section 5.4.1) of type COMPRESSION_ERROR.")
Q_MALFORMED = ("Malformed requests or responses that are detected MUST be treated as a stream "
               "error (Section 5.4.2) of type PROTOCOL_ERROR. For malformed requests, a server "
               "MAY send an HTTP response prior to closing or resetting the stream.")
Q_NAME = ("A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or "
          "0x7f-0xff (all ranges inclusive). ... A request or response that contains a field "
          "that violates any of these conditions MUST be treated as malformed (Section 8.1.1).")
Q_COLON = ("With the exception of pseudo-header fields (Section 8.3), which have a name that "
           "starts with a single colon, field names MUST NOT include a colon (ASCII COLON, "
           "0x3a).")
Q_VALUE = ("A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII "
           "LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position.")
Q_VALUE_WS = ("A field value MUST NOT start or end with an ASCII whitespace character (ASCII SP "
              "or HTAB, 0x20 or 0x09).")
Q_CONNECTION = ("Any message containing connection-specific header fields MUST be treated as "
                "malformed (Section 8.1.1).")
Q_TE = ("The only exception to this is the TE header field, which MAY be present in an HTTP/2 "
        "request; when it is, it MUST NOT contain any value other than \"trailers\".")
Q_PSEUDO = ("Pseudo-header fields defined for requests MUST NOT appear in responses; "
            "pseudo-header fields defined for responses MUST NOT appear in requests. ... "
            "Endpoints MUST treat a request or response that contains undefined or invalid "
            "pseudo-header fields as malformed (Section 8.1.1).")
Q_PSEUDO_ORDER = ("All pseudo-header fields MUST appear in a field block before all regular "
                  "field lines. Any request or response that contains a pseudo-header field "
                  "that appears in a field block after a regular field line MUST be treated as "
                  "malformed (Section 8.1.1).")
Q_PSEUDO_TWICE = ("The same pseudo-header field name MUST NOT appear more than once in a field "
                  "block. A field block for an HTTP request or response that contains a "
                  "repeated pseudo-header field name MUST be treated as malformed "
                  "(Section 8.1.1).")
Q_MANDATORY = ("All HTTP/2 requests MUST include exactly one valid value for the \":method\", "
               "\":scheme\", and \":path\" pseudo-header fields, unless they are CONNECT "
               "requests (Section 8.5). An HTTP request that omits mandatory pseudo-header "
               "fields is malformed (Section 8.1.1).")
Q_EMPTY_PATH = ("This pseudo-header field MUST NOT be empty for \"http\" or \"https\" URIs; "
                "\"http\" or \"https\" URIs that do not contain a path component MUST include a "
                "value of '/'.")
Q_HOST = ("A server SHOULD treat a request as malformed if it contains a Host header field that "
          "identifies an entity that differs from the entity in the \":authority\" "
          "pseudo-header field.")
Q_TRAILERS = ("Trailers MUST NOT include pseudo-header fields (Section 8.3). An endpoint that "
              "receives pseudo-header fields in trailers MUST treat the request or response as "
              "malformed (Section 8.1.1).")
Q_CONTENT_LENGTH = ("A request or response is also malformed if the value of a content-length "
                    "header field does not equal the sum of the DATA frame payload lengths that "
                    "form the content, unless the message is defined as having no content.")
Q_SECOND_HEADERS = ("An endpoint that receives a HEADERS frame without the END_STREAM flag set "
                    "after receiving the HEADERS frame that opens a request or after receiving a "
                    "final (non-informational) status code MUST treat the corresponding request "
                    "or response as malformed (Section 8.1.1).")


def _literal(name: bytes, value_repr: bytes) -> bytes:
    """§6.2.2 literal without indexing, new name (plain), value given as encoded string."""
    return b"\x00" + fr.hpack_int(len(name), 7, 0) + name + value_repr


#: The defective HPACK representation each case appends to a valid request's block.
HPACK_DEFECTS: tuple[tuple[str, str, bytes, bool], ...] = (
    ("hpack_index_0", "RFC 7541 §6.1", b"\x80", False),
    ("hpack_index_beyond_tables", "RFC 7541 §2.3.3", fr.hpack_int(2127, 7, 0x80), False),
    ("hpack_huffman_eos", "RFC 7541 §5.2", _literal(b"x-assay", b"\x84\xff\xff\xff\xff"), False),
    ("hpack_huffman_padding_over_7_bits", "RFC 7541 §5.2",
     _literal(b"x-assay", b"\x82\x1f\xff"), False),
    ("hpack_huffman_padding_not_eos", "RFC 7541 §5.2", _literal(b"x-assay", b"\x81\x18"), False),
    ("hpack_integer_overflow", "RFC 7541 §5.1", b"\xff" + b"\xff" * 10 + b"\x07", False),
    ("hpack_table_size_update_over_limit", "RFC 7541 §6.3", fr.hpack_int(1 << 24, 5, 0x20), True),
)
HPACK_QUOTES = {
    "RFC 7541 §6.1": "The index value of 0 is not used. It MUST be treated as a decoding error "
                     "if found in an indexed header field representation.",
    "RFC 7541 §2.3.3": "Indices strictly greater than the sum of the lengths of both tables "
                       "MUST be treated as a decoding error.",
    "RFC 7541 §5.2": "A padding strictly longer than 7 bits MUST be treated as a decoding "
                     "error. A padding not corresponding to the most significant bits of the "
                     "code for the EOS symbol MUST be treated as a decoding error. A "
                     "Huffman-encoded string literal containing the EOS symbol MUST be treated "
                     "as a decoding error.",
    "RFC 7541 §5.1": "Integer encodings that exceed implementation limits -- in value or octet "
                     "length -- MUST be treated as decoding errors.",
    "RFC 7541 §6.3": "The new maximum size MUST be lower than or equal to the limit determined "
                     "by the protocol using HPACK. A value that exceeds this limit MUST be "
                     "treated as a decoding error.",
}


def _hpack_case(name: str, rfc: str, defect: bytes, first: bool) -> H2Case:
    def build(env: H2Env) -> bytes:
        block = request_block(env)
        return fr.headers(env.sid(), defect + block if first else block + defect)

    return H2Case(name, Group.HPACK, build, Expect.CONNECTION_ERROR, rfc,
                  f"{HPACK_QUOTES[rfc]} {Q_DECODE}", codes=COMPRESSION)


def _fields(env: H2Env, method: str = "GET", scheme: str | None = None,
            path: str | None = None) -> list[tuple[str, str]]:
    return fr.request_fields(method, env.authority, env.path if path is None else path,
                             scheme or env.scheme)


FieldsOf = Callable[[H2Env], list[tuple[str, str]]]


def _request(fields_of: FieldsOf, end_stream: bool = True) -> Builder:
    """A builder sending one HEADERS whose (possibly malformed) fields ``fields_of(env)``
    gives, encoded plainly (no Huffman) so the evidence is readable."""
    def build(env: H2Env) -> bytes:
        return fr.headers(env.sid(), fr.header_block(fields_of(env), huffman=False),
                          end_stream=end_stream)
    return build


def _malformed(name: str, fields_of: FieldsOf, rfc: str, quote: str,
               requirement: Requirement = Requirement.MUST,
               severity: Severity = Severity.HIGH) -> H2Case:
    """A malformed request. HIGH when serving it carries a known attack on (a framing
    delimiter, a field or pseudo-header a downstream HTTP/1.1 hop reads differently:
    smuggling, routing); MED when the rule is a MUST without that hazard; a SHOULD is LOW."""
    if requirement is not Requirement.MUST:
        severity = Severity.LOW
    return H2Case(name, Group.HTTP, _request(fields_of), Expect.MALFORMED, rfc,
                  f"{quote} [§8.1.1] {Q_MALFORMED}", requirement=requirement,
                  severity=severity, codes=PROTOCOL)


def _extra(name: str, value: str) -> FieldsOf:
    return lambda env: [*_fields(env), (name, value)]


def _without(pseudo: str) -> FieldsOf:
    return lambda env: [f for f in _fields(env) if f[0] != pseudo]


def _late(name: str, build: Builder, rfc: str, quote: str) -> H2Case:
    # The head is valid, so the response may come before the defect arrives (§8.1.1 "A
    # server MAY generate a final response before receiving an entire request"): a response
    # with no reset afterwards is tolerated, not proof of acceptance.
    return H2Case(name, Group.HTTP, build, Expect.MALFORMED_LATE, rfc,
                  f"{quote} [§8.1.1] {Q_MALFORMED}", codes=PROTOCOL,
                  tolerated=frozenset({H2Reaction.ALIVE, H2Reaction.ACCEPTED}))


def _post_with(after: bytes = b"", content_length: str | None = None) -> Builder:
    def build(env: H2Env) -> bytes:
        extra = [("content-length", content_length)] if content_length else []
        head = fr.header_block([*_fields(env, "POST"), *extra], huffman=False)
        return fr.headers(env.sid(), head, end_stream=False) + after
    return build


def _trailers_with_pseudo(env: H2Env) -> bytes:
    trailers = fr.header_block([(":path", env.path), ("x-assay", "t")], huffman=False)
    return (_post_with(fr.data(env.sid(), b"assay", end_stream=False))(env)
            + fr.headers(env.sid(), trailers))


def _content_length_mismatch(env: H2Env) -> bytes:
    return _post_with(fr.data(env.sid(), b"assay"), content_length="10")(env)


def _second_head(env: H2Env) -> bytes:
    extra = fr.header_block([("x-assay", "second")], huffman=False)
    return (_post_with()(env) + fr.headers(env.sid(), extra, end_stream=False)
            + fr.data(env.sid(), b""))


MESSAGE_CASES = (
    _malformed("field_name_uppercase", _extra("X-Assay", "1"), "RFC 9113 §8.2.1", Q_NAME),
    _malformed("field_name_space", _extra("x assay", "1"), "RFC 9113 §8.2.1", Q_NAME),
    _malformed("field_name_colon", _extra("x:assay", "1"), "RFC 9113 §8.2.1", Q_COLON),
    _malformed("field_value_lf", _extra("x-assay", "a\nb"), "RFC 9113 §8.2.1", Q_VALUE),
    _malformed("field_value_cr", _extra("x-assay", "a\rb"), "RFC 9113 §8.2.1", Q_VALUE),
    _malformed("field_value_nul", _extra("x-assay", "a\x00b"), "RFC 9113 §8.2.1", Q_VALUE),
    # Leading whitespace is OWS to an HTTP/1.1 parser (RFC 9112 §5.1): no delimiter hazard.
    _malformed("field_value_leading_space", _extra("x-assay", " a"), "RFC 9113 §8.2.1",
               Q_VALUE_WS, severity=MED),
    _malformed("connection_header", _extra("connection", "keep-alive"), "RFC 9113 §8.2.2",
               Q_CONNECTION, severity=MED),
    _malformed("transfer_encoding_header", _extra("transfer-encoding", "chunked"),
               "RFC 9113 §8.2.2", Q_CONNECTION),
    _malformed("upgrade_header", _extra("upgrade", "h2c"), "RFC 9113 §8.2.2", Q_CONNECTION,
               severity=MED),
    # The MUST NOT binds the sender; TE is not in the connection-specific list, so the RFC
    # states no receiver reaction: graded SHOULD (h2spec expects a stream error).
    _malformed("te_not_trailers", _extra("te", "gzip"), "RFC 9113 §8.2.2", Q_TE,
               Requirement.SHOULD),
    _malformed("pseudo_header_unknown", _extra(":assay", "1"), "RFC 9113 §8.3", Q_PSEUDO),
    _malformed("pseudo_header_status_in_request", _extra(":status", "200"), "RFC 9113 §8.3",
               Q_PSEUDO),
    _malformed("pseudo_header_after_regular",
               lambda env: [*_fields(env)[:3], ("x-assay", "1"), _fields(env)[3]],
               "RFC 9113 §8.3", Q_PSEUDO_ORDER, severity=MED),
    _malformed("pseudo_header_path_twice", lambda env: [*_fields(env), (":path", env.path)],
               "RFC 9113 §8.3", Q_PSEUDO_TWICE),
    _malformed("missing_method", _without(":method"), "RFC 9113 §8.3.1", Q_MANDATORY),
    _malformed("missing_scheme", _without(":scheme"), "RFC 9113 §8.3.1", Q_MANDATORY),
    _malformed("missing_path", _without(":path"), "RFC 9113 §8.3.1", Q_MANDATORY),
    _malformed("empty_path", lambda env: _fields(env, path=""), "RFC 9113 §8.3.1",
               Q_EMPTY_PATH),
    _malformed("host_differs_from_authority", _extra("host", "assay-other.invalid"),
               "RFC 9113 §8.3.1", Q_HOST, Requirement.SHOULD),
    _late("pseudo_header_in_trailers", _trailers_with_pseudo, "RFC 9113 §8.1", Q_TRAILERS),
    _late("content_length_mismatch", _content_length_mismatch, "RFC 9113 §8.1.1",
          Q_CONTENT_LENGTH),
    _late("second_headers_without_end_stream", _second_head, "RFC 9113 §8.1", Q_SECOND_HEADERS),
)

CASES: tuple[H2Case, ...] = (
    *(_hpack_case(*defect) for defect in HPACK_DEFECTS),
    *MESSAGE_CASES,
)
