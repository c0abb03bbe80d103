"""TLS for the walkers that keep thousands of bare sockets (``assay hold``, ``assay loris``).

How this works: those walkers dial with a bare ``trio.socket`` (the socket options they
need are set before connect) and then only ever ``send`` and ``recv`` on it. For an
``https://`` target ``secure`` completes a TLS handshake on the connected socket
(``actors.tls.handshake``: the run's ``--ca-file``/``--insecure``/``--sni``, ALPN
http/1.1) and returns a ``TlsSocket``: the same two calls, through a ``trio.SSLStream``,
so the walkers' loops stay as they are and a server's TLS limits (handshake timeouts,
session caches, per-connection TLS memory) apply to real TLS clients. A broken TLS
connection raises ``ConnectionResetError`` where the bare socket raises an ``OSError``,
and a peer that closes without close_notify reads as EOF, as over TCP.

Why not ``actors.tls.wrap_nonblocking``: it needs a stdlib socket, where these walkers
hold trio's; a ``trio.SSLStream`` over the same socket costs one OpenSSL object per
connection (tens of kilobytes: TLS connections are dearer to hold than TCP ones, on both
sides, which is the point of holding them).
"""

from __future__ import annotations

from typing import Any

import trio

from actors import tls
from actors.walker import Target
from protocols.tls_options import ALPN_HTTP1

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError)


class TlsSocket:
    """``send``/``recv`` of a bare trio socket, over TLS."""

    __slots__ = ("stream",)

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream

    async def send(self, data: Any) -> int:
        """Send all of ``data`` (a bare socket may send part; this never does)."""
        try:
            await self.stream.send_all(data)
        except _BROKEN as exc:
            raise ConnectionResetError(f"TLS connection broken: {exc.__cause__ or exc}") \
                from None
        return len(data)

    async def recv(self, size: int) -> bytes:
        try:
            return await self.stream.receive_some(size)
        except _BROKEN as exc:
            raise ConnectionResetError(f"TLS connection broken: {exc.__cause__ or exc}") \
                from None


async def secure(sock: trio.socket.SocketType, target: Target, timeout: float) -> TlsSocket:
    """TLS over the connected ``sock`` within ``timeout``. Raises ``net.TransportError``
    (``tls_timeout``, ``tls_verify``, ``tls_handshake``, ``reset``, ``eof``) with the
    socket closed."""
    stream = await tls.handshake(trio.SocketStream(sock), target, ALPN_HTTP1, timeout)
    return TlsSocket(stream)
