"""``assay hold`` without a fleet: the schedule and counts (pure), the flags, and the walker
against sockets in this process."""

from __future__ import annotations

import errno
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from actors import hold_walker
from actors.walker import Target
from coordinator.cli import main
from coordinator.config import ConfigError
from coordinator.hold_cli import parse_connections, parse_delay, parse_target
from protocols import hold_stats
from protocols.hold_stats import (
    CSV_HEADER,
    ConnectFailure,
    HoldCounts,
    HoldPlan,
    csv_row,
    failure_of,
    interval_line,
    reset_in_handshake,
    shortfalls,
)
from protocols.tally import Tally


def _plan(**changes: Any) -> HoldPlan:
    base = {"connections": 10, "delay_s": 0.01, "hold_s": 2.0, "interval_s": 1.0,
            "connect_timeout_s": 1.0}
    return HoldPlan(**{**base, **changes})


# -- the schedule -----------------------------------------------------------------------
@pytest.mark.parametrize("connections", [1, 2, 7, 100])
@pytest.mark.parametrize("actors", [1, 2, 3, 8])
def test_the_actors_shares_are_every_connection_once(connections: int, actors: int) -> None:
    plan = _plan(connections=connections)
    dealt = [j for rank in range(actors) for j in plan.share(rank, actors)]
    assert sorted(dealt) == list(range(connections))


def test_due_times_and_the_end() -> None:
    plan = _plan(connections=500, delay_s=0.001, hold_s=2.0)
    assert plan.due_s(0) == 0.0 and plan.due_s(250) == pytest.approx(0.25)
    assert plan.last_dial_s == pytest.approx(0.499)
    assert plan.end_s == pytest.approx(2.499)
    assert _plan(connections=1).end_s == 2.0
    assert HoldPlan.from_wire(plan.to_wire()) == plan


# -- counts and verdict -----------------------------------------------------------------
def _counters(**values: int) -> dict[str, int]:
    names = {"dialed": hold_stats.DIALED, "established": hold_stats.ESTABLISHED,
             "failed": hold_stats.CONNECT_FAILED, "refused": ConnectFailure.REFUSED.counter,
             "timeout": ConnectFailure.TIMEOUT.counter, "closed": hold_stats.CLOSED_BY_PEER,
             "reset": hold_stats.RESET, "fd_limited": hold_stats.FD_LIMITED,
             "fd_capacity": hold_stats.FD_CAPACITY, "done": hold_stats.DONE}
    return {names[key]: value for key, value in values.items()}


def test_still_open_is_derived() -> None:
    counts = HoldCounts.from_counters(_counters(dialed=10, established=9, failed=1, refused=1,
                                                closed=2, reset=1))
    assert counts.still_open == 6 and counts.refused == 1 and counts.other == 0


def test_every_connection_held_is_ok() -> None:
    counts = HoldCounts.from_counters(_counters(dialed=10, established=10, done=2))
    assert shortfalls(_plan(), counts) == []
    block = hold_stats.section(_plan(), counts, {})
    assert block["ok"] and block["still_open"] == 10 and "http" not in block
    assert "verdict        ok" in "\n".join(hold_stats.render(block))


def test_each_shortfall_is_named_with_its_count() -> None:
    counts = HoldCounts.from_counters(_counters(dialed=7, established=5, failed=2, timeout=2,
                                                closed=1, reset=1, fd_limited=3,
                                                fd_capacity=7))
    assert shortfalls(_plan(), counts) == [
        "3 never dialed: the open-file limit lets the actors hold at most 7",
        "2 failed to connect (refused 0, timeout 2, other 0)",
        "1 closed by the peer", "1 reset"]
    block = hold_stats.section(_plan(), counts, {})
    text = "\n".join(hold_stats.render(block))
    assert not block["ok"] and "still open     3 of 10 at the end" in text
    assert "fd limit       can hold at most 7: 3 never dialed" in text
    assert "verdict        FAILED: 3 never dialed" in text


def test_a_run_cut_short_is_not_judged() -> None:
    counts = HoldCounts.from_counters(_counters(dialed=4, established=4))
    block = hold_stats.section(_plan(), counts, {}, finished=False)
    assert not block["ok"] and block["shortfalls"][:2] == [
        "the run ended before the hold did", "6 not dialed before the run ended"]
    assert any(line.startswith("  verdict        not judged") for line in
               hold_stats.render(block))


