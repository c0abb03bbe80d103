"""The hold slice: this actor's share of an ``assay hold`` run's connections.

How this works: the coordinator plans one hold walker per actor. Actor ``rank`` of
``count`` dials connections ``rank, rank + count, ...`` of the plan
(``protocols.hold_stats.HoldPlan``), each at its due time from one scheduler loop, and
gives each its own task. A task connects (bounded by the connect timeout and by the end
of the hold), optionally sends one keep-alive ``GET`` and parses the answer, then reads
and discards until the peer closes (FIN: ``closed_by_peer``), resets (``reset``) or the
hold ends. At the end every task stops by its own deadline, so the counts are frozen at
the same instant on every actor; then the sockets close and ``hold.done`` counts the actor
(earlier, once every connection of its share has already ended: nothing is left to see).

Why one task per connection on a bare ``trio.socket``: there is no polling (each task
waits on the kernel's readiness), and a parked task with its socket is a few kilobytes of
Python (about 7 KB of actor RSS per held connection: 10,000 on one actor took it from 35
to 104 MiB), where a ``SocketStream`` or a parser kept per connection would add to every
one of tens of thousands of idle connections. The receive buffer is capped small
(``RCVBUF``): a held connection carries almost nothing. The name is resolved once per
actor, not per dial.

For an ``https://`` target each connection completes a TLS handshake before it counts as
established (``actors.tls_socket``; within the connect timeout and the hold): a server's
TLS limits apply to real TLS clients, and each held connection costs both sides a TLS
session. A handshake the peer resets or closes counts as established and then ``reset`` /
``closed_by_peer`` (the TCP connection was accepted, as a reset before ``connect``
returned); one that times out is a connect ``timeout``; one refused with an alert or an
untrusted certificate is a connect failure ``other``, its reason kept as the example.

The open-file limit is raised to its hard limit in ``prepare``; connections beyond what
this actor can then hold are never dialed (``hold.fd_limited``): running out of
descriptors would also break the actor's own sockets to the coordinator.
"""

from __future__ import annotations

import socket
from typing import Any

import trio

from actors import fd_limit, net, tls_socket
from actors.walker import WalkerContext
from protocols.hold_stats import (
    CLOSED_BY_PEER,
    CONNECT_FAILED,
    CONNECT_HISTOGRAM,
    DIAL_LAG_HISTOGRAM,
    DIALED,
    DONE,
    ESTABLISHED,
    FD_CAPACITY,
    FD_LIMITED,
    HTTP_MALFORMED,
    HTTP_RESPONSES,
    HTTP_SENT,
    HTTP_STATUS,
    HTTP_TOO_LARGE,
    RESET,
    ConnectFailure,
    HoldPlan,
    failure_of,
    reset_in_handshake,
)
from protocols.http1 import ResponseParser, ResponseProtocolError, ResponseTooLarge, build_request

