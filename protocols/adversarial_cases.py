"""The adversarial catalogue: HTTP/1.1 requests as data, each grounded in an RFC.

How this works: every ``AdversarialCase`` (``protocols.case_model``) names a pure builder
``build(host, path) -> bytes`` (``protocols.case_builders``), the reactions the RFC permits
(``allowed``), the RFC 2119 keyword behind them (``requirement``), how much a wrong answer
matters (``severity``) and the sentence it rests on (``protocols.rfc_quotes``). The cases
live in one module per concept (``cases_length``, ``cases_fields``, ``cases_host``,
``cases_request_line``, ``cases_chunked``, ``cases_expect_upgrade``, ``cases_valid``);
this module gathers them into ``CASES`` and ``BY_NAME``. The oracle
(``protocols.adversarial_oracle``) observes what the server did and judges it against the
case; the walker (``actors.adversarial``) only moves bytes.

Design rules the cases follow, so that a correct server is never blamed:

* Where the RFC lets a recipient either reject or recover (replace a bare CR with SP, ignore a
  whitespace-preceded line, accept a bare LF line terminator, ignore a leading CRLF), both are
  allowed: a recovery looks like acceptance from outside and is correct.
* Such recoveries are checked where they matter, on the wire: the *framing* cases carry a
  complete request for ``SMUGGLED_PATH`` that a server only sees if it frames the message
  differently from the RFC (it believed a hidden ``Transfer-Encoding``, wrapped an
  overflowing length, ignored a GET body, read ``0x5`` as a chunk size...). A canary request
  follows on the same socket; an answer to a request we did not send is a desync
  (I-ADV-DESYNC), whatever the status.
* ``severity`` HIGH marks cases whose acceptance is a smuggling or routing hazard: accepting
  one where the RFC says MUST reject trips I-ADV-ACCEPTED. A MUST violation of MED/LOW
  severity (a missing Host accepted, a silent close where a 400 is required, a dropped
  pipelined request) is counted, not failed. SHOULD/MAY deviations are leniency, reported as
  information.
* Valid traffic (``valid``) is judged the other way round: refusing it is the violation.
* Statuses other than 4xx that the RFC names as a refusal (501 for an unknown transfer coding,
  505 for a version, 301 for a malformed target) are listed per case in
  ``rejection_statuses``; any other 5xx is a server error.

The bytes of the 69 cases that predate the split are pinned by Tier 3 seed digests: they are
unchanged, and a case whose bytes had to change would be a new case under a new name.
"""

from __future__ import annotations

from protocols import (
    cases_chunked,
    cases_expect_upgrade,
    cases_fields,
    cases_host,
    cases_length,
    cases_request_line,
    cases_valid,
)
from protocols.case_builders import (
    H2_PREFACE,
    JUNK,
    TLS_CLIENT_HELLO,
    baseline_request,
    canary_request,
    smuggled_request,
)
from protocols.case_model import (
    BODY,
    CANARY_PARAM,
    CATEGORIES,
    CLOSE_OR_ACCEPT,
    CLOSING_REFUSALS,
    HUGE_BODY,
    REFUSE_OR_ACCEPT,
    REJECTED,
    SMUGGLED_PATH,
    AdversarialCase,
    Builder,
)

CASES: tuple[AdversarialCase, ...] = (
    # The original catalogue, in its original order.
    *cases_length.OLD,
    *cases_fields.OLD,
    *cases_host.OLD,
    *cases_request_line.OLD,
    *cases_chunked.OLD,
    *cases_request_line.CONNECTION_LEVEL,
    # Grown with issues 10 and 18.
    *cases_length.CONTENT_LENGTH,
    *cases_length.TRANSFER_ENCODING,
    *cases_fields.NEW,
    *cases_host.GRAMMAR,
    *cases_host.ABSOLUTE_FORM,
    *cases_request_line.TARGETS,
    cases_request_line.REQUEST_LINE_8000,
    *cases_request_line.METHODS,
    *cases_chunked.LENIENT_SIZES,
    *cases_chunked.GRAMMAR,
    *cases_chunked.TRAILERS,
    *cases_chunked.MERGE,
    *cases_expect_upgrade.CASES,
    *cases_valid.CASES,
)

BY_NAME: dict[str, AdversarialCase] = {case.name: case for case in CASES}

__all__ = [
    "BODY",
    "BY_NAME",
    "CANARY_PARAM",
    "CASES",
    "CATEGORIES",
    "CLOSE_OR_ACCEPT",
    "CLOSING_REFUSALS",
    "H2_PREFACE",
    "HUGE_BODY",
    "JUNK",
    "REFUSE_OR_ACCEPT",
    "REJECTED",
    "SMUGGLED_PATH",
    "TLS_CLIENT_HELLO",
    "AdversarialCase",
    "Builder",
    "baseline_request",
    "canary_request",
    "smuggled_request",
]
