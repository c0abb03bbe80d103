"""``assay hold``'s arithmetic: the dial schedule, the counts, the verdict, the lines.

How this works: a ``HoldPlan`` (from the flags, validated by ``coordinator.hold_cli``)
travels to every actor as plain data. Connection ``j`` (0..N-1) is due ``j * delay`` after
the start and belongs to the actor whose rank is ``j mod count``, so the fleet together
dials exactly one connection every ``delay``. Every connection is held until
``end_s`` = the last dial + ``hold``; what happened to it is counted in the cumulative
``hold.*`` counters below, and ``HoldCounts`` turns merged counters back into the
figures a person reads (``still_open`` is derived, never counted). The verdict is
tcpgoon's: every connection asked for was established and is still open at the end.

Pure: no sockets, no clock. The walker (``actors.hold_walker``) and the coordinator's
extension (``coordinator.hold_run``) do the I/O.
"""

from __future__ import annotations

import enum
import errno
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# -- counters (cumulative, summed over actors) ------------------------------------------
DIALED = "hold.dialed"
ESTABLISHED = "hold.established"
CONNECT_FAILED = "hold.connect_failed"
CLOSED_BY_PEER = "hold.closed_by_peer"
RESET = "hold.reset"
#: One per actor whose walker finished (every connection ended or the hold was over).
DONE = "hold.done"
#: Sum over actors of how many connections each can hold under its open-file limit.
FD_CAPACITY = "hold.fd_capacity"
#: Connections of an actor's share beyond its open-file limit: never dialed.
FD_LIMITED = "hold.fd_limited"
HTTP_SENT = "hold.http_sent"
HTTP_RESPONSES = "hold.http_responses"
HTTP_STATUS = "hold.http_status."
HTTP_MALFORMED = "hold.http_malformed"
HTTP_TOO_LARGE = "hold.http_too_large"
#: Histogram: time from the dial to the established connection (microseconds).
CONNECT_HISTOGRAM = "hold.connect"
#: Histogram: how late each dial went out after its due time (the generator's own delay).
DIAL_LAG_HISTOGRAM = "hold.dial_lag"


class ConnectFailure(enum.Enum):
    """Why a dial did not give an established connection (``hold.connect_failed.<value>``)."""

    #: The SYN was answered with RST: nothing listens, or the listen queue refused it.
    REFUSED = "refused"
    #: No SYN-ACK within the connect timeout, or before the end of the hold.
    TIMEOUT = "timeout"
    #: Anything else on our side or the path: unreachable, no local port, no descriptor.
    OTHER = "other"

    @property
    def counter(self) -> str:
        return f"{CONNECT_FAILED}.{self.value}"


def reset_in_handshake(exc: OSError) -> bool:
    """A ``connect`` that fails with ECONNRESET was accepted and reset before the dialer
    saw it complete (a refused SYN is ECONNREFUSED): established, then reset."""
    return isinstance(exc, ConnectionResetError) or exc.errno == errno.ECONNRESET


def failure_of(exc: OSError) -> ConnectFailure:
    """Classify a failed ``connect``. (Our own deadline is ``TIMEOUT`` by the caller.)"""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ConnectFailure.REFUSED
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return ConnectFailure.TIMEOUT
    return ConnectFailure.OTHER


@dataclass(frozen=True)
class HoldPlan:
    """What ``assay hold`` was asked to do; every duration in seconds."""

    connections: int
    delay_s: float
    hold_s: float
    interval_s: float
    connect_timeout_s: float
    #: Send one ``GET path`` on each connection once it is established.
    send_http: bool = False
    path: str = "/"

    @property
    def last_dial_s(self) -> float:
        return (self.connections - 1) * self.delay_s

    @property
    def end_s(self) -> float:
        """When every connection is judged and closed: the last dial plus the hold."""
        return self.last_dial_s + self.hold_s

    def due_s(self, index: int) -> float:
        return index * self.delay_s

    def share(self, rank: int, count: int) -> range:
        """The connections actor ``rank`` of ``count`` dials (every ``count``-th)."""
        return range(rank, self.connections, max(1, count))

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> HoldPlan:
        return cls(int(data["connections"]), float(data["delay_s"]), float(data["hold_s"]),
                   float(data["interval_s"]), float(data["connect_timeout_s"]),
                   bool(data.get("send_http", False)), str(data.get("path", "/")))


@dataclass(frozen=True)
class HoldCounts:
    """The fleet's figures at one moment, from merged counters."""

    dialed: int = 0
    established: int = 0
    connect_failed: int = 0
    refused: int = 0
    timeout: int = 0
    other: int = 0
    closed_by_peer: int = 0
    reset: int = 0
    fd_limited: int = 0
    fd_capacity: int = 0
    done: int = 0

    @property
    def still_open(self) -> int:
        return self.established - self.closed_by_peer - self.reset

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> HoldCounts:
        get = counters.get
        return cls(get(DIALED, 0), get(ESTABLISHED, 0), get(CONNECT_FAILED, 0),
                   get(ConnectFailure.REFUSED.counter, 0), get(ConnectFailure.TIMEOUT.counter, 0),
                   get(ConnectFailure.OTHER.counter, 0), get(CLOSED_BY_PEER, 0), get(RESET, 0),
                   get(FD_LIMITED, 0), get(FD_CAPACITY, 0), get(DONE, 0))


