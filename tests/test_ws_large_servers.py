"""Large valid WebSocket messages against real servers: refapp with and without
``ws-drop-large``, daphne (drops TCP without a Close from 4 MiB on) and uvicorn (echoes).

Budgets stay small (5 MiB) so the file runs in well under a minute.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from torture_servers import walker_ctx

from actors import ws_large_walk
from protocols.ws_large_plan import MIB, ladder

launch = pytest.importorskip("refapp.launch")

pytestmark = pytest.mark.integration

SETTINGS = {"ws_timeout": 2.0, "ws_case_timeout": 2.0, "adv_confirm_tries": 1}


@contextmanager
def refapp(*defects: str) -> Iterator[int]:
    with launch.start_refapp(defects=defects, stderr=subprocess.DEVNULL) as process:
        yield urlsplit(process.url).port or 0


@contextmanager
def echo_server(server: str) -> Iterator[int]:
    pytest.importorskip(server.split("-")[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "tests.ws_echo_apps", server, str(port)],
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _ladder_run(port: int, budget: int, only: tuple[str, ...] = ()) -> Any:
    """Every case of the ladder once (``only``: names containing one of these)."""
    async def main() -> Any:
        ctx = walker_ctx(port, "ws", {**SETTINGS, "ws_max_message": budget}, seconds=60)
        for case in ladder(budget):
            if not only or any(part in case.name for part in only):
                await ws_large_walk.session(ctx, case)
        return ctx

    return trio.run(main)


def _verdicts(counters: dict[str, int]) -> dict[str, str]:
    return {key.split(".")[2]: key.split(".")[3] for key in counters
            if key.startswith("ws.case.large_")}


def test_correct_refapp_echoes_to_its_limit_then_refuses_with_1009() -> None:
    with refapp() as port:
        ctx = _ladder_run(port, 5 * MIB, only=("whole", "f1024"))
    counters = ctx.tally.counters
    verdicts = _verdicts(counters)
    assert set(verdicts.values()) == {"pass"}, verdicts
    assert counters["ws.size_limit"] >= 1 and min(
        int(k.rsplit(".", 1)[1]) for k in counters if k.startswith("ws.size_limit.")) == 4 * MIB
    assert "ws.large_dropped" not in counters and ctx.violations == []


def test_refapp_with_ws_drop_large_is_caught() -> None:
    with refapp("ws-drop-large") as port:
        ctx = _ladder_run(port, 4 * MIB, only=("binary_1MiB_whole", "binary_4MiB_whole"))
    counters = ctx.tally.counters
    assert counters["ws.case.large_binary_1MiB_whole.pass"] == 1
    assert counters["ws.case.large_binary_4MiB_whole.violation"] == 1
    assert counters["ws.large_dropped"] == 1 and counters["ws.confirmed"] == 1
    example = ctx.tally.examples["ws.large_dropped"]
    assert example["size"] == 4 * MIB and example["reaction"] == "dropped"


def test_daphne_drops_tcp_without_close_from_4_mib() -> None:
    with echo_server("daphne") as port:
        ctx = _ladder_run(port, 4 * MIB, only=("1MiB_whole", "4MiB_whole", "4MiB_f64"))
    counters = ctx.tally.counters
    assert counters["ws.case.large_binary_1MiB_whole.pass"] == 1
    assert counters["ws.case.large_binary_4MiB_whole.violation"] == 1
    assert counters["ws.case.large_text_4MiB_f64.violation"] == 1
    assert counters["ws.large_dropped"] == 2


def test_uvicorn_wsproto_echoes_every_case() -> None:
    with echo_server("uvicorn-wsproto") as port:
        ctx = _ladder_run(port, 4 * MIB, only=("4MiB", "64KiB"))
    verdicts = _verdicts(ctx.tally.counters)
    assert len(verdicts) == 8 and set(verdicts.values()) == {"pass"}, verdicts
