"""Socket plumbing for walkers: connect, send, read with caps, and the ways to hang up.

Every function takes its deadline from the caller as a timeout in seconds (what is left of
a deadline already past, below zero, times out at once: trio would raise ValueError) and
maps the many OS-level failure shapes onto a few ``TransportError`` causes that tallies count
(``connect_refused``, ``connect_timeout``, ``reset``, ``eof``, ``timeout``, and over TLS
``tls_verify``, ``tls_handshake``, ``tls_timeout``). Reads are always capped: a hostile
server that streams forever costs at most ``cap`` bytes.

An ``https://`` target gets a ``trio.SSLStream`` from ``connect`` (``actors.tls``): the
walkers send and read through it as through TCP, and the hang-ups that need the socket
(``arm_reset``, ``half_close``) reach the TCP stream under the TLS one.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from actors import flight, tls
from actors.walker import Target
from protocols.tls_options import ALPN_HTTP1

READ_CHUNK = 65536


class TransportError(Exception):
    """The connection failed in a way worth counting; ``cause`` names it for tallies."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


class Ending(enum.Enum):
    """Why a capped read stopped."""

    EOF = "eof"
    RESET = "reset"
    TIMEOUT = "timeout"
    CAP = "cap"
    #: The caller's predicate said it had enough (e.g. a full response parsed).
    DONE = "done"


@dataclass(frozen=True)
class ReadResult:
    data: bytes
    ending: Ending
    elapsed: float


#: What ``connect`` returns: TCP, or TLS over TCP for an https target.
Stream = trio.SocketStream | trio.SSLStream


def tcp_of(stream: Stream) -> trio.SocketStream:
    """The TCP stream under ``stream`` (itself for cleartext)."""
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream


async def connect(target: Target, timeout: float, alpn: tuple[str, ...] = ALPN_HTTP1
                  ) -> trio.SocketStream:
    """Open a TCP connection with TCP_NODELAY, and TLS over it for an https target
    (offering ``alpn``); failures become TransportError. Typed as the TCP stream the
    callers use, although an https target's is a ``trio.SSLStream`` with the same
    send/receive methods."""
    stream = await connect_tcp(target, timeout)
    if target.scheme != "https":
        return stream
    return await tls.handshake(stream, target, alpn, timeout)  # type: ignore[return-value]


async def connect_tcp(target: Target, timeout: float) -> trio.SocketStream:
    """TCP only, whatever the scheme: the TLS-level torture cases speak their own bytes."""
    try:
        with trio.fail_after(max(0.0, timeout)):
            stream = await trio.open_tcp_stream(target.host, target.port)
    except trio.TooSlowError:
        raise TransportError("connect_timeout", f"{target.host}:{target.port}") from None
    except ConnectionRefusedError:
        raise TransportError("connect_refused", f"{target.host}:{target.port}") from None
    except OSError as exc:
        raise TransportError(cause_of(exc), str(exc)) from None
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream


async def send_all(stream: trio.SocketStream, data: bytes, timeout: float) -> None:
    try:
        with trio.fail_after(max(0.0, timeout)):
            await stream.send_all(data)
    except trio.TooSlowError:
        raise TransportError("timeout", "send") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise TransportError(cause_of(exc), str(exc)) from None
    flight.note_write(data, stream)  # crash attribution: what this walker's case sent, when


async def receive_some(stream: trio.SocketStream, timeout: float) -> bytes:
    """One read; b"" on EOF. Timeout and reset become TransportError."""
    try:
        with trio.fail_after(max(0.0, timeout)):
            data = await stream.receive_some(READ_CHUNK)
            flight.note_read(data)
            if not data:
                flight.note_closed()
            return data
    except trio.TooSlowError:
        raise TransportError("timeout", "receive") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        flight.note_closed()
        raise TransportError(cause_of(exc), str(exc)) from None


async def read_until(
    stream: trio.SocketStream,
    timeout: float,
    cap: int,
    enough: Callable[[bytes], bool] | None = None,
) -> ReadResult:
    """Read until EOF, reset, timeout, ``cap`` bytes, or ``enough(data)`` is true.

    Never raises for the server's behaviour: how the read ended is the observation.
    """
    chunks: list[bytes] = []
    size = 0
    start = trio.current_time()
    ending = Ending.TIMEOUT
    with trio.move_on_after(max(0.0, timeout)):
        while True:
            try:
                chunk = await stream.receive_some(READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                ending = Ending.RESET
                break
            if not chunk:
                ending = Ending.EOF
                break
            chunks.append(chunk)
            size += len(chunk)
            if size >= cap:
                ending = Ending.CAP
                break
            if enough is not None and enough(b"".join(chunks) if len(chunks) > 1 else chunk):
                ending = Ending.DONE
                break
    data = b"".join(chunks)[:cap]
    flight.note_read(data)
    if ending is Ending.EOF or ending is Ending.RESET:
        flight.note_closed()
    return ReadResult(data=data, ending=ending, elapsed=trio.current_time() - start)


def arm_reset(stream: trio.SocketStream) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER with a zero timeout)."""
    arm_reset_socket(tcp_of(stream).socket)
    flight.note_reset()


def arm_reset_socket(sock: trio.socket.SocketType) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def close_with_reset(stream: trio.SocketStream) -> None:
    arm_reset(stream)
    await aclose_quietly(tcp_of(stream))  # an RST, no TLS close_notify before it


async def half_close(stream: trio.SocketStream) -> None:
    """Send FIN on our side while still able to read (shutdown SHUT_WR)."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        # Over TLS this is a TCP FIN without close_notify: what a client that half-closes
        # its socket does.
        await tcp_of(stream).send_eof()


#: How long a TLS close may wait to send its close_notify to a peer that does not read.
TLS_CLOSE_S = 1.0


async def aclose_quietly(stream: trio.SocketStream) -> None:
    quiet = contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError)
    with trio.CancelScope(shield=True), quiet:
        if isinstance(stream, trio.SSLStream):
            with trio.move_on_after(TLS_CLOSE_S), quiet:
                await stream.aclose()
            stream = tcp_of(stream)
        await stream.aclose()


def cause_of(exc: BaseException) -> str:
    tls_error = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
    if isinstance(tls_error, ssl.SSLEOFError):
        # The TCP connection under TLS ended without a close_notify: a send on a kept-alive
        # connection the server reset raises this where a plain socket raises ECONNRESET,
        # and the walkers must see the same stale connection (retried once), not a TLS fault.
        return "reset"
    if isinstance(tls_error, ssl.SSLError):
        return "tls_error"
    # trio.open_tcp_stream wraps per-address failures in an ExceptionGroup as __cause__.
    group = exc.__cause__
    if isinstance(exc, OSError) and exc.errno is None and isinstance(group, BaseExceptionGroup):
        causes = {cause_of(inner) for inner in group.exceptions}
        return causes.pop() if len(causes) == 1 else "io_error"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(exc, trio.BrokenResourceError) and isinstance(exc.__cause__, OSError):
        return cause_of(exc.__cause__)
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connect_refused"
    return "reset" if isinstance(exc, trio.BrokenResourceError) else "io_error"


async def resolve(target: Target) -> list[tuple[int, tuple]]:
    """The target's stream addresses as (family, sockaddr), in the resolver's order: the
    walkers that dial thousands of sockets resolve once, not once per socket."""
    infos = await trio.socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]
