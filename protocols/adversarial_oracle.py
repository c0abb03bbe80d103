"""The adversarial oracle: what did the server do with a malformed request, and was it allowed?

How this works, in three steps that never raise on server bytes:

1. ``observe(received, ending)`` parses whatever came back on one connection (any number of
   pipelined responses, a partial one, garbage) with ``protocols.http1.ResponseParser`` and
   classifies it into a context-free ``Reaction``: a 4xx then close, a 4xx and the socket
   still open, a silent close, a reset, a hang, a 1xx-3xx, a 5xx, or garbage. ``ending`` is how
   the walker's read stopped (``eof``, ``reset``, ``timeout``, ``cap``, ``done``); the walker
   reads a short grace period after the first response, so ``timeout`` after a response means
   the server kept the connection open.
2. ``judge_case(case, observation, baseline)`` puts the reaction in context. A status equal to
   the one a *valid* request to the same route got (the baseline) is not a rejection: if the
   route answers 404 and the malformed request also gets 404, the parser accepted it and the
   router did the rest. A status the case lists as a refusal (501, 505, 301) is a refusal. The
   reaction is then judged with ``protocols.outcome.judge`` and mapped to counters.
3. ``detect_desync(case, case_statuses, canary_statuses)`` looks for answers to requests we
   never sent as such: more final responses than the requests an RFC-conforming parser saw,
   where a surplus response is not a parser rejection of leftover bytes (a 400 for junk is
   not a smuggled request being served).

``assess`` composes the three for the walker and returns every counter to bump and which
HIGH counters to report through the incident path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.adversarial_cases import AdversarialCase
from protocols.http1 import ResponseError, ResponseParser
from protocols.outcome import Reaction, Requirement, Severity, Verdict, judge
from protocols.response_head import HeadError, ResponseHead, parse_response_head
from protocols.trailer_merge import Merge
from protocols.wire_problems import (
    PARSER_REJECTIONS,
    SOFT,
    UNOBSERVABLE_MERGE,
    merge_seen,
    wire_problem,
)

SLICE = "adv"
#: Statuses that say nothing about parsing (load shedding): the exchange is not judged.
UNJUDGEABLE = {429: "rate_limited", 503: "unavailable"}
#: Route-level answers that, without a baseline to compare, could be the router's verdict on
#: an accepted request as much as a rejection.
ROUTE_STATUSES = frozenset({401, 403, 404, 405, 406, 409, 410, 412, 415, 421, 422})
_CLOSED_ENDINGS = frozenset({"eof", "reset"})
#: A 1xx status line other than 101 at the start of the bytes (RFC 9112 §4 status-line).
_INTERIM = re.compile(rb"(?:\r?\n)*HTTP/\d\.\d 1(?!01)\d\d ")
_MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Observation:
    """What one connection showed, independent of what was sent."""

    reaction: Reaction
    #: Final responses completely received, in order.
    statuses: tuple[int, ...] = ()
    #: Status of a response whose head arrived but not its end (only when none completed).
    partial_status: int | None = None
    #: The server closed (FIN or RST) by the end of the read, or announced ``close``.
    closed: bool = False
    reset: bool = False
    #: Bytes that are not an HTTP/1.x response (before or after complete responses).
    garbage: bool = False
    received: int = 0
    #: An interim (1xx other than 101) response came first: the parser skips those, so the
    #: raw bytes are looked at (RFC 9110 §15.2 forbids any to an HTTP/1.0 client).
    interim: bool = False
    #: A 101 (Switching Protocols) was among the responses.
    switched: bool = False
    #: Whether the last complete response left the connection open (no ``close``).
    last_keep_alive: bool = True
    #: Body of the first complete response (a body route's echo: ``forbid_merge``).
    body: bytes = b""
    #: (Baselines only.) The route answered the valid request before its body was sent: a
    #: static handler that never reads bodies. If it also closes, a malformed body sent
    #: there is never read either.
    answered_unread: bool = False

    @property
    def status(self) -> int | None:
        """The status of the first response, complete or not."""
        return self.statuses[0] if self.statuses else self.partial_status


@dataclass(frozen=True, slots=True)
class CaseVerdict:
    """A case judged: the verdict, the reaction it rests on, and the counters to bump."""

    verdict: Verdict
    #: The reaction after the baseline and the case's refusal statuses were applied.
    reaction: Reaction | None
    counters: tuple[str, ...]
    #: HIGH counters among ``counters``: each goes to ``report_violation``.
    high: tuple[str, ...] = ()
    reason: str = ""


def _parse(
    received: bytes, closed: bool, methods: Sequence[str] = ()
) -> tuple[list[int], list[bool], bool, bytes]:
    """(final statuses, their keep-alive flags, whether unparseable bytes were met, the
    first response's body).

    ``methods`` are those of the requests sent, in order, where one changes how its response
    is framed (a response to HEAD has no body); the rest are parsed as answers to GET.
    """
    parser = ResponseParser(max_body_bytes=_MAX_BODY)
    for method in methods:
        parser.expect(method)
    parser.feed(received)
    if closed:
        parser.feed_eof()
    statuses: list[int] = []
    keep_alive: list[bool] = []
    first_body = b""
    try:
        while (response := parser.next_response()) is not None:
            if not statuses:
                first_body = response.body
            statuses.append(response.status)
            keep_alive.append(response.keep_alive)
            if parser.switched:
                break
    except ResponseError:
        return statuses, keep_alive, True, first_body
    return statuses, keep_alive, False, first_body


def observe(received: bytes, ending: str, methods: Sequence[str] = ()) -> Observation:
    """Classify the bytes one connection returned and how the read ended.

    Args:
        received: everything the server sent on the connection (capped by the caller).
        ending: ``eof``, ``reset``, ``timeout``, ``cap`` or ``done`` (``actors.net.Ending``).
        methods: the case's ``methods`` (HEAD changes framing), empty for plain GET/POST.

    Returns:
        An ``Observation``; any input is classified, nothing raises.
    """
    closed = ending in _CLOSED_ENDINGS
    reset = ending == "reset"
    statuses, keep_alive, broken, body = _parse(received, closed, methods)
    interim = _INTERIM.match(received) is not None
    if statuses:
        announced_close = len(statuses) == 1 and not keep_alive[0]
        closed_after_first = len(statuses) == 1 and (closed or announced_close)
        return Observation(
            reaction=_by_status(statuses[0], closed_after_first),
            statuses=tuple(statuses),
            closed=closed or announced_close,
            reset=reset,
            garbage=broken,
            received=len(received),
            interim=interim,
            switched=101 in statuses,
            last_keep_alive=keep_alive[-1],
            body=body,
        )
    if not received:
        reaction = Reaction.RESET if reset else Reaction.SILENT_CLOSE if closed else Reaction.HANG
        return Observation(reaction=reaction, closed=closed, reset=reset)
    head = parse_response_head(received.lstrip(b"\r\n"))
    if isinstance(head, ResponseHead):  # head arrived, body did not (or was oversized)
        return Observation(
            reaction=_by_status(head.status, closed),
            partial_status=head.status,
            closed=closed,
            reset=reset,
            garbage=broken,
            received=len(received),
            interim=interim,
        )
    if head is None and not closed and not broken:  # a plausible start, then silence
        return Observation(reaction=Reaction.HANG, received=len(received))
    return Observation(
        reaction=Reaction.GARBAGE, closed=closed, reset=reset, garbage=True,
        received=len(received),
    )


def _by_status(status: int, closed: bool) -> Reaction:
    if 400 <= status < 500:
        return Reaction.REJECTED_CLOSED if closed else Reaction.REJECTED_KEPT_ALIVE
    if status >= 500:
        return Reaction.SERVER_ERROR
    return Reaction.ACCEPTED


def read_enough(received: bytes, responses: int = 1, methods: Sequence[str] = ()) -> bool:
    """Whether a read can stop: ``responses`` complete responses, or bytes that never will be.

    The walker passes this to ``actors.net.read_until`` so a read ends as soon as the answer
    is in, instead of at the deadline (pipelined cases wait for all of theirs). A response
    that announced ``close`` ends the wait too: nothing more will come.
    """
    statuses, keep_alive, broken, _ = _parse(received, False, methods)
    if len(statuses) >= responses or broken or (statuses and not keep_alive[-1]):
        return True
    if 101 in statuses:
        return True
    return not statuses and isinstance(parse_response_head(received.lstrip(b"\r\n")), HeadError)


def effective_reaction(
    case: AdversarialCase, observation: Observation, baseline: Observation | None
) -> tuple[Reaction | None, str]:
    """The reaction in context, or (None, why) when the exchange cannot be judged."""
    status = observation.status
    if status is None:
        return observation.reaction, ""
    if status in UNJUDGEABLE:
        return None, UNJUDGEABLE[status]
    if status in case.tolerated_statuses:
        return Reaction.ACCEPTED, f"{status} is a refusal the RFC allows for this message"
    closed_after_first = observation.closed and len(observation.statuses) <= 1
    refused = Reaction.REJECTED_CLOSED if closed_after_first else Reaction.REJECTED_KEPT_ALIVE
    if status in case.rejection_statuses:
        return refused, ""
    base = baseline.status if baseline is not None else None
    if 400 <= status < 500 and base != status:
        if base is None and status in ROUTE_STATUSES:
            return None, "no_baseline"
        return refused, ""
    if status >= 500 and base != status:
        return observation.reaction, ""
    # A 5xx equal to the valid baseline's is the route's answer (it fails every body, say),
    # not the parser's: judged below like an equal 4xx, so it is no false "server error".
    if base == status and status in PARSER_REJECTIONS:
        return None, "baseline_same_rejection"
    # Accepted: a 1xx-3xx, or the same 4xx the valid baseline got (the route answered).
    # One benefit of the doubt: the route may answer before the framing is looked at (a 405
    # for POST needs no body). If the server then closed where it kept the baseline's
    # connection, it refused the framing. This holds for any status when only the body is
    # malformed, and for a route's 4xx when the framing headers are.
    # Not for valid traffic: a server may close any connection, so closing after a route's
    # answer to a valid message says nothing against it.
    early = not case.valid and (
        case.body_defect or (case.framing and base == status and status >= 400))
    if early and baseline is not None and observation.closed and not baseline.closed:
        return Reaction.REJECTED_CLOSED, "answered like the baseline, then closed on the framing"
    # A route that answers and closes, as it did for the valid request, never read the
    # malformed body: a 405/404 refusing the method, or a static handler seen answering the
    # valid POST before its body was sent and closing (lighttpd). Nothing was accepted,
    # nothing can be judged. (A route that read the body and closes stays judged.)
    if (case.body_defect and early and baseline is not None
            and (status >= 400 or baseline.answered_unread)
            and observation.closed and baseline.closed):
        return None, "answered_before_body"
    return Reaction.ACCEPTED, f"same {status} as the valid baseline" if base == status else ""


def judge_case(
    case: AdversarialCase, observation: Observation, baseline: Observation | None
) -> CaseVerdict:
    """Judge one case's observation against its RFC expectation (desync aside).

    Returns:
        The verdict and the counters: ``adv.case.<name>.<verdict>`` always; for a violation
        ``adv.wrong_accepted`` (HIGH, a HIGH-severity case accepted against a MUST) or
        ``adv.must_violation`` (any other MUST breach) with its cause; ``adv.lenient`` for a
        SHOULD/MAY deviation; ``adv.unjudged`` when the exchange says nothing;
        ``adv.trailer_unobservable`` beside a pass whose trailer merge could not be seen.
    """
    reaction, why = effective_reaction(case, observation, baseline)
    prefix = f"{SLICE}.case.{case.name}."
    if reaction is None:
        return CaseVerdict(Verdict.UNJUDGED, None,
                           (prefix + "unjudged", "adv.unjudged", f"adv.unjudged.{why}"), (), why)
    verdict = judge(reaction, case.allowed, case.requirement)
    counters: list[str] = []
    high: list[str] = []
    allowed = ", ".join(sorted(r.value for r in case.allowed))
    reason = why or f"{reaction.value} (allowed: {allowed})"
    problem = wire_problem(case, observation, reaction) if verdict is Verdict.PASS else None
    stayed_open = problem is not None and problem[1] == "adv.not_closed"
    if problem is not None:
        soft = problem[1] in SOFT
        must = case.requirement is Requirement.MUST and not soft
        verdict = Verdict.VIOLATION if must else Verdict.LENIENT
        reason = problem[0]
        if not stayed_open:
            counters.append(problem[1])
    if verdict is Verdict.VIOLATION:
        if (reaction is Reaction.ACCEPTED and problem is None
                and case.severity is Severity.HIGH):
            high.append("adv.wrong_accepted")
        elif case.severity is Severity.LOW:
            # A MUST missed without weight (a safe 400 to valid whitespace): reported per
            # case with its example, never failing a run (Severity.LOW).
            counters.append("adv.must_violation_low")
        else:
            counters.append("adv.must_violation")
        kept_after_refusal = (reaction is Reaction.REJECTED_KEPT_ALIVE
                              and Reaction.REJECTED_CLOSED in case.allowed)
        if stayed_open or kept_after_refusal:
            counters.append("adv.not_closed")
    elif verdict is Verdict.LENIENT:
        counters.append("adv.lenient")
    if verdict is not Verdict.PASS:
        if reaction is Reaction.HANG and case.drip is None:
            counters.append("adv.hang_until_timeout")
        elif reaction is Reaction.SERVER_ERROR:
            counters.append("adv.server_error")
        elif reaction is Reaction.GARBAGE:
            counters.append("adv.garbage")
    if (verdict is Verdict.PASS
            and merge_seen(case, observation, reaction) is Merge.UNOBSERVABLE):
        counters.append(UNOBSERVABLE_MERGE)  # passed, but the merge itself was not seen
    rejected = reaction in (Reaction.REJECTED_CLOSED, Reaction.REJECTED_KEPT_ALIVE)
    if rejected and case.preferred_status and observation.status not in case.preferred_status:
        counters.append("adv.status_mismatch")
    return CaseVerdict(verdict, reaction, (prefix + verdict.value, *counters, *high),
                       tuple(high), reason)


def detect_desync(
    case: AdversarialCase,
    case_statuses: Sequence[int],
    canary_statuses: Sequence[int] | None = None,
) -> bool:
    """Whether the server answered a request that an RFC-conforming parser never saw.

    Args:
        case_statuses: final responses read after the case bytes, before the canary was sent.
        canary_statuses: final responses read after the canary (None when it was not sent).

    A conforming server answers the case at most once and the canary exactly once. A surplus
    response is a desync unless it is a parser rejection (the server turned leftover bytes into
    a 400: wrong framing bookkeeping perhaps, but nothing was served).
    """
    if not case.framing:
        return False
    surplus = list(case_statuses[case.responses:])
    if canary_statuses:
        surplus += canary_statuses[1:]
    return any(status not in PARSER_REJECTIONS for status in surplus)


def assess(
    case: AdversarialCase,
    observation: Observation,
    baseline: Observation | None,
    canary: Observation | None = None,
) -> CaseVerdict:
    """``judge_case`` plus desync: the verdict the walker records and the counters it bumps."""
    verdict = judge_case(case, observation, baseline)
    canary_statuses = canary.statuses if canary is not None else None
    if not detect_desync(case, observation.statuses, canary_statuses):
        if canary is not None and not canary.statuses and observation.statuses:
            return _with(verdict, extra=("adv.canary_lost",))
        return verdict
    counters = [c for c in verdict.counters if not c.startswith(f"{SLICE}.case.")]
    return CaseVerdict(
        Verdict.VIOLATION,
        verdict.reaction,
        (f"{SLICE}.case.{case.name}.violation", *counters, "adv.desync"),
        (*verdict.high, "adv.desync"),
        "a request hidden in the case was answered: the server framed it differently"
        + (f"; {verdict.reason}" if verdict.verdict is not Verdict.PASS else ""),
    )


def _with(verdict: CaseVerdict, extra: tuple[str, ...]) -> CaseVerdict:
    return CaseVerdict(verdict.verdict, verdict.reaction, (*verdict.counters, *extra),
                       verdict.high, verdict.reason)


__all__ = [
    "PARSER_REJECTIONS",
    "CaseVerdict",
    "Observation",
    "assess",
    "detect_desync",
    "effective_reaction",
    "judge_case",
    "observe",
    "read_enough",
]
