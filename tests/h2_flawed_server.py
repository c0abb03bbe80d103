"""A small HTTP/2 server (``h2`` + trio, cleartext prior knowledge, HTTP/1.1 beside it) with
one injectable defect per flood class of ``protocols.h2_floods``, for the h2flood tests.

``python -m tests.h2_flawed_server PORT [--defect NAME]``

Without a defect it bounds every flood the way RFC 9113 §10.5 suggests ("set limits on their
use ... ENHANCE_YOUR_CALM"): a stream reset cancels its handler and more than
``FRAME_LIMIT`` resets, PINGs, SETTINGS or empty DATA frames in a second end the connection
with GOAWAY ENHANCE_YOUR_CALM; ``h2`` refuses a CONTINUATION backlog (64 frames) and a
dynamic table size above 4096 (COMPRESSION_ERROR); at most 100 concurrent streams, and a
response body is produced only as far as the flow-control window lets it out.

Each defect really produces the harm of its class:

- ``rapid_reset``: a reset leaves its handler running; every handler takes a slot of a
  4-worker pool for ``WORK_S``, so requests of other clients queue behind the flood.
- ``continuation``: header fragments are buffered without limit (the CONTINUATION backlog).
- ``settings``, ``ping``, ``empty_data``: every frame costs ``FRAME_COST_S`` of blocking
  work on the event loop, without limit.
- ``hpack_table``: a dynamic table size update is honoured up to 2^31 - 1.
- ``zero_window``: a response body is produced whole at once and kept (for good, in a
  module-level list) while the window stays shut; no limit on concurrent streams.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import deque

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import hpack
import trio

DEFECTS = ("rapid_reset", "continuation", "settings", "ping", "empty_data", "hpack_table",
           "zero_window")
MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WORK_S = 0.002
POOL = trio.CapacityLimiter(4)
FRAME_COST_S = 0.0005
FRAME_LIMIT = 100
BODY = b"b" * (256 * 1024)
CHUNK = 16384
#: zero_window defect: response bodies never freed.
STALLED: list[bytes] = []
ENHANCE_YOUR_CALM = 0xB


class HonouringDecoder(hpack.Decoder):
    """hpack_table defect: any dynamic table size update is honoured (h2 would reset the
    limit to our SETTINGS_HEADER_TABLE_SIZE, 4096, when the client acknowledges it)."""

    @property
    def max_allowed_table_size(self) -> int:
        return 2**31 - 1

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, value: int) -> None:
        pass


class Connection:
    def __init__(self, stream: trio.SocketStream, defect: str) -> None:
        self.stream = stream
        self.defect = defect
        # No per-byte validation of field values: in pure Python it would pace every flood
        # of large header blocks, hiding what the defects are about.
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False))
        streams = 2**31 - 1 if defect == "zero_window" else 100
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: streams})
        if defect == "hpack_table":
            self.conn.decoder.__class__ = HonouringDecoder
        self.write_lock = trio.Lock()
        self.window_open = trio.Event()
        self.scopes: dict[int, trio.CancelScope] = {}
        self.recent: dict[str, deque[float]] = {}
        self.done = False
        self.broken = False

    async def flush(self) -> None:
        async with self.write_lock:
            data = self.conn.data_to_send()
            if data and not self.broken:
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.broken = self.done = True

    def over_limit(self, kind: str) -> bool:
        """More than FRAME_LIMIT frames of ``kind`` within the last second (never with the
        defect that removes the limit)."""
        if self.defect == {"reset": "rapid_reset"}.get(kind, kind):
            return False
        now = time.monotonic()
        seen = self.recent.setdefault(kind, deque())
        seen.append(now)
        while seen and seen[0] < now - 1.0:
            seen.popleft()
        return len(seen) > FRAME_LIMIT

    async def serve(self, first: bytes) -> None:
        self.conn.initiate_connection()
        await self.flush()
        async with trio.open_nursery() as nursery:
            data = first
            while data and not self.done:
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break  # h2 queued the GOAWAY
                for event in events:
                    if self.handle(event, nursery):
                        self.conn.close_connection(ENHANCE_YOUR_CALM)
                        self.done = True
                        break
                await self.flush()
                if self.done:
                    break
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
            self.done = True
            nursery.cancel_scope.cancel()
            with trio.move_on_after(1):
                await self.flush()  # the GOAWAY h2 or we queued

    def handle(self, event: h2.events.Event, nursery: trio.Nursery) -> bool:
        """Act on one event; True when the connection must end with ENHANCE_YOUR_CALM."""
        if isinstance(event, h2.events.RequestReceived):
            scope = trio.CancelScope()
            self.scopes[event.stream_id] = scope
            method = dict(event.headers).get(b":method", b"GET")
            nursery.start_soon(self.respond, event.stream_id, method, scope)
        elif isinstance(event, h2.events.StreamReset):
            if self.defect != "rapid_reset":
                scope = self.scopes.pop(event.stream_id, None)
                if scope is not None:
                    scope.cancel()
            return self.over_limit("reset")
        elif isinstance(event, h2.events.PingReceived):
            return self.costly("ping")
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            return self.costly("settings")
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
            elif self.costly("empty_data"):
                return True
        elif isinstance(event, h2.events.WindowUpdated):
            self.window_open.set()
            self.window_open = trio.Event()
        return False

    def costly(self, kind: str) -> bool:
        time.sleep(FRAME_COST_S)  # the per-frame work, blocking the event loop
        return self.over_limit(kind)

    async def respond(self, stream_id: int, method: bytes, scope: trio.CancelScope) -> None:
        with scope:
            if method != b"HEAD":  # HEAD is metadata only: no work, no worker taken
                async with POOL:
                    await trio.sleep(WORK_S)
            try:
                self.conn.send_headers(stream_id, [(b":status", b"200"),
                                                   (b"content-length", b"%d" % len(BODY))],
                                       end_stream=method == b"HEAD")
                await self.flush()
                if method != b"HEAD":
                    await self.send_body(stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                pass
        self.scopes.pop(stream_id, None)

    async def send_body(self, stream_id: int) -> None:
        whole = BODY[:] if self.defect != "zero_window" else bytes(bytearray(BODY))
        if self.defect == "zero_window":
            STALLED.append(whole)  # produced at once and kept, sent or not
        offset = 0
        while offset < len(whole):
            window = min(self.conn.local_flow_control_window(stream_id),
                         self.conn.max_outbound_frame_size, CHUNK)
            if window <= 0:
                await self.window_open.wait()
                continue
            # Without the defect only what the window lets out is ever in hand.
            chunk = whole[offset:offset + window]
            self.conn.send_data(stream_id, chunk, end_stream=offset + window >= len(whole))
            offset += len(chunk)
            await self.flush()


async def http1(stream: trio.SocketStream, head: bytes) -> None:
    """A plain answer for pre-flight and health probes (through the same worker pool)."""
    with trio.move_on_after(5):
        while b"\r\n\r\n" not in head and len(head) < 65536:
            more = await stream.receive_some(65536)
            if not more:
                return
            head += more
        async with POOL:
            await trio.sleep(WORK_S)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                              b"Connection: close\r\n\r\nok\n")


def handler(defect: str):
    async def handle(stream: trio.SocketStream) -> None:
        try:
            first = b""
            with trio.move_on_after(5):
                while len(first) < len(MAGIC) and MAGIC.startswith(first):
                    more = await stream.receive_some(65536)
                    if not more:
                        return
                    first += more
            if first.startswith(MAGIC):
                await Connection(stream, defect).serve(first)
            elif first:
                await http1(stream, first)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)
    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--defect", choices=DEFECTS)
    args = parser.parse_args()
    if args.defect == "continuation":
        h2.frame_buffer.CONTINUATION_BACKLOG = 2**31  # fragments buffered without limit
    trio.run(functools.partial(trio.serve_tcp, handler(args.defect or ""), args.port,
                               host="127.0.0.1"))


if __name__ == "__main__":
    main()
