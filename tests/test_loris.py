"""``assay loris`` without a fleet: the bytes of each mode and the plan (pure), the
per-second rows and the verdict (pure), the flags, the refapp's worker pool, and the
walker against sockets in this process."""

from __future__ import annotations

import errno
import random
from types import SimpleNamespace
from typing import Any

import h11
import pytest
import trio

from actors import loris_walker
from actors.walker import Target
from coordinator.cli import build_parser, main
from coordinator.loris_cli import build_plan, control_plan
from protocols import loris
from protocols.http1 import RequestBuildError
from protocols.load_model import CONSTANT_ARRIVAL_RATE
from protocols.loris import (
    ConnectFailure,
    LorisCounts,
    LorisPlan,
    Mode,
    connect_failure,
    drip,
    ending_of,
    opening,
    range_header,
)
from protocols.loris_report import (
    CSV_HEADER,
    ControlTotals,
    IntervalSampler,
    render,
    section,
    verdict,
)
from protocols.tally import Tally
from refapp.worker_pool import Worker


def _plan(**changes: Any) -> LorisPlan:
    base = {"mode": Mode.HEADERS, "connections": 10, "rate": 100.0, "interval_s": 1.0,
            "duration_s": 5.0, "path": "/p", "control_duration_s": 5.0}
    return LorisPlan(**{**base, **changes})


