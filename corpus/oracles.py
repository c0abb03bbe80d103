"""The seed oracle: judges every segment of a seed's transcript and says what tripped.

How this works: steps are grouped by their label (``"<segment>/<kind>/<role>"``, see
``corpus.plan``) and each segment kind has a judge that reads its steps' results with the
slices' own sans-IO oracles (``protocols.adversarial_oracle``, ``protocols.websocket_oracle``,
``protocols.h2c``), so a seed judges a case exactly as the Tier 1 walker would. A judge
returns trips (invariant, severity, what happened) or a "not judged" reason; never an
exception for anything a server sent.

A seed passes when nothing trips and the final liveness probe is answered. Invariant IDs
are the Tier 1 ones where the meaning is the same (I-ADV-ACCEPTED, I-WS-HANG, I-LIVENESS...),
plus I-FAULT-RECOVERY: after a fault, a valid request on a fresh connection got no answer
or a 5xx. A step that could not run (ending ``error``: no local pid, no namespace) makes its
segment "not judged" with the executor's reason.

``seed`` is registered in ``replay.checks`` by ``corpus.seed_checks``, so ``assay replay FILE``
and the shrinker judge a seed program like any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corpus.plan import parse_label
from protocols.adversarial_cases import BY_NAME as ADV_CASES
from protocols.adversarial_oracle import Observation, assess, observe
from protocols.h2c import AnswerKind, classify_answer
from protocols.h2c import Transport as H2cTransport
from protocols.http1 import Response, ResponseError, ResponseParser
from protocols.outcome import Verdict
from protocols.program import Program
from protocols.response_head import ResponseHead, parse_response_head
from protocols.websocket_cases import BY_NAME as WS_CASES
from protocols.websocket_cases import HandshakeCase
from protocols.websocket_frames import parse_handshake_response
from protocols.websocket_oracle import (
    ACCEPTED_BAD_FRAME,
    HANG_NO_CLOSE,
    WsOracle,
    judge_handshake,
)
from protocols.websocket_oracle import Transport as WsTransport
from replay.checks import same_json

HIGH, MED = "HIGH", "MED"
_WS_TRANSPORT = {"eof": WsTransport.EOF, "reset": WsTransport.RESET, "cap": WsTransport.CAP}
_H2C_TRANSPORT = {"eof": H2cTransport.EOF, "reset": H2cTransport.RESET,
                  "cap": H2cTransport.CAP}


@dataclass(frozen=True)
class Trip:
    invariant: str
    severity: str
    segment: int
    kind: str
    detail: str

    def line(self) -> str:
        return f"{self.invariant} ({self.severity}) in segment {self.segment:02d} " \
               f"[{self.kind}]: {self.detail}"


@dataclass(frozen=True)
class SeedVerdict:
    """Trips (the seed fails if there is any), and the segments that could not be judged."""

    trips: tuple[Trip, ...]
    not_judged: tuple[tuple[int, str, str], ...]
    judged: int

    @property
    def passed(self) -> bool:
        return not self.trips

    def summary(self) -> str:
        if self.passed:
            return f"pass: {self.judged} segment(s) judged, nothing tripped"
        first = self.trips[0]
        more = f" (+{len(self.trips) - 1} more)" if len(self.trips) > 1 else ""
        return f"fail: {first.line()}{more}"


@dataclass
class _View:
    """The executed steps of one segment, by role."""

    kind: str
    params: Mapping[str, Any]
    results: dict[str, Any] = field(default_factory=dict)

    def get(self, role: str) -> Any:
        return self.results.get(role)

    def errors(self) -> list[str]:
        return [f"{role}: {r.error}" for role, r in self.results.items() if r.ending == "error"]


Judgement = tuple[list[tuple[str, str, str]], str]  # ([(invariant, severity, detail)], reason)


def _response(result: Any, method: str = "GET") -> Response | None:
    """The first complete response in a read step's bytes (None: none, or garbage)."""
    if result is None:
        return None
    parser = ResponseParser()
    parser.expect(method)
    parser.feed(result.data)
    if result.ending in ("eof", "reset"):
        parser.feed_eof()
    try:
        return parser.next_response()
    except ResponseError:
        return None


def _how(result: Any) -> str:
    if result is None:
        return "the step did not run"
    return result.ending + (f" ({result.error})" if result.error else "")


def _head(result: Any) -> ResponseHead | None:
    if result is None:
        return None
    head = parse_response_head(result.data.lstrip(b"\r\n"))
    return head if isinstance(head, ResponseHead) else None


# -- judges -----------------------------------------------------------------------------------


