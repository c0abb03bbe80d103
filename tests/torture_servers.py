"""Small trio servers on 127.0.0.1:0 for the ws/sse/h2c walker tests: correct and defective.

Each ``*_server`` is a stream handler for ``serving(handler)``, which yields the port and
stops the server when the block ends. ``walker_ctx`` builds a WalkerContext whose deadline
is ``seconds`` from now and which collects reported violations in ``ctx.violations``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request
from wsproto.utilities import RemoteProtocolError

from actors.walker import Target, WalkerContext
from protocols.tally import Tally

Handler = Callable[[trio.SocketStream], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    async def guarded(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            async with stream:
                await handler(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, guarded, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


class Ctx(WalkerContext):
    violations: list[tuple[str, dict[str, Any]]]


def walker_ctx(port: int, slice_name: str, settings: dict[str, Any], seconds: float) -> Any:
    violations: list[tuple[str, dict[str, Any]]] = []
    ctx = WalkerContext(
        actor_id=0,
        walker_id=0,
        slice_name=slice_name,
        seed=7,
        rng=random.Random(7),
        target=Target.from_url(f"http://127.0.0.1:{port}/"),
        tally=Tally(),
        settings=settings,
        deadline=trio.current_time() + seconds,
        violation_sink=lambda _walker, counter, payload: violations.append((counter, payload)),
    )
    ctx.violations = violations  # type: ignore[attr-defined]
    return ctx


def high_counters(counters: dict[str, int]) -> dict[str, int]:
    names = ("ws.accepted_bad_frame", "ws.hang_no_close", "sse.leak", "h2c.crashed")
    return {name: counters[name] for name in names if counters.get(name)}


# --- WebSocket ---------------------------------------------------------------------------


async def wsproto_server(stream: trio.SocketStream) -> None:
    """A correct echo endpoint: wsproto does the protocol."""
    ws = WSConnection(ConnectionType.SERVER)
    while True:
        data = await stream.receive_some(65536)
        try:
            ws.receive_data(data or None)
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            await stream.send_all(ws.send(hint) if hint is not None else b"")
            return
        out = b""
        for event in ws.events():
            if isinstance(event, Request):
                out += ws.send(AcceptConnection())
            elif isinstance(event, Message):
                echo = type(event)(data=event.data, message_finished=event.message_finished)
                out += ws.send(echo)
            elif isinstance(event, Ping):
                out += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                if ws.state not in (ConnectionState.CLOSED, ConnectionState.LOCAL_CLOSING):
                    out += ws.send(event.response())
                await stream.send_all(out)
                return
        if out:
            await stream.send_all(out)
        if not data:
            return


async def _raw_handshake(stream: trio.SocketStream) -> bytes | None:
    """Accept any upgrade request (even without a key or with a wrong version)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    key = b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    accept = base64.b64encode(
        hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    await stream.send_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return rest


async def lenient_echo_server(stream: trio.SocketStream) -> None:
    """Defective: ignores masking, RSV bits and opcodes; echoes data, pongs pings."""
    buf = await _raw_handshake(stream)
    if buf is None:
        return
    while True:
        while len(buf) >= 2:
            masked, length = buf[1] & 0x80, buf[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            key = buf[offset : offset + 4] if masked else b""
            offset += len(key)
            if len(buf) < offset + length:
                break
            payload = bytes(buf[offset : offset + length])
            if key:
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            opcode = buf[0] & 0x0F
            buf = buf[offset + length :]
            if opcode == 0x9:
                await stream.send_all(bytes([0x8A, len(payload) & 0x7F]) + payload[:125])
            elif opcode == 0x8:
                await stream.send_all(bytes([0x88, len(payload) & 0x7F]) + payload[:125])
                return
            elif payload and len(payload) < 126:
                await stream.send_all(bytes([0x81, len(payload)]) + payload)
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buf += chunk


async def hang_after_handshake_server(stream: trio.SocketStream) -> None:
    """Defective: completes the handshake, then reads and never answers anything."""
    if await _raw_handshake(stream) is None:
        return
    while await stream.receive_some(65536):
        pass


async def not_found_server(stream: trio.SocketStream) -> None:
    """No such route: every request gets a 404 and a close."""
    await stream.receive_some(65536)
    await stream.send_all(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )


# --- SSE -----------------------------------------------------------------------------------


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        buf += chunk
    return buf


class SseBroker:
    """An SSE endpoint with /stats (JSON) and /metrics (Prometheus) subscriber counts.

    Correct: a subscriber's slot is released when a write to it fails. ``leaky``: slots are
    never released, and once ``limit`` are held new subscribers get 503.
    """

    def __init__(
        self, *, leaky: bool = False, limit: int = 1000, tick: float = 0.02, refusal: int = 503
    ) -> None:
        self.leaky = leaky
        self.limit = limit
        self.tick = tick
        self.refusal = refusal
        self.subscribers = 0

    async def handler(self, stream: trio.SocketStream) -> None:
        head = await _read_head(stream)
        if head is None:
            return
        target = head.split(b" ", 2)[1]
        if target == b"/stats":
            body = b'{"sse_subscribers": %d, "other": {"x": 1}}' % self.subscribers
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        elif target == b"/metrics":
            body = (b"# TYPE sse_subscribers gauge\nsse_subscribers{shard=\"a\"} %d\n"
                    b"sse_subscribers{shard=\"b\"} 0\nother_metric 5\n" % self.subscribers)
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                                  + body)
        elif target == b"/events":
            await self._subscribe(stream)
        else:
            await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    async def _subscribe(self, stream: trio.SocketStream) -> None:
        if self.subscribers >= self.limit:
            await stream.send_all(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n" % self.refusal)
            return
        self.subscribers += 1
        try:
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
            n = 0
            while True:
                event = b"id: %d\nevent: tick\ndata: tick %d\ndata: more\n\n" % (n, n)
                await stream.send_all(b"%x\r\n%s\r\n" % (len(event), event))
                n += 1
                await trio.sleep(self.tick)
        finally:
            if not self.leaky:
                self.subscribers -= 1


async def hang_server(stream: trio.SocketStream) -> None:
    """Accepts, reads, never answers."""
    while await stream.receive_some(65536):
        pass


# --- h2c -----------------------------------------------------------------------------------

OK_CLOSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class H2cServer:
    """``decline``: answers upgrades in HTTP/1.1 (correct). ``upgrade``: a real h2c server
    built on the h2 package (correct). ``garbage``: answers upgrades with junk. ``crash``:
    an upgrade client that leaves before its response kills the server for good."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.dead = False

    async def handler(self, stream: trio.SocketStream) -> None:
        if self.dead:
            return
        head = await _read_head(stream)
        if head is None:
            return
        request, _, rest = head.partition(b"\r\n\r\n")
        settings = [line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                    if line.lower().startswith(b"http2-settings:")]
        if not settings:
            await stream.send_all(OK_CLOSE)
            return
        if self.mode == "crash":
            with trio.move_on_after(0.02):
                try:
                    if not await stream.receive_some(65536):
                        self.dead = True
                except (trio.BrokenResourceError, OSError):
                    self.dead = True
            if self.dead:
                return
        if self.mode == "garbage":
            await stream.send_all(b"\x00\x00\x05\x07garbage!")
            return
        if self.mode == "upgrade":
            await self._upgrade(stream, settings[0].decode(), rest)
            return
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        while await stream.receive_some(65536):
            pass

    async def _upgrade(self, stream: trio.SocketStream, settings: str, rest: bytes) -> None:
        import h2.config
        import h2.connection
        import h2.exceptions

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_upgrade_connection(settings)
        conn.send_headers(1, [(":status", "200"), ("content-length", "2")])
        conn.send_data(1, b"ok", end_stream=True)
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            + conn.data_to_send()
        )
        data = rest
        while True:
            try:
                conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                await stream.send_all(conn.data_to_send())
                return
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
            data = await stream.receive_some(65536)
            if not data:
                return
