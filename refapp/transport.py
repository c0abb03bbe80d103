"""Socket reads, writes and closes with deadlines, and the vocabulary for a vanished peer.

trio reports every transport failure as ``BrokenResourceError`` with the ``OSError`` as its
cause; the fault counters need to tell a reset from anything else, so this module turns
those into one ``PeerGone`` exception that says which it was. Every read is capped at
``RECV_CHUNK`` bytes and every read and write has a deadline: a peer can make the server
wait, but never forever.
"""

from __future__ import annotations

import trio

from refapp.config import RECV_CHUNK

_RESET_CAUSES = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
#: How long a closing connection keeps reading (and discarding) after its last response.
LINGER_SECONDS = 1.0
#: At most this many bytes are discarded while lingering.
LINGER_BYTES = 256 * 1024


class PeerGone(Exception):
    """The peer closed or reset the connection while we still wanted to use it."""

    def __init__(self, reset: bool) -> None:
        super().__init__("connection reset by peer" if reset else "connection closed")
        self.reset = reset


def gone_from(exc: BaseException) -> PeerGone:
    """The ``PeerGone`` for a trio transport error, telling a reset from a plain close."""
    return PeerGone(reset=isinstance(exc.__cause__, _RESET_CAUSES))


async def receive(stream: trio.SocketStream, timeout: float) -> bytes:
    """Up to ``RECV_CHUNK`` bytes; ``b""`` means EOF (the peer half-closed).

    Raises:
        PeerGone: the connection was reset or already closed.
        trio.TooSlowError: nothing arrived within ``timeout`` seconds.
    """
    with trio.fail_after(timeout):
        try:
            return await stream.receive_some(RECV_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise gone_from(exc) from exc


async def send_all(stream: trio.SocketStream, data: bytes, timeout: float) -> None:
    """Write everything or fail: a reader that stops reading cannot stall us past ``timeout``.

    Raises:
        PeerGone: the connection was reset or closed.
        trio.TooSlowError: the peer did not take the bytes in time.
    """
    with trio.fail_after(timeout):
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise gone_from(exc) from exc


async def graceful_close(stream: trio.SocketStream) -> None:
    """Half-close, drain briefly, then close (RFC 9112 §9.6 "lingering close").

    Closing a socket with unread input makes the kernel send RST, which can destroy the last
    response before the client reads it (for example a 400 followed by pipelined requests).
    Sending FIN first and discarding input for a moment lets the response arrive intact.
    """
    try:
        with trio.move_on_after(LINGER_SECONDS):
            await stream.send_eof()
            drained = 0
            while drained < LINGER_BYTES:
                chunk = await stream.receive_some(RECV_CHUNK)
                if not chunk:
                    break
                drained += len(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
