"""Vocabulary shared by every oracle: what the server did, what the RFC requires, how bad.

Each catalogue case names the reactions that the RFC allows; the oracle observes one
``Reaction`` and ``judge`` turns (observed, allowed, requirement) into a ``Verdict``. Only a
violated MUST becomes ``Verdict.VIOLATION`` (feeds a HIGH counter); a violated SHOULD or MAY
becomes ``Verdict.LENIENT``, reported per case as information, never as failure.
"""

from __future__ import annotations

import enum
from collections.abc import Collection


class Reaction(enum.Enum):
    """How the server reacted to one exchange, as seen from the client socket."""

    #: A 4xx response, then the server closed the connection (RFC 9112 §9.6 close after error).
    REJECTED_CLOSED = "rejected_closed"
    #: A 4xx response and the connection stayed usable for another request.
    REJECTED_KEPT_ALIVE = "rejected_kept_alive"
    #: The server closed (FIN) without sending any response bytes.
    SILENT_CLOSE = "silent_close"
    #: The connection was reset (RST) before any response.
    RESET = "reset"
    #: No response and no close by the deadline.
    HANG = "hang"
    #: A 1xx/2xx/3xx response: the server processed the message as valid.
    ACCEPTED = "accepted"
    #: A 5xx response: the server noticed a problem but blamed itself.
    SERVER_ERROR = "server_error"
    #: Bytes came back that do not parse as an HTTP/1.x response.
    GARBAGE = "garbage"


#: Reactions that mean "the server refused the message" in any acceptable way.
REFUSALS: frozenset[Reaction] = frozenset(
    {Reaction.REJECTED_CLOSED, Reaction.REJECTED_KEPT_ALIVE, Reaction.SILENT_CLOSE, Reaction.RESET}
)


class Requirement(enum.Enum):
    """RFC 2119 keyword behind a case's expected reaction."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Severity(enum.Enum):
    """How much a failed invariant matters to a release decision."""

    #: Must be zero: a correctness or safety violation; trips the incident path.
    HIGH = "HIGH"
    #: A robustness problem worth failing a run for (error rates, leaks under threshold).
    MED = "MED"
    #: Informational: reported, never fails a run.
    LOW = "LOW"


class Verdict(enum.Enum):
    """One exchange judged against its case."""

    #: The reaction is one the RFC allows.
    PASS = "pass"
    #: A MUST was violated.
    VIOLATION = "violation"
    #: A SHOULD or MAY was not followed: reported, not failed.
    LENIENT = "lenient"
    #: The exchange could not be judged (our side failed: connect error, harness timeout).
    UNJUDGED = "unjudged"


def judge(observed: Reaction, allowed: Collection[Reaction], requirement: Requirement) -> Verdict:
    if observed in allowed:
        return Verdict.PASS
    return Verdict.VIOLATION if requirement is Requirement.MUST else Verdict.LENIENT