def _markov(view: _View) -> Judgement:
    trips: list[tuple[str, str, str]] = []
    refapp = view.params.get("model") == "refapp"
    login = view.get("login_reply")
    if refapp and login is not None:
        response = _response(login, "POST")
        if response is None:
            return [("I-MKV-TRANSPORT", MED, f"login got no response: {_how(login)}")], ""
        if response.status >= 500:
            return [("I-MKV-SERVER-ERRORS", MED, f"login answered {response.status}")], ""
        if response.status != 200:
            return [("I-MKV-UNEXPECTED", MED, f"login answered {response.status}")], ""
    record: dict[str, Any] | None = None
    for request in view.params.get("requests", []):
        result = view.get(f"r{request['i']}")
        if result is None or result.ending == "error":
            continue
        what = f"{request['method']} ({request['state']})"
        response = _response(result, request["method"])
        if response is None:
            trips.append(("I-MKV-TRANSPORT", MED, f"{what} got no response: {_how(result)}"))
            break
        status = response.status
        if status == 429:  # rate limited: not the server's fault, and the write did not land
            record = None if request.get("write") else record
            continue
        expect = request["expect"]
        if status >= 500:
            trips.append(("I-MKV-SERVER-ERRORS", MED, f"{what} answered {status}"))
        elif (expect == "2xx3xx" and not 200 <= status < 400) or (
                isinstance(expect, list) and status not in expect):
            trips.append(("I-MKV-UNEXPECTED", MED, f"{what} answered {status}, expected "
                                                   f"{expect}"))
        if request.get("write") is not None:
            record = dict(request["write"]) if 200 <= status < 300 else None
        elif request.get("read") and record is not None and status == 200:
            actual = _json(response.body)
            wrong = [k for k, v in record.items()
                     if not isinstance(actual, dict) or k not in actual
                     or not same_json(v, actual[k])]
            if wrong:
                trips.append(("I-DRV-1", HIGH, f"read back lost field(s) {wrong}: wrote "
                                               f"{json.dumps(record, sort_keys=True)}, read "
                                               f"{response.body[:300]!r}"))
        elif request.get("forget"):
            record = None
    return trips, ""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _joined(*results: Any) -> tuple[bytes, str]:
    """Bytes of consecutive reads on one connection, and how the last one ended."""
    data, end = b"", "timeout"
    for result in results:
        if result is not None:
            data += result.data
            end = result.ending
    return data, {"ok": "done", "error": "reset"}.get(end, end)


def _adv(view: _View) -> Judgement:
    case = ADV_CASES.get(str(view.params.get("case")))
    if case is None:
        return [], f"unknown adversarial case {view.params.get('case')!r}"
    sent, reply = view.get("case"), view.get("reply")
    if sent is None or reply is None:
        return [], "the case was not sent"
    if sent.error.startswith("connect") or reply.error.startswith("connect"):
        return [], f"could not connect: {sent.error or reply.error}"
    data, end = _joined(reply, view.get("grace"))
    observation = observe(data, end, case.methods)
    baseline: Observation | None = None
    base = view.get("baseline_reply")
    if base is not None:
        baseline = observe(base.data, base.ending)
        if baseline.status is None:
            baseline = None
    canary = None
    canary_reply = view.get("canary_reply")
    walker_would_send = end == "timeout" and observation.statuses and not observation.closed
    if canary_reply is not None and walker_would_send:
        canary_data, canary_end = _joined(canary_reply, view.get("canary_grace"))
        canary = observe(canary_data, canary_end)
    verdict = assess(case, observation, baseline, canary)
    if verdict.verdict is Verdict.UNJUDGED:
        return [], f"{case.name}: not judged ({verdict.reason})"
    detail = (f"{case.name} ({case.rfc}): {verdict.reaction.value if verdict.reaction else '?'},"
              f" statuses {list(observation.statuses)}; {verdict.reason}")
    trips = []
    if "adv.wrong_accepted" in verdict.high:
        trips.append(("I-ADV-ACCEPTED", HIGH, detail))
    if "adv.desync" in verdict.high:
        trips.append(("I-ADV-DESYNC", HIGH, detail))
    return trips, ""


def _ws(view: _View) -> Judgement:
    case = WS_CASES.get(str(view.params.get("case")))
    key = view.params.get("key")
    answer = view.get("handshake_reply")
    if case is None or answer is None:
        return [], "unknown case or no handshake answer"
    if isinstance(case, HandshakeCase):
        judgement = judge_handshake(case, answer.data,
                                    _WS_TRANSPORT.get(answer.ending, WsTransport.OPEN))
    else:
        handshake = parse_handshake_response(answer.data, key)
        if handshake is None or not handshake.accepted:
            problem = handshake.problem if handshake else f"no answer ({_how(answer)})"
            return [], f"WebSocket handshake not accepted: {problem}"
        reaction = view.get("reaction")
        if reaction is None or reaction.ending == "error":
            return [], "the frames were not sent"
        oracle = WsOracle(case)
        oracle.feed(handshake.rest + reaction.data)
        judgement = oracle.finish(_WS_TRANSPORT.get(reaction.ending, WsTransport.OPEN))
    trips = []
    detail = f"{case.name} ({case.rfc}): {judgement.reaction.value}: {judgement.detail}"
    if judgement.verdict is Verdict.VIOLATION and judgement.counter == ACCEPTED_BAD_FRAME:
        trips.append(("I-WS-ACCEPTED", HIGH, detail))
    if judgement.verdict is Verdict.VIOLATION and judgement.counter == HANG_NO_CLOSE:
        trips.append(("I-WS-HANG", HIGH, detail))
    return trips, ""


