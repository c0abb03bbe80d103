"""Confirmation: whether a violation seen once under load reproduces when the case runs alone.

How this works: a walker that judges a case a violation does not count it yet. It re-sends
the case alone on a fresh connection (its other traffic waits, the walker being sequential)
up to ``tries`` times, and describes the first verdict and each re-send as an ``Attempt``.
``decide`` turns those into ``Confirmed`` or ``Unconfirmed(why)``; it returns ``None`` while
another re-send is still needed, so the I/O loop stops as early as the evidence allows.

Why re-send at all: under load a server with few workers queues new connections behind the
load, and a case that would get ``400`` and a close at once looks like a hang (the real
report: a sync WSGI server with 2 workers, Content-Length cases graded as MUST violations
with reaction "hang"). A verdict about the server's parser must not rest on how busy it was.

The rules, strictest reading of "only a violation that reproduces counts":

* every re-send that could be judged must reproduce the first verdict's class (``key``:
  the same invariant counters, e.g. ``adv.desync`` or ``ws.hang_no_close``); the first one
  that does not ends confirmation as ``NOT_REPRODUCED``;
* a re-send whose violation is a hang (no answer by the deadline) reproduces only if the
  baseline, a valid request to the same route sent in the same round, was answered within
  its deadline; otherwise the server is merely saturated (``BASELINE_SLOW``);
* re-sends that failed on our side (connect refused, our send timed out) say nothing either
  way; if none could be judged the verdict stays ``UNJUDGED``; if at least one reproduced and
  the rest could not be judged (a target that died of the case), it is confirmed;
* with no time left for a single re-send the verdict is ``DEADLINE``: never counted against
  the server, but shown.

Rejected alternative: confirming on the first reproduction out of several tries. A saturated
server can, by chance, answer the baseline of one round in time and still queue the case:
demanding that every judged re-send reproduce costs one more exchange per real defect and
removes that chance.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

#: Re-sends per violation when a setting does not say otherwise.
DEFAULT_TRIES = 2
#: Longest one confirmation may take (all rounds), seconds.
DEFAULT_DEADLINE_S = 20.0


class Why(enum.Enum):
    """Why a violation was not confirmed (the ``<slice>.unconfirmed.<why>`` counters)."""

    #: A re-send got a passing verdict or a different violation.
    NOT_REPRODUCED = "not_reproduced"
    #: The re-send hung again, and so did the valid baseline of the same round: saturation.
    BASELINE_SLOW = "baseline_slow"
    #: No re-send could be judged (our side failed: connect refused, send timed out).
    UNJUDGED = "unjudged"
    #: No time was left (confirmation deadline or the walker's end) for a single re-send.
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One judged sending of a case, reduced to what confirmation compares.

    Attributes:
        violation: the verdict was a violation (a MUST broken, or a HIGH slice counter).
        key: the verdict class; two attempts reproduce each other when their keys match.
        hang: the violation rests on "no answer by the deadline".
        judged: False when our side failed and the attempt says nothing about the server.
        baseline_answered: for a re-send, whether a valid request to the same route sent in
            the same round was answered within its deadline (None: not asked).
        detail: a short human description kept in the evidence ("hang", "400 then close").
    """

    violation: bool
    key: str = ""
    hang: bool = False
    judged: bool = True
    baseline_answered: bool | None = None
    detail: str = ""

    @classmethod
    def unjudged(cls, detail: str) -> Attempt:
        return cls(violation=False, judged=False, detail=detail)


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The violation reproduced on every judged re-send: it counts."""

    reproduced: int


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    """The violation did not reproduce: shown per case, never failing the run."""

    why: Why
    detail: str = ""


Decision = Confirmed | Unconfirmed


def reproduces(first: Attempt, retry: Attempt) -> Unconfirmed | None:
    """None when ``retry`` reproduces ``first``; otherwise why it does not."""
    if not retry.violation or retry.key != first.key:
        shown = retry.detail or ("a pass" if not retry.violation else retry.key)
        return Unconfirmed(Why.NOT_REPRODUCED, f"re-sent alone: {shown}")
    if retry.hang and retry.baseline_answered is not True:
        return Unconfirmed(Why.BASELINE_SLOW,
                           "re-sent alone it hung again, and the valid baseline to the same "
                           "route was not answered in time either: the server is saturated")
    return None


def decide(
    first: Attempt, retries: Sequence[Attempt], tries: int, out_of_time: bool = False
) -> Decision | None:
    """Judge a violation from its re-sends; None while another re-send is needed.

    Args:
        first: the attempt that produced the violation (under load).
        retries: the re-sends so far, in order.
        tries: how many re-sends confirmation may use (>= 1).
        out_of_time: no further re-send will be made (deadline or the walker's end).
    """
    if not first.violation:
        raise ValueError("only a violation needs confirmation")
    reproduced = 0
    for retry in retries:
        if not retry.judged:
            continue
        refused = reproduces(first, retry)
        if refused is not None:
            return refused
        reproduced += 1
    done = len(retries) >= tries or out_of_time
    if reproduced and done:
        return Confirmed(reproduced)
    if done:
        if not retries:
            return Unconfirmed(Why.DEADLINE, "no time left to re-send the case alone")
        detail = "; ".join(r.detail for r in retries if r.detail)
        return Unconfirmed(Why.UNJUDGED, f"no re-send could be judged: {detail}".rstrip(": "))
    return None


def tries_from(settings: object, default: int = DEFAULT_TRIES) -> int:
    """``adv_confirm_tries`` from a settings mapping (0 turns confirmation off)."""
    get = getattr(settings, "get", None)
    raw = get("adv_confirm_tries", default) if get is not None else default
    try:
        return max(0, int(raw if raw is not None else default))
    except (TypeError, ValueError):
        return default


__all__ = [
    "DEFAULT_DEADLINE_S",
    "DEFAULT_TRIES",
    "Attempt",
    "Confirmed",
    "Decision",
    "Unconfirmed",
    "Why",
    "decide",
    "reproduces",
    "tries_from",
]
