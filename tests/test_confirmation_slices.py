"""Confirmation in the ws, h2c and sse slices, against small in-test servers: a violation
that does not reproduce alone is counted unconfirmed, never as a violation; one that does
is counted once, with the confirmation in its evidence."""

from __future__ import annotations

import trio
from torture_servers import (
    H2cServer,
    SseBroker,
    hang_after_handshake_server,
    serving,
    walker_ctx,
    wsproto_server,
)

from actors import h2c_churn, sse_kill, ws_torture
from protocols.h2c import TeardownStage
from protocols.websocket_cases import BY_NAME as WS_CASES

WS = {"ws_timeout": 1.0, "ws_case_timeout": 0.3}


def test_ws_hang_seen_once_is_unconfirmed() -> None:
    """The first session of a bad-frame case meets a stalled server; alone it is closed."""
    sessions = {"n": 0}

    async def first_hangs(stream: trio.SocketStream) -> None:
        sessions["n"] += 1
        if sessions["n"] == 1:
            await hang_after_handshake_server(stream)
        else:
            await wsproto_server(stream)

    async def main() -> None:
        async with serving(first_hangs) as port:
            ctx = walker_ctx(port, "ws", WS, seconds=10)
            await ws_torture.session(ctx, WS_CASES["reserved_opcode_3"])
        counters = ctx.tally.counters
        assert counters["ws.case.reserved_opcode_3.unconfirmed"] == 1
        assert counters["ws.unconfirmed.not_reproduced"] == 1
        assert not counters.get("ws.hang_no_close") and ctx.violations == []
        assert not counters.get("ws.case.reserved_opcode_3.violation")

    trio.run(main)


def test_ws_real_hang_is_confirmed_once() -> None:
    async def main() -> None:
        async with serving(hang_after_handshake_server) as port:
            ctx = walker_ctx(port, "ws", WS, seconds=10)
            await ws_torture.session(ctx, WS_CASES["reserved_opcode_3"])
        counters = ctx.tally.counters
        assert counters["ws.confirmed"] == 1 and counters["ws.confirm_sent"] == 2
        assert counters["ws.hang_no_close"] == 1
        assert counters["ws.case.reserved_opcode_3.violation"] == 1
        assert ctx.violations[0][1]["confirmation"] == "confirmed"

    trio.run(main)


def test_h2c_garbage_once_is_unconfirmed() -> None:
    good, bad = H2cServer("decline"), H2cServer("garbage")
    served = {"n": 0}

    async def garbage_once(stream: trio.SocketStream) -> None:
        served["n"] += 1
        await (bad if served["n"] == 1 else good).handler(stream)

    async def main() -> None:
        async with serving(garbage_once) as port:
            settings = {"h2c_timeout": 0.5, "h2c_probe_pause_s": 0.05}
            ctx = walker_ctx(port, "h2c", settings, seconds=10)
            survived = await h2c_churn.churn_once(ctx, TeardownStage.AFTER_RESPONSE, "fin")
        counters = ctx.tally.counters
        assert survived and ctx.violations == [] and not counters.get("h2c.crashed")
        assert counters["h2c.case.after_response.fin.unconfirmed"] == 1
        assert counters["h2c.unconfirmed.not_reproduced"] == 1

    trio.run(main)


class LateBroker(SseBroker):
    """Leaky until it is asked anything but /events: then it frees every slot (a broker
    whose reaper ran late, after the walker's grace period but before the re-check)."""

    async def handler(self, stream: trio.SocketStream) -> None:
        peek = await stream.receive_some(65536)
        if not peek.startswith(b"GET /events"):
            self.subscribers = 0
        await super().handler(_Replay(stream, peek))


class _Replay:
    """A stream whose first read returns bytes already taken from it."""

    def __init__(self, stream: trio.SocketStream, first: bytes) -> None:
        self._stream, self._first = stream, first

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        if self._first:
            data, self._first = self._first, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes) -> None:
        await self._stream.send_all(data)


def test_sse_leak_is_confirmed_and_a_recovered_broker_is_not() -> None:
    async def run(broker: SseBroker) -> dict[str, int]:
        async with serving(broker.handler) as port:
            settings = {"sse_leak_grace_s": 0.3, "sse_timeout": 1.0}
            ctx = walker_ctx(port, "sse", settings, seconds=10)
            ctx.tally.incr("sse.established")
            await sse_kill.leak_check(ctx, sse_kill._Config.from_settings(settings))
        return {**ctx.tally.counters, "reports": len(ctx.violations)}

    async def main() -> None:
        counters = await run(SseBroker(leaky=True, limit=0))
        assert counters["sse.leak"] == 1 and counters["sse.confirmed"] == 1
        assert counters["reports"] == 1
        late = LateBroker(leaky=True, limit=1)
        late.subscribers = 1
        counters = await run(late)
        assert not counters.get("sse.leak") and counters["reports"] == 0
        assert counters["sse.case.leak_check.unconfirmed"] == 1
        assert counters["sse.unconfirmed.not_reproduced"] == 1

    trio.run(main)
