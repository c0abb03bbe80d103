"""HTTP/2 requests for a slice's walkers: a few shared connections, many streams on each.

How this works: one ``H2Pool`` per slice per actor (made in the slice's ``prepare``, so
every walker of the slice in that actor shares it). A walker joins it with ``async with
pool.member() as member`` and sends with ``await member.request(fields, body)`` under its
own deadline (trio style: the caller's cancel scope). A request goes on a connection with
room (fewer than ``streams_per_conn`` requests, and fewer than the server's
SETTINGS_MAX_CONCURRENT_STREAMS); when none has room the walker opens one, and the others
that need a connection meanwhile wait for that one rather than each dialling its own. A new
connection takes requests once the server's SETTINGS came, so that none goes beyond the
limit it sets there; those it cannot take then go to another.

Each connection has one reader task, run in the nursery of the walker that opened it
(structured: nothing outlives the walkers). The reader feeds ``protocols.h2_client`` and
hands each finished stream to its waiter. Writes come from whichever task has bytes
queued; a write is shielded from the caller's cancellation and bounded by its own
deadline, because a write cut in the middle of a frame would corrupt every other stream
of the connection. A dead connection fails its own streams only; the next request opens
a new one. When a walker leaves, the connections it hosts take no new request and close
once their last stream ends (each stream has its own deadline, so that is bounded).

Connections are TLS with ALPN "h2" for an https target (RFC 9113 §3.2: a server that
does not choose h2 is an error the run names) and prior knowledge for http (§3.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from actors import net, tls
from actors.walker import Target
from protocols.h2_client import Finished, H2Client, StreamFailure
from protocols.http1 import DEFAULT_MAX_BODY_BYTES, Response
from protocols.tls_options import ALPN_H2, ALPN_HTTP1

READ_SIZE = 65536
#: Requests one connection carries at once (fewer if the server allows fewer).
DEFAULT_STREAMS_PER_CONN = 32
#: Attempts of one request: a stream the server refused unprocessed (REFUSED_STREAM, or
#: above a GOAWAY's last stream) is sent again on another connection.
ATTEMPTS = 3
#: ALPN offered: h2, and http/1.1 after it, so that an HTTP/1.1-only server completes the
#: handshake choosing http/1.1 (and the run can say so) instead of failing it with
#: no_application_protocol (RFC 7301 §3.2), which would name no protocol.
OFFERED_ALPN = (*ALPN_H2, *ALPN_HTTP1)


def not_h2_detail(chosen: str | None) -> str:
    return (f"the target did not negotiate h2 (ALPN chose {chosen or 'nothing'}); "
            "serve HTTP/2 over TLS or drop --http2")


class _Waiter:
    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.outcome: Response | StreamFailure | None = None


class H2Conn:
    """One HTTP/2 connection: its stream, its ``H2Client``, its waiters."""

    def __init__(self, pool: H2Pool) -> None:
        self.pool = pool
        self.client = H2Client(pool.max_body_bytes)
        self.stream: Any = None
        #: Set once the server's SETTINGS arrived, so that no request goes beyond a limit
        #: it announces there (RFC 9113 §5.1.2: a server may answer a stream over its
        #: SETTINGS_MAX_CONCURRENT_STREAMS with PROTOCOL_ERROR, h2's with a connection
        #: error); or once the connection ended or could not open (see ``failure``).
        self.ready = trio.Event()
        #: Why it could not open: (cause, detail).
        self.failure: tuple[str, str] | None = None
        #: Requests placed on this connection and not yet ended (opening included).
        self.reserved = 0
        self.waiters: dict[int, _Waiter] = {}
        #: No new request: its host left, or it died.
        self.closing = False
        #: Its reader task has returned and the socket is closed.
        self.ended = False
        self._sending = False
        self._reader = trio.CancelScope()

    def has_room(self) -> bool:
        limit = self.pool.streams_per_conn
        if self.ready.is_set():
            if not self.client.usable:
                return False
            limit = min(limit, self.client.max_concurrent)
        return not self.closing and self.reserved < limit

    async def run(self) -> None:
        """Connect, send the preface, then read until the connection ends."""
        try:
            with self._reader:
                try:
                    await self._open()
                except net.TransportError as exc:
                    self.failure = (exc.cause, str(exc).removeprefix(f"{exc.cause}: "))
                    return
                await self._read()
        finally:
            self.closing = True
            if self.failure is None and not self.ready.is_set() and not self.client.ended:
                self.failure = ("eof", "the connection closed while opening")  # host left
            self.ready.set()
            self._deliver(self.client.lost("eof", "the HTTP/2 connection closed"))
            if self in self.pool.conns:
                self.pool.conns.remove(self)
            if self.stream is not None:
                await net.aclose_quietly(self.stream)
            self.ended = True

    async def _open(self) -> None:
        pool = self.pool
        self.stream = await net.connect(pool.target, pool.timeout, alpn=OFFERED_ALPN)
        if pool.target.scheme == "https":
            chosen = tls.negotiated_alpn(self.stream)
            if chosen != "h2":
                await net.aclose_quietly(self.stream)
                self.stream = None
                raise net.TransportError("protocol_error", not_h2_detail(chosen))
        self.client.initiate()
        await self.flush()

    async def _read(self) -> None:
        client = self.client
        while True:
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._deliver(client.lost(net.cause_of(exc), f"connection lost: {exc}"))
                return
            if not data:
                self._deliver(client.lost("eof", "the target closed the HTTP/2 connection"))
                return
            self._deliver(client.receive(data))
            await self.flush()  # WINDOW_UPDATE, SETTINGS and PING acknowledgements
            if client.settings_received or client.ended:
                self.ready.set()
            if (client.ended or self.closing) and not self.reserved:
                return

    def _deliver(self, finished: list[Finished]) -> None:
        waiters = self.waiters
        for done in finished:
            waiter = waiters.pop(done.stream_id, None)
            if waiter is not None:
                waiter.outcome = done.outcome
                waiter.event.set()
        if self.client.ended:
            self.closing = True

    async def flush(self) -> None:
        """Write what the client has queued. Whoever is already writing also writes what
        was queued while it wrote (no await between its last look and its return), so a
        task that finds a write in progress has nothing to do."""
        if self._sending or self.stream is None:
            return
        self._sending = True
        try:
            with trio.CancelScope(shield=True):
                while data := self.client.data_to_send():
                    with trio.move_on_after(self.pool.timeout) as stalled:
                        await self.stream.send_all(data)
                    if stalled.cancelled_caught:
                        self._die("timeout", "the target stopped reading the HTTP/2 connection")
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._die(net.cause_of(exc), f"connection lost while sending: {exc}")
        finally:
            self._sending = False

    def _die(self, cause: str, detail: str) -> None:
        self.closing = True
        self._deliver(self.client.lost(cause, detail))
        self._reader.cancel()

    def forget(self, stream_id: int) -> None:
        """The caller gave up on ``stream_id`` (its deadline): reset it. (The reader of a
        closing connection ends when the caller releases its reservation.)"""
        self.waiters.pop(stream_id, None)
        self.client.cancel(stream_id)

    def end_if_idle(self) -> None:
        """A closing connection that no request is placed on ends: its reader stops. One
        that still has requests placed on it (waiting for it to open, or in flight) lives
        on until the last of them ends, each under its own deadline."""
        if self.closing and not self.reserved:
            self._reader.cancel()


class H2Pool:
    """The HTTP/2 connections one slice's walkers share in one actor."""

    def __init__(self, timeout: float, streams_per_conn: int = DEFAULT_STREAMS_PER_CONN,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        #: Set when the first walker joins (a slice's ``prepare`` has no target yet).
        self.target = Target.from_url("http://127.0.0.1/")
        self.timeout = timeout
        self.streams_per_conn = max(1, streams_per_conn)
        self.max_body_bytes = max_body_bytes
        self.conns: list[H2Conn] = []
        #: Connections opened so far.
        self.opened = 0
        self.on_open: Callable[[], None] | None = None

    @contextlib.asynccontextmanager
    async def member(self, target: Target, on_open: Callable[[], None] | None = None
                     ) -> AsyncIterator[H2Member]:
        """Join as one walker; ``on_open`` is called for each connection opened."""
        self.target = target
        self.on_open = on_open
        async with trio.open_nursery() as nursery:
            member = H2Member(self, nursery)
            try:
                yield member
            finally:
                member.leave()

    def pick(self, nursery: trio.Nursery, hosted: list[H2Conn]) -> H2Conn:
        """A connection with room, or a new one hosted in ``nursery``."""
        for conn in self.conns:
            if conn.has_room():
                return conn
        conn = H2Conn(self)
        self.conns.append(conn)
        self.opened += 1
        if self.on_open is not None:
            self.on_open()
        # A long run opens a connection per server keep-alive limit: forget ended ones.
        hosted[:] = [c for c in hosted if not c.ended]
        hosted.append(conn)
        nursery.start_soon(conn.run)
        return conn


class H2Member:
    """One walker's handle on the pool."""

    def __init__(self, pool: H2Pool, nursery: trio.Nursery) -> None:
        self.pool = pool
        self._nursery = nursery
        self._hosted: list[H2Conn] = []
        #: Whether the request in flight is waiting for its connection to open: a deadline
        #: that fires then is a connect timeout.
        self.connecting = False

    async def request(self, fields: list[tuple[bytes, bytes]], body: bytes | None
                      ) -> Response:
        """Send one request, wait for its response. Raises ``net.TransportError``."""
        failure: StreamFailure | None = None
        attempts = 0
        # A request that found its connection full once the server's SETTINGS came (up to
        # ``streams_per_conn`` wait on a new connection; the server may allow fewer) is
        # placed again without spending an attempt. Each round admits at least one of
        # those waiting, so ``streams_per_conn`` rounds are enough.
        for _ in range(ATTEMPTS + self.pool.streams_per_conn):
            conn = self.pool.pick(self._nursery, self._hosted)
            conn.reserved += 1
            try:
                outcome = await self._exchange(conn, fields, body)
            finally:
                conn.reserved -= 1
                conn.end_if_idle()
            if outcome is None:  # the connection filled up or closed meanwhile: another
                continue
            if isinstance(outcome, Response):
                return outcome
            failure = outcome
            attempts += 1
            if not outcome.retry or attempts >= ATTEMPTS:
                break
        if failure is None:
            raise net.TransportError("reset", "no HTTP/2 connection took the request")
        raise net.TransportError(failure.cause, failure.detail)

    async def _exchange(self, conn: H2Conn, fields: list[tuple[bytes, bytes]],
                        body: bytes | None) -> Response | StreamFailure | None:
        if not conn.ready.is_set():
            self.connecting = True
            await conn.ready.wait()
        # Until the request is on a stream, ``connecting`` stays: nothing reached the target.
        if conn.failure is not None:
            raise net.TransportError(*conn.failure)
        # A connection whose host left meanwhile (``closing``, not ended) still carries
        # the requests placed on it before: its reader runs until they end.
        client = conn.client
        if client.ended:  # it ended before this request got on: say why, try another
            return StreamFailure(client.end_cause, client.ended, retry=True)
        if not client.usable:
            return None
        self.connecting = False
        stream_id = conn.client.start(fields, body)
        waiter = conn.waiters[stream_id] = _Waiter()
        try:
            await conn.flush()
            await waiter.event.wait()
        except BaseException:
            if waiter.outcome is None:
                conn.forget(stream_id)
                with trio.CancelScope(shield=True):
                    await conn.flush()  # the RST_STREAM
            raise
        return waiter.outcome

    def leave(self) -> None:
        """The walker is done: its connections take no new request and end with their
        last stream."""
        for conn in self._hosted:
            conn.closing = True
            if conn in self.pool.conns:
                self.pool.conns.remove(conn)
            conn.end_if_idle()


async def check(target: Target, path: str, timeout: float) -> str | None:
    """One GET of ``path`` over HTTP/2, as a run's pre-flight: None when any response came
    back, else why not (the target did not negotiate h2, answered HTTP/1.1 to the prior
    knowledge preface, reset, timed out)."""
    from protocols.h2_client import request_fields

    pool = H2Pool(timeout, streams_per_conn=1)
    fields = request_fields("GET", path, target.host_header, target.scheme, (), None)
    why = None
    async with pool.member(target) as member:
        with trio.move_on_after(timeout) as waited:
            try:
                await member.request(fields, None)
            except net.TransportError as exc:
                why = str(exc)
        if waited.cancelled_caught:
            why = f"no response within {timeout:.1f} s"
    return None if why is None else f"{target.url} over HTTP/2: {why}"
