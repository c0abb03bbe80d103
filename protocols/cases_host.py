"""Host cases: the Host field's grammar, its repetition, and the absolute-form's authority.

How this works: RFC 9112 §3.2 makes a 400 the only answer to an HTTP/1.1 request without
Host, with more than one Host field line, or with an invalid Host value; the value's grammar
is RFC 9110 §7.2 ``Host = uri-host [ ":" port ]`` with RFC 3986's ``reg-name``, which has
no room for ``@``, ``/``, ``?``, ``#``, ``\\``, whitespace or a non-digit port. Every such
case allows only a 4xx (``REJECTED``). A value whose Host is ambiguous between two names
(a comma list, a second line under another spelling) is a routing hazard: HIGH. A value that
is merely malformed is MED.

The absolute-form cases are valid traffic: RFC 9112 §3.2.2 says a server MUST accept the
absolute-form and MUST use its authority rather than Host, so the case whose Host names
another authority must be answered like the baseline. (From outside, a server that routed
by Host looks the same when both names reach the same site; only a refusal is visible.)
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    ACCEPT,
    HIGH,
    HOST,
    LOW,
    MAY,
    MED,
    MUST,
    P400,
    REFUSALS,
    REFUSE_OR_ACCEPT,
    REJECTED,
    SHOULD,
    VALID,
    AdversarialCase,
    case,
)

S32 = "RFC 9112 §3.2"


def _bad_host(name: str, value: str, severity: object = MED) -> AdversarialCase:
    """A single Host line whose value is outside the Host grammar: 400."""
    return case(name, HOST, b.raw("GET {p} HTTP/1.1", f"Host: {value}"), REJECTED, MUST,
                severity, S32, q.Q_HOST_GRAMMAR, preferred_status=P400)


OLD: tuple[AdversarialCase, ...] = (
    case("host-missing", HOST, b.raw("GET {p} HTTP/1.1", "X-Assay: 1"), REJECTED, MUST, MED,
         S32, q.Q_HOST, preferred_status=P400),
    case("host-duplicate", HOST, b.get("Host: assay-other.invalid"), REJECTED, MUST, HIGH,
         S32, q.Q_HOST, preferred_status=P400),
    case("host-invalid", HOST, b.raw("GET {p} HTTP/1.1", "Host: assay/in valid"), REJECTED,
         MUST, MED, S32, q.Q_HOST, preferred_status=P400),
)

GRAMMAR: tuple[AdversarialCase, ...] = (
    _bad_host("host-userinfo", "assay@{h}"),
    _bad_host("host-userinfo-empty", "@{h}"),
    _bad_host("host-path", "{h}/assay"),
    _bad_host("host-query", "{h}?assay"),
    _bad_host("host-fragment", "{h}#assay"),
    _bad_host("host-backslash", "{h}\\assay"),
    _bad_host("host-space-inside", "assay other.invalid"),
    _bad_host("host-bad-port", "{h}:8o"),
    _bad_host("host-ipv6-unbracketed", "::1"),
    _bad_host("host-ipv6-unclosed", "[::1"),
    _bad_host("host-ctl", "{h}\x01"),
    _bad_host("host-comma-list", "{h}, assay-other.invalid", HIGH),
    case("host-nul", HOST, b.raw("GET {p} HTTP/1.1", "Host: {h}\x00assay"), REFUSALS, MUST,
         MED, "RFC 9110 §5.5", q.Q_NUL, preferred_status=P400),
    case("host-duplicate-identical", HOST, b.get("Host: {h}"), REJECTED, MUST, MED, S32,
         q.Q_HOST, preferred_status=P400),
    case("host-duplicate-lowercase", HOST, b.get("host: assay-other.invalid"), REJECTED, MUST,
         HIGH, S32, q.Q_HOST, preferred_status=P400),
    case("host-ws-before-colon", HOST, b.get("Host : assay-other.invalid"), REJECTED, MUST,
         HIGH, "RFC 9112 §5.1", q.Q_WS_COLON, preferred_status=P400),
    case("host-obs-fold", HOST, b.get(" assay-other.invalid"), REJECTED, MUST, MED,
         "RFC 9112 §5.2", q.Q_OBS_FOLD, preferred_status=P400),
    # Valid values a server may still decline to serve (another virtual host): no verdict
    # beyond "no crash, no garbage".
    case("host-empty", HOST, b.raw("GET {p} HTTP/1.1", "Host: "), REFUSE_OR_ACCEPT, MAY, LOW,
         "RFC 9110 §7.2", q.Q_HOST_EMPTY),
    case("host-pct-encoded", HOST, b.raw("GET {p} HTTP/1.1", "Host: assay%2Dhost.invalid"),
         REFUSE_OR_ACCEPT, MAY, LOW, "RFC 9110 §7.2", q.Q_HOST_GRAMMAR),
    case("host-underscore", HOST, b.raw("GET {p} HTTP/1.1", "Host: assay_host.invalid"),
         REFUSE_OR_ACCEPT, MAY, LOW, "RFC 9110 §7.2", q.Q_HOST_GRAMMAR),
    case("host-ipv6-literal", HOST, b.raw("GET {p} HTTP/1.1", "Host: [::1]"),
         REFUSE_OR_ACCEPT, MAY, LOW, "RFC 9110 §7.2", q.Q_HOST_GRAMMAR),
    case("host-missing-http10", HOST, b.raw("GET {p} HTTP/1.0", "X-Assay: 1"),
         REFUSE_OR_ACCEPT, MAY, LOW, S32, q.Q_HOST),
    case("host-ows", HOST, b.raw("GET {p} HTTP/1.1", "Host:   {h}   "), ACCEPT, MUST, MED,
         "RFC 9110 §5.5", q.Q_OWS_VALUE, **VALID),
)

ABSOLUTE_FORM: tuple[AdversarialCase, ...] = (
    case("absolute-form", HOST, b.get(start="GET http://{h}{p} HTTP/1.1"), ACCEPT, MUST, MED,
         "RFC 9112 §3.2.2", q.Q_ABSOLUTE_FORM, **VALID),
    # Refusing it (lighttpd: 400 when Host differs) misses the MUST safely: LOW, reported.
    case("absolute-form-host-differs", HOST,
         b.raw("GET http://{h}{p} HTTP/1.1", "Host: assay-other.invalid"), ACCEPT, MUST, LOW,
         "RFC 9112 §3.2.2", q.Q_ABSOLUTE_HOST, **VALID),
    case("absolute-form-userinfo", HOST, b.get(start="GET http://assay@{h}{p} HTTP/1.1"),
         REFUSALS, SHOULD, LOW, "RFC 9110 §4.2.4", q.Q_USERINFO),
)

CASES: tuple[AdversarialCase, ...] = OLD + GRAMMAR + ABSOLUTE_FORM
