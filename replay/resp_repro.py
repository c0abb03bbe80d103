"""Reproducers for response-rule framing trips (I-RESP-FRAMING).

How this works: the evidence of ``resp.framing_violation`` holds the exact request sent
(``sent``) and the rule it broke. ``derive`` rebuilds it as one unit: send the request on a
fresh connection, read one response, then read what else arrives within a short grace
period (bytes a client would take for the next response). The ``resp_rule`` oracle joins
the reads and judges them with ``protocols.response_rules`` exactly as the walkers do: the
reproducer still fails while that rule is broken as a HIGH framing hazard.

Importing this module registers the oracle (``coordinator.cli`` does, for ``assay replay
FILE``; ``replay.evidence`` does when it derives one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.outcome import Severity, Verdict
from protocols.program import Action, Check, ReadUntil, Step
from protocols.response_bytes import parse_exchange, request_facts
from protocols.response_rules import BY_NAME, check
from replay.oracle_registry import CheckResult, TranscriptLike, ending, labelled, register

GRACE_S = 0.5
LABEL = "resp.reply"


@register("resp_rule")
def resp_rule(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Violated while the response still breaks ``params["rule"]`` as a framing hazard."""
    rule = str(params.get("rule"))
    sent = labelled(params, transcript, "resp.sent")
    reads = labelled(params, transcript, LABEL)
    if not sent or not reads:
        return CheckResult(False, "the request or its reads did not run")
    request = request_facts(sent[0][0].data)
    if request is None:
        return CheckResult(False, "the request has no request line")
    data = b"".join(result.data for _, result in reads)
    closed = ending(reads[-1][1]) in ("eof", "reset")
    for found in parse_exchange(request.method, data, closed=closed,
                                persistent=request.persistent):
        for finding in check(request, found.head, found.body, clock=False):
            if (finding.rule == rule and finding.verdict is Verdict.VIOLATION
                    and finding.severity is Severity.HIGH):
                return CheckResult(True, f"{rule}: {finding.detail}")
    return CheckResult(False, f"{rule} not broken as a framing hazard")


def derive(evidence: Mapping[str, Any], sent: bytes, timeout: float) -> tuple[
        tuple[tuple[Step, ...], ...], Check, dict[str, Any]]:
    """(units, check, meta) for ``replay.evidence``; ValueError when not derivable."""
    rule = str(evidence.get("rule"))
    if rule not in BY_NAME or not BY_NAME[rule].framing:
        raise ValueError(f"response rule {rule!r} is not a framing rule")
    if request_facts(sent) is None:
        raise ValueError("the evidence holds no request line to re-send")
    unit = (
        Step(Action.SEND, conn=0, data=sent, label="resp.sent"),
        Step(Action.READ, conn=0, timeout_s=timeout, until=ReadUntil.RESPONSE, label=LABEL),
        Step(Action.READ, conn=0, timeout_s=GRACE_S, until=ReadUntil.CLOSE, label=LABEL),
    )
    meta = {"rule": rule, "rfc": BY_NAME[rule].rfc, "route": evidence.get("route")}
    return (unit,), Check("resp_rule", {"rule": rule}), meta
