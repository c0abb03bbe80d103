"""What an allowed status can still hide: checks of the adversarial oracle beyond the status.

How this works: ``protocols.adversarial_oracle.judge_case`` first judges the reaction (a
status, a close, a hang) against the case's ``allowed`` set; when that passes,
``wire_problem`` looks at what the same bytes show besides: an interim 1xx sent to an
HTTP/1.0 client (RFC 9110 §15.2), a 101 where the upgrade must be ignored (RFC 9110 §7.8,
RFC 6455 §4.2.1), a request served after ``Connection: close`` or a connection kept open
that the RFC says to close (RFC 9112 §9.6, §6.1), pipelined requests left unanswered (RFC
9112 §9.3.2), a prohibited trailer field that a body route echoes among the header fields
the application saw (RFC 9112 §7.1.2, ``protocols.trailer_merge``: judged only where the
route reflects the header section). It returns the reason and the counter; the judge turns
it into a violation (MUST) or leniency. Sans-IO, pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocols.outcome import Reaction
from protocols.trailer_merge import Merge, judge_merge

if TYPE_CHECKING:
    from protocols.adversarial_oracle import Observation
    from protocols.case_model import AdversarialCase

#: Statuses a parser sends when it refuses bytes: a surplus one answers leftover junk, and a
#: baseline with one of them makes an equal case status ambiguous.
PARSER_REJECTIONS = frozenset({400, 408, 411, 413, 414, 417, 431, 501, 505})
#: Problems that are leniency whatever the case's requirement: a server may close any
#: connection (the client retries), and a body after HEAD is the response rules' to judge.
SOFT = frozenset({"adv.pipeline_closed_early", "adv.pipeline_garbage"})
#: Counted beside a passing ``forbid_merge`` case whose route does not echo header fields.
UNOBSERVABLE_MERGE = "adv.trailer_unobservable"


def merge_seen(case: AdversarialCase, observation: Observation, reaction: Reaction) -> Merge | None:
    """What the echo shows of the case's trailer field; None for a case without one, or a
    reaction other than acceptance (a refusal's body reflects no processed request)."""
    if case.forbid_merge is None or reaction is not Reaction.ACCEPTED:
        return None
    return judge_merge(observation.body, *case.forbid_merge)


def wire_problem(
    case: AdversarialCase, observation: Observation, reaction: Reaction
) -> tuple[str, str] | None:
    """(reason, counter) for what an allowed status can still hide, or None.

    Judged only when the reaction itself passed: a 1xx to HTTP/1.0, a protocol switch the
    RFC says to ignore or refuse, a request served after ``Connection: close``, a connection
    kept open that the RFC says to close, pipelined requests left unanswered, a trailer
    field echoed as a header field.
    """
    statuses = observation.statuses
    if case.forbid_interim and observation.interim:
        return "sent a 1xx interim response to an HTTP/1.0 request", "adv.interim_to_http10"
    if case.forbid_switch and observation.switched:
        return ("switched protocols (101) where the RFC says to ignore or refuse the upgrade",
                "adv.bad_upgrade")
    if merge_seen(case, observation, reaction) is Merge.MERGED:
        assert case.forbid_merge is not None
        name = case.forbid_merge[1][0].decode("latin-1")
        return (f"merged the trailer field {name} into the header section the route echoed",
                "adv.trailer_merged")
    if case.must_close and len(statuses) > case.responses:
        return ("answered a request that followed a close: it MUST NOT be processed",
                "adv.served_after_close")
    if case.must_close and reaction is Reaction.ACCEPTED and not observation.closed:
        return ("processed a message the RFC says to close after, and kept the connection",
                "adv.not_closed")
    if case.responses > 1 and reaction is Reaction.ACCEPTED:
        got = len(statuses)
        if case.valid and any(s in PARSER_REJECTIONS for s in statuses[1:case.responses]):
            return (f"refused a valid pipelined request: statuses {list(statuses)}",
                    "adv.pipeline_refused")
        if got < case.responses:
            if observation.garbage:  # e.g. a body after HEAD: judged by the response rules
                return (f"answered {got} of {case.responses} pipelined requests, then bytes "
                        "that are not a response (a body after HEAD?)", "adv.pipeline_garbage")
            if not observation.last_keep_alive:
                return None  # announced close: the client retries the rest (RFC 9112 §9.3.2)
            if observation.closed:
                return (f"answered {got} of {case.responses} pipelined requests, then closed "
                        "without announcing it", "adv.pipeline_closed_early")
            return (f"answered {got} of {case.responses} pipelined requests and kept the "
                    "connection open: the rest were dropped", "adv.pipeline_dropped")
    return None
