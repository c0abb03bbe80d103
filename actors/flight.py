"""What each walker has in flight and sent in the last few seconds: the crash attribution log.

How this works: a slice calls ``ctx.begin_case(name)`` as it starts a case (and wraps side
traffic, a baseline or a survival probe, in ``ctx.aside_case(name)``). That makes a fresh
``Flight`` current for the walker's trio task (a ``ContextVar``: every walker task has its
own, and nothing is passed down the call chain), and ``actors.net`` notes into the current
one: each write's bytes (capped) with its wall-clock time and connection, every read that
brought data, and an RST hang-up. A flight joins its walker's ``FlightLog`` ring at its
first write, so a case whose connect was refused (a dead target) never pushes real sends out.

A case *survived* when the target answered anything (this walker saw it) at least
``SURVIVE_MARGIN_S`` after the case's last write: a deterministic killer never does, so the
ranking puts cases that never survived first (``protocols.attribution``). The log settles
that as cases begin, from a FIFO of flights not yet settled.

The Markov slice, the benchmarked hot path, records nothing per request here: its walker
keeps the request in flight (``WalkerContext.markov_inflight``, one tuple per request), its
failures after a write in ``FlightLog.markov``, and its answered states are the ones with a
latency histogram. ``markov_entries`` reads those only when the coordinator asks.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from protocols.attribution import SURVIVE_MARGIN_S

if TYPE_CHECKING:
    from actors.walker import WalkerContext

#: Flights kept per walker (oldest dropped) and what one flight keeps of its writes.
RING_FLIGHTS = 64
PENDING_FLIGHTS = 256
MAX_WRITES = 16
#: Enough for the catalogue's largest case (a 16 KiB field line plus its request), whole:
#: a reproducer needs the exact bytes. The ring drops its oldest flights beyond
#: ``RING_BYTES`` so a run of large cases costs a walker a bounded few hundred KiB.
MAX_FLIGHT_BYTES = 64 * 1024
RING_BYTES = 256 * 1024
#: Bounds on one actor's report (a msgpack frame on the PUSH socket).
MAX_REPORT_ENTRIES = 512
MAX_REPORT_BYTES = 1024 * 1024


class FlightLog:
    """One walker's recent flights, the cases it saw survive, and its last answer."""

    def __init__(self) -> None:
        self.ring: deque[Flight] = deque(maxlen=RING_FLIGHTS)
        #: Markov failures after a write (ring entries of ``WalkerContext.recent``).
        self.markov: deque[dict[str, Any]] = deque(maxlen=RING_FLIGHTS)
        self.survived: set[str] = set()
        self.last_answer_at = 0.0
        self.size = 0  # bytes held by the flights in ``ring``
        self._pending: deque[Flight] = deque(maxlen=PENDING_FLIGHTS)

    def sent(self, flight: Flight) -> None:
        ring = self.ring
        if len(ring) == ring.maxlen:
            self.size -= ring.popleft().size
        ring.append(flight)
        self._pending.append(flight)

    def grew(self, amount: int) -> None:
        """A flight in the ring kept ``amount`` more bytes: drop the oldest beyond budget
        (never the newest, which is the one in flight)."""
        self.size += amount
        ring = self.ring
        while self.size > RING_BYTES and len(ring) > 1:
            self.size -= ring.popleft().size

    def settle(self) -> None:
        """Cases the target answered something after (by the margin) have survived."""
        pending = self._pending
        while pending and pending[0].last_sent_at + SURVIVE_MARGIN_S < self.last_answer_at:
            self.survived.add(pending.popleft().case)


class Flight:
    """One case as sent: writes (capped) with send times, and when answers came."""

    __slots__ = ("_streams", "answered_at", "case", "closed_at", "conns", "end",
                 "last_sent_at", "log", "sent_at", "size", "slice", "walker", "writes")

    def __init__(self, log: FlightLog, walker: int, slice_name: str, case: str) -> None:
        self.log = log
        self.walker = walker
        self.slice = slice_name
        self.case = case
        self.sent_at: float | None = None
        self.last_sent_at = 0.0
        self.answered_at: float | None = None
        self.writes: list[bytes] = []
        #: Per write, the ordinal of its connection within this flight (0, 1, ...).
        self.conns: list[int] = []
        #: The connections written on, by ordinal: weak references, so a flight keeps no
        #: socket alive, yet a connection freed and replaced by one at the same address
        #: (``id()`` is reused) is never taken for it: its reference is dead.
        self._streams: list[Callable[[], object]] = []
        self.size = 0
        self.end = "close"
        #: When a read found the connection closed or reset by the target.
        self.closed_at: float | None = None

    def note_write(self, data: bytes | bytearray | memoryview, conn: object) -> None:
        now = time.time()
        if self.sent_at is None:
            self.sent_at = now
            self.log.sent(self)
        self.last_sent_at = now
        room = MAX_FLIGHT_BYTES - self.size
        if room > 0 and len(self.writes) < MAX_WRITES:
            chunk = bytes(data[:room])
            self.writes.append(chunk)
            self.size += len(chunk)
            self.conns.append(self._ordinal(conn))
            self.log.grew(len(chunk))

    def _ordinal(self, conn: object) -> int:
        for index, known in enumerate(self._streams):
            if known() is conn:
                return index
        try:
            ref: Callable[[], object] = weakref.ref(conn)
        except TypeError:  # not weakly referenceable: hold it (its id cannot be reused then)
            ref = lambda held=conn: held  # noqa: E731
        self._streams.append(ref)
        return len(self._streams) - 1

    def note_answer(self) -> None:
        self.answered_at = self.log.last_answer_at = time.time()

    def to_wire(self) -> dict[str, Any]:
        return {"walker": self.walker, "slice": self.slice, "case": self.case,
                "sent_at": self.sent_at, "last_sent_at": self.last_sent_at,
                "answered_at": self.answered_at, "writes": list(self.writes),
                "conns": list(self.conns), "ending": None, "end": self.end,
                "closed_at": self.closed_at}


