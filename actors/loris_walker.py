"""The loris slice: this actor's share of an ``assay loris`` run's slow connections.

How this works: the coordinator plans one loris walker (and one load walker, for the
control traffic) per actor. Actor ``rank`` of ``count`` opens connections ``rank, rank +
count, ...`` of the plan (``protocols.loris.LorisPlan``), each at its due time from one
scheduler loop, and gives each its own task; the drips' random values come from the
walker's seeded ``random.Random`` (one per connection would cost kilobytes each). A
task connects (bounded by the connect timeout and the attack's end), sends the mode's
opening bytes (``protocols.loris.opening``) and then, every interval:

* headers and body modes: sends the next drip, and in between waits for anything the
  server says. A complete answer (a 408, a 400, ...) or a FIN ends the connection as
  ``closed_by_server``, an RST as ``reset``;
* read and range modes: reads one byte (the receive buffer was made tiny before
  connect, so the server's writes stall on the advertised window). A whole answer read
  on a kept-alive connection is asked for again; a FIN or RST ends it as above.

Every wait is bounded by the attack's end (the run's deadline; the coordinator stops the
run earlier, once the control traffic is done) and every loop by ``MAX_DRIPS``. Counters
are cumulative (``protocols.loris``); ``loris.done`` counts actors whose walker ended.

For an ``https://`` target each connection completes a TLS handshake right after connect
(``actors.tls_socket``, within the connect timeout) and the drips go inside TLS, as a slow
TLS client's would. A handshake that times out or is refused (an alert, an untrusted
certificate) is a connect failure (``timeout`` / ``other``); one the server closes or
resets counts as connected and then ``closed_by_server`` / ``reset``. The slow-read modes
read one byte of plaintext per interval: OpenSSL drains the tiny TCP buffer a record at a
time, so the server's writes still stall on the window, a record later.

Why bare ``trio.socket`` and one task per connection: as in ``actors.hold_walker``, a
parked task with its socket is a few kilobytes, so one actor core holds thousands; a
``SocketStream`` would also hide the socket option that must be set before connect.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import trio

from actors import fd_limit, net, tls_socket
from actors.walker import WalkerContext
from protocols.http1 import (
    Response,
    ResponseError,
    ResponseParser,
    ResponseProtocolError,
    ResponseTooLarge,
)
from protocols.loris import (
    BYTES_READ,
    BYTES_SENT,
    CLOSED_BY_SERVER,
    CONNECT_FAILED,
    CONNECTED,
    DONE,
    DRIPS,
    FD_LIMITED,
    MALFORMED,
    MAX_DRIPS,
    NOT_DUE,
    OPENED,
    RCVBUF,
    REPEATED,
    RESET,
    SLOW_READ_RCVBUF,
    STATUS,
    ConnectFailure,
    LorisPlan,
    Mode,
    connect_failure,
    drip,
    ending_of,
    opening,
)

#: Descriptors kept back for the actor itself (ZeroMQ, logs, the load walker's VUs, ...).
FD_RESERVE = 256
#: Largest answer body parsed (an error page); a bigger one is counted, then discarded.
MAX_ANSWER_BODY = 64 * 1024
#: ``_Answers.feed``: a whole answer on a kept-alive connection; send the request again.
_REPEAT = "repeat"
#: Headers and body modes: most reads between two drips (each at most ``RCVBUF`` bytes).
MAX_READS_PER_INTERVAL = 1024
#: Time the sockets get to close after the attack before the walker gives up on them.
CLOSE_GRACE_S = 2.0


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Parse the plan once per actor; raise the open-file limit to its hard limit and
    work out how many connections this actor can then hold."""
    settings["loris_plan"] = LorisPlan.from_wire(settings["loris"])
    soft, _ = fd_limit.raise_to_hard()
    settings["loris_fd_capacity"] = fd_limit.capacity(soft, FD_RESERVE)
    return settings


