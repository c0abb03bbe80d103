"""The ws, sse and h2c walkers against the real refapp: clean when correct, tripped by defects."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import trio
from torture_servers import high_counters, walker_ctx

from actors import h2c_churn, sse_kill, ws_torture
from coordinator.sse_leak_check import (
    check_subscribers_return,
    route_exists,
    subscriber_baseline,
)

launch = pytest.importorskip("refapp.launch")

pytestmark = pytest.mark.integration

WS = {"ws_timeout": 2.0, "ws_case_timeout": 0.5}
SSE = {"sse_timeout": 2.0, "sse_hold_ms": [5, 60], "sse_leak_check_every": 5,
       "sse_leak_grace_s": 1.5}
H2C = {"h2c_timeout": 2.0, "h2c_probe_pause_s": 0.1}


@contextmanager
def refapp(*defects: str) -> Iterator[int]:
    with launch.start_refapp(defects=defects, stderr=subprocess.DEVNULL) as process:
        yield urlsplit(process.url).port or 0


def _walk(port: int, module, slice_name: str, settings: dict, seconds: float):
    async def main():
        ctx = walker_ctx(port, slice_name, settings, seconds)
        await module.run(ctx)
        return ctx

    return trio.run(main)


def test_correct_refapp_trips_no_high_counter() -> None:
    with refapp() as port:
        url = f"http://127.0.0.1:{port}/"

        async def preflight() -> tuple:
            found = (
                await route_exists(url, "/ws", "ws", 2.0),
                await route_exists(url, "/events", "sse", 2.0),
                await route_exists(url, "/nope", "ws", 2.0),
            )
            # The /events probe's subscription is released once the server sees the close,
            # which a loaded host may take a moment to schedule.
            with trio.move_on_after(5.0):
                while (baseline := await subscriber_baseline(
                        url, "/stats", "sse_subscribers", None, 2.0)) != 0:
                    await trio.sleep(0.1)
            return (*found, baseline)

        ws_route, sse_route, missing, baseline = trio.run(preflight)
        assert ws_route[0] and sse_route[0], (ws_route, sse_route)
        assert missing == (False, "no /nope route (404)")
        assert baseline == 0
        ws = _walk(port, ws_torture, "ws", WS, 3.0)
        sse = _walk(port, sse_kill, "sse", SSE, 2.0)
        h2c = _walk(port, h2c_churn, "h2c", H2C, 2.0)
        for ctx in (ws, sse, h2c):
            assert high_counters(ctx.tally.counters) == {}, ctx.tally.counters
            assert ctx.violations == []
        violations = {k: v for k, v in ws.tally.counters.items() if k.endswith(".violation")}
        assert violations == {}, violations
        assert sse.tally.counters["sse.killed"] >= 5 and h2c.tally.counters["h2c.sent"] >= 12
        ok, reason = trio.run(check_subscribers_return, url, "/stats", "sse_subscribers", None,
                              baseline, 3.0)
        assert ok, reason


def test_ws_accept_unmasked_is_caught() -> None:
    with refapp("ws-accept-unmasked") as port:
        settings = {**WS, "ws_cases": ["unmasked_text", "rsv1_text"]}
        ctx = _walk(port, ws_torture, "ws", settings, 1.0)
    assert ctx.tally.counters.get("ws.accepted_bad_frame", 0) >= 1
    assert ctx.tally.counters.get("ws.case.rsv1_text.pass", 0) >= 1


def test_ws_hang_on_bad_frame_is_caught() -> None:
    with refapp("ws-hang-on-bad-frame") as port:
        settings = {**WS, "ws_cases": ["reserved_opcode_3"], "ws_case_timeout": 0.3}
        ctx = _walk(port, ws_torture, "ws", settings, 1.0)
    counters = ctx.tally.counters
    assert counters.get("ws.hang_no_close", 0) + counters.get("ws.accepted_bad_frame", 0) >= 1


def test_sse_leak_on_reset_is_caught() -> None:
    with refapp("sse-leak-on-reset") as port:
        url = f"http://127.0.0.1:{port}/"
        baseline = trio.run(subscriber_baseline, url, "/stats", "sse_subscribers", None, 2.0)
        settings = {**SSE, "sse_hold_ms": [1, 5], "sse_stages": ["after_headers"],
                    "sse_rst_ratio": 1.0, "sse_leak_check_every": 20, "sse_leak_grace_s": 0.5}
        ctx = _walk(port, sse_kill, "sse", settings, 4.0)
        assert ctx.tally.counters.get("sse.leak", 0) >= 1, ctx.tally.counters
        ok, reason = trio.run(check_subscribers_return, url, "/stats", "sse_subscribers", None,
                              baseline, 0.5)
        assert not ok and "not released" in reason


def test_h2c_crash_is_caught() -> None:
    with refapp("h2c-crash") as port:
        settings = {**H2C, "h2c_timeout": 0.5, "h2c_stages": ["request_sent", "mid_headers"]}
        ctx = _walk(port, h2c_churn, "h2c", settings, 1.5)
    assert ctx.tally.counters.get("h2c.crashed", 0) >= 1