def _h2c(view: _View) -> Judgement:
    trips = []
    answer = view.get("answer")
    if answer is not None:
        kind = classify_answer(answer.data, _H2C_TRANSPORT.get(answer.ending, H2cTransport.OPEN),
                               preface_sent=False)
        if kind.kind is AnswerKind.GARBAGE:
            trips.append(("I-H2C-CRASHED", HIGH, f"upgrade answered with garbage: {kind.detail}"))
    probe = view.get("probe")
    if probe is not None and _head(probe) is None:
        trips.append(("I-H2C-CRASHED", HIGH, f"after an h2c upgrade abandoned at "
                      f"{view.params.get('stage')} ({view.params.get('mode')}), a plain request "
                      f"got no answer: {_how(probe)}"))
    return trips, ""


def _sse(view: _View) -> Judgement:
    first, check = _head(view.get("head")), view.get("check_head")
    absent = (404, 405, 501)
    if first is not None and first.status in absent:
        return [], f"no SSE route at this path ({first.status})"
    head = _head(check)
    if head is None:
        return [("I-SSE-LEAK", HIGH, f"a fresh subscription after a killed one got no "
                                     f"answer: {_how(check)}")], ""
    kind = (head.get(b"content-type") or b"").split(b";")[0].strip().lower()
    if head.status == 200 and kind == b"text/event-stream":
        return [], ""
    if head.status in absent:
        return [], f"no SSE route at this path ({head.status})"
    if head.status == 429:
        return [], "rate limited (429)"
    return [("I-SSE-LEAK", HIGH, f"a fresh subscription after a killed one was refused "
                                 f"with {head.status}")], ""


def _answered_ok(result: Any) -> str:
    """'' when ``result`` holds a well-formed answer that is not a 5xx, else why not."""
    head = _head(result)
    if head is None:
        return f"no answer: {_how(result)}"
    if head.status >= 500:
        return f"answered {head.status}"
    return ""


def _fault(view: _View) -> Judgement:
    errors = view.errors()
    if errors:
        return [], "; ".join(errors)
    trips = []
    name = view.kind.split(".", 1)[1]
    if name == "pause":
        problem = _answered_ok(view.get("reply"))
        if problem:
            trips.append(("I-HANG", HIGH, f"a request sent while the target was stopped for "
                                          f"{view.params.get('seconds')} s: {problem}"))
    if name == "network":
        problem = _answered_ok(view.get("reply"))
        if problem:
            trips.append(("I-FAULT-RECOVERY", HIGH, f"a request over a delayed, lossy path: "
                                                    f"{problem}"))
    if name == "drip_write":
        problem = _answered_ok(view.get("reply"))
        if problem:
            trips.append(("I-FAULT-RECOVERY", HIGH, f"a request written a few bytes at a time: "
                                                    f"{problem}"))
    recovery = view.get("recovery")
    if recovery is not None:
        problem = _answered_ok(recovery)
        if problem:
            trips.append(("I-FAULT-RECOVERY", HIGH, f"after {name}, a valid request on a fresh "
                                                    f"connection: {problem}"))
    return trips, ""


def _liveness(view: _View) -> Judgement:
    probe = view.get("probe")
    if probe is None:
        return [], "the liveness probe did not run (time limit)"
    problem = _answered_ok(probe)
    return ([("I-LIVENESS", HIGH, f"after the seed, the health probe: {problem}")]
            if problem else []), ""


_JUDGES: dict[str, Callable[[_View], Judgement]] = {
    "markov": _markov, "adv": _adv, "ws": _ws, "h2c": _h2c, "sse": _sse,
    "fault": _fault, "liveness": _liveness,
}


def evaluate_seed(program: Program, transcript: Any) -> SeedVerdict:
    """Judge a seed program's transcript segment by segment."""
    table = program.check.params.get("segments", {})
    views: dict[int, _View] = {}
    for index, step in enumerate(program.steps):
        parsed = parse_label(step.label)
        if parsed is None:
            continue
        segment, kind, role = parsed
        view = views.setdefault(segment, _View(kind, table.get(str(segment), {})))
        result = transcript.of_step(index)
        if result is not None:
            view.results[role] = result
    trips: list[Trip] = []
    not_judged: list[tuple[int, str, str]] = []
    judged = 0
    for segment in sorted(views):
        view = views[segment]
        judge = _JUDGES.get(view.kind.split(".", 1)[0])
        if judge is None:
            not_judged.append((segment, view.kind, "no judge for this kind of segment"))
            continue
        if not view.results:
            not_judged.append((segment, view.kind, "no step of it ran (time limit)"))
            continue
        found, reason = judge(view)
        trips += [Trip(inv, sev, segment, view.kind, detail) for inv, sev, detail in found]
        if reason and not found:
            not_judged.append((segment, view.kind, reason))
        else:
            judged += 1
    return SeedVerdict(tuple(trips), tuple(not_judged), judged)
