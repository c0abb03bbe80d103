"""The black-box connection / descriptor leak probe: what a burst sends, how it grows, and
how to judge whether the target recovered.

Bursts of clients that leave mid-header, mid-body and right after connecting, with FIN and
with RST, of growing size; after each burst a fresh plain request must be answered within
a grace period, retried with backoff (``recovery_schedule``). A server that leaks a
descriptor, a worker or a connection slot per departure runs dry and never answers again.

Why a silent grace period is not yet a verdict: a client that left mid-body sent a complete
head, so a server runs its handler for it (it learns of the departure only when it reads
the rest or writes the answer). A two-worker server with a slow handler may thus have
minutes of abandoned work queued after a burst: slow, not leaking. Before a silence counts
the probe keeps asking through a confirmation window sized by ``drain_estimate_s`` (every
such request at the baseline request's latency, one at a time), up to ``CONFIRM_MAX_S``; a
target that answers in it recovered, and one whose possible drain is longer than that cap
is not judged. Everything here is pure; ``coordinator.leak_probes`` does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.outcome import Verdict
from protocols.response_head import HeadError, parse_response_head

#: Burst sizes, grown until the largest that fits the budget and ``max_burst``.
DEFAULT_BURSTS = (64, 256, 1024)
DEFAULT_MAX_BURST = 1024
#: How long a probe waits for the target to recover before it confirms a silence.
DEFAULT_GRACE_S = 10.0
#: Longest the confirmation keeps asking a target silent through the grace period.
CONFIRM_MAX_S = 60.0
#: Sockets our own process keeps free for everything else (actors, logs, results).
FD_RESERVE = 128
#: Bytes of a body the mid-body departures announce but never finish.
BODY_ANNOUNCED = 4096
BODY_SENT = 512


class Departure(enum.Enum):
    """How one burst client leaves: at which stage of its request, and with FIN or RST."""

    CONNECT_FIN = "connect-fin"
    CONNECT_RST = "connect-rst"
    MID_HEADER_FIN = "mid-header-fin"
    MID_HEADER_RST = "mid-header-rst"
    MID_BODY_FIN = "mid-body-fin"
    MID_BODY_RST = "mid-body-rst"

    @property
    def reset(self) -> bool:
        return self.value.endswith("-rst")

    @property
    def stage(self) -> str:
        return self.value.rsplit("-", 1)[0]


DEPARTURES = tuple(Departure)


def burst_plan(size: int) -> tuple[Departure, ...]:
    """``size`` departures, every kind in turn (so each burst has them all in equal share)."""
    return tuple(DEPARTURES[index % len(DEPARTURES)] for index in range(max(0, size)))


def departure_bytes(departure: Departure, host: str, path: str) -> bytes:
    """What a burst client sends before it leaves: nothing, an unfinished head (no blank
    line), or a complete head announcing ``BODY_ANNOUNCED`` bytes followed by fewer."""
    if departure.stage == "connect":
        return b""
    if departure.stage == "mid-header":
        return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: assay-leak-probe\r\n"
                "X-Assay-Probe: mid-hea").encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: assay-leak-probe\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {BODY_ANNOUNCED}"
            "\r\n\r\n").encode() + b"x" * BODY_SENT


def plain_request(host: str, path: str) -> bytes:
    """The valid request that must be answered before and after every burst."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: assay-leak-probe\r\n"
            "Connection: close\r\n\r\n").encode()


def answered(data: bytes) -> int | None:
    """The status of a complete response head in ``data``, else None (no answer yet, or
    garbage: a server that answers garbage is not answering)."""
    head = parse_response_head(data)
    if head is None or isinstance(head, HeadError):
        return None
    return head.status


def burst_sizes(max_burst: int = DEFAULT_MAX_BURST,
                steps: Sequence[int] = DEFAULT_BURSTS) -> tuple[int, ...]:
    """The growing bursts up to ``max_burst``; a ``max_burst`` between steps ends with
    itself, so the largest burst asked for is always sent (budget permitting)."""
    if max_burst <= 0:
        return ()
    sizes = [size for size in steps if size <= max_burst]
    if not sizes or sizes[-1] < max_burst:
        sizes.append(max_burst)
    return tuple(sizes)


def in_flight(fd_limit: int, fds_open: int, wanted: int = 64) -> int:
    """How many burst clients may be connected at once without starving our own process
    of descriptors (each client holds one socket until it leaves)."""
    headroom = fd_limit - fds_open - FD_RESERVE
    return max(0, min(wanted, headroom))