#: Receive buffer per held connection (the kernel doubles it); also the read size.
RCVBUF = 4096
#: --send-http: the largest response read whole; a bigger one is discarded unparsed.
MAX_RESPONSE_BODY = 64 * 1024
#: Time the sockets get to close after the hold before the walker gives up on them.
CLOSE_GRACE_S = 2.0


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Parse the plan once per actor; raise the open-file limit to its hard limit and
    work out how many connections this actor can then hold."""
    settings["hold_plan"] = HoldPlan.from_wire(settings["hold"])
    soft, hard = fd_limit.raise_to_hard()
    settings["hold_fd_limit"] = (soft, hard)
    settings["hold_fd_capacity"] = fd_capacity(soft)
    return settings


def fd_capacity(soft: int) -> int:
    """Connections this process can still open under a soft limit of ``soft``."""
    return fd_limit.capacity(soft)


class _Holder:
    """What every connection task of this actor shares: where, what, until when."""

    def __init__(self, ctx: WalkerContext, plan: HoldPlan, addresses: list[tuple[Any, Any]],
                 end: float) -> None:
        self.tally = ctx.tally
        self.plan = plan
        self.addresses = addresses
        #: The address that last connected is tried first (a name with an IPv6 and an
        #: IPv4 address where the server listens on one of them).
        self.preferred = 0
        self.end = end
        self.request = (build_request("GET", plan.path, ctx.target.host_header)
                        if plan.send_http else None)
        self.record_connect = ctx.tally.latency_recorder((CONNECT_HISTOGRAM,))
        self.target = ctx.target

    async def hold_one(self, index: int) -> None:
        tally = self.tally
        tally.incr(DIALED)
        started = trio.current_time()
        sock, failure = await self._dial(index)
        if sock is None:
            if failure is None:  # accepted, and reset before connect() returned
                tally.incr_each((ESTABLISHED, RESET))
            else:
                tally.incr_each((CONNECT_FAILED, failure.counter))
            return
        try:
            conn = sock
            if self.target.scheme == "https":
                conn = await self._secure(sock, index, started)
                if conn is None:
                    return
            tally.incr(ESTABLISHED)
            self.record_connect((trio.current_time() - started) * 1e6)
            with trio.move_on_at(self.end):
                tally.incr(await self._hold(conn, index))
        finally:
            sock.close()

    async def _secure(self, sock: Any, index: int, started: float) -> Any:
        """The TLS connection over ``sock``, or None once the failed handshake is counted."""
        tally = self.tally
        deadline = min(started + self.plan.connect_timeout_s, self.end)
        try:
            return await tls_socket.secure(sock, self.target, deadline - trio.current_time())
        except net.TransportError as exc:
            example = {"connection": index, "error": str(exc), "when": "TLS handshake"}
            if exc.cause in ("reset", "eof"):
                ended = RESET if exc.cause == "reset" else CLOSED_BY_PEER
                tally.incr_each((ESTABLISHED, ended))
                tally.keep_example(ended, example)
            else:
                failure = (ConnectFailure.TIMEOUT if exc.cause == "tls_timeout"
                           else ConnectFailure.OTHER)
                tally.incr_each((CONNECT_FAILED, failure.counter))
                tally.keep_example(failure.counter, example)
            return None

    async def _dial(self, index: int) -> tuple[Any, ConnectFailure | None]:
        """A connected socket, or why there is none by the connect deadline (None: the
        handshake completed and the peer reset the connection at once)."""
        deadline = min(trio.current_time() + self.plan.connect_timeout_s, self.end)
        failure = ConnectFailure.TIMEOUT
        with trio.move_on_at(deadline):
            count = len(self.addresses)
            for step in range(count):
                at = (self.preferred + step) % count
                family, sockaddr = self.addresses[at]
                sock = None
                try:
                    sock = trio.socket.socket(family, socket.SOCK_STREAM)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    await sock.connect(sockaddr)
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    if reset_in_handshake(exc):
                        self.tally.keep_example(RESET, {"connection": index, "error": str(exc),
                                                        "when": "before connect() returned"})
                        return None, None
                    failure = failure_of(exc)
                    self.tally.keep_example(failure.counter, {
                        "connection": index, "address": str(sockaddr), "error": str(exc)})
                    continue
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                self.preferred = at
                return sock, None
            return None, failure
        self.tally.keep_example(ConnectFailure.TIMEOUT.counter, {
            "connection": index, "error": "no SYN-ACK within the connect timeout or the hold",
            "connect_timeout_s": self.plan.connect_timeout_s})
        return None, ConnectFailure.TIMEOUT

    async def _hold(self, sock: Any, index: int) -> str:
        """Read until the peer ends the connection; the counter that says how. The
        caller's deadline (the end of the hold) cancels it on a connection still open."""
        parser: ResponseParser | None = None
        try:
            if self.request is not None:
                view = memoryview(self.request)
                while view:
                    view = view[await sock.send(view):]
                self.tally.incr(HTTP_SENT)
                parser = ResponseParser(max_body_bytes=MAX_RESPONSE_BODY)
                parser.expect("GET")
            while True:
                data = await sock.recv(RCVBUF)
                if parser is not None:
                    if data:
                        parser.feed(data)
                    else:
                        parser.feed_eof()
                    closing = self._answer(parser, index)
                    if closing:
                        return CLOSED_BY_PEER
                    if closing is not None:
                        parser = None  # answered and kept alive: discard from now on
                if not data:
                    return CLOSED_BY_PEER
        except OSError as exc:
            self.tally.keep_example(RESET, {"connection": index, "error": str(exc)})
            return RESET

    def _answer(self, parser: ResponseParser, index: int) -> bool | None:
        """--send-http: None while the answer is incomplete; True when it ends the
        connection (``Connection: close``, HTTP/1.0, or the peer closed); False when the
        connection stays open (kept alive, or an answer too large or malformed to judge,
        which is counted and then discarded like any later byte)."""
        try:
            response = parser.next_response()
        except ResponseTooLarge:
            self.tally.incr(HTTP_TOO_LARGE)
            return False
        except ResponseProtocolError as exc:
            self.tally.incr(HTTP_MALFORMED)
            self.tally.keep_example(HTTP_MALFORMED, {"connection": index, "error": str(exc)})
            return parser.eof
        if response is None:
            return True if parser.eof else None
        self.tally.incr_each((HTTP_RESPONSES, f"{HTTP_STATUS}{response.status}"))
        return not response.keep_alive or parser.eof



async def run(ctx: WalkerContext) -> None:
    plan: HoldPlan = ctx.settings["hold_plan"]
    rank, count, _ = ctx.settings.get("slice_share", (0, 1, 0))
    tally = ctx.tally
    capacity = int(ctx.settings.get("hold_fd_capacity", 1 << 30))
    mine = plan.share(rank, count)
    dial = mine[:capacity]
    tally.incr(FD_CAPACITY, capacity)
    if len(dial) < len(mine):
        soft, hard = ctx.settings.get("hold_fd_limit", (None, None))
        tally.incr(FD_LIMITED, len(mine) - len(dial))
        tally.keep_example(FD_LIMITED, {"actor": ctx.actor_id, "share": len(mine),
                                        "capacity": capacity, "nofile_soft": soft,
                                        "nofile_hard": hard})
    t0 = trio.current_time()
    end = t0 + plan.end_s
    try:
        addresses = await net.resolve(ctx.target)
    except OSError as exc:  # the coordinator's pre-flight resolved it: rare, but counted
        tally.incr(DIALED, len(dial))
        tally.incr(CONNECT_FAILED, len(dial))
        tally.incr(ConnectFailure.OTHER.counter, len(dial))
        tally.keep_example(ConnectFailure.OTHER.counter, {"error": f"resolve: {exc}"})
        tally.incr(DONE)
        return
    holder = _Holder(ctx, plan, addresses, end)
    with trio.move_on_at(end + CLOSE_GRACE_S):
        async with trio.open_nursery() as nursery:
            record_lag = tally.latency_recorder((DIAL_LAG_HISTOGRAM,))
            for index in dial:
                due = t0 + plan.due_s(index)
                await trio.sleep_until(due)
                record_lag((trio.current_time() - due) * 1e6)
                nursery.start_soon(holder.hold_one, index)
    tally.incr(DONE)
