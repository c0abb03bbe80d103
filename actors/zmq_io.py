"""pyzmq inside a trio loop, without a thread and without busy-polling.

pyzmq has no trio integration. A ZeroMQ socket exposes ``FD``, which becomes readable when
the socket's *events may have changed*; it is edge-like, so after every wake we must read
``zmq.EVENTS`` and drain while ``POLLIN`` is set. ``wait_readable`` also gets a short
timeout as a belt-and-braces guard against a missed edge; that is a sleep, not a spin.

Both the coordinator and the actors use this module; it holds no policy.
"""

from __future__ import annotations

import trio
import zmq

WAKE_GUARD_S = 0.1


class ZmqReceiver:
    """Receive frames from one socket; exactly one task may call ``receive``."""

    def __init__(self, sock: zmq.Socket) -> None:
        self._sock = sock

    async def receive(self) -> bytes:
        sock = self._sock
        while True:
            if sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                try:
                    return sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    pass
            with trio.move_on_after(WAKE_GUARD_S):
                await trio.lowlevel.wait_readable(sock.getsockopt(zmq.FD))

    def receive_nowait(self) -> bytes | None:
        try:
            return self._sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None


def send_nowait(sock: zmq.Socket, frame: bytes) -> bool:
    """Queue a frame without blocking; False when the high-water mark refused it."""
    try:
        sock.send(frame, zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


async def send_patiently(sock: zmq.Socket, frame: bytes, timeout: float) -> bool:
    """For frames that must not be dropped (final tallies): retry until ``timeout``."""
    with trio.move_on_after(timeout):
        while not send_nowait(sock, frame):
            await trio.sleep(0.01)
        return True
    return False