# -- the bytes ----------------------------------------------------------------------------
def _server_events(data: bytes) -> list[Any]:
    """What an RFC-conforming server parser makes of ``data`` (h11, as the refapp)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    events = []
    while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(event)
    return events


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "byte-by-byte"])
def test_slow_headers_never_end_the_head(whole: bool) -> None:
    plan = _plan()
    rng = random.Random(7)
    sent = opening(plan, "example.test") + b"".join(drip(plan, n, rng) for n in range(200))
    assert sent.startswith(b"GET /p HTTP/1.1\r\nHost: example.test\r\nUser-Agent: ")
    assert b"\r\n\r\n" not in sent
    if whole:
        assert _server_events(sent) == []  # still waiting for the head
    else:
        conn = h11.Connection(h11.SERVER)
        for byte in sent:
            conn.receive_data(bytes([byte]))
            assert conn.next_event() is h11.NEED_DATA


def test_header_drips_are_seeded_and_numbered() -> None:
    plan = _plan()
    first = [drip(plan, n, random.Random(3)) for n in range(3)]
    again = [drip(plan, n, random.Random(3)) for n in range(3)]
    assert first == again
    assert first[0].startswith(b"X-a0: ") and first[2].startswith(b"X-a2: ")
    assert all(d.endswith(b"\r\n") and d.count(b"\r\n") == 1 for d in first)


def test_slow_body_announces_the_length_and_never_completes_it() -> None:
    plan = _plan(mode=Mode.BODY, body_length=20)
    head = opening(plan, "h")
    assert head.startswith(b"POST /p HTTP/1.1\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 20\r\n" in head
    assert b"Content-Type: application/x-www-form-urlencoded\r\n" in head
    rng, sent = random.Random(1), 0
    pieces = []
    for n in range(50):
        piece = drip(plan, n, rng, sent)
        assert len(piece) <= loris.MAX_BODY_DRIP
        sent += len(piece)
        pieces.append(piece)
    assert sent == 19 and pieces[-1] == b""  # one byte short, then nothing more
    events = _server_events(head + b"".join(pieces))
    assert isinstance(events[0], h11.Request)
    assert sum(len(e.data) for e in events if isinstance(e, h11.Data)) == 19
    assert not any(isinstance(e, h11.EndOfMessage) for e in events)


def test_slow_read_sends_a_whole_keep_alive_get() -> None:
    head = opening(_plan(mode=Mode.READ), "h")
    assert head.endswith(b"Connection: keep-alive\r\n\r\n")
    events = _server_events(head)
    assert isinstance(events[0], h11.Request) and isinstance(events[-1], h11.EndOfMessage)
    assert drip(_plan(mode=Mode.READ), 0, random.Random(0)) == b""


def test_range_asks_for_many_overlapping_ranges() -> None:
    assert range_header(3) == "bytes=0-,5-0,5-1,5-2"
    head = opening(_plan(mode=Mode.RANGE, ranges=1000), "h")
    request = _server_events(head)[0]
    ranges = dict(request.headers)[b"range"]
    assert ranges.startswith(b"bytes=0-,5-0,5-1,") and ranges.endswith(b",5-999")
    assert len(ranges.split(b",")) == 1001
    assert len(head) < 8192  # under nginx's default header line buffer


def test_a_path_that_cannot_be_requested_is_refused() -> None:
    with pytest.raises(RequestBuildError):
        opening(_plan(path="/a b"), "h")


# -- the plan and the counts --------------------------------------------------------------
@pytest.mark.parametrize("connections", [1, 7, 100])
@pytest.mark.parametrize("actors", [1, 3, 8])
def test_the_actors_shares_are_every_connection_once(connections: int, actors: int) -> None:
    plan = _plan(connections=connections)
    dealt = [j for rank in range(actors) for j in plan.share(rank, actors)]
    assert sorted(dealt) == list(range(connections))


def test_due_times_and_the_wire() -> None:
    plan = _plan(connections=1000, rate=200.0, duration_s=2.0, control_duration_s=0.5)
    assert plan.due_s(0) == 0.0 and plan.due_s(200) == pytest.approx(1.0)
    assert plan.dialed_in_time == 400  # the rest would be due after --duration
    assert _plan(connections=64, rate=200.0, duration_s=6.0).dialed_in_time == 64
    assert plan.control_start_s == 1.5
    assert LorisPlan.from_wire(plan.to_wire()) == plan


def test_connect_failures_and_endings_by_cause() -> None:
    assert connect_failure(ConnectionRefusedError()) is ConnectFailure.REFUSED
    assert connect_failure(ConnectionResetError()) is ConnectFailure.RESET
    assert connect_failure(OSError(errno.ETIMEDOUT, "t")) is ConnectFailure.TIMEOUT
    assert connect_failure(OSError(errno.ENETUNREACH, "u")) is ConnectFailure.OTHER
    assert [f.refusing for f in ConnectFailure] == [True, True, False, False]
    assert ending_of(BrokenPipeError()) == loris.CLOSED_BY_SERVER
    assert ending_of(ConnectionResetError()) == loris.RESET


def test_connecting_and_still_open_are_derived() -> None:
    counts = LorisCounts.from_counters({
        loris.OPENED: 10, loris.CONNECTED: 6, loris.CONNECT_FAILED: 3,
        ConnectFailure.REFUSED.counter: 2, ConnectFailure.TIMEOUT.counter: 1,
        loris.CLOSED_BY_SERVER: 2, loris.RESET: 1})
    assert (counts.connecting, counts.still_open, counts.closed, counts.refusing) == \
        (1, 3, 3, 2)


# -- rows and verdict ---------------------------------------------------------------------
def _control(due: int, finished: int, failed: int = 0, dropped: int = 0) -> ControlTotals:
    return ControlTotals(due, finished, failed, dropped)


def test_control_success_counts_dropped_and_unanswered_as_failures() -> None:
    control = ControlTotals.from_counters({
        "load.control.scheduled": 200, "load.control.requests": 190,
        "load.control.failed": 5, "load.control.dropped": 4})
    assert (control.ok, control.success_pct) == (185, 92.5)
    assert ControlTotals().success_pct is None


@pytest.mark.parametrize(("ok", "passed"), [(95, True), (94, False), (100, True)])
def test_the_verdict_is_the_threshold(ok: int, passed: bool) -> None:
    good, why = verdict(_plan(threshold_control=95.0), _control(100, 100, 100 - ok))
    assert good is passed
    assert why.startswith(f"control success {ok:.2f} % ({ok} of 100 due)")


def test_nothing_due_cannot_pass() -> None:
    assert verdict(_plan(), ControlTotals()) == (
        False, "no control request was due: nothing to judge")


def test_one_row_per_second_in_slowhttptest_terms() -> None:
    sampler = IntervalSampler()
    open_ = LorisCounts(opened=10, connected=8)
    assert not sampler.due(0.6) and sampler.due(1.02)
    rows = [sampler.sample(1.02, open_, _control(20, 20)),
            sampler.sample(2.01, open_, _control(40, 20)),   # due, none through
            sampler.sample(3.0, LorisCounts(opened=12, connected=8, connect_failed=4,
                                            refused=4), _control(40, 20)),  # says nothing
            sampler.sample(3.4, open_, _control(40, 30, 10), final=True)]
    assert [r.csv() for r in rows if r] == [
        "1,0,2,8,0,yes,20,0\n", "2,0,2,8,0,no,0,0\n", "3,0,0,8,4,no,0,0\n",
        "4,0,2,8,0,no,0,10\n"]
    assert CSV_HEADER.startswith("seconds,closed,pending,connected,error,")
    assert (sampler.unavailable_at_s, sampler.refusing_at_s) == (2, 3)
    assert sampler.sample(4.5, open_, _control(40, 30)) is None  # second 4 has a row
    later = IntervalSampler()
    for second in range(1, 6):
        later.sample(second + 0.01, open_, _control(0, 0))
    assert later.sample(6.1, open_, _control(0, 0), final=True).second == 6  # type: ignore
    assert rows[0].line().startswith("[    1s] pending     2  connected     8  closed     0")


def test_section_and_text() -> None:
    sampler = IntervalSampler()
    sampler.sample(1.0, LorisCounts(), _control(10, 0))
    block = section(_plan(), LorisCounts(opened=10, connected=10, closed_by_server=2),
                    _control(100, 90, 30, 5), {"408": 2}, sampler, {"requests": 90})
    assert (block["control_success_pct"], block["ok"], block["still_open"]) == (60.0, False, 8)
    assert (block["control_unfinished"], block["control_unavailable_at_s"]) == (5, 1)
    text = "\n".join(render(block))
    assert "closed         by the server 2, reset 0; answers 408 x2" in text
    assert "verdict        FAILED: control success 60.00 % (60 of 100 due) < 95 %" in text


# -- the flags ----------------------------------------------------------------------------
def _args(*argv: str) -> Any:
    return build_parser().parse_args(["loris", *argv])


def test_defaults_are_slowhttptests() -> None:
    plan = build_plan(_args(), "/x")
    assert (plan.mode, plan.connections, plan.rate, plan.interval_s, plan.duration_s,
            plan.control_rate, plan.threshold_control, plan.body_length) == \
        (Mode.HEADERS, 1000, 200.0, 10.0, 60.0, 100.0, 95.0, 8192)
    assert plan.control_duration_s == 60.0 and plan.path == "/x"


def test_the_control_scenario() -> None:
    plan = build_plan(_args("--duration", "10s", "--control-duration", "4s",
                            "--control-rate", "50/s"), "/x")
    (scenario,) = control_plan(plan, 5.0).scenarios
    assert (scenario.name, scenario.executor.kind, scenario.executor.rate,
            scenario.executor.duration_s, scenario.start_s, scenario.request.path) == \
        ("control", CONSTANT_ARRIVAL_RATE, 50.0, 4.0, 6.0, "/x")
    assert scenario.executor.max_vus >= 50 * 5


@pytest.mark.parametrize("args", [
    ["--mode", "slow"], ["--connections", "0"], ["--connections", "many"],
    ["--rate", "0"], ["--rate", "fast"], ["--interval", "1ms"], ["--interval", "soon"],
    ["--duration", "0"], ["--control-rate", "-1"], ["--threshold-control", "101"],
    ["--threshold-control", "most"], ["--control-duration", "2m"], ["--body-length", "1"],
    ["--ranges", "0"], ["--connect-timeout", "never"],
    ["--target", "http://127.0.0.1:1/a b"], ["--target", "ftp://example.test/"],
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ASSAY_TARGET", raising=False)
    assert main(["loris", "--target", "http://127.0.0.1:1/", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("assay: error: "), err


# -- the refapp's worker pool -------------------------------------------------------------
def test_a_worker_is_given_back_once() -> None:
    async def main_() -> None:
        pool = trio.Semaphore(1)
        first, second = Worker(pool), Worker(pool)
        await first.take()
        await first.take()  # held already: no second claim
        with trio.move_on_after(0.05) as waited:
            await second.take()
        assert waited.cancelled_caught and not second.held
        first.give_back()
        first.give_back()
        assert pool.value == 1

    trio.run(main_)


# -- the walker, against sockets in this process ------------------------------------------
def _ctx(plan: LorisPlan, port: int, end: float) -> Any:
    settings = {"loris_plan": plan, "slice_share": (0, 1, 0), "loris_fd_capacity": 1 << 20}
    return SimpleNamespace(settings=settings, tally=Tally(), actor_id=0, deadline=end,
                           rng=random.Random(5),
                           target=Target.from_url(f"http://127.0.0.1:{port}/"))


async def _attack(plan: LorisPlan, answer: bytes | None, after_bytes: int,
                  seconds: float) -> tuple[Tally, list[bytes]]:
    """Run the walker for ``seconds`` against a server that, once it has read
    ``after_bytes`` on a connection, writes ``answer`` and closes (None: only reads)."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    received: list[bytes] = []

    async def serve_one(conn: Any) -> None:
        data = b""
        with conn:
            while chunk := await conn.recv(65536):
                data += chunk
                if answer is not None and len(data) >= after_bytes:
                    await conn.send(answer)
                    break
        received.append(data)

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await listener.accept()
                nursery.start_soon(serve_one, conn)

    ctx = _ctx(plan, listener.getsockname()[1], trio.current_time() + seconds)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.fail_after(seconds + 5):
            await loris_walker.run(ctx)
        await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    listener.close()
    return ctx.tally, received