def shortfalls(plan: HoldPlan, counts: HoldCounts) -> list[str]:
    """Why the run fails, one phrase each; empty when every connection asked for was
    established and is still open at the end."""
    asked = plan.connections
    reasons = []
    if counts.fd_limited:
        reasons.append(f"{counts.fd_limited} never dialed: the open-file limit lets the actors "
                       f"hold at most {counts.fd_capacity}")
    not_dialed = asked - counts.dialed - counts.fd_limited
    if not_dialed > 0:
        reasons.append(f"{not_dialed} not dialed before the run ended")
    if counts.connect_failed:
        reasons.append(f"{counts.connect_failed} failed to connect ({causes(counts)})")
    pending = counts.dialed - counts.connect_failed - counts.established
    if pending > 0:
        reasons.append(f"{pending} still connecting")
    if counts.closed_by_peer:
        reasons.append(f"{counts.closed_by_peer} closed by the peer")
    if counts.reset:
        reasons.append(f"{counts.reset} reset")
    if not reasons and counts.still_open != asked:
        reasons.append(f"{counts.still_open} of {asked} still open")
    return reasons


def causes(counts: HoldCounts) -> str:
    return f"refused {counts.refused}, timeout {counts.timeout}, other {counts.other}"


# -- what the coordinator prints and writes ----------------------------------------------
CSV_HEADER = ("elapsed_s,dialed,established,closed_by_peer,reset,connect_failed,refused,"
              "timeout,other,still_open\n")


def csv_row(elapsed_s: float, counts: HoldCounts) -> str:
    c = counts
    return (f"{elapsed_s:.3f},{c.dialed},{c.established},{c.closed_by_peer},{c.reset},"
            f"{c.connect_failed},{c.refused},{c.timeout},{c.other},{c.still_open}\n")


def interval_line(elapsed_s: float, counts: HoldCounts, asked: int, final: bool = False) -> str:
    """One line of live stats (tcpgoon's report line), fixed-width so columns align."""
    c = counts
    when = "end" if final else f"{elapsed_s:.1f}s"
    width = len(str(asked))
    return (f"[{when:>7}] dialed {c.dialed:>{width}}/{asked}  established "
            f"{c.established:>{width}}  closed-by-peer {c.closed_by_peer:>{width}}  reset "
            f"{c.reset:>{width}}  failed {c.connect_failed:>{width}}  still-open "
            f"{c.still_open:>{width}}")


def section(plan: HoldPlan, counts: HoldCounts, http: Mapping[str, Any],
            finished: bool = True) -> dict[str, Any]:
    """The ``hold`` block of the results document (and of ``summary.json``). ``finished``:
    every actor's walker reached the end of the hold (else the run was cut short)."""
    reasons = shortfalls(plan, counts)
    if not finished:
        reasons.insert(0, "the run ended before the hold did")
    block: dict[str, Any] = {
        "connections": plan.connections, "delay_s": plan.delay_s, "hold_s": plan.hold_s,
        "interval_s": plan.interval_s, "connect_timeout_s": plan.connect_timeout_s,
        "send_http": plan.send_http, "path": plan.path if plan.send_http else None,
        "dialed": counts.dialed, "established": counts.established,
        "connect_failed": counts.connect_failed,
        "connect_failed_by_cause": {"refused": counts.refused, "timeout": counts.timeout,
                                    "other": counts.other},
        "closed_by_peer": counts.closed_by_peer, "reset": counts.reset,
        "still_open": counts.still_open, "never_dialed_fd_limit": counts.fd_limited,
        "fd_capacity": counts.fd_capacity, "finished": finished, "ok": not reasons,
        "shortfalls": reasons,
    }
    if plan.send_http:
        block["http"] = dict(http)
    return block


def http_block(counters: Mapping[str, int]) -> dict[str, Any]:
    """--send-http: requests sent, responses read, their status codes."""
    codes = {name[len(HTTP_STATUS):]: value for name, value in sorted(counters.items())
             if name.startswith(HTTP_STATUS)}
    return {"sent": counters.get(HTTP_SENT, 0), "responses": counters.get(HTTP_RESPONSES, 0),
            "status_codes": codes, "malformed": counters.get(HTTP_MALFORMED, 0),
            "too_large": counters.get(HTTP_TOO_LARGE, 0)}


def render(block: Mapping[str, Any]) -> list[str]:
    """The hold summary as lines (the run summary adds header and footer)."""
    asked = block["connections"]
    http = "" if not block["send_http"] else f", a GET {block['path']} on each"
    pace = (f"one every {block['delay_s'] * 1000:g} ms" if block["delay_s"] else "all at once")
    lines = [f"  asked          {asked} connections, {pace}, held {block['hold_s']:g} s after "
             f"the last{http}",
             f"  dialed         {block['dialed']}",
             f"  established    {block['established']}",
             f"  failed         {block['connect_failed']} (refused "
             f"{block['connect_failed_by_cause']['refused']}, timeout "
             f"{block['connect_failed_by_cause']['timeout']}, other "
             f"{block['connect_failed_by_cause']['other']})",
             f"  closed by peer {block['closed_by_peer']}",
             f"  reset          {block['reset']}",
             f"  still open     {block['still_open']} of {asked} at the end"]
    if block.get("never_dialed_fd_limit"):
        lines.append(f"  fd limit       can hold at most {block['fd_capacity']}: "
                     f"{block['never_dialed_fd_limit']} never dialed")
    if block.get("http"):
        http_stats = block["http"]
        codes = ", ".join(f"{code} x{n}" for code, n in http_stats["status_codes"].items())
        lines.append(f"  http           {http_stats['sent']} sent, {http_stats['responses']} "
                     f"answered" + (f" ({codes})" if codes else ""))
    if block["ok"]:
        lines.append("  verdict        ok: every connection established and still open")
    elif not block.get("finished", True):
        lines.append("  verdict        not judged: " + "; ".join(block["shortfalls"]))
    else:
        lines.append("  verdict        FAILED: " + "; ".join(block["shortfalls"]))
    return lines
