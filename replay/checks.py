"""The built-in oracles: pure functions that decide whether a transcript still shows a violation.

Importing this module registers them (``replay.oracle_registry``: ``register``, ``evaluate``,
``CHECKS``, re-exported here because most callers want the built-ins and the entry point
together). Oracles are pure: bytes in, ``CheckResult`` out, never an exception for anything a
server sent. They reuse the slices' own sans-IO oracles, so a replay is judged exactly as the
run judged it. The read-after-write oracle is ``replay.checks_raw``.

Labels used by the evidence converter (``replay.evidence``) and read here:

=====================  ==========================================================
``adv.reply`` ...      adversarial case: reply, grace read, canary, baseline
``ws.handshake``       WebSocket: the opening handshake answer, then ``ws.answer``
``h2c.answer``         h2c: what the server answered to the upgrade
``probe``              any liveness probe (PROBE steps)
``sse.check``          SSE: a fresh subscriber's answer
``sse.stats_before``   SSE: the subscriber count before/after (``sse.stats_after``)
``raw:<role>:<key>``   read-after-write: a request (role ``write``/``read``/``other``)
=====================  ==========================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from protocols.adversarial_cases import BY_NAME as ADV_CASES
from protocols.adversarial_oracle import Observation, assess, observe
from protocols.h2c import AnswerKind, classify_answer
from protocols.h2c import Transport as H2cTransport
from protocols.outcome import Reaction, Verdict
from protocols.program import Action, Program, Step
from protocols.websocket_cases import CASES as WS_CASES
from protocols.websocket_cases import HANDSHAKE_CASES, HandshakeCase
from protocols.websocket_frames import parse_handshake_response
from protocols.websocket_oracle import Transport as WsTransport
from protocols.websocket_oracle import WsOracle, judge_handshake

# Importing checks_raw registers the read-after-write oracle; same_json is imported from here
# by corpus.oracles. CHECKS, UnknownOracle and evaluate are the registry's entry points,
# re-exported for callers that import the built-ins (see the module docstring).
from replay.checks_raw import same_json  # noqa: F401
from replay.oracle_registry import (
    CHECKS,  # noqa: F401
    PROGRAM_KEY,
    CheckResult,
    TranscriptLike,
    UnknownOracle,  # noqa: F401
    answered,
    ending,
    evaluate,  # noqa: F401
    first,
    join_results,
    labelled,
    register,
    responses,
)

# -- adversarial HTTP/1.1 -------------------------------------------------------------------


@register("adv_case")
def adv_case(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """The case is judged by ``protocols.adversarial_oracle.assess`` as the walker did.

    Params: ``case`` (catalogue name), ``counter`` (``adv.wrong_accepted`` or
    ``adv.desync``), ``baseline_status`` (used when the baseline steps were shrunk away).
    """
    case = ADV_CASES.get(str(params.get("case")))
    if case is None:
        return CheckResult(False, f"unknown adversarial case {params.get('case')!r}")
    replies = [r for _, r in labelled(params, transcript, "adv.reply")]
    if not replies:
        return CheckResult(False, "the case was not sent")
    data, end = join_results(replies + [r for _, r in labelled(params, transcript, "adv.grace")])
    observation = observe(data, end, case.methods)
    base_hits = [r for _, r in labelled(params, transcript, "adv.baseline")]
    baseline: Observation | None = None
    if base_hits:
        base_data, base_end = join_results(base_hits)
        baseline = observe(base_data, base_end)
        if baseline.status is None:
            baseline = None
    if baseline is None and isinstance(params.get("baseline_status"), int):
        status = params["baseline_status"]
        baseline = Observation(Reaction.ACCEPTED if status < 400 else Reaction.REJECTED_KEPT_ALIVE,
                               statuses=(status,))
    canary_hits = [r for _, r in labelled(params, transcript, "adv.canary_reply")]
    canary = None
    if canary_hits:
        canary_data, canary_end = join_results(
            canary_hits + [r for _, r in labelled(params, transcript, "adv.canary_grace")])
        canary = observe(canary_data, canary_end)
    verdict = assess(case, observation, baseline, canary)
    counter = str(params.get("counter", "adv.wrong_accepted"))
    detail = (f"{case.name} ({case.rfc}): {verdict.verdict.value}, "
              f"{verdict.reaction.value if verdict.reaction else 'unjudged'}; "
              f"statuses {list(observation.statuses)}"
              + (f", canary {list(canary.statuses)}" if canary else "")
              + (f"; {verdict.reason}" if verdict.reason else ""))
    return CheckResult(counter in verdict.high, detail)


# -- WebSocket ------------------------------------------------------------------------------

_WS_BY_NAME: dict[str, Any] = {c.name: c for c in (*WS_CASES, *HANDSHAKE_CASES)}
_WS_TRANSPORT = {"eof": WsTransport.EOF, "reset": WsTransport.RESET, "cap": WsTransport.CAP,
                 "timeout": WsTransport.OPEN, "done": WsTransport.OPEN}
_KEY = re.compile(rb"(?im)^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r?$")


@register("ws_case")
def ws_case(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Judged by ``protocols.websocket_oracle`` on the bytes after the handshake.

    Params: ``case`` and ``counter`` (``ws.accepted_bad_frame`` / ``ws.hang_no_close``).
    """
    case = _WS_BY_NAME.get(str(params.get("case")))
    counter = str(params.get("counter"))
    if case is None:
        return CheckResult(False, f"unknown WebSocket case {params.get('case')!r}")
    answer = [r for _, r in labelled(params, transcript, "ws.answer")]
    if isinstance(case, HandshakeCase):
        if not answer:
            return CheckResult(False, "the handshake was not sent")
        data, end = join_results(answer)
        judgement = judge_handshake(case, data, _WS_TRANSPORT.get(end, WsTransport.RESET))
    else:
        hits = labelled(params, transcript, "ws.handshake")
        if not hits or not answer:
            return CheckResult(False, "no handshake or no frames were sent")
        key = _ws_key(params, hits[0][0])
        data, end = join_results([r for _, r in hits] + answer)
        handshake = parse_handshake_response(data, key)
        if handshake is None or not handshake.accepted:
            problem = handshake.problem if handshake else "no handshake answer"
            return CheckResult(False, f"handshake not accepted: {problem}")
        oracle = WsOracle(case)
        oracle.feed(handshake.rest)
        judgement = oracle.finish(_WS_TRANSPORT.get(end, WsTransport.RESET))
    violated = judgement.counter == counter and judgement.verdict is Verdict.VIOLATION
    return CheckResult(violated, f"{case.name} ({case.rfc}): {judgement.verdict.value}, "
                                 f"{judgement.reaction.value}: {judgement.detail}")


