"""The executor's connections: open one (TCP, then TLS for https), send on it, and the
transport outcome that ends a step early.

Separate from ``replay.executor`` because how a socket is opened and what its failures mean
(a refused connect is the target's answer, an untrusted certificate is ours) is one concern,
and the order of a program's steps another.
"""

from __future__ import annotations

import socket

import trio

from actors import tls
from actors.net import TransportError, cause_of
from actors.walker import Target
from protocols.tls_options import ALPN_HTTP1


class StepFailed(Exception):
    """A step ended early with a transport outcome (``ending`` plus the cause)."""

    def __init__(self, ending: str, error: str) -> None:
        super().__init__(error)
        self.ending = ending
        self.error = error


class Conn:
    """One logical connection: its socket, what arrived but no step has taken, its state."""

    def __init__(self, slow: bool) -> None:
        #: TCP, or TLS over TCP for an https target (``secure``).
        self.stream: trio.SocketStream | trio.SSLStream | None = None
        self.pending = bytearray()
        #: "new", "open", "eof" (peer FIN seen), "reset", "closed" (by us: reopen on use)
        self.state = "new"
        self.slow = slow
        #: Method of the last request sent (HEAD responses have no body).
        self.method = "GET"


async def connect(target: Target, timeout: float, rcvbuf: int | None = None) -> trio.SocketStream:
    try:
        with trio.fail_after(timeout):
            infos = await trio.socket.getaddrinfo(target.host, target.port,
                                                  type=socket.SOCK_STREAM)
            family, type_, proto, _, address = infos[0]
            sock = trio.socket.socket(family, type_, proto)
            try:
                if rcvbuf is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                await sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except BaseException:
                sock.close()
                raise
    except trio.TooSlowError:
        raise StepFailed("timeout", "connect_timeout") from None
    except OSError as exc:
        cause = cause_of(exc)
        raise StepFailed("reset", f"{cause}: {exc.strerror or exc}") from None
    return await secure(trio.SocketStream(sock), target, timeout)


async def secure(stream: trio.SocketStream, target: Target, timeout: float
                  ) -> trio.SocketStream | trio.SSLStream:
    """TLS over ``stream`` for an https target (the run's ``--ca-file``/``--insecure``,
    ALPN http/1.1: a reproducer's bytes are HTTP/1.1 or WebSocket), else ``stream``. A
    certificate we do not trust is our side's problem (``error``); a handshake the target
    broke off or let time out is its answer, like a refused or timed-out connect."""
    if target.scheme != "https":
        return stream
    try:
        return await tls.handshake(stream, target, ALPN_HTTP1, timeout)
    except TransportError as exc:
        if exc.cause == "tls_verify":
            raise StepFailed("error", str(exc)) from None
        raise StepFailed("timeout" if exc.cause == "tls_timeout" else "reset",
                          str(exc)) from None


def method_of(data: bytes) -> str:
    token = data.split(b" ", 1)[0]
    return token.decode("latin-1") if token.isalpha() and token.isupper() else "GET"


async def send_all(conn: Conn, payload: bytes, timeout: float) -> None:
    assert conn.stream is not None
    try:
        with trio.fail_after(timeout):
            await conn.stream.send_all(payload)
    except trio.TooSlowError:
        raise StepFailed("timeout", "send timed out") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise StepFailed("reset", cause_of(exc)) from None