class _Attacker:
    """What every connection task of this actor shares: where, what, until when."""

    def __init__(self, ctx: WalkerContext, plan: LorisPlan,
                 addresses: list[tuple[Any, Any]], end: float) -> None:
        self.tally = ctx.tally
        self.rng = ctx.rng
        self.plan = plan
        self.addresses = addresses
        self.preferred = 0
        self.end = end
        self.opening = opening(plan, ctx.target.host_header)
        self.method = "POST" if plan.mode is Mode.BODY else "GET"
        self.rcvbuf = SLOW_READ_RCVBUF if plan.mode.reads_slowly else RCVBUF
        self.target = ctx.target

    async def attack_one(self, index: int) -> None:
        tally = self.tally
        tally.incr(OPENED)
        started = trio.current_time()
        sock, failure = await self._dial(index)
        if sock is None:
            if failure is not None:
                tally.incr_each((CONNECT_FAILED, failure.counter))
            return
        try:
            conn = sock
            if self.target.scheme == "https":
                conn = await self._secure(sock, index, started)
                if conn is None:
                    return
            tally.incr(CONNECTED)
            with trio.move_on_at(self.end):
                try:
                    await self._send(conn, self.opening)
                    if self.plan.mode.reads_slowly:
                        ending = await self._read_slowly(conn)
                    else:
                        ending = await self._drip(conn)
                except OSError as exc:
                    ending = ending_of(exc)
                    tally.keep_example(ending, {"connection": index, "error": str(exc)})
                tally.incr(ending)
        finally:
            sock.close()

    async def _secure(self, sock: Any, index: int, started: float) -> Any:
        """The TLS connection over ``sock``, or None once the failed handshake is counted
        (the attack ending mid-handshake counts nothing, as mid-connect)."""
        tally = self.tally
        deadline = min(started + self.plan.connect_timeout_s, self.end)
        with trio.move_on_at(self.end):
            try:
                return await tls_socket.secure(sock, self.target,
                                               deadline - trio.current_time())
            except net.TransportError as exc:
                example = {"connection": index, "error": str(exc), "when": "TLS handshake"}
                if exc.cause in ("reset", "eof"):
                    ending = RESET if exc.cause == "reset" else CLOSED_BY_SERVER
                    tally.incr_each((CONNECTED, ending))
                    tally.keep_example(ending, example)
                    return None
                failure = (ConnectFailure.TIMEOUT if exc.cause == "tls_timeout"
                           else ConnectFailure.OTHER)
                if deadline < self.end or failure is not ConnectFailure.TIMEOUT:
                    tally.incr_each((CONNECT_FAILED, failure.counter))
                    tally.keep_example(failure.counter, example)
        return None

    async def _dial(self, index: int) -> tuple[Any, ConnectFailure | None]:
        """A connected socket, or why there is none by the connect deadline (None: the
        attack ended while it was connecting)."""
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
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                    await sock.connect(sockaddr)
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    failure = connect_failure(exc)
                    self.tally.keep_example(failure.counter, {
                        "connection": index, "address": str(sockaddr), "error": str(exc)})
                    if failure is ConnectFailure.RESET:
                        break
                    continue
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                self.preferred = at
                return sock, failure
            return None, failure
        if deadline >= self.end:
            return None, None  # the attack ended first: still connecting, not failed
        return None, ConnectFailure.TIMEOUT

    async def _send(self, sock: Any, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[await sock.send(view):]
        self.tally.incr(BYTES_SENT, len(data))

    async def _drip(self, sock: Any) -> str:
        """Headers and body modes: a drip every interval, listening in between; the
        counter that says how the server ended the connection."""
        answers = _Answers(self.tally, self.method, repeat=False)
        interval = self.plan.interval_s
        next_at = trio.current_time() + interval
        body_sent = 0
        for index in range(MAX_DRIPS):
            with trio.move_on_at(next_at):
                for _ in range(MAX_READS_PER_INTERVAL):
                    ending = answers.feed(await sock.recv(RCVBUF))
                    if ending is not None:
                        return ending
                await trio.sleep_until(next_at)  # a server that streams: stop reading
            piece = drip(self.plan, index, self.rng, body_sent)
            if piece:
                await self._send(sock, piece)
                self.tally.incr(DRIPS)
                if self.plan.mode is Mode.BODY:
                    body_sent += len(piece)
            next_at += interval
        await trio.sleep_until(self.end)  # MAX_DRIPS sent: hold what is held
        return CLOSED_BY_SERVER  # not reached: the caller's scope ends at self.end

    async def _read_slowly(self, sock: Any) -> str:
        """Read and range modes: one byte per interval (repeating the request when a whole
        answer arrived on a kept-alive connection)."""
        answers = _Answers(self.tally, "GET", repeat=True)
        interval = self.plan.interval_s
        next_at = trio.current_time() + interval
        for _ in range(MAX_DRIPS):
            await trio.sleep_until(next_at)
            next_at += interval
            ending = answers.feed(await sock.recv(1))
            if ending == _REPEAT:
                await self._send(sock, self.opening)
                self.tally.incr(REPEATED)
            elif ending is not None:
                return ending
        await trio.sleep_until(self.end)
        return CLOSED_BY_SERVER


class _Answers:
    """What the server says on one attack connection: parsed while it parses, counted by
    status; after a malformed or oversized answer, only the close is still looked for."""

    __slots__ = ("method", "parser", "repeat", "tally")

    def __init__(self, tally: Any, method: str, repeat: bool) -> None:
        self.tally = tally
        self.method = method
        #: Read and range modes: a whole answer on a kept-alive connection is asked again.
        self.repeat = repeat
        self.parser: ResponseParser | None = self._fresh()

    def _fresh(self) -> ResponseParser:
        parser = ResponseParser(max_body_bytes=MAX_ANSWER_BODY)
        parser.expect(self.method)
        return parser

    def feed(self, data: bytes) -> str | None:
        """The ending counter when the connection is over (FIN, or a complete answer the
        server ends it with), ``_REPEAT`` after a whole answer on a kept-alive connection
        in the slow-read modes, else None."""
        parser = self.parser
        if not data:
            if parser is not None:
                parser.feed_eof()
                with contextlib.suppress(ResponseError):  # cut mid-answer: just the close
                    self._count(parser.next_response())
            return CLOSED_BY_SERVER
        self.tally.incr(BYTES_READ, len(data))
        if parser is None:
            return None
        parser.feed(data)
        try:
            response = parser.next_response()
        except ResponseTooLarge:
            self.parser = None
            return None
        except ResponseProtocolError as exc:
            self.parser = None
            self.tally.incr(MALFORMED)
            self.tally.keep_example(MALFORMED, {"error": str(exc)})
            return None
        if response is None:
            return None
        self._count(response)
        if self.repeat and response.keep_alive:
            self.parser = self._fresh()
            return _REPEAT
        return CLOSED_BY_SERVER

    def _count(self, response: Response | None) -> None:
        if response is not None:
            self.tally.incr(f"{STATUS}{response.status}")



async def run(ctx: WalkerContext) -> None:
    plan: LorisPlan = ctx.settings["loris_plan"]
    rank, count, _ = ctx.settings.get("slice_share", (0, 1, 0))
    tally = ctx.tally
    t0 = trio.current_time()
    end = ctx.deadline
    last_due = t0 + plan.duration_s
    mine = [j for j in plan.share(rank, count) if t0 + plan.due_s(j) < last_due]
    tally.incr(NOT_DUE, len(plan.share(rank, count)) - len(mine))
    capacity = int(ctx.settings.get("loris_fd_capacity", 1 << 30))
    if len(mine) > capacity:
        tally.incr(FD_LIMITED, len(mine) - capacity)
        tally.keep_example(FD_LIMITED, {"actor": ctx.actor_id, "share": len(mine),
                                        "capacity": capacity})
        mine = mine[:capacity]
    try:
        addresses = await net.resolve(ctx.target)
    except OSError as exc:  # the coordinator's pre-flight resolved it: rare, but counted
        tally.incr(OPENED, len(mine))
        tally.incr(CONNECT_FAILED, len(mine))
        tally.incr(ConnectFailure.OTHER.counter, len(mine))
        tally.keep_example(ConnectFailure.OTHER.counter, {"error": f"resolve: {exc}"})
        tally.incr(DONE)
        return
    attacker = _Attacker(ctx, plan, addresses, end)
    with trio.move_on_at(end + CLOSE_GRACE_S):
        async with trio.open_nursery() as nursery:
            for index in mine:
                due = t0 + plan.due_s(index)
                if due >= end:
                    break
                await trio.sleep_until(due)
                nursery.start_soon(attacker.attack_one, index)
    tally.incr(DONE)
