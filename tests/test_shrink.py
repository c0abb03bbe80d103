"""The shrink engine with pure predicates: minimality, order, memory, budgets, flakiness."""

from __future__ import annotations

import random

import pytest
import trio

from replay.shrink import Shrinker, shrink, shrink_async
from replay.shrink_records import CandidateError, Granularity, ShrinkAbort, default_key


class Counting:
    """A predicate that records every candidate it was asked about."""

    def __init__(self, predicate):
        self.predicate = predicate
        self.seen: list[tuple] = []

    def __call__(self, candidate: tuple) -> bool:
        self.seen.append(candidate)
        return self.predicate(candidate)


def test_finds_the_two_elements_that_matter():
    fails = Counting(lambda c: 3 in c and 17 in c)
    result = shrink(list(range(40)), fails)
    assert result.steps == (3, 17)
    assert not result.flaky and result.stopped_by == "fixpoint"
    assert result.attempts == len(fails.seen) < 60


@pytest.mark.parametrize("case", range(25))
def test_random_required_subsets_shrink_to_exactly_them(case: int):
    rng = random.Random(case)
    size = rng.randrange(5, 120)
    needed = set(rng.sample(range(size), rng.randrange(1, 5)))
    result = shrink(list(range(size)), lambda c: needed <= set(c), max_attempts=10_000)
    assert set(result.steps) == needed and len(result.steps) == len(needed)
    assert result.stopped_by == "fixpoint"


def test_result_is_one_minimal_for_a_non_monotone_predicate():
    rng = random.Random(7)
    steps = [rng.randrange(100) for _ in range(60)]

    def fails(c: tuple) -> bool:  # an even-sized candidate with a big enough sum
        return sum(c) >= 150 and len(c) % 2 == 0

    result = shrink(steps, fails, max_attempts=10_000)
    assert fails(result.steps)
    for index in range(len(result.steps)):  # no single deletion still fails
        assert not fails(result.steps[:index] + result.steps[index + 1:])


def test_each_kept_candidate_is_strictly_smaller_and_none_is_run_twice():
    fails = Counting(lambda c: sum(c) > 40)
    result = shrink(list(range(1, 30)), fails)
    kept = [default_key(c) for c in fails.seen if sum(c) > 40]
    assert kept == sorted(kept, reverse=True) and len(set(kept)) == len(kept)
    assert len({tuple(c) for c in fails.seen}) == len(fails.seen)
    assert result.cache_hits >= 0


def test_a_long_irrelevant_stretch_costs_log_many_runs():
    steps = list(range(1024))
    fails = Counting(lambda c: 1023 in c)
    result = shrink(steps, fails)
    assert result.steps == (1023,)
    assert result.attempts < 40


def test_original_that_no_longer_fails_is_flaky_and_not_shrunk():
    fails = Counting(lambda c: False)
    result = shrink([1, 2, 3], fails)
    assert result.flaky and result.stopped_by == "flaky"
    assert result.steps == (1, 2, 3) and result.attempts == 1 == len(fails.seen)


def test_max_attempts_bounds_the_runs():
    fails = Counting(lambda c: True)
    result = shrink(list(range(100)), lambda c: fails(c) and len(c) % 7 == 2, max_attempts=5)
    assert result.attempts <= 5 and result.stopped_by in ("max_attempts", "fixpoint")


def test_max_seconds_bounds_the_wall_clock():
    now = [0.0]

    def clock() -> float:
        return now[0]

    def fails(candidate: tuple) -> bool:
        now[0] += 1.0  # every run costs one (fake) second
        return 5 in candidate

    result = shrink(list(range(50)), fails, max_seconds=4.5, clock=clock)
    assert result.stopped_by == "max_seconds"
    assert 5 in result.steps and result.attempts <= 6


def test_stall_limit_stops_a_search_that_makes_no_progress():
    result = shrink(list(range(30)), lambda c: len(c) == 30, stall_limit=4)
    assert result.stopped_by == "stall" and result.attempts == 1 + 4
    assert result.steps == tuple(range(30))


def test_granularity_shrinks_inside_elements():
    as_bytes = Granularity("bytes", lambda e: list(e) if isinstance(e, bytes) else None,
                           lambda e, parts: bytes(parts))
    result = shrink([b"header: junk\r\nX-Bad: 1\r\n", b"noise", b"more noise"],
                    lambda c: any(b"Bad" in e for e in c), granularities=[as_bytes])
    assert result.steps == (b"Bad",)
    assert {p.name for p in result.passes} == {"ddmin", "delete_runs", "shrink_bytes"}


def test_candidate_errors_count_as_passing_and_abort_keeps_the_best():
    def fails(c: tuple) -> bool:
        if len(c) == 2:
            raise CandidateError("the target hiccupped")
        return 9 in c

    result = shrink(list(range(10)), fails)
    assert result.steps == (9,)
    assert any(a.outcome == "error" for a in result.log)

    calls = []

    def abort_after_three(c: tuple) -> bool:
        calls.append(c)
        if len(calls) > 3:
            raise ShrinkAbort("target gone")
        return 9 in c

    result = shrink(list(range(10)), abort_after_three)
    assert result.stopped_by == "aborted" and 9 in result.steps and len(result.steps) < 10


def test_admissible_prunes_without_running():
    fails = Counting(lambda c: 9 in c)
    result = shrink(list(range(10)), fails, admissible=lambda c: 0 in c)
    assert result.steps == (0, 9) and result.pruned > 0
    assert all(0 in c for c in fails.seen)


def test_passes_are_data_with_statistics():
    result = shrink(list(range(16)), lambda c: 4 in c)
    stats = result.stats()
    assert stats["original_size"] == 16 and stats["final_size"] == 1
    for entry in stats["passes"]:
        assert set(entry) == {"name", "attempts", "successes", "removed"}
    assert sum(p["attempts"] for p in stats["passes"]) + 1 == result.attempts
    assert [a.number for a in result.log] == list(range(1, result.attempts + 1))


def test_sans_io_driver_yields_candidates_and_takes_verdicts():
    engine = Shrinker([1, 2, 3, 4])
    gen = engine.run()
    candidate = next(gen)
    assert candidate == (1, 2, 3, 4)  # the original runs first
    try:
        while True:
            candidate = gen.send(2 in candidate)
    except StopIteration as stop:
        result = stop.value
    assert result.steps == (2,)


def test_async_driver():
    async def fails(candidate: tuple) -> bool:
        await trio.sleep(0)
        return 11 in candidate and 12 in candidate

    result = trio.run(lambda: shrink_async(list(range(20)), fails))
    assert result.steps == (11, 12)
