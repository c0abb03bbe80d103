"""Request-line cases: method, request-target and version, plus connection-level oddities.

How this works: RFC 9112 §3 and §2.2 leave most request-line refusals at SHOULD ("SHOULD
respond with either a 400 (Bad Request) error or a 301 (Moved Permanently) redirect" for an
invalid request-line), so most rows here are SHOULD and LOW: acceptance is information. The
MUSTs are the limits (a target longer than the server parses MUST get 414) and the methods
every server MUST support (GET, HEAD). Method names are case-sensitive (RFC 9110 §9.1), so
``get`` is an unknown method, which SHOULD get 501 (or 405), not the answer to GET.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    CONNECTION,
    FRAMING,
    HIGH,
    LINE,
    LOW,
    MAY,
    MED,
    MUST,
    NOT_IMPL,
    P414,
    P431,
    P_METHOD,
    REFUSALS,
    REFUSE_OR_ACCEPT,
    SHOULD,
    SMUGGLE,
    TARGET_REFUSAL,
    VALID,
    VERSION_REFUSAL,
    AdversarialCase,
    R,
    case,
)

S22, S3, S32 = "RFC 9112 §2.2", "RFC 9112 §3", "RFC 9112 §3.2"


def _line(name: str, start: str, allowed: frozenset = REFUSALS, requirement: object = SHOULD,
          rfc: str = S32, quote: str = q.Q_TARGET, **extra: object) -> AdversarialCase:
    """A GET-like request whose request line is ``start`` (Host first)."""
    extra.setdefault("rejection_statuses", TARGET_REFUSAL)
    return case(name, LINE, b.get(start=start), allowed, requirement, LOW, rfc, quote, **extra)


OLD: tuple[AdversarialCase, ...] = (
    case("target-space", LINE, b.get(start="GET {p}?assay=a b HTTP/1.1"), REFUSALS, SHOULD,
         LOW, S32, q.Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    case("target-ctl", LINE, b.get(start="GET {p}?assay=a\x01b HTTP/1.1"), REFUSALS, SHOULD,
         LOW, S32, q.Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    case("target-fragment", LINE, b.get(start="GET {p}#assay HTTP/1.1"), REFUSALS, SHOULD,
         LOW, S32, q.Q_TARGET, rejection_statuses=TARGET_REFUSAL),
    case("target-too-long", LINE, b.get(start="GET {p}?assay=" + "a" * 65536 + " HTTP/1.1"),
         REFUSE_OR_ACCEPT, MUST, MED, S3, q.Q_TARGET_LONG, preferred_status=P414),
    case("target-asterisk-get", LINE, b.get(start="GET * HTTP/1.1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §3.2.4", q.Q_ASTERISK),
    case("target-missing", LINE, b.get(start="GET HTTP/1.1"), REFUSALS | {R.GARBAGE}, SHOULD,
         LOW, S22, q.Q_GRAMMAR),
    case("method-invalid-token", LINE, b.get(start="G(T {p} HTTP/1.1"), REFUSALS, SHOULD, LOW,
         S22, q.Q_GRAMMAR, rejection_statuses=NOT_IMPL),
    case("sep-tab", LINE, b.get(start="GET\t{p}\tHTTP/1.1"), REFUSE_OR_ACCEPT, MAY, LOW,
         S3, q.Q_WS_SPLIT),
    case("sep-double-space", LINE, b.get(start="GET  {p}  HTTP/1.1"), REFUSE_OR_ACCEPT, MAY,
         LOW, S3, q.Q_WS_SPLIT),
    case("version-invalid", LINE, b.get(start="GET {p} HTTP/1.x"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.3", q.Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    case("version-lowercase", LINE, b.get(start="GET {p} http/1.1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.3", q.Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    case("version-multi-digit", LINE, b.get(start="GET {p} HTTP/1.10"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.3", q.Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    case("version-major-2", LINE, b.get(start="GET {p} HTTP/2.0"), REFUSE_OR_ACCEPT, MAY, LOW,
         "RFC 9110 §2.5", q.Q_VERSION_MAJOR, rejection_statuses=VERSION_REFUSAL),
    case("version-minor-high", LINE, b.get(start="GET {p} HTTP/1.9"), frozenset({R.ACCEPTED}),
         SHOULD, LOW, "RFC 9110 §2.5", q.Q_VERSION_MINOR),
    case("http09", LINE, b.http09, REFUSE_OR_ACCEPT | {R.GARBAGE, R.HANG}, MAY, LOW,
         "RFC 9112 §2.3", q.Q_VERSION),
)

TARGETS: tuple[AdversarialCase, ...] = (
    _line("target-non-ascii", "GET {p}caf\xc3\xa9 HTTP/1.1"),
    _line("target-overlong-utf8", "GET {p}\xc0\xae\xc0\xae/ HTTP/1.1"),
    _line("target-raw-nul", "GET {p}\x00assay HTTP/1.1"),
    _line("target-backslash", "GET {p}assay\\..\\ HTTP/1.1"),
    _line("target-relative", "GET assay HTTP/1.1", quote=q.Q_ORIGIN_FORM),
    _line("target-pct-invalid", "GET {p}%zz HTTP/1.1", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc="RFC 9110 §4.1"),
    _line("target-pct-overlong-utf8", "GET {p}%c0%ae%c0%ae/ HTTP/1.1", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc="RFC 9110 §4.1"),
    _line("target-pct-nul", "GET {p}%00 HTTP/1.1", allowed=REFUSE_OR_ACCEPT, requirement=MAY,
          rfc="RFC 9110 §4.1"),
    _line("target-pct-crlf", "GET {p}?assay=%0d%0aX-Assay-Injected:%201 HTTP/1.1",
          allowed=REFUSE_OR_ACCEPT, requirement=MAY, rfc="RFC 9110 §4.1"),
    _line("target-dot-segments", "GET {p}assay/../ HTTP/1.1", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc="RFC 9110 §4.1"),
    _line("target-asterisk-head", "HEAD * HTTP/1.1", quote=q.Q_ASTERISK,
          rfc="RFC 9112 §3.2.4", methods=("HEAD",)),
    _line("target-asterisk-post", "POST * HTTP/1.1", quote=q.Q_ASTERISK,
          rfc="RFC 9112 §3.2.4"),
    _line("target-asterisk-delete", "DELETE * HTTP/1.1", quote=q.Q_ASTERISK,
          rfc="RFC 9112 §3.2.4"),
    _line("authority-form-get", "GET {h} HTTP/1.1", quote=q.Q_AUTHORITY_FORM,
          rfc="RFC 9112 §3.2.3"),
    _line("connect-origin", "CONNECT {h} HTTP/1.1", quote=q.Q_AUTHORITY_FORM,
          rfc="RFC 9112 §3.2.3", rejection_statuses=NOT_IMPL),
    _line("options-asterisk", "OPTIONS * HTTP/1.1", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc="RFC 9110 §9.3.7", quote=q.Q_OPTIONS_ASTERISK,
          rejection_statuses=NOT_IMPL),
    _line("trace", "TRACE {p} HTTP/1.1", allowed=REFUSE_OR_ACCEPT, requirement=MAY,
          rfc="RFC 9110 §9.3.8", quote=q.Q_TRACE, rejection_statuses=NOT_IMPL),
    _line("request-line-trailing-space", "GET {p} HTTP/1.1 ", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc=S3, quote=q.Q_WS_SPLIT),
    _line("request-line-leading-space", " GET {p} HTTP/1.1", allowed=REFUSE_OR_ACCEPT,
          requirement=MAY, rfc=S3, quote=q.Q_WS_SPLIT),
    _line("version-leading-zero", "GET {p} HTTP/01.1", rfc="RFC 9112 §2.3",
          quote=q.Q_VERSION, rejection_statuses=VERSION_REFUSAL),
    _line("version-missing-minor", "GET {p} HTTP/1", rfc="RFC 9112 §2.3", quote=q.Q_VERSION,
          rejection_statuses=VERSION_REFUSAL),
)

REQUEST_LINE_8000 = case("request-line-8000", LINE, b.request_line_of(8000),
                         frozenset({R.ACCEPTED}), SHOULD, LOW, S3, q.Q_REQUEST_LINE_8000)

METHODS: tuple[AdversarialCase, ...] = (
    _line("method-lowercase", "get {p} HTTP/1.1", rfc="RFC 9110 §9.1", quote=q.Q_METHOD_CASE,
          rejection_statuses=NOT_IMPL, preferred_status=P_METHOD),
    _line("method-mixed-case", "Get {p} HTTP/1.1", rfc="RFC 9110 §9.1", quote=q.Q_METHOD_CASE,
          rejection_statuses=NOT_IMPL, preferred_status=P_METHOD),
    _line("method-unknown", "ASSAYMETHOD {p} HTTP/1.1", rfc="RFC 9110 §9.1",
          quote=q.Q_METHOD_UNKNOWN, rejection_statuses=NOT_IMPL, preferred_status=P_METHOD),
    _line("method-long", "A" * 1024 + " {p} HTTP/1.1", rfc=S3, quote=q.Q_METHOD_LONG,
          rejection_statuses=NOT_IMPL),
    case("head", LINE, b.raw("HEAD {p} HTTP/1.1", "Host: {h}"), frozenset({R.ACCEPTED}),
         MUST, MED, "RFC 9110 §9.1", q.Q_GET_HEAD, methods=("HEAD",), **FRAMING, **VALID),
    case("field-name-long", LINE, b.get("X-" + "a" * 16384 + ": 1"), REFUSE_OR_ACCEPT, MUST,
         MED, "RFC 9110 §5.4", q.Q_FIELD_LIMIT, preferred_status=P431),
)

CONNECTION_LEVEL: tuple[AdversarialCase, ...] = (
    case("get-with-body", CONNECTION, b.get_with_body, REFUSE_OR_ACCEPT, MUST, HIGH,
         "RFC 9112 §6", q.Q_CL_FRAMING, **SMUGGLE),
    case("garbage-after-request", CONNECTION,
         b.suffixed(b.get(), b"\x00\x01\x02assay-junk\r\n\r\n"), frozenset({R.ACCEPTED}),
         SHOULD, LOW, S22, q.Q_GRAMMAR),
    case("leading-crlf", CONNECTION, b.prefixed(b"\r\n", b.get()), REFUSE_OR_ACCEPT, SHOULD,
         LOW, S22, q.Q_LEADING_CRLF, **FRAMING),
    case("leading-crlf-many", CONNECTION, b.prefixed(b"\r\n" * 64, b.get()), REFUSE_OR_ACCEPT,
         MAY, LOW, S22, q.Q_LEADING_CRLF, **FRAMING),
    case("binary-junk", CONNECTION, b.const(b.JUNK + b"\r\n\r\n"), REFUSALS, SHOULD, LOW,
         S22, q.Q_GRAMMAR),
    case("tls-client-hello", CONNECTION, b.const(b.TLS_CLIENT_HELLO), REFUSALS, SHOULD, LOW,
         S22, q.Q_GRAMMAR),
    case("h2-prior-knowledge", CONNECTION, b.const(b.H2_PREFACE),
         REFUSE_OR_ACCEPT | {R.GARBAGE}, MAY, LOW, "RFC 9113 §3.4", q.Q_H2_PREFACE,
         rejection_statuses=VERSION_REFUSAL),
    case("slow-loris-head", CONNECTION, b.get("X-Assay: slow"), REFUSALS, MAY, LOW,
         "RFC 9110 §15.5.9", q.Q_TIMEOUT, drip=0.5),
    case("slow-loris-body", CONNECTION, b.post("Content-Length: 4096", body=b"a" * 4096),
         REFUSE_OR_ACCEPT, MAY, LOW, "RFC 9112 §8", q.Q_INCOMPLETE, drip=0.5,
         drip_body_only=True, method="POST"),
)

CASES: tuple[AdversarialCase, ...] = (*OLD, *TARGETS, REQUEST_LINE_8000, *METHODS,
                                      *CONNECTION_LEVEL)

