"""``assay cases``: every case and response rule assay judges by, read from the catalogues.

How this works: ``rows(slice)`` walks the catalogue modules as they are at run time (the
adversarial ``CASES``, the WebSocket frame and handshake cases, the h2c teardown stages, the
TLS-level cases, the SSE kill stages, the response rules) and flattens each entry into one
``CaseRow`` with the same columns: name, RFC section, requirement, severity, and what is
allowed. Nothing is copied, so the listing can never disagree with what a run sends.
``main`` prints a table,
JSON (``--json``) or the conformance document (``--markdown``, as
``python -m coordinator.conformance_doc``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

SLICES = ("adv", "ws", "h2c", "h2", "tls", "sse", "resp")

#: What the h2c slice checks at each stage (``protocols.h2c.TeardownStage``), and why.
H2C_STAGES = {
    "mid_headers": "part of the upgrade request's head is sent, then we leave",
    "request_sent": "the whole upgrade request is sent; we leave before any response byte",
    "after_response": "the 101 or the HTTP/1.1 answer is read; we leave",
    "partial_preface": "after a 101, part of the client connection preface (RFC 9113 §3.4)",
    "after_settings": "preface and SETTINGS sent, the server's SETTINGS read; we leave "
                      "without the SETTINGS ACK (RFC 9113 §6.5.3)",
    "mid_response": "the response to stream 1 (or the declined answer) has started; we leave",
}
H2C_QUOTE = ("The first HTTP/2 frame sent by the server MUST be a server connection preface "
             "(Section 3.5) consisting of a SETTINGS frame ... a server ... can respond to the "
             "request as though the Upgrade header field were absent")
#: What the sse slice does at each stage (``protocols.sse.SseKillStage``).
SSE_STAGES = {
    "before_headers": "the subscription request is sent; we leave before any response byte",
    "after_headers": "right after the 200 text/event-stream head",
    "mid_event": "as soon as stream bytes arrive, an event possibly in flight",
    "idle": "after holding the subscription 50-1500 ms",
}


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One catalogue entry, in the columns every slice shares."""

    slice: str
    name: str
    rfc: str
    requirement: str
    severity: str
    allowed: str
    category: str = ""
    quote: str = ""
    #: Sent to a body route (``--body-path``; ``protocols.body_routes.carries_body``).
    body_route: bool = False


def _value(thing: Any) -> str:
    return str(getattr(thing, "value", thing))


def _allowed(reactions: Iterable[Any]) -> str:
    return ", ".join(sorted(_value(r) for r in reactions))


def _adv() -> list[CaseRow]:
    from protocols.adversarial_cases import CASES
    from protocols.body_routes import carries_body

    return [CaseRow("adv", c.name, c.rfc, _value(c.requirement), _value(c.severity),
                    _allowed(c.allowed), getattr(c, "category", ""), c.quote, carries_body(c))
            for c in CASES]


def _ws() -> list[CaseRow]:
    from protocols.websocket_cases import CASES, HANDSHAKE_CASES

    found = []
    for case in (*CASES, *HANDSHAKE_CASES):
        allowed = _allowed(case.allowed)
        if case.tolerated:
            allowed += f" (lenient: {_allowed(case.tolerated)})"
        kind = _value(getattr(case, "kind", "handshake"))
        found.append(CaseRow("ws", case.name, case.rfc, _value(case.requirement),
                             _value(case.severity), allowed, kind, case.quote))
    return found


def _h2c() -> list[CaseRow]:
    from protocols.h2c import TeardownStage

    allowed = ("any answer but garbage (upgraded or declined are both correct); then a plain "
               "request on a fresh connection is answered")
    return [CaseRow("h2c", f"h2c-{stage.value}-{mode}", "RFC 7540 §3.2", "MUST", "HIGH", allowed,
                    H2C_STAGES.get(stage.value, stage.value), H2C_QUOTE)
            for stage in TeardownStage for mode in ("fin", "rst")]


def _tls() -> list[CaseRow]:
    from protocols.tls_cases import CASES

    found = []
    for case in CASES:
        allowed = (f"the {case.expected_alert.name.lower()} alert (a close, another alert or an "
                   "HTTP answer is lenient; a ServerHello is a MUST miss)"
                   if case.must_terminate and case.expected_alert is not None else
                   "any reaction (ServerHello, alert, close)")
        severity = "MED" if case.must_terminate else "HIGH"
        found.append(CaseRow("tls", f"tls-{case.name}", case.rfc, case.requirement, severity,
                             allowed + "; a control GET on a fresh TLS connection during and "
                             "after it is answered (I-TLS-LIVE, HIGH)", case.summary,
                             case.quote))
    return found


