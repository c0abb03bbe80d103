"""HTTP/1.1 connection handling: h11 on one side, the socket on the other, deadlines between.

How this works: one ``HttpConnection`` per accepted socket runs request cycles until the
connection ends. A cycle reads a request head under the header deadline (after waiting at
most the idle timeout for its first byte), checks framing and size limits before reading the
body, reads the body with a per-read deadline, and then either answers through ``App`` or
hands the socket to the WebSocket or SSE code. h11 does the parsing and keeps the cycle
honest: a malformed request surfaces as ``RemoteProtocolError`` with a status hint, which is
answered with that status and ``Connection: close`` before a lingering close.

Every response is encoded into one buffer and written with one ``send_all`` (pipelined
responses are batched; see ``refapp.http_output``); the parser's input, with the
parser-level defects, is ``refapp.http_input``. Reading a request head's fields (path,
Host, repeated fields) is ``refapp.request_head``. Nothing on the hot path logs;
per-connection failures are logged at debug level by ``handle_connection``, which is the one
place that lets a connection die without the server noticing.
"""

from __future__ import annotations

import logging
import math
from typing import NoReturn

import h11
import trio

from refapp.app import Kind, Request, Response, error
from refapp.config import MAX_BODY_BYTES, MAX_HEAD_BYTES
from refapp.http_input import HttpInput
from refapp.http_output import HttpOutput
from refapp.request_head import HOST, header_fields, is_h2c_upgrade, request_path
from refapp.sse import stream_events
from refapp.state import ServerState
from refapp.transport import PeerGone, receive
from refapp.websocket import serve_websocket
from refapp.worker_pool import Worker

log = logging.getLogger("refapp")

_NOT_FOUND = error(404, "not found")
_ALL_METHODS = b"GET, HEAD, POST, PUT, DELETE, OPTIONS"
_BAD_ASTERISK = error(400, "the asterisk form is only for OPTIONS (RFC 9112 §3.2.4)")


class _Done(Exception):
    """The connection is finished (already answered or nothing left to answer)."""


class _Leaked(Exception):
    """``fd-leak-mid-header``: the peer left mid-head and the error path forgets the socket."""


