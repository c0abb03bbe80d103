"""The reference server's response side: encode through h11, batch pipelined answers,
write with one ``send_all``.

How this works: every response is encoded into one buffer and written with one
``send_all``. While the next pipelined request is already buffered, a response waits in
``_deferred`` until the server is about to block (a read, a hang, a close) or the batch
grows large. ``HttpOutput`` is the base of ``refapp.server.HttpConnection``; the SSE and
WebSocket code write through its ``send_*`` methods. Separate from the request cycle
because writing and batching are one concern and reading requests another.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING

import h11
import trio

from refapp.transport import graceful_close, send_all

if TYPE_CHECKING:
    from refapp.app import Response
    from refapp.config import ServerConfig

_PHRASES = {status.value: status.phrase.encode() for status in HTTPStatus}
_SERVER = (b"server", b"assay-refapp")
_CLOSE = (b"connection", b"close")
_NO_LENGTH = frozenset({204, 304})
#: Deferred pipelined responses are written once they reach this size.
_DEFER_LIMIT = 64 * 1024


class _DateCache:
    """The ``Date`` header (RFC 9110 §6.6.1), formatted at most once a second."""

    second = -1
    value = (b"date", b"")

    @classmethod
    def header(cls) -> tuple[bytes, bytes]:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.value = (b"date", formatdate(now, usegmt=True).encode())
        return cls.value


class HttpOutput:
    """Writing responses on one connection; the subclass owns the parser and the input."""

    stream: trio.SocketStream
    conn: h11.Connection
    _config: ServerConfig
    _deferred: bytearray

    def _buffered(self) -> bool:
        """Whether part of the next request has already been received (the subclass knows)."""
        raise NotImplementedError

    async def _write(self, data: bytes, *, may_defer: bool = False) -> None:
        """Send ``data`` after anything deferred; defer it too if more requests are queued.

        Pipelined requests are answered with one write per batch instead of one per response:
        while the next request is already buffered, a response waits in ``_deferred`` until
        the server is about to block (a read, a hang, a close) or the batch grows large.
        """
        if self._deferred:
            data = bytes(self._deferred) + data
            self._deferred.clear()
        if may_defer and len(data) < _DEFER_LIMIT and self._buffered():
            self._deferred += data
            return
        await send_all(self.stream, data, self._config.send_timeout)

    async def _flush(self) -> None:
        if self._deferred:
            await self._write(b"")

    async def _close(self) -> None:
        await self._flush()
        await graceful_close(self.stream)

    async def send_events(self, *events: h11.Event) -> None:
        await self._write(b"".join(self.conn.send(event) or b"" for event in events))

    async def send_response(
        self, response: Response, *, close: bool = False, head_only: bool = False
    ) -> None:
        """Write a whole response in one send; ``close`` adds ``Connection: close``."""
        status = response.status
        headers = [_DateCache.header(), _SERVER, *response.headers]
        if status not in _NO_LENGTH:
            headers.append((b"content-length", b"%d" % len(response.body)))
        if close:
            headers.append(_CLOSE)
        conn = self.conn
        data = conn.send(
            h11.Response(status_code=status, headers=headers, reason=_PHRASES.get(status, b""))
        )
        if response.body and not head_only:
            data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
        await self._write(data, may_defer=not close)

    async def send_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """A response head without a length: h11 picks chunked (1.1) or close-delimited."""
        await self.send_events(
            h11.Response(
                status_code=status,
                headers=[_DateCache.header(), _SERVER, *headers],
                reason=_PHRASES.get(status, b""),
            )
        )

    async def send_body_part(self, data: bytes) -> None:
        await self._write(self.conn.send(h11.Data(data=data)))