def _h2() -> list[CaseRow]:
    """The HTTP/2 torture catalogue (``protocols.h2_cases``): allowed = what passes, with
    what is only lenient in brackets (``protocols.h2_oracle``)."""
    from protocols.h2_cases import CASES
    from protocols.h2_oracle import ALLOWED, LENIENT

    found = []
    for case in CASES:
        allowed = _allowed(ALLOWED[case.expect])
        lenient = LENIENT[case.expect] | case.tolerated
        if lenient:
            allowed += f" (lenient: {_allowed(lenient)})"
        codes = ", ".join(sorted(_code_name(code) for code in case.accepted_codes()))
        found.append(CaseRow("h2", case.name, case.rfc, _value(case.requirement),
                             _value(case.severity), f"{allowed}; codes {codes}",
                             f"{case.group.value}/{case.expect.value}", case.quote))
    return found


def _code_name(code: int) -> str:
    from protocols.h2_frames import ErrorCode

    member = ErrorCode._value2member_map_.get(code)
    return member.name if member is not None else hex(code)


def _sse() -> list[CaseRow]:
    from protocols.sse import SseKillStage

    return [CaseRow("sse", f"sse-{stage.value}-{mode}", "WHATWG HTML §9.2", "invariant", "HIGH",
                    "the slot is released: a fresh subscriber gets 200 text/event-stream",
                    SSE_STAGES.get(stage.value, stage.value),
                    "leaving is legal; a departed subscriber's slot must not be kept "
                    "(I-SSE-LEAK)")
            for stage in SseKillStage for mode in ("fin", "rst")]


def _resp() -> list[CaseRow]:
    from protocols.response_rules import RULES

    found = []
    for rule in RULES:
        severity = _value(rule.severity)
        if getattr(rule, "framing", False):
            severity += " (HIGH when the connection stays open)"
        found.append(CaseRow("resp", rule.name, rule.rfc, _value(rule.requirement), severity,
                             getattr(rule, "summary", "") or "-", "response", rule.quote))
    return found


_BUILDERS = {"adv": _adv, "ws": _ws, "h2c": _h2c, "h2": _h2, "tls": _tls, "sse": _sse,
             "resp": _resp}


def rows(slice_name: str = "all") -> list[CaseRow]:
    """Every entry of one slice's catalogue (``all``: every slice, in ``SLICES`` order)."""
    names = SLICES if slice_name == "all" else (slice_name,)
    return [row for name in names for row in _BUILDERS[name]()]


def render_table(found: list[CaseRow]) -> str:
    """A plain-text table, one line per entry, with a count per slice at the end."""
    header = ("slice", "name", "rfc", "req", "severity", "allowed")
    lines = [(r.slice, r.name, r.rfc, r.requirement, r.severity, r.allowed) for r in found]
    widths = [max([len(h)] + [len(line[i]) for line in lines]) for i, h in enumerate(header[:5])]
    out = []
    for line in [header, *lines]:
        cells = [cell.ljust(width) for cell, width in zip(line[:5], widths, strict=True)]
        out.append("  ".join([*cells, line[5]]).rstrip())
    counts: dict[str, int] = {}
    for row in found:
        counts[row.slice] = counts.get(row.slice, 0) + 1
    out.append("")
    out.append(", ".join(f"{name}: {count}" for name, count in counts.items())
               + f"; {len(found)} in all")
    return "\n".join(out) + "\n"


def add_cases_parser(sub: Any) -> None:
    cases = sub.add_parser("cases", help="list every case and response rule (RFC section, "
                           "requirement, severity, allowed reactions)")
    cases.add_argument("--slice", choices=(*SLICES, "all"), default="all",
                       help="one catalogue (default all)")
    form = cases.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON array of objects")
    form.add_argument("--markdown", action="store_true",
                      help="the RFC 9112/9110 conformance map (docs/CONFORMANCE.md)")


def run_cases(args: argparse.Namespace) -> int:
    """Print the listing; 0 always (the catalogues are part of the build)."""
    if args.markdown:
        from coordinator.conformance_doc import render

        sys.stdout.write(render())
        return 0
    found = rows(args.slice)
    if args.json:
        json.dump([asdict(row) for row in found], sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(found))
    return 0
