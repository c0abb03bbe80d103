"""coordinator.sse_leak_check against in-test servers."""

from __future__ import annotations

import trio
from torture_servers import SseBroker, not_found_server, serving, wsproto_server

from coordinator.sse_leak_check import (
    check_subscribers_return,
    leak_verdict,
    route_exists,
    subscriber_baseline,
)
from protocols.outcome import Verdict


async def _hold_subscribers(port: int, count: int, reset: bool) -> None:
    """Open ``count`` subscriptions, read their heads, then drop them (RST or FIN)."""
    streams = []
    for _ in range(count):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.receive_some(4096)
        streams.append(stream)
    for stream in streams:
        if reset:
            import socket
            import struct

            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()


def test_json_and_prometheus_counts_return_to_baseline() -> None:
    async def main() -> None:
        broker = SseBroker(tick=0.01)
        async with serving(broker.handler) as port:
            url = f"http://127.0.0.1:{port}/"
            assert await subscriber_baseline(url, "/stats", "sse_subscribers", None, 1.0) == 0
            metrics = f"http://127.0.0.1:{port}/metrics"
            assert await subscriber_baseline(url, metrics, None, "sse_subscribers", 1.0) == 0
            assert await subscriber_baseline(url, "/stats", "other.x", None, 1.0) == 1
            await _hold_subscribers(port, 3, reset=True)
            ok, reason = await check_subscribers_return(
                url, "/stats", "sse_subscribers", None, 0, 2.0)
            assert ok and "back to 0" in reason
            ok, reason = await check_subscribers_return(
                url, metrics, None, "sse_subscribers", 0, 2.0)
            assert ok, reason

    trio.run(main)


def test_leaked_slots_fail_after_grace() -> None:
    async def main() -> None:
        broker = SseBroker(leaky=True, tick=0.01)
        async with serving(broker.handler) as port:
            url = f"http://127.0.0.1:{port}/"
            baseline = await subscriber_baseline(url, "/stats", "sse_subscribers", None, 1.0)
            await _hold_subscribers(port, 2, reset=True)
            ok, reason = await check_subscribers_return(
                url, "/stats", "sse_subscribers", None, baseline, 0.5)
            assert not ok and "still 2" in reason and "baseline 0" in reason

    trio.run(main)


def test_unreadable_stats_are_not_judged_never_failed() -> None:
    async def main() -> None:
        async with serving(not_found_server) as port:
            url = f"http://127.0.0.1:{port}/"
            assert await subscriber_baseline(url, "/stats", "sse_subscribers", None, 1.0) is None
            verdict, reason = await leak_verdict(url, "/stats", "sse_subscribers", None, 0, 0.3)
            assert verdict is Verdict.UNJUDGED and reason.startswith("not judged:")
            assert (await check_subscribers_return(url, "/stats", "x", None, None, 0.3))[0]
        assert await subscriber_baseline(url, None, "sse_subscribers", None, 1.0) is None

    trio.run(main)


def test_route_preflight() -> None:
    async def main() -> None:
        async with serving(wsproto_server) as port:
            ok, reason = await route_exists(f"http://127.0.0.1:{port}/", "/ws", "ws", 1.0)
            assert ok, reason
        async with serving(SseBroker().handler) as port:
            url = f"http://127.0.0.1:{port}/"
            assert (await route_exists(url, "/events", "sse", 1.0))[0]
            assert await route_exists(url, "/nope", "sse", 1.0) == (False, "no /nope route (404)")
            assert await route_exists(url, "/stats", "ws", 1.0) == (False, "no /stats route (200)")
        async with serving(not_found_server) as port:
            url = f"http://127.0.0.1:{port}/"
            assert await route_exists(url, "/ws", "ws", 1.0) == (False, "no /ws route (404)")
        ok, reason = await route_exists(url, "/ws", "ws", 1.0)
        assert not ok and "connect failed" in reason

    trio.run(main)