def test_csv_and_the_stats_line() -> None:
    counts = HoldCounts.from_counters(_counters(dialed=12, established=11, failed=1,
                                                refused=1, closed=3))
    row = csv_row(1.5, counts)
    assert len(row.split(",")) == len(CSV_HEADER.split(","))
    assert row == "1.500,12,11,3,0,1,1,0,0,8\n"
    assert interval_line(1.5, counts, 500) == ("[   1.5s] dialed  12/500  established  11  "
                                               "closed-by-peer   3  reset   0  failed   1  "
                                               "still-open   8")
    assert interval_line(9, counts, 500, final=True).startswith("[    end] dialed  12/500")


def test_http_block_reads_status_counters() -> None:
    block = hold_stats.http_block({hold_stats.HTTP_SENT: 3, hold_stats.HTTP_RESPONSES: 3,
                                   "hold.http_status.200": 2, "hold.http_status.503": 1})
    assert block == {"sent": 3, "responses": 3, "status_codes": {"200": 2, "503": 1},
                     "malformed": 0, "too_large": 0}


def test_connect_failures_by_cause() -> None:
    assert failure_of(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is \
        ConnectFailure.REFUSED
    assert failure_of(OSError(errno.ETIMEDOUT, "timed out")) is ConnectFailure.TIMEOUT
    assert failure_of(OSError(errno.ENETUNREACH, "unreachable")) is ConnectFailure.OTHER
    assert failure_of(OSError(errno.EMFILE, "too many open files")) is ConnectFailure.OTHER
    assert reset_in_handshake(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert not reset_in_handshake(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))


# -- the flags --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("http://127.0.0.1:8080/", "/")),
    ("localhost:80", ("http://localhost:80/", "/")),
    ("[::1]:9000", ("http://[::1]:9000/", "/")),
    ("http://127.0.0.1:8080/api/ping", ("http://127.0.0.1:8080/api/ping", "/api/ping")),
    ("http://127.0.0.1:8080", ("http://127.0.0.1:8080", "/")),
])
def test_targets_that_parse(text: str, expected: tuple[str, str]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:", "127.0.0.1:0", ":80",
                                  "127.0.0.1:65536", "127.0.0.1:8o", "a b:80",
                                  "ftp://127.0.0.1:443/", "http://127.0.0.1:x/",
                                  "http://127.0.0.1:80/?q=1"])
