"""What one adversarial case is: the dataclass, the reaction sets the RFCs permit, shorthands.

How this works: a case is data. ``AdversarialCase`` holds a pure builder
``build(host, path) -> bytes``, the reactions the RFC permits (``allowed``), the RFC 2119
keyword behind them (``requirement``) and how much a wrong answer matters (``severity``),
plus the few facts the oracle needs to read the answer (how many responses a conforming
server sends, which methods they answer, whether the connection must close, whether a 1xx or
a 101 is forbidden, which trailer field must not be echoed as a header field). The case
groups (``protocols.cases_*``) build their tables with ``case()``;
``protocols.adversarial_cases`` gathers them.

The reaction sets are named after the RFC phrases they encode, so a table row reads like the
sentence it rests on: "MUST respond 400 and close" is ``CLOSING_REFUSALS``, "MUST respond with
400" is ``REJECTED``, "MUST either reject ... or replace" is ``REFUSE_OR_ACCEPT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocols.outcome import REFUSALS, Reaction, Requirement, Severity
from protocols.trailer_merge import FieldMarker

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
#: Valid traffic: the only correct reaction is to process it.
ACCEPT = frozenset({R.ACCEPTED})

MUST, SHOULD, MAY = Requirement.MUST, Requirement.SHOULD, Requirement.MAY
HIGH, MED, LOW = Severity.HIGH, Severity.MED, Severity.LOW

Builder = Callable[[str, str], bytes]

#: Statuses other than 4xx that the RFC names as a refusal.
NOT_IMPL = frozenset({501})
VERSION_REFUSAL = frozenset({505})
TARGET_REFUSAL = frozenset({301})
P400, P414, P431 = frozenset({400}), frozenset({414}), frozenset({431, 400})
#: RFC 9110 §9.1: an unknown method SHOULD get 501, a known one not allowed here 405.
P_METHOD = frozenset({405, 501})
#: RFC 9112 §6.3: "A server MAY reject a request that contains a message body but not a
#: Content-Length by responding with 411 (Length Required)": a refusal of chunked bodies
#: that the RFC allows, so valid chunked cases count it as correct.
LENGTH_REQUIRED = frozenset({411})


@dataclass(frozen=True, slots=True)
class AdversarialCase:
    """One malformed (or deliberately odd, or valid) request and what the RFC lets a server do."""

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
    #: Final responses a conforming server sends to the bytes (pipelined requests: several);
    #: the walker reads until that many arrived, the oracle counts them.
    responses: int = 1
    #: Methods of the requests sent, in order, where one changes response framing (HEAD).
    methods: tuple[str, ...] = ()
    #: Valid traffic: refusing it is the violation; a route answering like the baseline is
    #: acceptance even if the server then closes (it may close any connection).
    valid: bool = False
    #: 4xx statuses the RFC lets a server answer to this valid message (411 to chunked).
    tolerated_statuses: frozenset[int] = frozenset()
    #: RFC 9110 §15.2: no 1xx may be sent (the request is HTTP/1.0).
    forbid_interim: bool = False
    #: The server must not switch protocols (answer 101) to this request.
    forbid_switch: bool = False
    #: (header marker field, trailer field): the trailer field must not show up among the
    #: header fields a body route echoes (RFC 9112 §7.1.2; ``protocols.trailer_merge``).
    forbid_merge: tuple[FieldMarker, FieldMarker] | None = None


def case(name: str, category: str, build: Builder, allowed: frozenset[Reaction],
         requirement: Requirement, severity: Severity, rfc: str, quote: str,
         **extra: Any) -> AdversarialCase:
    """One table row: positional core, keyword extras (``**POST, **SMUGGLE`` ...)."""
    return AdversarialCase(name, category, build, allowed, requirement, severity, rfc, quote,
                           **extra)


#: Keyword bundles for table rows.
POST: dict[str, Any] = {"method": "POST"}
FRAMING: dict[str, Any] = {"framing": True}
SMUGGLE: dict[str, Any] = {"framing": True, "smuggles": True}
CHUNK: dict[str, Any] = {"method": "POST", "framing": True, "body_defect": True}
VALID: dict[str, Any] = {"valid": True}

#: Categories (``AdversarialCase.category``).
LENGTH, FIELDS, HOST, LINE, CHUNKED, CONNECTION = (
    "length", "fields", "host", "request-line", "chunked", "connection")
EXPECT, UPGRADE, VALID_TRAFFIC = "expect", "upgrade", "valid"
CATEGORIES = frozenset({LENGTH, FIELDS, HOST, LINE, CHUNKED, CONNECTION, EXPECT, UPGRADE,
                        VALID_TRAFFIC})
