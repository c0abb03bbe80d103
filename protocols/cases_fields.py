"""Field-line cases: whitespace, folding, control bytes and names in the header section.

How this works: RFC 9112 §5.1 requires a 400 for whitespace between a field name and its
colon, §5.2 a 400 or a replacement by SP for obs-fold, §2.2 an invalid element or a
replacement by SP for a bare CR; RFC 9110 §5.5 lets NUL be rejected or replaced and other
controls be retained. Where the RFC offers a repair, acceptance is allowed. The ``-te``
variants hide a Transfer-Encoding in the odd line and carry the smuggled request
(``hidden_te``), so a server that both accepts *and* believes the hidden field shows it as
a desync.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    ACCEPT,
    FIELDS,
    HIGH,
    LOW,
    MAY,
    MED,
    MUST,
    P400,
    P431,
    POST,
    REFUSALS,
    REFUSE_OR_ACCEPT,
    REJECTED,
    SHOULD,
    SMUGGLE,
    VALID,
    AdversarialCase,
    R,
    case,
)

OLD: tuple[AdversarialCase, ...] = (
    case("ws-before-colon", FIELDS, b.get("X-Assay : 1"), REJECTED, MUST, HIGH,
         "RFC 9112 §5.1", q.Q_WS_COLON, preferred_status=P400),
    case("ws-before-colon-te", FIELDS, b.hidden_te("Transfer-Encoding : chunked"), REJECTED,
         MUST, HIGH, "RFC 9112 §5.1", q.Q_WS_COLON, preferred_status=P400, **POST, **SMUGGLE),
    case("leading-ws-line-te", FIELDS, b.hidden_te(" Transfer-Encoding: chunked"),
         REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9112 §2.2", q.Q_WS_LINE, **POST, **SMUGGLE),
    case("obs-fold", FIELDS, b.get("X-Assay: a", " b"), REJECTED | {R.ACCEPTED}, MUST, MED,
         "RFC 9112 §5.2", q.Q_OBS_FOLD),
    case("obs-fold-te", FIELDS, b.hidden_te("X-Assay: a\r\n Transfer-Encoding: chunked"),
         REJECTED | {R.ACCEPTED}, MUST, HIGH, "RFC 9112 §5.2", q.Q_OBS_FOLD, **POST,
         **SMUGGLE),
    case("bare-cr-value-te", FIELDS, b.hidden_te("X-Assay: a\rTransfer-Encoding: chunked"),
         REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9112 §2.2", q.Q_BARE_CR, **POST, **SMUGGLE),
    # Read with the CR as SP, "HTTP/1.1 Host: ..." is no version: 501/505 refuse it too.
    case("bare-cr-request-line", FIELDS, b.raw("GET {p} HTTP/1.1\rHost: {h}"), REFUSALS, MUST,
         HIGH, "RFC 9112 §2.2", q.Q_BARE_CR, rejection_statuses=frozenset({501, 505})),
    case("nul-in-value", FIELDS, b.get("X-Assay: a\x00b"), REFUSE_OR_ACCEPT, MUST, MED,
         "RFC 9110 §5.5", q.Q_NUL),
    case("ctl-in-value", FIELDS, b.get("X-Assay: a\x01b"), REFUSE_OR_ACCEPT, MAY, LOW,
         "RFC 9110 §5.5", q.Q_CTL),
    case("bare-lf-line-ends", FIELDS, b.get("X-Assay: 1", eol="\n"), REFUSE_OR_ACCEPT, MAY,
         LOW, "RFC 9112 §2.2", q.Q_BARE_LF, framing=True),
    case("invalid-field-name", FIELDS, b.get("X-Ass(y: 1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.2", q.Q_GRAMMAR),
    case("empty-field-name", FIELDS, b.get(": assay"), REFUSALS, SHOULD, LOW, "RFC 9112 §2.2",
         q.Q_GRAMMAR),
    case("field-oversized", FIELDS, b.get("X-Assay: " + "a" * 98304), REFUSE_OR_ACCEPT, MUST,
         MED, "RFC 9110 §5.4", q.Q_FIELD_LIMIT, preferred_status=P431),
    case("fields-too-many", FIELDS, b.many_fields(5000), REFUSE_OR_ACCEPT, MUST, MED,
         "RFC 9110 §5.4", q.Q_FIELD_LIMIT, preferred_status=P431),
)

NEW: tuple[AdversarialCase, ...] = (
    case("ws-before-colon-tab", FIELDS, b.get("X-Assay\t: 1"), REJECTED, MUST, HIGH,
         "RFC 9112 §5.1", q.Q_WS_COLON, preferred_status=P400),
    case("leading-ws-line", FIELDS, b.raw("GET {p} HTTP/1.1", " X-Assay: 1", "Host: {h}"),
         REFUSE_OR_ACCEPT, MUST, MED, "RFC 9112 §2.2", q.Q_WS_LINE),
    case("bare-cr-value", FIELDS, b.get("X-Assay: a\rb"), REFUSE_OR_ACCEPT, MUST, MED,
         "RFC 9112 §2.2", q.Q_BARE_CR),
    case("del-in-value", FIELDS, b.get("X-Assay: a\x7fb"), REFUSE_OR_ACCEPT, MAY, LOW,
         "RFC 9110 §5.5", q.Q_CTL),
    case("field-line-no-colon", FIELDS, b.get("X-Assay 1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.2", q.Q_GRAMMAR),
    case("field-name-non-ascii", FIELDS, b.get("X-\xc3\x84ssay: 1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.2", q.Q_GRAMMAR),
    case("field-name-nul", FIELDS, b.get("X-A\x00ssay: 1"), REFUSALS, SHOULD, LOW,
         "RFC 9112 §2.2", q.Q_GRAMMAR),
    case("field-value-obs-text", FIELDS, b.get("X-Assay: caf\xe9"), ACCEPT, SHOULD, LOW,
         "RFC 9110 §5.5", q.Q_OBS_TEXT, **VALID),
    # An empty value is valid (field-value = *field-content), but no MUST says to accept
    # one: the field is unknown to the server, which SHOULD ignore it.
    case("field-empty-value", FIELDS, b.get("X-Assay:"), ACCEPT, SHOULD, LOW, "RFC 9110 §5.1",
         q.Q_IGNORE_UNKNOWN, **VALID),
    case("field-value-ows", FIELDS, b.get("X-Assay: \t 1 \t "), ACCEPT, MUST, MED,
         "RFC 9110 §5.5", q.Q_OWS_VALUE, **VALID),
    case("fields-many-ok", FIELDS, b.many_fields(50), ACCEPT, MAY, LOW, "RFC 9110 §5.4",
         q.Q_FIELD_LIMIT, **VALID),
)

CASES: tuple[AdversarialCase, ...] = OLD + NEW