def burst_fits(size: int, seconds_per_client: float, remaining_s: float,
               grace_s: float) -> bool:
    """Whether a burst of ``size`` (at the rate measured so far) and a full grace period
    for the recovery check still fit in what is left of the budget."""
    return size * seconds_per_client + grace_s <= remaining_s


def recovery_schedule(grace_s: float) -> tuple[tuple[float, float], ...]:
    """(attempt timeout, pause after it) pairs whose total covers ``grace_s``.

    The first attempts are quick (most servers answer at once); later ones wait longer, so
    a server that drains a backlog or retries a dropped SYN (1 s, 3 s) is given time.
    """
    plan: list[tuple[float, float]] = []
    spent = 0.0
    timeout, pause = 1.0, 0.25
    while spent < grace_s:
        left = grace_s - spent
        step_timeout = min(timeout, left)
        step_pause = min(pause, max(0.0, left - step_timeout))
        plan.append((step_timeout, step_pause))
        spent += step_timeout + step_pause
        timeout, pause = min(timeout * 1.5, 3.0), min(pause * 2, 2.0)
    return tuple(plan)


def drain_estimate_s(size: int, baseline_s: float) -> float:
    """An upper bound on the work a burst of ``size`` can leave queued: each departure that
    sent a complete head (mid-body) makes the server run its handler, at the baseline
    request's latency, one at a time (the worst case, a single worker)."""
    handled = sum(1 for departure in burst_plan(size) if departure.stage == "mid-body")
    return handled * max(0.0, baseline_s)


def confirm_window(grace_s: float, drain_s: float) -> float:
    """How long to keep asking a target that stayed silent through the grace period: at
    least one more grace, longer when the burst may have queued more work, capped."""
    return min(CONFIRM_MAX_S, max(grace_s, drain_s))


@dataclass(frozen=True)
class BurstOutcome:
    """One burst and the recovery check after it."""

    size: int
    connected: int
    connect_failed: int
    #: Status of the first answer after the burst (grace or confirmation), else None.
    status_after: int | None
    attempts: int
    #: Seconds from the end of the burst to the answer (or to giving up).
    waited_s: float
    #: What the last unanswered attempt saw (timeout, reset, connect_refused...).
    last_problem: str = ""
    #: Set once the grace passed in silence: how much queued work the burst could explain
    #: (``drain_estimate_s``) and how long the confirmation then asked.
    drain_estimate_s: float = 0.0
    confirm_s: float = 0.0


def conn_verdict(baseline_status: int | None, bursts: Sequence[BurstOutcome],
                 grace_s: float) -> tuple[Verdict, str, int | None]:
    """Judge the connection probe: (verdict, reason, the burst size that broke it)."""
    if baseline_status is None:
        return (Verdict.UNJUDGED, "not judged: the target did not answer a plain request "
                "before the first burst", None)
    if not bursts:
        return Verdict.UNJUDGED, "not judged: no burst was sent (no budget left)", None
    for burst in bursts:
        if burst.status_after is not None:
            continue
        if burst.connected == 0:
            return (Verdict.UNJUDGED, f"not judged: no client of the burst of {burst.size} "
                    "could connect", None)
        if burst.drain_estimate_s > burst.confirm_s:
            return (Verdict.UNJUDGED, f"not judged: no answer for {burst.waited_s:.1f} s "
                    f"after a burst of {burst.size}, but its abandoned requests may queue "
                    f"{burst.drain_estimate_s:.0f} s of work at the baseline latency (slow, "
                    "not necessarily leaking); lower --leak-probe-max-burst", None)
        return (Verdict.VIOLATION,
                f"no answer to a plain request for {burst.waited_s:.1f} s (grace {grace_s:g} "
                f"s, then confirmed for {burst.confirm_s:g} s; {burst.attempts} attempts, "
                f"last: {burst.last_problem or 'nothing'}) after a burst of {burst.size} "
                "clients that left mid-header, mid-body or right after connecting; it "
                f"answered {baseline_status} before the bursts", burst.size)
    sizes = ", ".join(str(b.size) for b in bursts)
    slowest = max(b.waited_s for b in bursts)
    note = ""
    late = [b for b in bursts if b.confirm_s > 0]
    if late:
        note = (f"; the burst of {late[0].size} was answered only after the grace period "
                f"({late[0].waited_s:.1f} s): slow to drain, not leaking")
    return (Verdict.PASS, f"answered after bursts of {sizes} (slowest recovery "
            f"{slowest:.2f} s, grace {grace_s:g} s){note}", None)