def test_targets_that_do_not(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(text)


def test_delays_and_counts() -> None:
    assert parse_delay("0") == parse_delay("0ms") == 0.0
    assert parse_delay("10ms") == pytest.approx(0.01)
    assert parse_connections("500") == 500
    for bad in ("0", "-3", "ten", "1.5"):
        with pytest.raises(ConfigError):
            parse_connections(bad)
    with pytest.raises(ConfigError):
        parse_delay("-1ms")


@pytest.mark.parametrize("args", [
    ["--target", "nohost"], ["--target", "127.0.0.1:99999"],
    ["--target", "127.0.0.1:80", "--connections", "0"],
    ["--target", "127.0.0.1:80", "--connections", "-1"],
    ["--target", "127.0.0.1:80", "--delay", "soon"],
    ["--target", "127.0.0.1:80", "--hold", "0"],
    ["--target", "127.0.0.1:80", "--hold", "10 parsecs"],
    ["--target", "127.0.0.1:80", "--interval", "1ms"],
    ["--target", "127.0.0.1:80", "--connect-timeout", "never"],
    ["--target", "http://127.0.0.1:80/a b", "--send-http"],
    [],
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ASSAY_TARGET", raising=False)
    assert main(["hold", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("assay: error: "), err


# -- the walker, against sockets in this process ----------------------------------------
def _ctx(plan: HoldPlan, port: int, rank: int = 0, count: int = 1,
         capacity: int = 1 << 20) -> Any:
    settings = {"hold_plan": plan, "slice_share": (rank, count, 0),
                "hold_fd_capacity": capacity, "hold_fd_limit": (capacity, capacity)}
    return SimpleNamespace(settings=settings, tally=Tally(), actor_id=rank,
                           target=Target.from_url(f"http://127.0.0.1:{port}/"))


async def _serve(listener: Any, held: list[Any], close_after: int | None = None) -> None:
    while True:
        conn, _ = await listener.accept()
        if close_after is not None and len(held) >= close_after:
            conn.close()
        else:
            held.append(conn)


async def _listener() -> Any:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def test_the_walker_holds_its_share_and_counts_the_rest() -> None:
    trio.run(_holds_its_share)


async def _holds_its_share() -> None:
    plan = _plan(connections=9, delay_s=0.001, hold_s=0.3)
    listener = await _listener()
    held: list[Any] = []
    port = listener.getsockname()[1]
    ctx = _ctx(plan, port, rank=1, count=2, capacity=3)  # share 1,3,5,7: one too many
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_serve, listener, held, 2)  # keeps 2, closes the third
        with trio.fail_after(5):
            await hold_walker.run(ctx)
        nursery.cancel_scope.cancel()
    counters = ctx.tally.counters
    counts = HoldCounts.from_counters(counters)
    assert (counts.dialed, counts.established, counts.closed_by_peer, counts.still_open,
            counts.fd_limited, counts.fd_capacity, counts.done) == (3, 3, 1, 2, 1, 3, 1)
    assert ctx.tally.examples[hold_stats.FD_LIMITED]["share"] == 4
    for conn in held:
        conn.close()
    listener.close()


def test_a_closed_port_is_refused_on_every_dial() -> None:
    trio.run(_refused_on_every_dial)


async def _refused_on_every_dial() -> None:
    listener = await _listener()
    port = listener.getsockname()[1]
    listener.close()
    ctx = _ctx(_plan(connections=3, delay_s=0.0, hold_s=0.2), port)
    with trio.fail_after(5):
        await hold_walker.run(ctx)
    counts = HoldCounts.from_counters(ctx.tally.counters)
    assert (counts.dialed, counts.connect_failed, counts.refused, counts.established) == \
        (3, 3, 3, 0)


def _hold_on_pair(send_http: bool, server_bytes: bytes,
                  close: bool) -> tuple[str | None, Tally]:
    return trio.run(_hold_on_pair_async, send_http, server_bytes, close)


async def _hold_on_pair_async(send_http: bool, server_bytes: bytes,
                              close: bool) -> tuple[str | None, Tally]:
    plan = _plan(send_http=send_http, path="/ping")
    ctx = _ctx(plan, 80)
    holder = hold_walker._Holder(ctx, plan, [], trio.current_time() + 5)
    ours, theirs = trio.socket.socketpair()
    ending: str | None = None
    with ours, theirs:
        async with trio.open_nursery() as nursery:
            async def hold() -> None:
                nonlocal ending
                with trio.move_on_after(0.5):
                    ending = await holder._hold(ours, 0)

            nursery.start_soon(hold)
            if send_http:
                request = await theirs.recv(1024)
                assert request == b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            if server_bytes:
                await theirs.send(server_bytes)
            if close:
                theirs.close()
    return ending, ctx.tally


OK_KEEP_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
OK_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


def test_a_fin_is_closed_by_peer() -> None:
    ending, _ = _hold_on_pair(False, b"", close=True)
    assert ending == hold_stats.CLOSED_BY_PEER


def test_an_open_connection_is_held_until_the_deadline() -> None:
    ending, _ = _hold_on_pair(False, b"stray bytes are read and dropped", close=False)
    assert ending is None


def test_a_keep_alive_answer_is_counted_and_the_connection_held() -> None:
    ending, tally = _hold_on_pair(True, OK_KEEP_ALIVE, close=False)
    assert ending is None
    assert tally.counters == {hold_stats.HTTP_SENT: 1, hold_stats.HTTP_RESPONSES: 1,
                              "hold.http_status.200": 1}


def test_a_connection_close_answer_is_closed_by_peer_at_once() -> None:
    ending, tally = _hold_on_pair(True, OK_CLOSE, close=False)
    assert ending == hold_stats.CLOSED_BY_PEER
    assert tally.counters[hold_stats.HTTP_RESPONSES] == 1


def test_garbage_then_a_close_is_malformed_and_closed_by_peer() -> None:
    ending, tally = _hold_on_pair(True, b"SSH-2.0-OpenSSH_9.6\r\n\r\n", close=True)
    assert ending == hold_stats.CLOSED_BY_PEER
    assert tally.counters[hold_stats.HTTP_MALFORMED] == 1