_CURRENT: ContextVar[Flight | None] = ContextVar("assay_flight", default=None)


def begin(log: FlightLog, walker: int, slice_name: str, case: str) -> Flight:
    """Make a new flight current for this task (the previous one stays in the ring)."""
    log.settle()
    flight = Flight(log, walker, slice_name, case)
    _CURRENT.set(flight)
    return flight


@contextlib.contextmanager
def aside(log: FlightLog, walker: int, slice_name: str, case: str) -> Iterator[Flight]:
    """A flight for side traffic (a baseline, a survival probe); the case's flight is
    current again afterwards."""
    flight = Flight(log, walker, slice_name, case)
    token = _CURRENT.set(flight)
    try:
        yield flight
    finally:
        _CURRENT.reset(token)


def note_write(data: bytes | bytearray | memoryview, conn: object) -> None:
    """Called by ``actors.net`` after a successful write."""
    flight = _CURRENT.get()
    if flight is not None:
        flight.note_write(data, conn)


def note_read(data: bytes) -> None:
    """Called by ``actors.net`` after a read; only data counts as an answer."""
    if data:
        flight = _CURRENT.get()
        if flight is not None:
            flight.note_answer()


def note_closed() -> None:
    """Called by ``actors.net`` when a read finds the connection closed or reset by the
    target (a case cut off by a death sees this at the moment of death)."""
    flight = _CURRENT.get()
    if flight is not None and flight.sent_at is not None:
        flight.closed_at = time.time()


def note_reset() -> None:
    """Called by ``actors.net`` when the walker hangs up with RST instead of FIN."""
    flight = _CURRENT.get()
    if flight is not None and flight.sent_at is not None:
        flight.end = "rst"


def markov_entries(ctx: WalkerContext, since: float) -> list[dict[str, Any]]:
    """The Markov walker's recent requests as flight entries, from what it already keeps:
    the ring of recent exchanges (answered ones carry a latency), its failures after a
    write, and the request in flight. Nothing here runs per request."""
    out: list[dict[str, Any]] = []
    latest = 0.0  # the walker is sequential: a ring entry after a send ends that request
    seen: set[int] = set()
    for entry in [*ctx.flight.markov, *ctx.recent]:  # failures after a write are in both
        if id(entry) in seen or not isinstance(entry, dict):
            continue
        seen.add(id(entry))
        at = float(entry.get("at", 0.0))
        latest = max(latest, at)
        wire = entry.get("sent")
        state = entry.get("state")
        if not isinstance(wire, bytes) or not isinstance(state, str) or at < since:
            continue
        if "status" in entry:
            sent_at = at - float(entry.get("latency_us", 0)) / 1e6
            answered: float | None = at
        elif entry.get("sent_at") is not None:  # a failure after bytes were written
            sent_at, answered = float(entry["sent_at"]), None
        else:
            continue  # nothing reached the target (connect failed)
        error = entry.get("error")
        out.append({"walker": ctx.walker_id, "slice": "markov", "case": state,
                    "sent_at": sent_at, "last_sent_at": sent_at, "answered_at": answered,
                    "writes": [wire], "conns": [0], "ending": error, "end": "close",
                    "closed_at": at if error in ("eof", "reset") else None})
    inflight = ctx.markov_inflight
    if inflight is not None:
        started_perf, planned = inflight
        sent_at = time.time() - (time.perf_counter() - started_perf)
        wire = getattr(planned, "wire", None)
        if isinstance(wire, bytes) and sent_at >= since and latest < sent_at:
            out.append({"walker": ctx.walker_id, "slice": "markov",
                        "case": str(getattr(planned, "state", "?")), "sent_at": sent_at,
                        "last_sent_at": sent_at, "answered_at": None,
                        "writes": [wire[:MAX_FLIGHT_BYTES]], "conns": [0],
                        "ending": "in_flight", "end": "close"})
    return out


def survived(contexts: list[WalkerContext], tally: Any) -> list[str]:
    """``slice/case`` keys this actor saw survive: per walker for the flight slices, and
    for Markov every state with a recorded latency (only answered requests have one)."""
    keys: set[str] = set()
    for ctx in contexts:
        ctx.flight.settle()
        keys.update(f"{ctx.slice_name}/{case}" for case in list(ctx.flight.survived))
    try:
        names = list(tally.histograms())
    except Exception:  # a tally without histograms (benchmarks' UnrecordedTally) knows none
        names = []
    prefix = "markov.latency."
    keys.update(f"markov/{name[len(prefix):]}" for name in names if name.startswith(prefix))
    return sorted(keys)


def report(contexts: list[WalkerContext], since: float) -> tuple[list[dict[str, Any]], bool]:
    """Every walker's entries since ``since``, newest first within the bounds; and
    whether the bounds cut some off."""
    entries: list[dict[str, Any]] = []
    for ctx in contexts:
        if ctx.slice_name == "markov":
            entries.extend(markov_entries(ctx, since))
            continue
        for flight in list(ctx.flight.ring):
            if flight.sent_at is not None and flight.last_sent_at >= since:
                entries.append(flight.to_wire())
    entries.sort(key=lambda e: e["last_sent_at"], reverse=True)
    kept: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        weight = sum(len(w) for w in entry["writes"]) + 200
        if len(kept) >= MAX_REPORT_ENTRIES or size + weight > MAX_REPORT_BYTES:
            return kept, True
        kept.append(entry)
        size += weight
    return kept, False
