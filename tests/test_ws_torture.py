"""The ws walker against small in-test servers: a correct one and defective ones."""

from __future__ import annotations

import trio
from torture_servers import (
    hang_after_handshake_server,
    high_counters,
    lenient_echo_server,
    not_found_server,
    serving,
    walker_ctx,
    wsproto_server,
)

from actors import ws_torture
from protocols.websocket_cases import CASES, HANDSHAKE_CASES

FAST = {"ws_timeout": 1.0, "ws_case_timeout": 0.3}


def test_correct_server_trips_nothing_and_every_case_runs() -> None:
    async def main() -> None:
        async with serving(wsproto_server) as port:
            ctx = walker_ctx(port, "ws", FAST, seconds=2.5)
            await ws_torture.run(ctx)
        counters = ctx.tally.counters
        assert high_counters(counters) == {} and ctx.violations == []
        for case in (*CASES, *HANDSHAKE_CASES):
            judged = [k for k in counters if k.startswith(f"ws.case.{case.name}.")]
            assert judged, f"{case.name} never ran"
        violations = {k: v for k, v in counters.items() if k.endswith(".violation")}
        assert violations == {}
        assert counters.get("ws.handshake_failed", 0) == 0
        assert counters["ws.sessions"] >= len(CASES) + len(HANDSHAKE_CASES)

    trio.run(main)


def test_server_that_echoes_unmasked_frames_is_caught() -> None:
    async def main() -> None:
        async with serving(lenient_echo_server) as port:
            settings = {**FAST, "ws_cases": ["unmasked_text", "rsv1_text"]}
            ctx = walker_ctx(port, "ws", settings, seconds=0.5)
            await ws_torture.run(ctx)
        assert ctx.tally.counters["ws.accepted_bad_frame"] >= 2
        counter, evidence = ctx.violations[0]
        assert counter == "ws.accepted_bad_frame"
        assert evidence["reaction"] == "accepted" and evidence["rfc"].startswith("RFC 6455")
        assert b"GET /ws HTTP/1.1" in evidence["sent"] and b"assay-" in evidence["received"]
        assert evidence["recent"], "the walker's recent exchanges travel with the evidence"

    trio.run(main)


def test_server_that_accepts_bad_handshakes_is_caught() -> None:
    async def main() -> None:
        async with serving(lenient_echo_server) as port:
            settings = {**FAST, "ws_cases": ["handshake_missing_key"]}
            ctx = walker_ctx(port, "ws", settings, seconds=0.3)
            await ws_torture.run(ctx)
        assert ctx.tally.counters["ws.accepted_bad_frame"] >= 1

    trio.run(main)


def test_server_that_hangs_on_a_bad_frame_is_caught() -> None:
    async def main() -> None:
        async with serving(hang_after_handshake_server) as port:
            settings = {**FAST, "ws_cases": ["reserved_opcode_3"], "ws_case_timeout": 0.2}
            # 1.5 s: a hang is re-sent alone twice (confirmation) before it counts
            ctx = walker_ctx(port, "ws", settings, seconds=1.5)
            await ws_torture.run(ctx)
        counters = ctx.tally.counters
        assert counters["ws.hang_no_close"] >= 1
        assert counters["ws.case.reserved_opcode_3.violation"] == counters["ws.hang_no_close"]
        assert ctx.violations[0][1]["reaction"] == "hang"

    trio.run(main)


def test_missing_route_is_counted_not_blamed() -> None:
    async def main() -> None:
        async with serving(not_found_server) as port:
            settings = {**FAST, "ws_cases": ["unmasked_text"]}
            ctx = walker_ctx(port, "ws", settings, seconds=0.3)
            await ws_torture.run(ctx)
        counters = ctx.tally.counters
        assert counters["ws.handshake_failed"] >= 1
        assert high_counters(counters) == {}
        assert counters["ws.case.unmasked_text.unjudged"] >= 1

    trio.run(main)


def test_connect_refused_backs_off_and_counts_errors() -> None:
    async def main() -> None:
        async with serving(not_found_server) as port:
            pass  # the port is closed again
        ctx = walker_ctx(port, "ws", FAST, seconds=0.5)
        await ws_torture.run(ctx)
        counters = ctx.tally.counters
        assert 1 <= counters["ws.errors"] <= 4 and "ws.sessions" not in counters

    trio.run(main)
