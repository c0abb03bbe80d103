"""A tiny HTTP/1.1 server that leaks on purpose, to prove assay's resource oracles fire.

``python tests/leaky_server.py --port 0 [--leak-mb-per-s X] [--leak-fds-per-s N]
[--leak-threads-per-s N]`` prints ``listening on http://127.0.0.1:PORT`` once it accepts and
answers every GET with 200 ``ok`` (keep-alive). The leaks run on a clock, not per request,
so a test knows how much leaked whatever the request rate: memory is touched (``b"x" * n``,
not a lazily mapped ``bytearray``), descriptors are ``/dev/null`` opened and never closed,
threads block forever. With no leak flag it is a well-behaved server.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_hoard: list[object] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def leak(mb_per_s: float, fds_per_s: float, threads_per_s: float) -> None:
    """Every 100 ms, leak a tenth of each per-second rate (fractions carry over)."""
    owed = {"mb": 0.0, "fds": 0.0, "threads": 0.0}
    never = threading.Event()
    while True:
        time.sleep(0.1)
        owed["mb"] += mb_per_s / 10
        owed["fds"] += fds_per_s / 10
        owed["threads"] += threads_per_s / 10
        while owed["mb"] >= 0.25:
            _hoard.append(b"x" * (256 * 1024))
            owed["mb"] -= 0.25
        while owed["fds"] >= 1:
            _hoard.append(os.open(os.devnull, os.O_RDONLY))
            owed["fds"] -= 1
        while owed["threads"] >= 1:
            threading.Thread(target=never.wait, daemon=True).start()
            owed["threads"] -= 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--leak-mb-per-s", type=float, default=0.0)
    parser.add_argument("--leak-fds-per-s", type=float, default=0.0)
    parser.add_argument("--leak-threads-per-s", type=float, default=0.0)
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.leak_mb_per_s or args.leak_fds_per_s or args.leak_threads_per_s:
        threading.Thread(target=leak, args=(args.leak_mb_per_s, args.leak_fds_per_s,
                                            args.leak_threads_per_s), daemon=True).start()
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
