"""``GET /ws``: an RFC 6455 echo endpoint on wsproto.

How this works: the opening handshake is an ordinary h11 request, checked here against
RFC 6455 §4.2.1 and answered with 101 through h11 (which then hands over the bytes it has
buffered past the request). From there wsproto's frame-level ``Connection`` does the framing,
and this module decides the replies: text and binary messages are echoed whole, a ping gets
a pong, a close gets a close. A frame wsproto rejects (unmasked, bad UTF-8, oversized
control frame, reserved bits...) arrives as a ``CloseConnection`` while the connection is
still open; the server answers it with a Close frame carrying wsproto's code and then closes
TCP ("Fail the WebSocket Connection", RFC 6455 §7.1.7). Messages over
``MAX_WS_MESSAGE_BYTES`` are refused the same way with 1009, as soon as a frame header
declares too much (``wsframes.FrameScanner`` reads headers ahead of wsproto) or the received
fragments add up to too much.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import sys
from typing import TYPE_CHECKING

import h11
import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

from refapp.app import Request, Response, error
from refapp.config import MAX_WS_MESSAGE_BYTES
from refapp.defects import CRASH_EXIT_STATUS
from refapp.transport import PeerGone, graceful_close, receive, send_all
from refapp.ws_defects import CloseCodeSpy
from refapp.ws_deflate import accept as accept_deflate
from refapp.wsframes import FrameScanner

if TYPE_CHECKING:
    from refapp.server import HttpConnection

_VERSION = (b"sec-websocket-version", b"13")
_UPGRADE_REQUIRED = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"), _VERSION]
#: wsproto's reasons for refusing a Close frame's code (its ``_process_close``): a code out
#: of 1000-4999, or one RFC 6455 §7.4.1 reserves for local use (1005, 1006, 1015).
_BAD_CLOSE_CODE = ("CLOSE with invalid code", "remote CLOSE with local-only reason")


def _tokens(value: bytes | None) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")} if value else set()


def handshake_error(request: Request) -> Response | None:
    """Why an opening handshake is refused (RFC 6455 §4.2.1, §4.4), or None if it is valid."""
    headers = request.headers
    if b"websocket" not in _tokens(headers.get(b"upgrade")):
        return error(426, "WebSocket upgrade required", _UPGRADE_REQUIRED)
    if b"upgrade" not in _tokens(headers.get(b"connection")):
        return error(400, "Connection header must contain Upgrade")
    if headers.get(b"sec-websocket-version", b"").strip() != b"13":
        return error(426, "unsupported Sec-WebSocket-Version", [_VERSION])
    key = headers.get(b"sec-websocket-key", b"").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except (ValueError, binascii.Error):
        return error(400, "missing or malformed Sec-WebSocket-Key")
    return None


async def serve_websocket(http: HttpConnection, request: Request) -> bool:
    """Answer a ``GET /ws``; True if the connection switched protocols (and is now spent)."""
    refusal = handshake_error(request)
    if refusal is not None:
        await http.send_response(refusal)
        return False
    key = request.headers[b"sec-websocket-key"].strip()
    accept = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", generate_accept_token(key)),
    ]
    bomb = http.state.config.has("ws-deflate-bomb")
    deflate, extension = accept_deflate(
        request.headers.get(b"sec-websocket-extensions"), MAX_WS_MESSAGE_BYTES, not bomb)
    if deflate:  # permessage-deflate, RFC 7692 (refapp.ws_deflate)
        accept.append((b"sec-websocket-extensions", deflate))
    await http.send_events(h11.InformationalResponse(status_code=101, headers=accept))
    trailing, closed = http.conn.trailing_data
    session = _Session(http, trailing, closed, [extension] if deflate else [])
    stats = http.state.stats
    stats.ws_sessions += 1
    try:
        await session.run()
    finally:
        stats.ws_sessions -= 1
    return True


class _Session:
    """One upgraded connection: reads frames, echoes, closes per RFC 6455 §7."""

    def __init__(
        self, http: HttpConnection, trailing: bytes, closed: bool, extensions: list[Extension]
    ) -> None:
        config = http.state.config
        self._http = http
        self._stream = http.stream
        self._send_timeout = config.send_timeout
        self._idle = config.ws_idle_timeout
        self._hang_on_bad_frame = config.has("ws-hang-on-bad-frame")
        self._crash_on_close_code = config.has("crash-on-ws-close-code")
        self._drop_large = config.has("ws-drop-large")
        self._drop_empty = config.has("ws-drop-empty")
        self._spy = CloseCodeSpy() if config.has("ws-echo-close-code") else None
        self._scanner = FrameScanner(mask_unmasked=config.has("ws-accept-unmasked"))
        self._ws = Connection(ConnectionType.SERVER, extensions=extensions)
        self._deflate_bomb = bool(extensions) and config.has("ws-deflate-bomb")
        self._parts: list[str | bytes] = []
        self._size = 0
        self._declared = 0
        self._too_big = False
        self._feed(trailing)
        if closed:
            self._feed(None)

    def _feed(self, data: bytes | None) -> None:
        """Hand bytes to wsproto, unless a frame header already declares too big a message."""
        if data:
            if self._spy is not None:
                self._spy.feed(data)
            data, heads = self._scanner.feed(data)
            for head in heads:
                if head.is_data:
                    self._declared = head.length + (self._declared if head.opcode == 0 else 0)
                    if self._declared > MAX_WS_MESSAGE_BYTES:
                        self._too_big = True
                        return
        self._ws.receive_data(data)

    async def _send(self, event: Event) -> None:
        await send_all(self._stream, self._ws.send(event), self._send_timeout)

    async def run(self) -> None:
        try:
            while True:
                for event in self._ws.events():
                    if not await self._handle(event):
                        return
                if self._too_big:
                    await self._fail(CloseReason.MESSAGE_TOO_BIG, "message too big")
                    return
                data = None
                with trio.move_on_after(self._idle):
                    data = await receive(self._stream, math.inf)
                if data is None:
                    await self._fail(CloseReason.GOING_AWAY, "idle timeout")
                    return
                self._feed(data or None)
        except PeerGone as exc:
            self._http.note_gone(exc)

    async def _handle(self, event: Event) -> bool:
        """React to one event; False once the connection is finished."""
        if isinstance(event, TextMessage | BytesMessage):
            return await self._message(event)
        if isinstance(event, Ping):
            await self._send(event.response())
            return True
        if isinstance(event, CloseConnection):
            state = self._ws.state
            if state is ConnectionState.REMOTE_CLOSING:
                await self._send(event.response())
                await graceful_close(self._stream)
            elif state is ConnectionState.OPEN:
                # A frame wsproto refused: fail the connection with its close code.
                if self._crash_on_close_code and event.reason in _BAD_CLOSE_CODE:
                    _crash(event.reason)
                echo = self._spy.echo(event.reason or "") if self._spy is not None else None
                if echo is not None:  # ws-echo-close-code: the client's code sent back
                    await send_all(self._stream, echo, self._send_timeout)
                    await graceful_close(self._stream)
                    return False
                if self._hang_on_bad_frame:
                    await trio.sleep_forever()
                await self._fail(event.code, event.reason or "")
            return False
        return True

    async def _message(self, event: TextMessage | BytesMessage) -> bool:
        part = event.data
        self._size += len(part.encode()) if isinstance(part, str) else len(part)
        if self._size > MAX_WS_MESSAGE_BYTES and not self._deflate_bomb:
            await self._fail(CloseReason.MESSAGE_TOO_BIG, "message too big")
            return False
        self._parts.append(part)
        if not event.message_finished:
            return True
        if isinstance(event, TextMessage):
            reply: Event = TextMessage(data="".join(p for p in self._parts if isinstance(p, str)))
        else:
            reply = BytesMessage(data=b"".join(p for p in self._parts if not isinstance(p, str)))
        self._parts.clear()
        self._size = 0
        if self._drop_empty and not reply.data:
            return True  # ws-drop-empty: a valid empty message silently dropped (daphne)
        await self._send(reply)
        return True

    async def _fail(self, code: int, reason: str) -> None:
        """Send a Close frame with ``code``, then close TCP without waiting for the reply."""
        if self._drop_large and code == CloseReason.MESSAGE_TOO_BIG:
            await graceful_close(self._stream)  # ws-drop-large: no Close, TCP dropped (daphne)
            return
        if self._ws.state is ConnectionState.OPEN:
            await self._send(CloseConnection(code=code, reason=reason[:100]))
        await graceful_close(self._stream)


def _crash(reason: str) -> None:
    """The ``crash-on-ws-close-code`` defect: exit at once, as a segfaulting server would."""
    sys.stderr.write(f"refapp: crash-on-ws-close-code: {reason}, exiting\n")
    sys.stderr.flush()
    os._exit(CRASH_EXIT_STATUS)
