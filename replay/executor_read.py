"""The executor's reads: take a step's bytes from a connection until its ``until`` is met.

Every received byte lands in the connection's pending buffer first; a read takes from it
what its ``until`` asks for (a whole response, any bytes, a WebSocket Close frame, or the
peer's close), so bytes that arrive early belong to the step that asks for them. Separate
from ``replay.executor`` because deciding where a response ends is parsing, not stepping.
"""

from __future__ import annotations

import trio

from protocols.http1 import ResponseError, ResponseParser
from protocols.program import ReadUntil, Step
from protocols.websocket_frames import FrameError, Opcode, ServerFrameParser
from replay.executor_conn import Conn

#: No read keeps more than this, whatever its ``cap`` says.
MAX_CAP = 8 * 1024 * 1024
READ_CHUNK = 65536


class Until:
    """Decides when a read has enough, and how many of the bytes read belong to it."""

    def __init__(self, until: ReadUntil, method: str, cap: int) -> None:
        self.until = until
        self._parser: ResponseParser | None = None
        self._frames: ServerFrameParser | None = None
        if until is ReadUntil.RESPONSE:
            self._parser = ResponseParser(max_body_bytes=cap)
            self._parser.expect(method)
        elif until is ReadUntil.WS_CLOSE:
            self._frames = ServerFrameParser(max_payload=cap)

    def take(self, new: bytes, total: int) -> int | None:
        """Feed the ``new`` bytes (the read now holds ``total``); the length of the read's
        bytes that completes it, or None. Only new bytes are looked at: no quadratic cost."""
        if self.until is ReadUntil.ANY:
            return total if total else None
        if self.until is ReadUntil.CLOSE:
            return None
        if self._frames is not None:
            for item in self._frames.feed(new):
                if isinstance(item, FrameError) or item.opcode == Opcode.CLOSE:
                    return total
            return None
        assert self._parser is not None
        self._parser.feed(new)
        try:
            response = self._parser.next_response()
        except ResponseError:
            return total  # these bytes will never become a response: decided
        if response is None:
            return None
        if self._parser.switched:
            return total - len(self._parser.trailing_data)
        return total - self._parser.buffered_bytes


async def read_until(conn: Conn, step: Step, timeout: float, slow: bool) -> tuple[bytes, str]:
    """Read on ``conn`` until ``step.until``, EOF, reset, ``timeout`` or the cap."""
    cap = max(1, min(step.cap, MAX_CAP))
    until = Until(step.until, conn.method, cap)
    data = bytearray(conn.pending)
    conn.pending.clear()
    ending = ""
    if data:
        taken = until.take(bytes(data), len(data))
        if taken is not None:
            conn.pending += data[taken:]
            return bytes(data[:taken]), "done"
    if conn.state in ("eof", "reset"):
        return bytes(data[:cap]), conn.state
    assert conn.stream is not None
    size = max(1, step.chunk) if slow else READ_CHUNK
    with trio.move_on_after(timeout):
        while True:
            if slow and data:
                await trio.sleep(step.interval_s)
            try:
                chunk = await conn.stream.receive_some(size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                conn.state = ending = "reset"
                break
            if not chunk:
                conn.state = ending = "eof"
                break
            data += chunk
            taken = until.take(chunk, len(data))
            if taken is not None:
                conn.pending += data[taken:]
                del data[taken:]
                ending = "done"
                break
            if len(data) >= cap:
                ending = "cap"
                break
    if not ending:
        ending = "timeout"
    if len(data) > cap:
        del data[cap:]
        ending = "cap" if ending == "done" else ending
    return bytes(data), ending
