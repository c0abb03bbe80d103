"""The coordinator drops malformed or mismatched frames and merges the rest correctly."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
import trio

from coordinator.config import RunConfig
from coordinator.planning import plan_walkers
from coordinator.run import Coordinator
from coordinator.run_state import RunInputs
from protocols import wire


class ListReceiver:
    """Stands in for ZmqReceiver: yields the given frames, then waits forever."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = list(frames)

    async def receive(self) -> bytes:
        if self.frames:
            return self.frames.pop(0)
        await trio.sleep_forever()
        raise AssertionError


def make_coordinator(tmp_path: Path) -> Coordinator:
    plan = plan_walkers(2, 2, ["markov"], {"markov": 60})
    inputs = RunInputs(target_url="http://127.0.0.1:9/", label="t", health_path="/",
                       target_pid=None, builtin=False, settings={}, enabled_slices=["markov"],
                       not_run={}, walker_plan=plan, seed=1)
    return Coordinator(RunConfig(), inputs, tmp_path)


def tally(actor: int, seq: int, requests: int, incarnation: int = 0) -> bytes:
    return wire.encode(wire.TallyReport(actor, incarnation, seq, False,
                                        {"markov.requests": requests}, {}))


def test_bad_frames_are_dropped_and_tallies_merge(tmp_path: Path):
    coordinator = make_coordinator(tmp_path)
    frames = [
        b"\x00garbage",
        msgpack.packb({"v": 2, "t": "tally"}),
        msgpack.packb({"v": 1, "t": "launch-missiles"}),
        msgpack.packb({"v": 1, "t": "tally", "actor_id": 0}),
        wire.encode(wire.Plan("x", {})),  # a coordinator-only message arriving on PULL
        tally(7, 1, 1000),  # unknown actor
        tally(0, 2, 50),
        tally(0, 1, 20),  # reordered older snapshot: ignored
        tally(0, 2, 50),  # duplicate: ignored
        tally(1, 1, 30),
        tally(1, 1, 5, incarnation=1),  # a restarted actor adds on top
    ]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coordinator._receive_loop, ListReceiver(frames))
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert coordinator.merger.counters() == {"markov.requests": 85}
    assert coordinator.dropped_frames == 6


def test_ready_from_all_actors_completes_handshake(tmp_path: Path):
    coordinator = make_coordinator(tmp_path)
    run_id = coordinator.run_id
    frames = [wire.encode(wire.Ready(0, 0, run_id, 1)),
              wire.encode(wire.Ready(1, 0, "another-run", 1)),  # stale run: ignored
              wire.encode(wire.Ready(1, 0, run_id, 1))]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coordinator._receive_loop, ListReceiver(frames[:2]))
            await trio.sleep(0.02)
            assert not coordinator._all_ready.is_set()
            nursery.start_soon(coordinator._receive_loop, ListReceiver(frames[2:]))
            with trio.fail_after(1):
                await coordinator._all_ready.wait()
            nursery.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.parametrize("counter, invariant", [("adv.desync", "I-ADV-DESYNC"),
                                                ("markov.read_after_write_mismatch", "I-DRV-1")])
def test_violation_trips_once_per_predicate(tmp_path: Path, counter: str, invariant: str):
    coordinator = make_coordinator(tmp_path)
    frames = [wire.encode(wire.Violation(0, 0, 3, counter, 1.0, {"sent": b"x"})),
              wire.encode(wire.Violation(1, 0, 4, counter, 2.0, {"sent": b"y"}))]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(coordinator._receive_loop, ListReceiver(frames))
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert list(coordinator.trips) == [counter]
    assert coordinator.trips[counter]["invariant"] == invariant
    assert coordinator.trips[counter]["walker"] == 3
