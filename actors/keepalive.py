"""One keep-alive HTTP/1.1 connection on the hot path: a non-blocking socket and a parser.

Shared by the walkers that send one well-formed request after another on a connection
they keep (the Markov slice, the load slice). ``begin`` queues a request, ``complete``
sends it and reads one response; both are cheap because the hot path calls the
socket's ``send``/``recv`` directly and only parks in trio's low-level waits when the
kernel has nothing (``benchmarks/README.md`` has what this bought over trio's stream
methods).
"""

from __future__ import annotations

import socket
import ssl

import trio
from trio.lowlevel import wait_readable, wait_writable

from actors import net, tls
from actors.walker import Target
from protocols.http1 import (
    Response,
    ResponseParser,
    ResponseProtocolError,
    ResponseTooLarge,
)

READ_SIZE = 65536
#: A non-blocking send or recv that found nothing to do: a plain socket raises
#: ``BlockingIOError``, a TLS one ``SSLWantReadError`` / ``SSLWantWriteError`` (a TLS
#: send may need to read first, and a read to write, in a key update).
_WANT_READ = (BlockingIOError, ssl.SSLWantReadError)
_WANT_WRITE = (BlockingIOError, ssl.SSLWantWriteError)


class Connection:
    """One keep-alive connection: a non-blocking stdlib socket plus its response parser.

    trio connects it (``from_stdlib_socket(...).connect``); after that the hot path calls
    the socket's ``send``/``recv`` itself and parks in ``trio.lowlevel.wait_readable`` /
    ``wait_writable`` when the kernel has nothing. trio's ``sock.send``/``sock.recv`` wrap
    every call in a checkpoint sandwich (two awaits and a scheduler round trip even when
    the call did not block) and a ``recv`` that would block raises and catches
    BlockingIOError before waiting: measured, a seventh of the actor's instructions.
    """

    __slots__ = ("fd", "parser", "sock", "unsent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.parser = ResponseParser()
        #: What is left to send of the request in flight (None once it is all sent).
        self.unsent: bytes | memoryview | None = None

    def close(self, reset: bool = False) -> None:
        if reset:
            net.arm_reset_socket(self.sock)
        self.sock.close()


async def open_connection(target: Target) -> Connection:
    """Connect to the target. The caller's cancel scope holds the deadline (and counts a
    connect it cancelled as ``connect_timeout``); a connect that fails or is cancelled
    closes its socket."""
    sock: socket.socket | None = None
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in target.host else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # trio makes the socket non-blocking and does the asynchronous connect.
        await trio.socket.from_stdlib_socket(sock).connect((target.host, target.port))
        if target.scheme == "https":
            plain, sock = sock, None  # wrap_nonblocking owns it now, and closes it on failure
            sock = await tls.wrap_nonblocking(plain, target)
    except BaseException as exc:  # failed or cancelled: the socket goes either way
        if sock is not None:
            sock.close()
        if isinstance(exc, OSError):
            raise net.TransportError(net.cause_of(exc), str(exc)) from None
        raise
    return Connection(sock)


def begin(conn: Connection, data: bytes, method: str) -> None:
    """Start an exchange on ``conn``: ``_complete`` sends ``data`` and reads the response."""
    conn.parser.expect(method)
    conn.unsent = data


async def complete(conn: Connection) -> Response:
    """Finish the exchange ``_begin`` started: send what is unsent, read one response.

    Cancellation can only land where the exchange waits (``wait_writable``, the checkpoint
    before reading, ``wait_readable``), where nothing sent or received is lost (progress is
    kept on ``conn``), so after a cancel scope fires the caller may call this again to carry
    on with the same exchange. Every call passes a trio checkpoint, so a walker can always
    be cancelled and never starves the others.
    """
    sock = conn.sock
    data = conn.unsent
    if data is not None:
        sent = 0
        while True:
            try:
                sent = sock.send(data)
            except _WANT_WRITE:
                sent = 0
            except ssl.SSLWantReadError:
                await wait_readable(conn.fd)
                continue
            if sent >= len(data):
                break
            conn.unsent = data = memoryview(data)[sent:]
            await wait_writable(conn.fd)
        conn.unsent = None
    parser = conn.parser
    # Bytes the server sent ahead of this request (a live parser with nothing buffered
    # has nothing to say, so skip the call then).
    response = parser.next_response() if parser.buffered_bytes else None
    if response is not None:
        await trio.lowlevel.cancel_shielded_checkpoint()  # a cancel here would lose it
        return response
    # Let the other walkers run first, then try to read: by then the response is nearly
    # always there (98 % at 32 walkers against nginx), and a read that finds it costs no
    # epoll registration and no readiness event. Only a read that would block waits for
    # readability, so this costs one failed recv per request at worst, never a busy loop.
    await trio.lowlevel.checkpoint()
    fd = conn.fd
    while True:
        try:
            chunk = sock.recv(READ_SIZE)
        except _WANT_READ:
            await wait_readable(fd)
            continue
        except ssl.SSLWantWriteError:
            await wait_writable(fd)
            continue
        if chunk:
            parser.feed(chunk)
            response = parser.next_response()
            if response is not None:
                return response
        else:
            parser.feed_eof()
            response = parser.next_response()
            if response is None:
                raise net.TransportError("eof", "closed before a complete response")
            return response


def failure_cause(exc: BaseException) -> str:
    """The counter name of an exchange that failed with ``exc`` (``begin``/``complete``
    or the connect): the transport's cause, or what the response parser refused."""
    if isinstance(exc, net.TransportError):
        return exc.cause
    if isinstance(exc, ResponseTooLarge):
        return "too_large"
    if isinstance(exc, ResponseProtocolError):
        return "protocol_error"
    return net.cause_of(exc)
