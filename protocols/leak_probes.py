"""Black-box leak probes: what to send, how to size it, and how to judge what came back.

How this works: two probes find leaks that need neither the target's pid nor a stats page,
by making the target run out of whatever it leaks and watching it refuse or go silent.

* *SSE slots.* Open subscribers until the server refuses (``503``, ``429``, a close, a
  reset, silence) or a cap, abandon them all (half with RST, half with FIN), wait, then
  reopen the same number. A broker that releases every departed subscriber takes them all
  again; one that leaks slots takes fewer. A server that caps subscribers legitimately
  refuses at the same count both times: a pass. A first round refused outright is "not
  judged": without a slot of our own held and released there is no leak to claim.
* *Connections / descriptors.* A plain request must be answered first (the baseline). Then
  bursts of clients that leave mid-header, mid-body and right after connecting, with FIN
  and with RST, of growing size (64, 256, 1024 by default); after each burst a fresh plain
  request must be answered within a grace period, retried with backoff. A server that leaks
  a descriptor, a worker or a connection slot per departure runs dry and stops answering
  for good: I-CONN-LEAK, naming the burst that broke it.

Why the thresholds (the false alarms they keep out):

* Every departure is a real FIN or RST, so a correct server learns of it at its next read,
  at once; nothing it holds for a departed client should outlive a header timeout it never
  needs. A slow or small server (a short listen backlog drops SYNs, retried by the kernel
  after 1 s and 3 s; a two-worker server queues the burst) recovers within seconds, so the
  default grace is 10 s, with attempts at growing intervals. A leak does not recover.
* A broker may notice a departed subscriber only when it next writes (a heartbeat), so a
  deficit in the second round is retried through the same grace before it counts, and
  longer (up to ``WITNESS_WAIT_S``) while one subscriber we kept open (the witness) has
  not yet seen the server write twice since the others left; a deficit the server had no
  chance to notice is "not judged", never a leak.
* Only refusals that mean "full" count against a broker: ``503``, a close or a reset (and
  silence, once the first round got answers). ``429`` (rate limiting), other statuses and
  refused connects leave the probe "not judged" with what was seen.
* While walkers run (periodic probes in a soak), their own subscriptions take slots: the
  caller passes their number as ``tolerance``.

Everything here is pure: bytes builders, plans and verdicts. The coordinator's
``coordinator.leak_probes`` does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols.conn_leak import FD_RESERVE
from protocols.outcome import Verdict
from protocols.response_head import HeadError, parse_response_head

#: Subscribers opened at most in one SSE round.
DEFAULT_SSE_CAP = 256
#: Server writes a kept subscriber (the witness) must see after the others left before a
#: deficit counts: a write-driven broker needs two to notice a FIN'd subscriber.
WITNESS_WRITES = 2
#: Longest a deficit is retried while the witness has not yet seen ``WITNESS_WRITES``.
WITNESS_WAIT_S = 45.0


class Open(enum.Enum):
    """What one subscription attempt got."""

    #: ``200`` with ``text/event-stream``: the server holds a slot for us.
    ACCEPTED = "accepted"
    #: ``503``: the broker (or server) is full.
    FULL = "503"
    #: ``429``: rate limited, which says nothing about slots.
    RATE_LIMITED = "429"
    #: Any other status, or a 200 that is not an event stream.
    OTHER_STATUS = "other_status"
    #: The server closed before a complete head.
    CLOSED = "closed"
    RESET = "reset"
    #: No complete head within the deadline.
    TIMEOUT = "timeout"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_FAILED = "connect_failed"
    #: Bytes that are not an HTTP/1.x response head.
    GARBAGE = "garbage"


#: Refusals that mean "no slot for you" (the broker is full).
REFUSING = frozenset({Open.FULL, Open.CLOSED, Open.RESET})
#: Refusals that count toward a deficit in the second round (after the first got answers,
#: a broker that queues instead of refusing shows as silence).
_DEFICIT = REFUSING | {Open.TIMEOUT}


def subscribe_request(host: str, path: str) -> bytes:
    """``GET`` of an event stream (WHATWG HTML §9.2.2 sends ``Accept: text/event-stream``)."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nUser-Agent: assay-leak-probe\r\n\r\n").encode()


def classify_open(data: bytes, ending: str) -> Open:
    """Judge what a subscription attempt received; ``ending`` is how the read stopped
    (``done``, ``eof``, ``reset``, ``timeout``, ``cap``). Never raises on server bytes."""
    head = parse_response_head(data)
    if isinstance(head, HeadError):
        return Open.GARBAGE
    if head is None:
        return {"eof": Open.CLOSED, "reset": Open.RESET}.get(
            ending, Open.GARBAGE if ending == "cap" else Open.TIMEOUT)
    if head.status == 503:
        return Open.FULL
    if head.status == 429:
        return Open.RATE_LIMITED
    content_type = (head.get(b"content-type") or b"").split(b";")[0].strip().lower()
    if head.status == 200 and content_type == b"text/event-stream":
        return Open.ACCEPTED
    return Open.OTHER_STATUS