def test_the_walker_drips_until_the_end_and_counts_what_is_open() -> None:
    plan = _plan(connections=4, rate=100.0, interval_s=0.1, duration_s=0.5)
    tally, received = trio.run(_attack, plan, None, 0, 0.45)
    counts = LorisCounts.from_counters(tally.counters)
    assert (counts.opened, counts.connected, counts.still_open, counts.done) == (4, 4, 4, 1)
    assert tally.counters[loris.DRIPS] >= 4 * 3
    assert len(received) == 4 and all(b"X-a2: " in data for data in received)


def test_an_error_answer_is_closed_by_the_server_and_counted_by_status() -> None:
    plan = _plan(connections=3, rate=100.0, interval_s=0.05, duration_s=0.3)
    answer = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    tally, _ = trio.run(_attack, plan, answer, 120, 0.6)
    counts = LorisCounts.from_counters(tally.counters)
    assert (counts.connected, counts.closed_by_server, counts.still_open) == (3, 3, 0)
    assert loris.status_codes(tally.counters) == {"408": 3}


def test_slow_read_reads_a_byte_an_interval_and_asks_again() -> None:
    plan = _plan(mode=Mode.READ, connections=1, interval_s=0.02, duration_s=0.1)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"  # 40 bytes, kept alive
    tally, _ = trio.run(_attack, plan, answer, 1, 1.2)
    counters = tally.counters
    assert counters[loris.STATUS + "200"] == 1 and counters[loris.REPEATED] == 1
    assert 40 <= counters[loris.BYTES_READ] <= 62  # one byte per 20 ms, not all at once
    counts = LorisCounts.from_counters(counters)
    assert counts.closed == 1 and counts.still_open == 0  # then the FIN (or the RST the
    # repeated request drew from the closed socket)


def test_a_closed_port_is_refused_on_every_dial() -> None:
    async def refused() -> Tally:
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        ctx = _ctx(_plan(connections=3, duration_s=0.2), port, trio.current_time() + 0.3)
        with trio.fail_after(5):
            await loris_walker.run(ctx)
        return ctx.tally

    counts = LorisCounts.from_counters(trio.run(refused).counters)
    assert (counts.opened, counts.connect_failed, counts.refused, counts.connecting) == \
        (3, 3, 3, 0)
