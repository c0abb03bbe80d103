"""A keep-alive HTTP/1.1 test server with a known service time, for the load tests.

``python tests/delay_server.py --port P [--delay-ms 5] [--serial] [--stall-at S --stall-for T]``

* every GET is answered after ``--delay-ms`` (asyncio sleep: concurrent requests overlap);
* ``--serial``: one request at a time (a lock around the delay), so the server's capacity
  is exactly 1000 / delay-ms requests per second - what ``assay slo`` must find;
* ``--stall-at S --stall-for T``: S seconds after the first request the whole process
  blocks for T seconds (a stop-the-world pause, like a long GC), then carries on.

The body differs per request (a counter), and ``/count`` answers how many requests the
server saw, so a test can compare it with what assay counted.
"""

from __future__ import annotations

import argparse
import asyncio
import time


class Server:
    def __init__(self, delay_s: float, serial: bool, stall_at: float | None,
                 stall_for: float) -> None:
        self.delay_s = delay_s
        self.lock = asyncio.Lock() if serial else None
        self.stall_at = stall_at
        self.stall_for = stall_for
        self.first: float | None = None
        self.count = 0

    def _stall(self) -> None:
        time.sleep(self.stall_for)  # blocks the loop: every connection stops

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path == b"/count":
                    body = str(self.count).encode()
                else:
                    self.count += 1
                    if self.first is None:
                        self.first = time.monotonic()
                        if self.stall_at is not None:
                            asyncio.get_running_loop().call_later(self.stall_at, self._stall)
                    if self.lock is not None:
                        async with self.lock:
                            await asyncio.sleep(self.delay_s)
                    else:
                        await asyncio.sleep(self.delay_s)
                    body = f"request {self.count}\n".encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError,
                asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--serial", action="store_true")
    parser.add_argument("--stall-at", type=float)
    parser.add_argument("--stall-for", type=float, default=2.0)
    args = parser.parse_args()
    server = Server(args.delay_ms / 1000, args.serial, args.stall_at, args.stall_for)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", args.port,
                                          backlog=1024)
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
