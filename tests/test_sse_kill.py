"""The sse walker against in-test brokers: a correct one, a leaky one, a missing route."""

from __future__ import annotations

import trio
from torture_servers import (
    SseBroker,
    hang_server,
    high_counters,
    not_found_server,
    serving,
    walker_ctx,
)

from actors import sse_kill
from protocols.sse import SseKillStage

FAST = {
    "sse_timeout": 1.0,
    "sse_hold_ms": [5, 40],
    "sse_leak_check_every": 3,
    "sse_leak_grace_s": 0.5,
}


def test_correct_broker_releases_slots_and_trips_nothing() -> None:
    async def main() -> None:
        broker = SseBroker()
        async with serving(broker.handler) as port:
            ctx = walker_ctx(port, "sse", FAST, seconds=1.5)
            await sse_kill.run(ctx)
            await trio.sleep(0.1)  # the broker notices the last departures on its next tick
            assert broker.subscribers == 0
        counters = ctx.tally.counters
        assert high_counters(counters) == {} and ctx.violations == []
        assert counters["sse.sent"] >= 10 and counters["sse.established"] >= 5
        assert counters["sse.killed"] >= 10 and counters["sse.events_read"] >= 1
        assert counters["sse.leak_checks"] >= 2
        assert counters.get("sse.handshake_failed", 0) == 0
        for stage in SseKillStage:
            assert any(k.startswith(f"sse.kill.{stage.value}.") for k in counters), stage
        assert any(k.endswith(".rst") for k in counters)
        assert any(k.endswith(".fin") for k in counters)

    trio.run(main)


def test_leaky_broker_is_caught() -> None:
    async def main() -> None:
        broker = SseBroker(leaky=True, limit=4)
        async with serving(broker.handler) as port:
            settings = {**FAST, "sse_stages": ["after_headers", "idle"]}
            ctx = walker_ctx(port, "sse", settings, seconds=1.5)
            await sse_kill.run(ctx)
        counters = ctx.tally.counters
        assert counters["sse.leak"] >= 1
        counter, evidence = ctx.violations[0]
        assert counter == "sse.leak" and evidence["status"] == 503
        assert b"GET /events HTTP/1.1" in evidence["sent"] and b"503" in evidence["received"]

    trio.run(main)


def test_rate_limiting_is_not_a_leak() -> None:
    async def main() -> None:
        broker = SseBroker(leaky=True, limit=4, refusal=429)
        async with serving(broker.handler) as port:
            settings = {**FAST, "sse_stages": ["after_headers"], "sse_leak_grace_s": 0.3}
            ctx = walker_ctx(port, "sse", settings, seconds=1.0)
            await sse_kill.run(ctx)
        counters = ctx.tally.counters
        assert "sse.leak" not in counters and counters["sse.rate_limited"] >= 1

    trio.run(main)


def test_missing_route_is_handshake_failure_not_leak() -> None:
    async def main() -> None:
        async with serving(not_found_server) as port:
            ctx = walker_ctx(port, "sse", FAST, seconds=0.5)
            await sse_kill.run(ctx)
        counters = ctx.tally.counters
        assert counters["sse.handshake_failed"] >= 1 and "sse.leak" not in counters

    trio.run(main)


def test_server_that_never_answers_is_not_a_leak_without_subscriptions() -> None:
    async def main() -> None:
        async with serving(hang_server) as port:
            settings = {**FAST, "sse_timeout": 0.1, "sse_stages": ["idle"]}
            ctx = walker_ctx(port, "sse", settings, seconds=0.6)
            await sse_kill.run(ctx)
        counters = ctx.tally.counters
        assert counters["sse.handshake_failed"] >= 1 and "sse.leak" not in counters

    trio.run(main)