@dataclass(frozen=True)
class SseRound:
    """One round of opening subscribers."""

    accepted: int
    #: Open.value -> count, for every attempt that was not accepted.
    refusals: Mapping[str, int] = field(default_factory=dict)
    #: The first refusal seen (what stopped the round), or None when the cap stopped it.
    first_refusal: Open | None = None

    @property
    def capped(self) -> bool:
        return self.first_refusal is None


def abandon_plan(count: int) -> tuple[bool, ...]:
    """For each subscriber in order, whether it leaves with RST (True) or FIN (False):
    alternating, so that half leave each way whatever the count."""
    return tuple(index % 2 == 0 for index in range(count))


def sse_verdict(first: SseRound, second: SseRound | None, *, tolerance: int = 0,
                cap: int = DEFAULT_SSE_CAP, kept: int = 0,
                writes_since_left: int | None = None,
                responsive: bool | None = None) -> tuple[Verdict, str]:
    """Judge the SSE slot probe.

    Args:
        first: the first round, after any retries (the caller retries a round that got no
            subscriber at all through the grace period before it judges).
        second: the reopening round, after its retries; None when it could not run.
        tolerance: subscriptions others may hold or take meanwhile (running walkers).
        cap: our cap, for the message.
        kept: first-round subscribers we did not abandon (the witness), still holding slots.
        writes_since_left: server writes the witness saw after the others left, or None
            without a witness. A broker that notices departed subscribers only when it
            writes to them needs ``WITNESS_WRITES`` writes (the first one to a FIN'd peer
            succeeds and draws the RST that fails the next), so a deficit before that is
            not judged.
        responsive: whether a plain request was answered while the reopening round was
            refused by silence: silence from a server that answers nothing else is
            overload, not a full broker.
    """
    if first.accepted == 0:
        # Never a leak without a slot of our own held and released: a broker may be full
        # of other clients (a soak's walkers, other users), or may not yet have noticed the
        # walkers that just left (a write-driven broker notices only at its next
        # heartbeat, which can be longer than the grace the first round was retried for).
        seen = first.first_refusal
        if seen in REFUSING and tolerance > 0:
            return Verdict.UNJUDGED, (
                f"not judged: every subscription was refused ({_describe(seen)}) while up to "
                f"{tolerance} of the run's own subscribers may still hold slots")
        if seen in REFUSING:
            return Verdict.UNJUDGED, (
                f"not judged: every subscription was refused ({_describe(seen)}), so no slot "
                "of ours was held and released: the broker may be full of other clients, or "
                "not yet have noticed the walkers that left (a heartbeat longer than "
                "--leak-probe-grace)")
        what = _describe(seen) if seen is not None else "nothing"
        return Verdict.UNJUDGED, f"not judged: no subscription accepted ({what})"
    if second is None:
        return Verdict.UNJUDGED, "not judged: the reopening round did not run"
    if second.accepted + kept + tolerance >= first.accepted:
        limit = (f"no refusal up to our cap of {cap}" if first.capped else
                 f"the server's own limit ({_describe(first.first_refusal)}) is the same "
                 "both times")
        return Verdict.PASS, (f"reopened {second.accepted} of {first.accepted - kept} "
                              f"subscribers after abandoning them ({limit})")
    refusal = second.first_refusal
    if refusal in _DEFICIT and writes_since_left is not None and \
            writes_since_left < WITNESS_WRITES:
        return Verdict.UNJUDGED, (
            f"not judged: reopened only {second.accepted} of {first.accepted - kept}, but "
            f"the server wrote to its subscribers {writes_since_left} time(s) since the others "
            "left: a broker that notices departures only when it writes (a heartbeat) cannot "
            "have noticed yet; raise --leak-probe-grace above its heartbeat interval")
    if refusal is Open.TIMEOUT and responsive is False:
        return Verdict.UNJUDGED, (
            f"not judged: reopened only {second.accepted} of {first.accepted - kept}, but the "
            "server answered no plain request either (overloaded or stuck, not a full broker)")
    if refusal in _DEFICIT:
        return Verdict.VIOLATION, (
            f"{first.accepted} subscribers were accepted, {first.accepted - kept} of them "
            f"abandoned (half RST, half FIN); only {second.accepted} could be reopened "
            f"({_describe(refusal)}): {first.accepted - kept - second.accepted} fewer than "
            "before: slots of departed subscribers were not released")
    what = _describe(refusal) if refusal is not None else "stopped early"
    return Verdict.UNJUDGED, (f"not judged: reopened only {second.accepted} of "
                              f"{first.accepted}, but the refusal was {what}")


def _describe(seen: Open | None) -> str:
    return {Open.FULL: "503", Open.RATE_LIMITED: "429", Open.CLOSED: "closed before a head",
            Open.RESET: "reset", Open.TIMEOUT: "no head in time",
            Open.CONNECT_REFUSED: "connect refused", Open.CONNECT_FAILED: "connect failed",
            Open.OTHER_STATUS: "another status", Open.GARBAGE: "not HTTP",
            None: "none"}.get(seen, str(seen))


def sse_cap(configured: int, fd_limit: int, fds_open: int) -> int:
    """Subscribers we may hold at once: the configured cap, bounded by our descriptors."""
    return max(0, min(configured, fd_limit - fds_open - FD_RESERVE))
