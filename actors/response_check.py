"""Response-rule checks in the actors: sampling, per-route dedupe, counters and examples.

How this works: every actor keeps one ``ResponseChecker`` (``checker_for(ctx)``, keyed by
the actor's tally), shared by its walkers. The rules themselves are pure
(``protocols.response_rules``); this module decides *when* to run them and how a finding
is counted:

* Sampling: the Markov hot path judges only the first ``SAMPLE`` responses per
  (route, status) in each actor (``sample`` is a dict the walker reads inline), plus any
  response after which unrequested bytes sit in the parser's buffer (a framing hazard is
  never sampled away). A server answers a route the same way every time, so the first few
  responses carry every verdict the rest would.
* Dedupe: a finding counts once per (rule, verdict, route) per actor:
  ``resp.rule.<rule>.<verdict>`` and ``resp.route.<rule>.<verdict>.<route>`` (the results
  count routes from the latter), and a violation once more in ``resp.violation`` (MED,
  I-RESP-MUST) or, for a framing hazard on a connection kept open,
  ``resp.framing_violation`` (HIGH, I-RESP-FRAMING, through the incident path).
* Examples keep the bytes sent and received, capped at ``EXAMPLE_CAP``.
"""

from __future__ import annotations

from typing import Any

from actors.walker import WalkerContext
from protocols.http1 import Response
from protocols.outcome import Severity, Verdict
from protocols.response_bytes import parse_exchange, request_facts
from protocols.response_rules import (
    BY_NAME,
    BodyFacts,
    RequestFacts,
    ResponseFacts,
    RuleFinding,
    check,
)

#: Responses judged per (route, status) per actor on the Markov hot path.
SAMPLE = 4
EXAMPLE_CAP = 2048
CHECKED = "resp.checked"
VIOLATION = "resp.violation"
FRAMING_VIOLATION = "resp.framing_violation"

_CHECKERS: dict[int, tuple[Any, ResponseChecker]] = {}


class ResponseChecker:
    """One actor's sampling state and dedupe set."""

    def __init__(self, clock: bool) -> None:
        self.clock = clock
        #: (route, status) -> responses still to judge; a missing key means "judge".
        self.sample: dict[tuple[str, int], int] = {}
        self._seen: set[tuple[str, str, str]] = set()
        #: Paths ``actors.response_probes`` already probed in this actor.
        self.probed: set[str] = set()
        #: Routes whose refused response ``actors.response_probes`` already re-fetched.
        self.explained: set[str] = set()

    def markov(self, ctx: WalkerContext, route: str, method: str, sent: bytes,
               response: Response, excess: int) -> None:
        """Judge one parsed Markov response (``excess``: bytes buffered past its end)."""
        head = ResponseFacts(response.status, response.http_version, response.headers)
        body = BodyFacts(len(response.body), excess, response.keep_alive)
        findings = check(RequestFacts(method), head, body, clock=self.clock)
        self._record(ctx, route, findings, sent, lambda: _rebuild(response))

    def raw(self, ctx: WalkerContext, route: str, sent: bytes, received: bytes, *,
            closed: bool, stream: bool = False) -> None:
        """Judge every response head in ``received`` (the answer to ``sent``)."""
        request = request_facts(sent)
        if request is None:
            return
        for found in parse_exchange(request.method, received, closed=closed, stream=stream,
                                    persistent=request.persistent):
            findings = check(request, found.head, found.body, clock=self.clock)
            self._record(ctx, route, findings, sent, lambda: received)

    def _record(self, ctx: WalkerContext, route: str, findings: list[RuleFinding],
                sent: bytes, received: Any) -> None:
        tally = ctx.tally
        tally.incr(CHECKED)
        seen = self._seen
        for finding in findings:
            verdict = finding.verdict.value
            key = (finding.rule, verdict, route)
            fresh = key not in seen
            # A framing rule first broken on a closed connection (MED) may later be broken
            # on a kept-alive one (HIGH): that first HIGH is reported too.
            high_key = (finding.rule, Severity.HIGH.value, route)
            high = finding.severity is Severity.HIGH and high_key not in seen
            if not fresh and not high:
                continue
            seen.add(key)
            counter = f"resp.rule.{finding.rule}.{verdict}"
            if fresh:
                tally.incr(counter)
                tally.incr(f"resp.route.{finding.rule}.{verdict}.{route}")
            if finding.verdict is not Verdict.VIOLATION:
                continue
            rule = BY_NAME[finding.rule]
            evidence = {
                "rule": rule.name, "rfc": rule.rfc, "requirement": rule.requirement.value,
                "severity": finding.severity.value if finding.severity else None,
                "route": route, "slice": ctx.slice_name, "detail": finding.detail,
                "sent": sent[:EXAMPLE_CAP], "received": bytes(received())[:EXAMPLE_CAP],
            }
            tally.keep_example(counter, evidence)
            if high:
                seen.add(high_key)
                ctx.report_violation(FRAMING_VIOLATION, evidence)
            elif finding.severity is not Severity.HIGH:
                tally.incr(VIOLATION)
                tally.keep_example(VIOLATION, evidence)


def checker_for(ctx: WalkerContext) -> ResponseChecker:
    """The actor's checker (one per tally, so per actor incarnation)."""
    held = _CHECKERS.get(id(ctx.tally))
    if held is None or held[0] is not ctx.tally:
        held = (ctx.tally, ResponseChecker(clock=not ctx.settings.get("no_clock", False)))
        _CHECKERS[id(ctx.tally)] = held
    return held[1]


def check_raw(ctx: WalkerContext, sent: bytes, received: bytes, *, closed: bool = False,
              stream: bool = False, route: str | None = None) -> None:
    """One call for any slice that holds raw bytes: judge the responses in ``received``.

    ``route`` defaults to the request line's method and path (query dropped). The rules
    never raise on server bytes (fuzz-tested), so anything raised here is a harness bug.
    """
    if route is None:
        route = _route_of(sent)
    checker_for(ctx).raw(ctx, route, sent, received, closed=closed, stream=stream)


def _route_of(sent: bytes) -> str:
    parts = sent.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) < 2:
        return "?"
    return f"{parts[0].decode('latin-1')} {parts[1].split(b'?', 1)[0].decode('latin-1')}"


def _rebuild(response: Response) -> bytes:
    """The response as bytes again (names lower-cased: the parser keeps no raw head)."""
    lines = [b"HTTP/" + response.http_version + b" " + str(response.status).encode()
             + b" " + response.reason]
    lines += [name + b": " + value for name, value in response.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + response.body[:EXAMPLE_CAP]
