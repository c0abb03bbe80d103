"""actors.precise_clock: the wait plan, and trio under the clock (no early wake-ups, I/O
during the fine wait, trio's behaviour where the epoll descriptor is unknown)."""

from __future__ import annotations

import math
import time

import pytest
import trio

from actors import precise_clock
from actors.precise_clock import FINISH_S, SPIN_S, PreciseClock, wait_plan


def test_far_deadlines_leave_epoll_to_wake_before_them() -> None:
    assert wait_plan(1.0) == pytest.approx((1.0 - FINISH_S, 0.0))
    assert wait_plan(math.inf) == (math.inf, 0.0)


def test_near_deadlines_are_waited_finely_then_polled() -> None:
    coarse, fine = wait_plan(0.001)
    assert coarse == 0.0 and fine == pytest.approx(0.001 - SPIN_S)
    assert wait_plan(SPIN_S / 2) == (0.0, 0.0)
    assert wait_plan(-1.0) == (0.0, 0.0)


async def _grid(step: float, count: int) -> list[float]:
    start = trio.current_time() + step
    late = []
    for i in range(count):
        due = start + i * step
        await trio.sleep_until(due)
        late.append(trio.current_time() - due)
    return late


def test_sleeps_never_end_early_under_the_clock() -> None:
    late = trio.run(_grid, 0.002, 100, clock=PreciseClock())
    assert min(late) >= 0.0


def test_io_is_served_while_the_clock_waits_finely() -> None:
    async def main() -> list[bytes]:
        a, b = trio.socket.socketpair()
        got: list[bytes] = []

        async def ticker() -> None:
            await _grid(0.001, 60)

        async def sender() -> None:
            for i in range(20):
                await trio.sleep(0.0023)
                await a.send(b"%02d" % i)

        async def receiver() -> None:
            while len(got) < 20:
                with trio.fail_after(5):
                    got.append(await b.recv(2))

        async with trio.open_nursery() as nursery:
            for task in (ticker, sender, receiver):
                nursery.start_soon(task)
        a.close()
        b.close()
        return got

    assert trio.run(main, clock=PreciseClock()) == [b"%02d" % i for i in range(20)]


def test_without_the_epoll_descriptor_it_is_trios_own_clock(monkeypatch) -> None:
    monkeypatch.setattr(precise_clock, "_trio_epoll_fd", lambda: None)
    clock = PreciseClock()
    clock.start_clock()
    deadline = time.perf_counter() + 0.5
    assert clock.deadline_to_sleep_time(deadline) == pytest.approx(0.5, abs=0.05)
    assert min(trio.run(_grid, 0.002, 20, clock=clock)) >= 0.0


@pytest.mark.skipif(not hasattr(__import__("select"), "epoll"), reason="epoll is Linux-only")
def test_the_epoll_descriptor_is_found_on_linux() -> None:
    """The lookup reads trio internals and falls back silently; the other tests pass under
    that fallback too, so a trio upgrade that moves the descriptor must fail here."""
    clock = PreciseClock()

    async def main() -> int | None:
        await trio.sleep(0.003)
        return clock._fd

    fd = trio.run(main, clock=clock)
    assert isinstance(fd, int) and fd >= 0
