"""The I/O shell of ``assay backend``: trio + h11 (and wsproto) on loopback listeners.

How this works: one ``Backend`` per listener; each accepted connection gets a task that
feeds bytes to an ``h11.Connection`` and answers every complete request with what
``protocols.backend_echo`` builds. The bytes a request arrived as are tracked beside h11:
everything fed since the last request ended, less what h11 has not consumed yet
(``trailing_data``), is that request's raw bytes, recorded in the backend's ring (and the
``--record`` file). Every read waits at most ``IDLE_TIMEOUT_S`` and every write at most
``WRITE_TIMEOUT_S``; a request head larger than ``MAX_HEAD_BYTES`` is refused by h11
(431/400) and the connection closed. A ``/ws`` upgrade is handed, bytes and all, to
wsproto: the backend sends the echo document as the first text message, then echoes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws
from wsproto.utilities import RemoteProtocolError as WebSocketProtocolError

from protocols import backend_echo
from protocols.backend_echo import ReceivedRequest, ReceivedRing, Route

IDLE_TIMEOUT_S = 30.0
WRITE_TIMEOUT_S = 10.0
MAX_HEAD_BYTES = 16 * 1024
READ_SIZE = 65536
MAX_RAW_BYTES = backend_echo.MAX_RAW_BYTES
#: Most WebSocket messages echoed on one connection (a bound on the loop).
MAX_WS_MESSAGES = 100_000
#: RFC 6455 §4.2.1: a handshake the server does not accept gets "an appropriate error code
#: (such as 400 Bad Request)".
BAD_HANDSHAKE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass
class Backend:
    """One metadata backend: its id, its ring of received requests, its record file."""

    backend_id: int
    ring: ReceivedRing = field(default_factory=ReceivedRing)
    record_file: IO[str] | None = None
    connections: int = 0

    def record(self, connection_id: int, client_port: int, raw: bytes, error: str = "",
               length: int | None = None) -> None:
        entry = self.ring.add(time.time(), connection_id, client_port, raw, error, length)
        if self.record_file is not None:
            self.record_file.write(backend_echo.record_line(self.backend_id, entry))
            self.record_file.flush()

    async def serve(self, listener: trio.SocketListener) -> None:
        """Accept until cancelled; every connection in its own task."""
        async with trio.open_nursery() as nursery, listener:
            while True:
                stream = await listener.accept()
                self.connections += 1
                nursery.start_soon(self._connection, stream, self.connections)

    async def _connection(self, stream: trio.SocketStream, connection_id: int) -> None:
        try:
            async with stream:
                await _Exchange(self, stream, connection_id).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                OSError):
            return  # the peer went away or stalled: nothing to answer
        except (h11.ProtocolError, WebSocketProtocolError):
            return  # bytes this connection's parser refused: it ends, the others serve on


class _Exchange:
    """One connection: h11 plus the raw bytes of the request being read."""

    def __init__(self, backend: Backend, stream: trio.SocketStream, connection_id: int) -> None:
        self.backend = backend
        self.stream = stream
        self.connection_id = connection_id
        host, port = stream.socket.getpeername()[:2]
        self.client_host, self.client_port = str(host), int(port)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        #: The first MAX_RAW_BYTES of the request being read, and how many bytes of it
        #: were fed in all (a large body is counted, not kept).
        self.pending = bytearray()
        self.fed = 0
        self.served = 0

    async def _send(self, data: bytes) -> None:
        with trio.fail_after(WRITE_TIMEOUT_S):
            await self.stream.send_all(data)

    async def _receive(self) -> bytes:
        with trio.fail_after(IDLE_TIMEOUT_S):
            return await self.stream.receive_some(READ_SIZE)

    async def run(self) -> None:
        request: h11.Request | None = None
        body_length = 0
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                await self._refuse(exc)
                return
            if event is h11.NEED_DATA:
                data = await self._receive()
                self.fed += len(data)
                room = MAX_RAW_BYTES - len(self.pending)
                if room > 0:
                    self.pending += data[:room]
                self.h11.receive_data(data)
                if not data and self.pending and request is None:
                    self.backend.record(self.connection_id, self.client_port,
                                        bytes(self.pending), "closed mid-request", self.fed)
                    return
                continue
            if isinstance(event, h11.Request):
                request, body_length = event, 0
            elif isinstance(event, h11.Data):
                body_length += len(event.data)
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                if self.h11.their_state is h11.MIGHT_SWITCH_PROTOCOL:
                    # An upgrade request (h11 pauses after it): the bytes go to wsproto.
                    await self._websocket(request)
                    return
                if not await self._answer(request, body_length):
                    return
                request = None
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return

    def _take_raw(self) -> tuple[bytes, int]:
        """The bytes of the request just ended (its first MAX_RAW_BYTES) and its length:
        fed so far, less what h11 has not read, which starts the next request."""
        unread = bytes(self.h11.trailing_data[0])
        length = self.fed - len(unread)
        raw = bytes(self.pending[:length])
        self.pending, self.fed = bytearray(unread[:MAX_RAW_BYTES]), len(unread)
        return raw, length

    def _received(self, request: h11.Request, body_length: int) -> ReceivedRequest:
        self.served += 1
        return ReceivedRequest(
            method=request.method.decode("latin-1"), target=request.target.decode("latin-1"),
            http_version=request.http_version.decode("latin-1"),
            headers=backend_echo.header_pairs(request.headers.raw_items()),
            body_length=body_length, client_host=self.client_host,
            client_port=self.client_port, connection_id=self.connection_id,
            connection_request=self.served)

    async def _answer(self, request: h11.Request, body_length: int) -> bool:
        """Answer one request; False when the connection ends after it."""
        received = self._received(request, body_length)
        route = backend_echo.route_of(received.target, False)
        raw, length = self._take_raw()
        if backend_echo.recorded(route):
            self.backend.record(self.connection_id, self.client_port, raw, length=length)
        backend_id = self.backend.backend_id
        if route is Route.HEALTH:
            body, ctype = b"ok\n", "text/plain"
        elif route is Route.RECEIVED:
            body = backend_echo.received_page(backend_id, self.backend.ring,
                                              backend_echo.parse_since(received.target))
            ctype = "application/json"
        elif route is Route.SSE:
            body = backend_echo.sse_event(backend_echo.echo_document(backend_id, received))
            ctype = "text/event-stream"
        else:
            body, ctype = backend_echo.echo_body(backend_id, received), "application/json"
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))),
                   ("X-Assay-Backend", str(backend_id))]
        if route is Route.SSE:
            headers.append(("Cache-Control", "no-cache"))
        data = self.h11.send(h11.Response(status_code=200, headers=headers))
        data += self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
        await self._send(data)
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True

    async def _refuse(self, exc: h11.RemoteProtocolError) -> None:
        """Bytes h11 refuses: recorded with the reason, answered with its status, closed."""
        self.backend.record(self.connection_id, self.client_port, bytes(self.pending),
                            f"refused: {exc}", self.fed)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            data = self.h11.send(h11.Response(status_code=status, headers=[
                ("Content-Length", "0"), ("Connection", "close")]))
            await self._send(data + self.h11.send(h11.EndOfMessage()))

    async def _websocket(self, request: h11.Request) -> None:
        received = self._received(request, 0)
        route = backend_echo.route_of(received.target, True)
        if route is not Route.WS:
            data = self.h11.send(h11.Response(status_code=404, headers=[
                ("Content-Length", "0"), ("Connection", "close")]))
            await self._send(data + self.h11.send(h11.EndOfMessage()))
            return
        unread = bytes(self.h11.trailing_data[0])
        head, length = self._take_raw()
        self.backend.record(self.connection_id, self.client_port, head, length=length)
        conn = WSConnection(ConnectionType.SERVER)
        try:
            conn.receive_data(head + unread)
        except WebSocketProtocolError:  # e.g. no Sec-WebSocket-Key: not a handshake
            await self._send(BAD_HANDSHAKE)
            return
        for _ in range(MAX_WS_MESSAGES):
            for event in conn.events():
                if isinstance(event, ws.Request):
                    out = conn.send(ws.AcceptConnection())
                    out += conn.send(ws.TextMessage(data=backend_echo.echo_body(
                        self.backend.backend_id, received).decode()))
                    await self._send(out)
                elif isinstance(event, ws.TextMessage):
                    await self._send(conn.send(ws.TextMessage(
                        data=event.data, message_finished=event.message_finished)))
                elif isinstance(event, ws.BytesMessage):
                    await self._send(conn.send(ws.BytesMessage(
                        data=event.data, message_finished=event.message_finished)))
                elif isinstance(event, ws.Ping):
                    await self._send(conn.send(event.response()))
                elif isinstance(event, ws.CloseConnection):
                    await self._send(conn.send(event.response()))
                    return
            data = await self._receive()
            if not data:
                return
            conn.receive_data(data)


async def open_listeners(host: str, ports: list[int]) -> list[trio.SocketListener]:
    """Bind every port first (0: an ephemeral one) so a port in use fails before any
    backend serves. Raises OSError on the first that cannot be bound."""
    listeners: list[trio.SocketListener] = []
    try:
        for port in ports:
            listeners.extend(await trio.open_tcp_listeners(port, host=host))
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    return listeners


def bound_port(listener: trio.SocketListener) -> int:
    return int(listener.socket.getsockname()[1])
