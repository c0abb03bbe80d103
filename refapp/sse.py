"""``GET /events``: a server-sent events broker (WHATWG HTML §9.2).

How this works: one publisher task ticks every ``TICK_SECONDS`` and encodes each event once;
every subscriber holds a slot (a bounded memory channel) in the broker and a connection task
that copies whatever arrives in its slot to its socket. Next to that copy loop a watcher
reads the socket, so a client that goes away (FIN or RST) is noticed at once rather than at
the next failed write, and its slot is released. A subscriber whose slot fills up (it stopped
reading and its TCP window closed) is disconnected instead of buffering without bound.

The response carries no Content-Length: h11 frames it with chunked encoding for HTTP/1.1
clients and by connection close for HTTP/1.0 ones. A stream ends only with its connection.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from refapp.app import Request, error
from refapp.config import RECV_CHUNK
from refapp.defects import SSE_LEAK_LIMIT
from refapp.transport import PeerGone, gone_from

if TYPE_CHECKING:
    from refapp.server import HttpConnection

TICK_SECONDS = 0.1
#: A heartbeat comment every this many ticks, so idle proxies keep the stream open.
HEARTBEAT_TICKS = 10
#: Subscribers at once; more get 503 (backpressure, not a defect).
MAX_SUBSCRIBERS = 1024
#: Events queued per subscriber before it counts as too slow and is dropped.
SLOT_DEPTH = 32

_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_PREAMBLE = b"retry: 1000\n: connected\n\n"
_HEARTBEAT = b": heartbeat\n\n"


@dataclass(eq=False, slots=True)
class Slot:
    """One subscriber's place in the broker."""

    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    leaked: bool = False


@dataclass(slots=True)
class Broker:
    """Fan-out of tick events to subscriber slots."""

    leak_on_disconnect: bool = False
    #: ``sse-leak-on-rst-only``: only a subscriber that left with RST keeps its slot.
    leak_on_reset: bool = False
    capacity: int = MAX_SUBSCRIBERS
    _slots: set[Slot] = field(default_factory=set)
    _leaked: int = 0
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def subscribers(self) -> int:
        """Slots held, leaked ones included (that is what makes a leak visible)."""
        return len(self._slots)

    def subscribe(self) -> Slot | None:
        """A new slot, or None when the broker is full."""
        if len(self._slots) - self._leaked >= self.capacity or self._leaked >= SSE_LEAK_LIMIT:
            return None
        send, receive = trio.open_memory_channel[bytes](SLOT_DEPTH)
        slot = Slot(send, receive)
        self._slots.add(slot)
        return slot

    def release(self, slot: Slot, client_gone: bool, reset: bool = False) -> None:
        """Give a slot back.

        With ``sse-leak-on-reset`` the cleanup runs only when the server ended the stream
        itself; a slot whose client disconnected stays in the table forever. With
        ``sse-leak-on-rst-only`` only a client that reset the connection (``reset``) is
        forgotten: the error path of a failed read skips the cleanup that EOF runs.
        """
        slot.receive.close()
        if client_gone and (self.leak_on_disconnect or (reset and self.leak_on_reset)):
            if not slot.leaked:
                slot.leaked = True
                self._leaked += 1
            return
        slot.send.close()
        self._slots.discard(slot)

    def publish(self, chunk: bytes) -> None:
        """Queue one encoded event to every live slot; drop subscribers that fell behind."""
        for slot in list(self._slots):
            if slot.leaked:
                continue
            try:
                slot.send.send_nowait(chunk)
            except trio.WouldBlock:
                slot.send.close()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def tick_event(self) -> bytes:
        seq = next(self._seq)
        data = json.dumps({"seq": seq, "ts": round(time.time(), 3)}, separators=(",", ":"))
        return f"id: {seq}\nevent: tick\ndata: {data}\n\n".encode()

    async def run(self) -> None:
        """The publisher: one event per tick, a heartbeat comment every ``HEARTBEAT_TICKS``."""
        deadline = trio.current_time()
        for tick in itertools.count(1):
            # Fixed cadence without drift; after a stall, skip missed ticks instead of bursting.
            deadline = max(deadline + TICK_SECONDS, trio.current_time())
            await trio.sleep_until(deadline)
            if not self._slots:
                continue
            chunk = self.tick_event()
            if tick % HEARTBEAT_TICKS == 0:
                chunk += _HEARTBEAT
            self.publish(chunk)


async def stream_events(http: HttpConnection, request: Request) -> None:
    """Serve one subscriber until it disconnects, falls behind, or the server stops.

    The connection is not reusable afterwards; the caller closes it.
    """
    broker = http.state.broker
    slot = broker.subscribe()
    if slot is None:
        await http.send_response(
            error(503, "event broker full", [(b"retry-after", b"1")]), close=True
        )
        return
    watcher = _Watcher(http)
    try:
        await http.send_head(200, _HEADERS)
        await http.send_body_part(_PREAMBLE)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run, nursery.cancel_scope)
            try:
                async for chunk in slot.receive:
                    await http.send_body_part(chunk)
            except PeerGone as exc:
                http.note_gone(exc)
                watcher.left(exc.reset)
            nursery.cancel_scope.cancel()
    except PeerGone as exc:
        http.note_gone(exc)
        watcher.left(exc.reset)
    finally:
        broker.release(slot, watcher.gone, watcher.reset)


class _Watcher:
    """Reads (and discards) what the client sends, to notice FIN or RST promptly."""

    def __init__(self, http: HttpConnection) -> None:
        self._http = http
        self.gone = False
        #: The client reset the connection (and no clean EOF came first).
        self.reset = False
        self._eof = False

    def left(self, reset: bool) -> None:
        self.gone = True
        self.reset = self.reset or (reset and not self._eof)

    async def run(self, scope: trio.CancelScope) -> None:
        try:
            while await self._http.stream.receive_some(RECV_CHUNK):
                pass
            self._eof = True
            self.left(False)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            gone = gone_from(exc)
            self._http.note_gone(gone)
            self.left(gone.reset)
        scope.cancel()
