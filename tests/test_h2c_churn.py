"""The h2c walker against in-test servers: declining, upgrading, garbage, crashing."""

from __future__ import annotations

import pytest
import trio
from torture_servers import H2cServer, high_counters, serving, walker_ctx

from actors import h2c_churn
from protocols.h2c import TeardownStage

FAST = {"h2c_timeout": 0.5, "h2c_probe_pause_s": 0.05}


@pytest.mark.parametrize("mode", ["decline", "upgrade"])
def test_correct_servers_survive_every_stage(mode: str) -> None:
    pytest.importorskip("h2")

    async def main() -> None:
        server = H2cServer(mode)
        async with serving(server.handler) as port:
            ctx = walker_ctx(port, "h2c", FAST, seconds=1.0)
            await h2c_churn.run(ctx)
        counters = ctx.tally.counters
        assert high_counters(counters) == {} and ctx.violations == []
        for stage in TeardownStage:
            for how in ("fin", "rst"):
                assert counters.get(f"h2c.stage.{stage.value}.{how}"), (stage, how)
        expected = "h2c.upgraded" if mode == "upgrade" else "h2c.declined"
        assert counters[expected] >= 8
        assert not counters.get("h2c.garbage") and not counters.get("h2c.hang")
        assert counters["h2c.probes"] == counters["h2c.sent"]

    trio.run(main)


def test_garbage_answer_is_a_med_must_violation() -> None:
    """Garbage in answer to the upgrade misses a MUST but carries nothing on: I-H2C-MUST (MED);
    the target still answers the probes, so nothing is "crashed"."""
    async def main() -> None:
        async with serving(H2cServer("garbage").handler) as port:
            settings = {**FAST, "h2c_stages": ["after_response"]}
            ctx = walker_ctx(port, "h2c", settings, seconds=0.3)
            await h2c_churn.run(ctx)
        counters = ctx.tally.counters
        # each garbage answer is re-sent alone (confirmation); the walker's deadline may cut
        # the last confirmation short, which leaves that one unconfirmed, not counted
        must = counters["h2c.must_violation"]
        assert counters["h2c.garbage"] >= 1 and must >= 1 and not counters.get("h2c.crashed")
        assert must == counters["h2c.confirmed"]
        assert counters["h2c.garbage"] - must <= 1
        assert counters.get("h2c.unconfirmed", 0) == counters.get("h2c.unconfirmed.deadline", 0)
        counter, evidence = ctx.violations[0]
        assert counter == "h2c.must_violation" and evidence["received"].startswith(b"\x00\x00\x05")
        assert b"Upgrade: h2c" in evidence["sent"] and "garbage" in evidence["reason"]

    trio.run(main)


def test_server_killed_by_a_vanishing_client_is_crashed() -> None:
    async def main() -> None:
        server = H2cServer("crash")
        async with serving(server.handler) as port:
            settings = {**FAST, "h2c_stages": ["request_sent"]}
            ctx = walker_ctx(port, "h2c", settings, seconds=1.5)  # room for confirmation
            await h2c_churn.run(ctx)
        assert server.dead
        counters = ctx.tally.counters
        assert counters["h2c.crashed"] >= 1
        counter, evidence = ctx.violations[0]
        assert counter == "h2c.crashed" and len(evidence["probes"]) == 2
        assert evidence["stage"] == "request_sent"

    trio.run(main)


def test_refused_target_is_crashed_after_two_probes() -> None:
    async def main() -> None:
        async with serving(H2cServer("decline").handler) as port:
            pass
        ctx = walker_ctx(port, "h2c", FAST, seconds=1.0)  # room for confirmation's re-sends
        await h2c_churn.run(ctx)
        counters = ctx.tally.counters
        assert counters["h2c.crashed"] >= 1 and counters["h2c.errors"] >= 1
        assert "connect failed" in ctx.violations[0][1]["reason"]

    trio.run(main)
