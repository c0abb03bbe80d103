"""The h2flood walker against real servers: each defect of ``tests.h2_flawed_server`` fails
I-H2-FLOOD for its own flood class; the same server without a defect and nginx 1.22 (TLS,
ALPN h2) pass every flood class; a target without
HTTP/2 is counted ``h2flood.not_h2`` and left alone. hypercorn does not pass every class: it
stalls other clients under SETTINGS floods, and under PING floods near the limit (see its
test).

Floods are short here (0.6 s); a defect's memory limit is 16 MiB (``h2flood_rss_limit_mib``)
where a run uses 64 MiB, because a 0.6 s flood on a loaded 2-core machine does not reach
64 MiB reliably. The correct servers are judged under the default limit.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from servers import free_port, nginx, stop, wait_for_port
from torture_servers import walker_ctx

from actors import h2_flood
from actors.walker import Target
from coordinator.invariants import BY_ID
from protocols.h2_flood_verdict import Verdict
from protocols.h2_floods import BY_NAME, CATALOGUE
from tests.h2_flawed_server import DEFECTS
from tests.tls_certs import trusting_test_ca

ROOT = Path(__file__).resolve().parent.parent
SHORT = {"h2flood_seconds": 0.6, "h2flood_settle_s": 0.2, "h2flood_baseline": 3,
         "h2flood_pause_s": 0, "health_path": "/"}
#: Defects: a control request the flood held up is a failure after 1 s.
DEFECT = {**SHORT, "h2flood_control_timeout_s": 1.0, "h2flood_rss_limit_mib": 16,
          "h2flood_max_mib": 48, "h2flood_recover_s": 2}


@pytest.fixture(scope="module")
def flawed_servers() -> Iterator[dict[str, tuple[int, subprocess.Popen]]]:
    """One flawed server per defect and one without ("") , started together."""
    started: dict[str, tuple[int, subprocess.Popen]] = {}
    try:
        for defect in ("", *DEFECTS):
            port = free_port()
            args = [sys.executable, "-m", "tests.h2_flawed_server", str(port)]
            proc = subprocess.Popen(args + (["--defect", defect] if defect else []), cwd=ROOT)
            started[defect] = (port, proc)
        for port, _ in started.values():
            wait_for_port(port)
        yield started
    finally:
        for _, proc in started.values():
            stop(proc)


def _ctx(url: str, settings: dict[str, Any]) -> Any:
    ctx = walker_ctx(0, "h2flood", settings, seconds=120)
    ctx.target = Target.from_url(url)
    return ctx


def test_the_counter_is_the_invariant():
    invariant = BY_ID["I-H2-FLOOD"]
    assert invariant.counter == h2_flood.VIOLATION and invariant.severity.value == "HIGH"
    assert invariant.evidence_counter == "h2flood.sent"


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_fails_its_flood_confirmed(flawed_servers, defect):
    port, proc = flawed_servers[defect]

    async def main() -> Any:
        ctx = _ctx(f"http://127.0.0.1:{port}/", {**DEFECT, "target_pid": proc.pid})
        return ctx, await h2_flood.flood_case(ctx, BY_NAME[defect])

    ctx, verdict = trio.run(main)
    assert verdict is Verdict.VIOLATION, ctx.recent
    counters = ctx.tally.counters
    assert counters[h2_flood.VIOLATION] == counters["h2flood.sent"] == 1
    assert counters[f"h2flood.case.{defect}.violation"] == 1
    (counter, evidence), = ctx.violations
    assert counter == h2_flood.VIOLATION and evidence["flood"] == defect
    assert evidence["control_ms_before"] and evidence["rss_mib"] is not None
    confirmation = evidence["confirmation"]
    assert confirmation == h2_flood.NOT_RECOVERED or confirmation["verdict"] == "violation"


def _every_flood_judged(url: str, settings: dict[str, Any], failing: tuple[str, ...] = (),
                        either: tuple[str, ...] = ()) -> dict[str, int]:
    """Every flood class once through ``flood_case``: those in ``failing`` are confirmed
    violations, those in ``either`` may go both ways (counted as such), every other one
    passes (bounded or absorbed)."""
    async def main() -> Any:
        ctx = _ctx(url, settings)
        assert await h2_flood.speaks_h2(ctx) == ""
        unjudged = []
        for flood in CATALOGUE:
            verdict = await h2_flood.flood_case(ctx, flood)
            if flood.name in failing:
                assert verdict is Verdict.VIOLATION, flood.name
            elif verdict is Verdict.UNJUDGED:
                unjudged.append(flood.name)
            elif flood.name not in either:
                assert verdict in (Verdict.BOUNDED, Verdict.ABSORBED), flood.name
        # A 0.6 s flood on a loaded two-worker host once ran no control request in time
        # (ping on the correct flawed server, a fresh CI-like clone): unjudged is the safe
        # outcome, never a false alarm, but more than one means the test measured nothing.
        assert len(unjudged) <= 1, unjudged
        return ctx

    ctx = trio.run(main)
    reported = sorted(e["flood"] for _, e in ctx.violations)
    assert sorted(set(reported) - set(either)) == sorted(failing)
    counters = ctx.tally.counters
    assert counters["h2flood.sent"] == len(CATALOGUE)
    for flood in CATALOGUE:
        if flood.name not in either:
            verdict = "violation" if flood.name in failing else "pass"
            assert counters[f"h2flood.case.{flood.name}.{verdict}"] == 1
    return counters


def test_flawed_server_without_defect_bounds_every_flood(flawed_servers):
    port, proc = flawed_servers[""]
    counters = _every_flood_judged(f"http://127.0.0.1:{port}/",
                                   {**SHORT, "target_pid": proc.pid})
    assert counters.get("h2flood.bound.absorbed", 0) == 0  # every flood met a bound


def test_nginx_over_tls_passes_every_flood(tmp_path):
    with nginx(tmp_path, tls=True) as (url, proc), trusting_test_ca():
        _every_flood_judged(url, {**SHORT, "target_pid": proc.pid})


def test_hypercorn_h2c_stalls_under_settings_floods_and_passes_the_rest():
    """hypercorn (h2 underneath) sets no limit on SETTINGS or PING frames and its event loop
    serves the flood connection first: under 50k SETTINGS control requests on other
    connections wait 0.4-1.4 s while it works through them (CVE-2019-9515 class), every
    time; under 50k PINGs (CVE-2019-9512) 0.3-0.7 s, near the limit. The other floods it
    bounds (rapid reset ends the connection, CONTINUATION, HPACK and a 101st stream get a
    GOAWAY) or absorbs (empty DATA) without harm."""
    pytest.importorskip("hypercorn")
    port = free_port()
    # Its stderr stays quiet: a rapid reset flood ends hypercorn's connection with an
    # unhandled priority.TooManyStreamsError traceback (a close, which bounds the flood).
    proc = subprocess.Popen([sys.executable, "-m", "tests.conformance_apps", "hypercorn",
                             str(port)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        # The run's flood length (3 s, 50k frames). 50k PINGs stall it 0.3-0.7 s, around
        # the 250 ms slack: confirmed in most runs, not in all. A rapid reset costs it
        # 100-190 ms before it drops the connection: under the slack here, but close enough
        # that a slower CI host may cross it, so either verdict is accepted for it too.
        _every_flood_judged(f"http://127.0.0.1:{port}/",
                            {**SHORT, "h2flood_seconds": 3.0, "target_pid": proc.pid},
                            failing=("settings",), either=("ping", "rapid_reset"))
    finally:
        stop(proc)


def test_a_target_without_http2_is_left_alone():
    async def main() -> Any:
        async def http1_only(stream: trio.SocketStream) -> None:
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.receive_some(65536)
                await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      b"Connection: close\r\n\r\n")
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(functools.partial(
                trio.serve_tcp, http1_only, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            ctx = walker_ctx(port, "h2flood", SHORT, seconds=0.5)
            await h2_flood.run(ctx)
            assert trio.current_time() >= ctx.deadline
            nursery.cancel_scope.cancel()
        return ctx

    ctx = trio.run(main)
    assert ctx.tally.counters.get("h2flood.not_h2") == 1
    assert "h2flood.sent" not in ctx.tally.counters and ctx.violations == []


def _attempt_with(verdict: Verdict) -> h2_flood.Attempt:
    from protocols.h2_flood_verdict import Bound, FloodReaction, Judgement

    return h2_flood.Attempt(BY_NAME["ping"], Judgement(verdict, "why", Bound.NONE, 0.01, 2.0, 0),
                            FloodReaction(frames_sent=10), [], [], None)


@pytest.mark.parametrize("second,counted,unconfirmed", [
    (Verdict.VIOLATION, True, False),
    (h2_flood.NOT_RECOVERED, True, False),  # the harm outlasted the first flood
    (Verdict.ABSORBED, False, True),
    ("too little time left for a flood", False, True),
])
def test_only_a_repeated_violation_counts(monkeypatch, second, counted, unconfirmed):
    answers = [_attempt_with(Verdict.VIOLATION),
               _attempt_with(second) if isinstance(second, Verdict) else second]

    async def fake_attempt(ctx: Any, flood: Any, recover: bool, rss_reference: Any = None
                           ) -> Any:
        assert recover is (len(answers) == 1)  # the second flood waits for a recovery
        return answers.pop(0)

    monkeypatch.setattr(h2_flood, "attempt", fake_attempt)

    async def main() -> Any:
        ctx = _ctx("http://127.0.0.1:9/", SHORT)
        return ctx, await h2_flood.flood_case(ctx, BY_NAME["ping"])

    ctx, verdict = trio.run(main)
    counters = ctx.tally.counters
    assert (verdict is Verdict.VIOLATION) is counted
    assert counters.get(h2_flood.VIOLATION, 0) == int(counted) == len(ctx.violations)
    assert counters.get("h2flood.unconfirmed", 0) == int(unconfirmed)
    assert counters.get("h2flood.case.ping.unjudged", 0) == int(unconfirmed)


def test_the_wait_for_recovery_ends_with_the_run_and_says_so(monkeypatch):
    """A target still down after the first flood, 0.2 s left in the run: the confirmation
    does not wait ``h2flood_recover_s`` (the actor would cancel the walker at the deadline
    + 1 s and the first flood's evidence would be lost), nor call it "not recovered"."""
    from protocols.h2_flood_verdict import ControlSample

    async def down(*_: Any) -> ControlSample:
        await trio.sleep(0.01)
        return ControlSample(None, error="timeout")

    monkeypatch.setattr(h2_flood, "control_request", down)

    async def main() -> Any:
        ctx = walker_ctx(9, "h2flood", {**SHORT, "h2flood_recover_s": 5}, seconds=0.2)
        started = trio.current_time()
        answer = await h2_flood.attempt(ctx, BY_NAME["ping"], recover=True)
        return answer, trio.current_time() - started

    answer, took = trio.run(main)
    assert answer == h2_flood.NO_TIME_TO_RECOVER and took < 2.0


def test_a_confirmation_cut_by_the_run_keeps_the_first_floods_evidence(monkeypatch):
    first = _attempt_with(Verdict.VIOLATION)

    async def fake_attempt(ctx: Any, flood: Any, recover: bool, rss_reference: Any = None
                           ) -> Any:
        if not recover:
            return first
        await trio.sleep_forever()

    monkeypatch.setattr(h2_flood, "attempt", fake_attempt)

    async def main() -> Any:
        ctx = _ctx("http://127.0.0.1:9/", SHORT)
        with trio.move_on_after(0.1):
            await h2_flood.flood_case(ctx, BY_NAME["ping"])
        return ctx

    ctx = trio.run(main)
    counters = ctx.tally.counters
    assert counters["h2flood.unconfirmed"] == counters["h2flood.unconfirmed.no_rerun"] == 1
    assert ctx.violations == [] and h2_flood.VIOLATION not in counters
    kept = ctx.tally.examples["h2flood.unconfirmed"]
    assert kept["flood"] == "ping" and "cancelled" in kept["confirmation"]


def test_floods_against_one_target_take_turns_across_processes():
    """A run has one actor process per core: two floods against one target at once would
    lend each other their harm. The host-wide lock makes the second wait for the first (two
    open file descriptions conflict like two processes do), cancellably."""
    from actors import h2_flood_lock

    target = Target.from_url(f"http://127.0.0.1:{free_port()}/")

    async def main() -> list[str]:
        order: list[str] = []

        async def first() -> None:
            async with h2_flood_lock.host_lock(target):
                order.append("first in")
                await trio.sleep(0.3)
                order.append("first out")

        async def second() -> None:
            await trio.sleep(0.05)
            with trio.move_on_after(0.1):  # a walker cancelled while waiting: no lock taken
                async with h2_flood_lock.host_lock(target):
                    order.append("too early")
            async with h2_flood_lock.host_lock(target):
                order.append("second in")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            nursery.start_soon(second)
        return order

    assert trio.run(main) == ["first in", "first out", "second in"]


def test_a_walker_that_waited_its_turn_past_the_runs_end_floods_nothing():
    async def main() -> Any:
        ctx = walker_ctx(free_port(), "h2flood", SHORT, seconds=0.5)
        return ctx, await h2_flood.flood_case(ctx, BY_NAME["ping"])

    ctx, verdict = trio.run(main)
    assert verdict is Verdict.UNJUDGED and ctx.tally.counters == {}
