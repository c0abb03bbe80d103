"""The grown ws catalogue (issue 19 item 1) against refapp and real PyPI servers.

Claims: refapp without defects passes every frame case with no violation; its defects
``ws-drop-empty`` and ``ws-echo-close-code`` are seen by the oracle; tornado 6 repeats
undefined Close codes (RFC 6455 §5.5.1, MED violation) and daphne 4 drops empty messages
(reported lenient: no MUST binds the echo), while uvicorn (wsproto) and hypercorn show
neither and pass the whole catalogue. Cases run concurrently with short deadlines; a
server that is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio
from torture_servers import high_counters, walker_ctx

from actors import ws_torture
from protocols.websocket_cases import BY_NAME, CASES, INVALID_CLOSE_CODES, WsCase
from refapp.launch import start_refapp
from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"ws_timeout": 3.0, "ws_case_timeout": 1.0}
#: Undefined codes (no 1005/1006/1015: those are the forbidden ones, judged alike).
UNDEFINED = [f"close_code_{c}" for c in INVALID_CLOSE_CODES if c not in (1005, 1006, 1015)]
EMPTY = ["echo_text_len_0", "echo_binary_len_0"]


def sweep(port: int, cases: Iterable[WsCase], concurrency: int = 16) -> dict[str, int]:
    """Run each case once (several at a time) through the walker; returns its counters."""

    async def main() -> dict[str, int]:
        ctx = walker_ctx(port, "ws", SETTINGS, seconds=120)
        limiter = trio.CapacityLimiter(concurrency)

        async def one(case: WsCase) -> None:
            async with limiter:
                await ws_torture.session(ctx, case)

        async with trio.open_nursery() as nursery:
            for case in cases:
                nursery.start_soon(one, case)
        return dict(ctx.tally.counters)

    return trio.run(main)


def verdicts(counters: dict[str, int], verdict: str) -> set[str]:
    return {k.split(".")[2] for k in counters
            if k.startswith("ws.case.") and k.endswith(f".{verdict}")}


def named(*names: str | list[str]) -> list[WsCase]:
    flat = [n for group in names for n in ([group] if isinstance(group, str) else group)]
    return [case for n in flat if isinstance(case := BY_NAME[n], WsCase)]


@contextmanager
def refapp(*defects: str) -> Iterator[int]:
    with start_refapp(defects=defects, stderr=subprocess.DEVNULL) as process:
        yield urlsplit(process.url).port or 0


@contextmanager
def server(name: str) -> Iterator[int]:
    """A WebSocket echo endpoint on ``name`` (skipped when the package is missing)."""
    module = {"uvicorn-wsproto": "uvicorn", "hypercorn": "hypercorn", "daphne": "daphne",
              "tornado": "tornado"}[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} is not installed")
    port = free_port()
    args = (["-m", "tests.ws_tornado_app", str(port)] if name == "tornado"
            else ["-m", "tests.ws_echo_apps", name, str(port)])
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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


def test_correct_refapp_passes_the_whole_frame_catalogue() -> None:
    with refapp() as port:
        counters = sweep(port, CASES)
    assert verdicts(counters, "violation") == set(), counters
    assert high_counters(counters) == {} and not counters.get("ws.must_violation")
    judged = {k.split(".")[2] for k in counters if k.startswith("ws.case.")}
    assert judged == {case.name for case in CASES}
    assert verdicts(counters, "pass") >= {*EMPTY, *UNDEFINED}


def test_refapp_defects_are_seen() -> None:
    with refapp("ws-drop-empty") as port:
        dropped = sweep(port, named(EMPTY, "echo_text_len_1"))
    assert verdicts(dropped, "lenient") == set(EMPTY)
    assert dropped["ws.echo_missing"] == 2 and "ws.case.echo_text_len_1.pass" in dropped
    with refapp("ws-echo-close-code") as port:
        echoed = sweep(port, named(UNDEFINED, "close_code_5001", "client_close"))
    assert verdicts(echoed, "violation") == {*UNDEFINED, "close_code_5001"}
    assert echoed["ws.server_bad_close_code"] == len(UNDEFINED) + 1
    assert echoed["ws.must_violation"] == echoed["ws.server_bad_close_code"]
    assert "ws.case.client_close.pass" in echoed


def test_tornado_echoes_undefined_close_codes() -> None:
    with server("tornado") as port:
        counters = sweep(port, named(UNDEFINED, EMPTY, "client_close", "close_valid_code_4000"))
    assert verdicts(counters, "violation") == set(UNDEFINED)
    assert counters["ws.server_bad_close_code"] == len(UNDEFINED)
    assert {*EMPTY, "client_close", "close_valid_code_4000"} <= verdicts(counters, "pass")


def test_daphne_drops_empty_messages() -> None:
    with server("daphne") as port:
        counters = sweep(port, named(EMPTY, "echo_text_len_1", "echo_binary_len_1"))
    assert verdicts(counters, "lenient") == set(EMPTY)
    assert counters["ws.echo_missing"] == 2
    assert {"echo_text_len_1", "echo_binary_len_1"} <= verdicts(counters, "pass")


@pytest.mark.parametrize("name", ["uvicorn-wsproto", "hypercorn"])
def test_servers_without_either_defect_pass_the_whole_catalogue(name: str) -> None:
    """No false verdict on a correct server: every frame case, no violation."""
    with server(name) as port:
        counters = sweep(port, CASES)
    assert verdicts(counters, "violation") == set()
    assert not counters.get("ws.must_violation") and high_counters(counters) == {}
    assert set(EMPTY) <= verdicts(counters, "pass")
    assert not counters.get("ws.server_bad_close_code") and not counters.get("ws.echo_missing")
