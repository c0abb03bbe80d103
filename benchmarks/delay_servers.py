"""The fixed-delay servers bench_load.py measures the open model against.

A fixed-delay server answers every request D ms after it arrived, so a load generator's
latency minus D is the generator's own error, and the server's record of what it really
held each request (``/stats``) is the floor under every tool's figure. Two are kept:

- ``c`` (``fixed_delay_server.c``, compiled here with ``cc -O2`` into the run's temporary
  directory): one epoll loop and a timerfd at the oldest pending answer's absolute due
  time, timer slack 1 ns. It holds requests D + 0.1 ms at p99 with its core nearly idle,
  which makes it the default ruler.
- ``node`` (``fixed_delay_server.js``): the first ruler. node's timers are whole
  milliseconds, so it spins on ``setImmediate`` through each request's last 2 ms; at
  1,000 req/s that keeps its core ~97 % busy and its own p99 hold wanders 0.3-2.8 ms over
  D between runs whatever client drives it. Kept for comparison with earlier figures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench_markov
from bench_markov import _free_port

HERE = Path(__file__).resolve().parent
SOURCES = {"c": HERE / "fixed_delay_server.c", "node": HERE / "fixed_delay_server.js"}
SERVERS = tuple(SOURCES)


def default_kind() -> str:
    """``c`` where a C compiler is installed, else ``node``."""
    return "c" if shutil.which("cc") else "node"


def missing_tool(kind: str) -> str | None:
    """The program ``kind`` needs that is not installed, or None."""
    needed = "cc" if kind == "c" else "node"
    return None if shutil.which(needed) else needed


def _server_command(kind: str, tmp: Path, port: int, delay_ms: float,
                    coarse: bool) -> list[str]:
    if kind == "node":
        command = ["node", str(SOURCES["node"]), str(port), str(delay_ms)]
        return [*command, "coarse"] if coarse else command
    binary = tmp / "fixed_delay_server"
    if not binary.exists():
        built = subprocess.run(["cc", "-O2", "-o", str(binary), str(SOURCES["c"])],
                               capture_output=True, text=True, timeout=120)
        if built.returncode:
            raise SystemExit(f"fixed_delay_server.c did not compile: {built.stderr[-400:]}")
    return [str(binary), str(port), str(delay_ms)]


@contextlib.contextmanager
def delay_server(kind: str, core: int, delay_ms: float, coarse: bool,
                 tmp: Path) -> Iterator[tuple[int, list[int]]]:
    """Start the ``kind`` fixed-delay server pinned to ``core``; yield (port, [pid])."""
    port = _free_port()
    command = ["taskset", "-c", str(core), *_server_command(kind, tmp, port, delay_ms, coarse)]
    out = tmp / "delay-server.out"
    log = open(out, "wb")  # noqa: SIM115
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the {kind} fixed-delay server exited: "
                                 f"{out.read_text()[-400:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the {kind} fixed-delay server did not listen within 10 s")
            time.sleep(0.05)
        yield port, [proc.pid]
    finally:
        bench_markov.stop(proc, signal.SIGTERM)
        log.close()


def server_stats(port: int, reset: bool = False) -> dict[str, Any]:
    """The delay server's /stats: requests served and what it really held them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/stats?reset=1" if reset else "/stats")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()
