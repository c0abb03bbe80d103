"""permessage-deflate cases against real PyPI servers that accept the extension.

Each server echoes on ``/ws`` (``tests.deflate_echo_apps``) with its own RFC 7692 code. The
expected verdicts are pinned per server: a server that passes a case today and fails it
tomorrow is news either way. Where a server breaks a MUST, the entry names the sentence.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from torture_servers import walker_ctx

from actors import ws_torture
from protocols.ws_deflate_cases import CASES
from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
MODULES = {"uvicorn-wsproto": "uvicorn", "hypercorn": "hypercorn", "aiohttp": "aiohttp",
           "tornado": "tornado"}
NAMES = [case.name for case in CASES]
WS = {"ws_timeout": 2.0, "ws_case_timeout": 1.0, "ws_cases": NAMES}


@contextmanager
def echo_server(server: str) -> Iterator[int]:
    if importlib.util.find_spec(MODULES[server]) is None:
        pytest.skip(f"{server} is not installed")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.deflate_echo_apps", server, str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 20)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verdicts(server: str, seconds: float) -> tuple[dict[str, set[str]], dict[str, int]]:
    with echo_server(server) as port:
        async def main():
            ctx = walker_ctx(port, "ws", WS, seconds)
            await ws_torture.run(ctx)
            return ctx

        ctx = trio.run(main)
    counters = ctx.tally.counters
    seen: dict[str, set[str]] = {name: set() for name in NAMES}
    for key in counters:
        parts = key.split(".")
        if len(parts) == 4 and parts[1] == "case" and parts[2] in seen:
            seen[parts[2]].add(parts[3])
    return seen, counters


#: (server, case) -> the verdict it gets today, where not "pass".
EXPECTED = {
    # RFC 7692 §6: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
    # frames ... An endpoint receiving such a frame MUST _Fail the WebSocket Connection_."
    # aiohttp 3.14 answers a Ping with RSV1 set by a Pong and stays open (checked by hand).
    ("aiohttp", "pmd_rsv1_ping"): "violation",
}


@pytest.mark.parametrize("server", list(MODULES))
def test_real_server(server: str) -> None:
    seen, counters = verdicts(server, 3.0)
    assert "ws.deflate_unsupported" not in counters, f"{server} declined permessage-deflate"
    for name in NAMES:
        assert seen[name] == {EXPECTED.get((server, name), "pass")}, (name, seen[name], counters)
    high = counters.get("ws.accepted_bad_frame", 0) + counters.get("ws.hang_no_close", 0)
    assert bool(high) == (server == "aiohttp")
    assert counters.get("ws.must_violation", 0) == 0