class HttpConnection(HttpInput, HttpOutput):
    """One client socket served as a sequence of HTTP/1.1 request cycles."""

    def __init__(self, stream: trio.SocketStream, state: ServerState) -> None:
        config = state.config
        self.stream = stream
        self.state = state
        self._config = config
        self._stats = state.stats
        self._app = state.app
        self._h2c_crash = config.has("h2c-crash")
        self._leak_bodies = config.has("leak-on-reset-mid-body")
        self._leak_mid_header = config.has("fd-leak-mid-header")
        self._merge_trailers = config.has("merge-trailers")
        self._init_input(config)
        self._deferred = bytearray()
        # ``worker-pool-starvation``: a worker held while a request is read, no deadlines.
        pool = state.worker_pool
        self._worker = Worker(pool) if pool is not None else None
        self._header_timeout = math.inf if pool is not None else config.header_timeout
        self._body_timeout = math.inf if pool is not None else config.body_timeout

    # -- the cycle --------------------------------------------------------------------------

    async def serve(self) -> None:
        """Serve request cycles until the connection ends; never raises ``_Done``."""
        first = True
        try:
            while True:
                request = await self._read_request(first)
                first = False
                if await self._dispatch(request):
                    return
                conn = self.conn
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    await self._close()
                    return
                self._next_cycle()
        except _Done:
            return
        finally:
            if self._worker is not None:
                self._worker.give_back()

    async def _read_request(self, first: bool) -> Request:
        config = self._config
        if self._worker is not None:
            await self._worker.take()
        if not self._buffered():
            timeout = self._header_timeout if first else config.idle_timeout
            try:
                data = await self._receive(timeout)
            except trio.TooSlowError:
                raise _Done from None
            except PeerGone as exc:
                self.note_gone(exc)
                raise _Done from None
            if not data:
                raise _Done
            self._feed(data)
        try:
            with trio.fail_after(self._header_timeout):
                event = await self._next_event(math.inf)
        except trio.TooSlowError:
            await self._reject(408, "request head timeout")
        if type(event) is not h11.Request:
            raise _Done
        self._stats.requests += 1
        if self.state.hanging:
            await self._flush()
            await trio.sleep_forever()
        headers, size = header_fields(event.headers)
        if size + len(event.target) > MAX_HEAD_BYTES:
            await self._reject(431, "request header section too large")
        if HOST.fullmatch(headers.get(b"host", b"")) is None:
            # RFC 9112 §3.2: MUST answer 400 to an invalid or repeated Host.
            await self._reject(400, "invalid Host header")
        request = Request(event.method, request_path(event.target), headers)
        if event.target == b"*":
            request.path = "*"
        await self._check_head(headers)
        request.body = await self._read_body(request.headers if self._merge_trailers else None)
        if self._worker is not None:
            self._worker.give_back()
        return request

    async def _check_head(self, headers: dict[bytes, bytes]) -> None:
        """Refuse what must not be read: ambiguous framing, oversized or unaffordable bodies."""
        if b"transfer-encoding" in headers and b"content-length" in headers:
            # RFC 9112 §6.1: such a request is a smuggling attempt; reject and close.
            await self._reject(400, "both Transfer-Encoding and Content-Length")
        length = headers.get(b"content-length")
        if length is not None and int(length.partition(b",")[0]) > MAX_BODY_BYTES:
            await self._reject(413, "request body too large")
        if self.state.body_pool_exhausted:
            await self._reject(503, "no request slots left", [(b"retry-after", b"1")])
        if self.conn.they_are_waiting_for_100_continue:
            await self.send_events(h11.InformationalResponse(status_code=100, headers=[]))

    async def _read_body(self, merge_into: dict[bytes, bytes] | None = None) -> bytes:
        """The whole body. Trailer fields are read and dropped (RFC 9112 §7.1.2 lets a
        recipient discard them); ``merge_into`` is the ``merge-trailers`` defect."""
        body = bytearray()  # many tiny chunks must not cost quadratic time
        try:
            while True:
                event = await self._next_event(self._body_timeout)
                if type(event) is h11.Data:
                    body += event.data
                    if len(body) > MAX_BODY_BYTES:
                        await self._reject(413, "request body too large")
                elif type(event) is h11.EndOfMessage:
                    if merge_into is not None:  # the defect: trailers join the header fields
                        for name, value in event.headers:
                            held = merge_into.get(name)
                            merge_into[name] = value if held is None else held + b", " + value
                    return bytes(body)
                else:
                    raise _Done
        except trio.TooSlowError:
            await self._reject(408, "request body timeout")
        raise AssertionError("unreachable")

    async def _next_event(self, read_timeout: float) -> h11.Event | type[h11.PAUSED]:
        """The next h11 event, reading as needed; protocol errors are answered and end it."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._reject(exc.error_status_hint, str(exc))
            if event is not h11.NEED_DATA:
                return event
            in_body = self.conn.their_state is h11.SEND_BODY
            try:
                data = await self._receive(read_timeout)
            except PeerGone as exc:
                self.note_gone(exc)
                if in_body:
                    self._body_aborted()
                self._maybe_leak(in_body)
                raise _Done from None
            if data:
                self._feed(data)
                continue
            self._maybe_leak(in_body)
            if in_body:
                self._body_aborted()
            elif self._buffered():
                self._stats.faults.half_closes += 1
            self._feed_eof()

    def _maybe_leak(self, in_body: bool) -> None:
        """``fd-leak-mid-header``: a peer gone with part of a request head buffered."""
        if self._leak_mid_header and not in_body and self._buffered():
            raise _Leaked

    def _body_aborted(self) -> None:
        self._stats.faults.aborted_bodies += 1
        if self._leak_bodies:
            # The defect: the abort path forgets to return the body slot to its pool.
            self._stats.leaked_body_slots += 1

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> bool:
        """Answer one request; True if the connection is spent (switched or streamed)."""
        match = self._app.router.match(request.path)
        if match is None:
            if request.path != "*":
                response = _NOT_FOUND
            elif request.method == b"OPTIONS":
                response = Response(204, [(b"allow", _ALL_METHODS)])
            else:
                response = _BAD_ASTERISK
        elif match.route.kind is Kind.PLAIN or request.method != b"GET":
            response = self._app.respond(request, match)
        elif match.route.kind is Kind.WEBSOCKET:
            return await serve_websocket(self, request)
        else:
            await stream_events(self, request)
            return True
        if self._h2c_crash and is_h2c_upgrade(request):
            return await self._answer_h2c_defective(request, response)
        await self.send_response(response, head_only=request.method == b"HEAD")
        return False

    async def _answer_h2c_defective(self, request: Request, response: Response) -> bool:
        """The ``h2c-crash`` path: peek for an HTTP/2 preface; a vanished peer kills accept.

        The defective server reads ahead for the client's connection preface before it
        declines the upgrade, and its error handling for that read escapes into the accept
        loop: a client that sends FIN or RST before the response stops the server accepting.
        """
        vanished = False
        with trio.move_on_after(0.05):
            try:
                data = await self._receive(math.inf)
            except PeerGone:
                data = b""
            vanished = not data
            if data:
                self._feed(data)
        if not vanished:
            try:
                await self.send_response(response, head_only=request.method == b"HEAD")
                return False
            except PeerGone:
                pass
        self.state.stop_accepting()
        return True

    async def _receive(self, timeout: float) -> bytes:
        await self._flush()
        return await receive(self.stream, timeout)

    async def _reject(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> NoReturn:
        """Answer an error with ``Connection: close`` (if a response can still be sent),
        close the connection gracefully, and end the cycle by raising ``_Done``."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await self.send_response(error(status, message, headers), close=True)
            except PeerGone as exc:
                self.note_gone(exc)
                raise _Done from None
            except (trio.TooSlowError, h11.LocalProtocolError):
                raise _Done from None
        await self._close()
        raise _Done

    def note_gone(self, exc: PeerGone) -> None:
        """Count a vanished peer (resets only; a clean EOF is not a fault)."""
        if exc.reset:
            self._stats.faults.resets += 1


async def handle_connection(stream: trio.SocketStream, state: ServerState) -> None:
    """Serve one accepted socket; whatever goes wrong stays inside this connection."""
    stats = state.stats
    slots = state.connection_slots  # only with fd-leak-mid-header
    leaked = holding = False
    stats.connections += 1
    stats.connections_total += 1
    try:
        if slots is not None:
            await slots.acquire()
            holding = True
        await HttpConnection(stream, state).serve()
    except _Leaked:
        leaked = True  # the defect: neither the socket nor its slot is ever given back
        state.leaked_streams.append(stream)
    except PeerGone as exc:
        if exc.reset:
            stats.faults.resets += 1
    except Exception:
        log.debug("connection failed", exc_info=True)
    finally:
        stats.connections -= 1
        if not leaked:
            if slots is not None and holding:
                slots.release()
            await trio.aclose_forcefully(stream)