def _ws_key(params: Mapping[str, Any], read_step: Step) -> str | None:
    """The Sec-WebSocket-Key of the handshake sent on the read step's connection."""
    program: Program = params[PROGRAM_KEY]
    for step in program.steps:
        if step.conn == read_step.conn and step.action in (Action.SEND, Action.DRIP):
            match = _KEY.search(step.data)
            if match:
                return match.group(1).decode("latin-1")
    return None


# -- h2c ------------------------------------------------------------------------------------


@register("h2c_crashed")
def h2c_crashed(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """After the churn, every probe failed (no well-formed HTTP answer); or, with
    ``garbage: true``, the upgrade itself was answered with garbage."""
    if params.get("garbage"):
        hits = labelled(params, transcript, "h2c.answer")
        if hits:
            data, end = join_results(r for _, r in hits)
            transport = {"eof": H2cTransport.EOF, "reset": H2cTransport.RESET,
                         "cap": H2cTransport.CAP}.get(end, H2cTransport.OPEN)
            answer = classify_answer(data, transport, preface_sent=bool(params.get("preface")))
            if answer.kind is AnswerKind.GARBAGE:
                return CheckResult(True, f"upgrade answered with garbage: {answer.detail}")
    return probes_fail(params, transcript)


# -- liveness and hang ----------------------------------------------------------------------


@register("probes_fail")
def probes_fail(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Every ``probe``-labelled step failed to get a well-formed HTTP answer.

    Params: ``how`` = ``down`` (any failure) or ``hung`` (the connection was taken but no
    answer came by the deadline).
    """
    probes = [r for _, r in labelled(params, transcript, "probe")]
    if not probes:
        return CheckResult(False, "no probe ran")
    how = str(params.get("how", "down"))
    outcomes = []
    for result in probes:
        head = answered(result.data)
        if head is not None:
            return CheckResult(False, f"a probe was answered ({head.status})")
        outcomes.append(ending(result) + (f" ({result.error})" if result.error else ""))
    if how == "hung" and not any(ending(r) == "timeout" and not r.error for r in probes):
        return CheckResult(False, "probes failed but none timed out: " + "; ".join(outcomes))
    return CheckResult(True, f"{len(probes)} probe(s) unanswered: " + "; ".join(outcomes))


# -- SSE ------------------------------------------------------------------------------------


@register("sse_leak")
def sse_leak(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Mode ``count``: the target's subscriber count (``field`` in a JSON or Prometheus
    stats page) rose by at least ``min_leaked`` after our subscribers left. Mode
    ``refused``: a fresh subscriber is refused (429 excepted: rate limiting, not a leak)."""
    if params.get("mode") == "count":
        before = first(params, transcript, "sse.stats_before")
        after = first(params, transcript, "sse.stats_after")
        if before is None or after is None:
            return CheckResult(False, "the subscriber count was not read twice")
        field = str(params.get("field", "sse_subscribers"))
        low, high = stats_count(before.data, field), stats_count(after.data, field)
        if low is None or high is None:
            return CheckResult(False, f"subscriber count {field!r} unreadable")
        need = int(params.get("min_leaked", 1))
        return CheckResult(high - low >= need,
                           f"{field} {low} -> {high} after our subscribers left")
    check = first(params, transcript, "sse.check")
    if check is None:
        return CheckResult(False, "no fresh subscription was attempted")
    head = answered(check.data)
    if head is None:
        return CheckResult(True, f"fresh subscriber got no answer ({ending(check)})")
    kind = (head.get(b"content-type") or b"").split(b";")[0].strip().lower()
    if head.status == 200 and kind == b"text/event-stream":
        return CheckResult(False, "a fresh subscriber was accepted")
    if head.status == 429:
        return CheckResult(False, "rate limited (429), not judged")
    return CheckResult(True, f"fresh subscriber refused with {head.status}")


def stats_count(data: bytes, field: str) -> int | None:
    """A subscriber count from a stats response: JSON dotted field or Prometheus metric."""
    found = responses(data)
    body = found[0].body if found else data
    try:
        node: Any = json.loads(body)
    except (ValueError, RecursionError):
        total, seen = 0.0, False
        for line in body.decode("utf-8", "replace").splitlines():
            parts = line.strip().split()
            if len(parts) >= 2 and (parts[0] == field or parts[0].startswith(field + "{")):
                try:
                    total += float(parts[1])
                    seen = True
                except ValueError:
                    return None
        return int(total) if seen else None
    for part in field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    return int(node)
