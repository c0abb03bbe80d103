"""Severity calibration (issue 10, item 7), both ways, with the real walkers: a MUST missed
without security weight moves the MED counter behind I-WS-MUST / I-H2C-MUST and no HIGH
counter; a correct server moves neither. The full list: docs/severity-calibration.md."""

from __future__ import annotations

import trio
from torture_servers import (
    high_counters,
    lenient_echo_server,
    serving,
    walker_ctx,
    wsproto_server,
)
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request

from actors import ws_torture
from coordinator.invariants import BY_ID, judge_all
from protocols.outcome import Severity

FAST = {"ws_timeout": 1.0, "ws_case_timeout": 0.3}


async def refuses_without_version_header(stream: trio.SocketStream) -> None:
    """RFC 6455 §4.2.2 half-kept: refuses an unknown version, but without the header."""
    data = await stream.receive_some(65536)
    if b"Sec-WebSocket-Version: 12" in data:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
        return
    ws = WSConnection(ConnectionType.SERVER)
    while data:
        ws.receive_data(data)
        out = b""
        for event in ws.events():
            if isinstance(event, Request):
                out += ws.send(AcceptConnection())
            elif isinstance(event, Ping):
                out += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                await stream.send_all(out + ws.send(event.response()))
                return
        await stream.send_all(out)
        data = await stream.receive_some(65536)


def _walk(handler, cases: list[str]):
    async def main():
        async with serving(handler) as port:
            ctx = walker_ctx(port, "ws", {**FAST, "ws_cases": cases}, seconds=1.5)
            await ws_torture.run(ctx)
        return ctx

    return trio.run(main)


def _verdict(counters: dict[str, int], inv: str) -> str:
    for status, entries in judge_all(counters, {}).items():
        if any(e["id"] == inv for e in entries):
            return status
    raise AssertionError(inv)


def test_missing_version_header_is_med_not_high() -> None:
    ctx = _walk(refuses_without_version_header, ["handshake_wrong_version"])
    counters = ctx.tally.counters
    assert counters["ws.version_header_missing"] >= 1
    assert counters["ws.must_violation"] == counters["ws.version_header_missing"]
    assert high_counters(counters) == {} and ctx.violations == []
    assert BY_ID["I-WS-MUST"].severity is Severity.MED
    assert _verdict(counters, "I-WS-MUST") == "failed"
    assert _verdict(counters, "I-WS-ACCEPTED") == "passed"


def test_reflected_forbidden_close_code_is_med_not_high() -> None:
    ctx = _walk(lenient_echo_server, ["close_code_1005", "close_code_1015"])
    counters = ctx.tally.counters
    assert counters["ws.server_bad_close_code"] >= 1
    assert counters["ws.must_violation"] == counters["ws.server_bad_close_code"]
    assert high_counters(counters) == {}


def test_correct_server_moves_no_med_counter() -> None:
    ctx = _walk(wsproto_server, ["handshake_wrong_version", "close_code_1005", "ping_flood",
                                 "echo_text", "client_close"])
    counters = ctx.tally.counters
    assert counters["ws.sessions"] >= 5
    assert not counters.get("ws.must_violation") and high_counters(counters) == {}
    assert _verdict(counters, "I-WS-MUST") == "passed"
