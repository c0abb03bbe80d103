"""protocols.load_schedule: exact arrival counts and instants, rank splits, rates and VUs."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import pytest

from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    RAMPING_ARRIVAL_RATE,
    RAMPING_VUS,
    Executor,
    Stage,
)
from protocols.load_schedule import (
    arrivals,
    expected_arrivals,
    owns_vu,
    rate_at,
    split_vus,
    vus_at,
)


def constant(rate: float, duration: float) -> Executor:
    return Executor(CONSTANT_ARRIVAL_RATE, vus=10, max_vus=100, rate=rate, duration_s=duration)


def ramping(start: float, *stages: tuple[float, float]) -> Executor:
    return Executor(RAMPING_ARRIVAL_RATE, vus=10, max_vus=100, start_rate=start,
                    stages=tuple(Stage(target, duration) for target, duration in stages))


def schedule(executor: Executor) -> list[float]:
    return list(arrivals(executor, 0, 1))


# --- counts: arrival n exists iff n < the total integral -----------------------------------


@pytest.mark.parametrize(("executor", "count"), [
    (constant(1000, 10), 10_000),
    (constant(1, 1), 1),
    (constant(0.5, 3), 2),            # integral 1.5 -> arrivals 0 and 1
    (constant(2, 1.5), 3),            # integral exactly 3 -> 0, 1, 2 (3 would be at the end)
    (constant(100 / 60, 60), 100),    # 100/1m: float noise must not add a 101st
    (constant(7 / 0.5, 10), 140),     # 7/500ms
    (ramping(0, (100, 10)), 500),     # a ramp 0->100/s over 10 s
    (ramping(100, (0, 10)), 500),     # and back down
    (ramping(0, (0, 10), (500, 30), (500, 30)), 7500 + 15_000),
    (ramping(50, (50, 4)), 200),      # a flat stage
    (ramping(0, (0, 10)), 0),         # all rate 0: nothing at all
    (ramping(10, (10, 0), (20, 0), (20, 1)), 20),  # zero-length stages are instant jumps
])
def test_expected_arrivals_is_exact_and_matches_the_schedule(executor, count):
    assert expected_arrivals(executor) == count
    assert len(schedule(executor)) == count


def test_constant_rate_instants_are_evenly_spaced_from_zero():
    offsets = schedule(constant(1000, 10))
    assert offsets[0] == 0.0
    assert offsets[1] == pytest.approx(0.001)
    assert offsets[-1] == pytest.approx(9.999)
    assert all(b - a == pytest.approx(0.001) for a, b in itertools.pairwise(offsets))


def test_ramp_from_zero_solves_the_quadratic_exactly():
    # rate(t) = 10 t, integral 5 t^2: arrival n at sqrt(n / 5).
    offsets = schedule(ramping(0, (100, 10)))
    assert offsets[0] == 0.0
    for n in (1, 2, 125, 499):
        assert offsets[n] == pytest.approx(math.sqrt(n / 5), rel=1e-12)


def test_ramp_down_solves_the_quadratic_exactly():
    # rate(t) = 100 - 10 t, integral 100 t - 5 t^2: arrival n at 10 - sqrt(100 - n / 5).
    offsets = schedule(ramping(100, (0, 10)))
    for n in (0, 1, 250, 499):
        assert offsets[n] == pytest.approx(10 - math.sqrt(100 - n / 5), rel=1e-12, abs=1e-12)


def test_tiny_slope_is_numerically_stable():
    offsets = schedule(ramping(1000, (1000 + 1e-9, 10)))
    assert len(offsets) == 10_000
    assert offsets[5000] == pytest.approx(5.0, rel=1e-9)
    assert offsets[-1] == pytest.approx(9.999, rel=1e-9)


def test_rate_zero_stretch_starts_nothing_and_the_next_arrival_waits_for_the_ramp():
    offsets = schedule(ramping(0, (0, 10), (100, 10)))
    assert offsets[0] == 10.0  # not 0: the first 10 s have rate 0
    assert len(offsets) == 500
    # A rate-0 stretch in the middle: arrival 200 (integral exactly 200 through it) waits.
    middle = schedule(ramping(20, (20, 10), (0, 0), (0, 5), (20, 0), (20, 10)))
    assert len(middle) == 400
    assert middle[199] == pytest.approx(9.95)
    assert middle[200] == 15.0


@pytest.mark.parametrize("executor", [
    constant(1000, 10),
    ramping(0, (100, 10)),
    ramping(3, (0, 10), (500, 30), (500, 5), (20, 7)),
    ramping(0.37, (12.9, 3.3), (0.01, 1.1)),
])
def test_offsets_are_monotonic_and_inside_the_scenario(executor):
    offsets = schedule(executor)
    assert offsets == sorted(offsets)
    assert all(0.0 <= t < executor.total_s for t in offsets)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
def test_union_over_ranks_is_exactly_the_single_actor_schedule(count):
    executor = ramping(3, (0, 10), (500, 30), (17, 5.5))
    whole = schedule(executor)
    shares = [list(arrivals(executor, rank, count)) for rank in range(count)]
    assert sum(len(share) for share in shares) == len(whole)
    for rank, share in enumerate(shares):
        assert share == whole[rank::count]
    assert sorted(itertools.chain.from_iterable(shares)) == whole


def test_arrivals_is_lazy():
    endless_enough = constant(1e9, 3600)  # 3.6e12 arrivals: only a generator survives this
    first = list(itertools.islice(arrivals(endless_enough, 5, 1_000_000), 3))
    assert first == pytest.approx([5e-9, 1.000005e-3, 2.000005e-3])


def test_arrivals_refuses_closed_executors_and_bad_steps():
    with pytest.raises(ValueError, match="closed executor"):
        arrivals(Executor(CONSTANT_VUS, vus=3, duration_s=5), 0, 1)
    with pytest.raises(ValueError, match="closed executor"):
        expected_arrivals(Executor(RAMPING_VUS, vus=0, stages=(Stage(5, 5),)))
    with pytest.raises(ValueError, match="step"):
        arrivals(constant(1, 1), 0, 0)
    with pytest.raises(ValueError, match="first"):
        arrivals(constant(1, 1), -1, 1)


def test_first_beyond_the_end_yields_nothing():
    assert list(arrivals(constant(10, 1), 10, 1)) == []
    assert list(arrivals(constant(10, 1), 9, 5)) == pytest.approx([0.9])


# --- rates and VUs -------------------------------------------------------------------------


def test_rate_at_is_piecewise_linear_and_zero_outside():
    executor = ramping(10, (0, 10), (500, 30), (500, 0), (40, 0), (40, 5))
    assert rate_at(executor, -0.1) == 0.0
    assert rate_at(executor, 0) == 10.0
    assert rate_at(executor, 5) == pytest.approx(5.0)
    assert rate_at(executor, 25) == pytest.approx(250.0)
    assert rate_at(executor, 40) == 40.0  # after the instant jumps
    assert rate_at(executor, 44.9) == 40.0
    assert rate_at(executor, 45) == 0.0
    assert rate_at(constant(300, 2), 1.999) == 300.0
    assert rate_at(constant(300, 2), 2) == 0.0
    with pytest.raises(ValueError, match="closed executor"):
        rate_at(Executor(CONSTANT_VUS, vus=1, duration_s=1), 0.5)


def test_constant_vus():
    executor = Executor(CONSTANT_VUS, vus=25, duration_s=30)
    assert [vus_at(executor, t) for t in (-1, 0, 29.99, 30, 31)] == [0, 25, 25, 0, 0]


def test_ramping_vus_floors_the_interpolation_like_k6():
    executor = Executor(RAMPING_VUS, vus=0, stages=(Stage(10, 10), Stage(10, 5), Stage(0, 10)))
    assert vus_at(executor, 0) == 0
    assert vus_at(executor, 0.99) == 0
    assert vus_at(executor, 1) == 1
    assert vus_at(executor, 3) == 3  # 0.3 * 10 is 3.0000000000000004 or 2.9999...: snapped
    assert vus_at(executor, 7) == 7
    assert vus_at(executor, 12) == 10
    assert vus_at(executor, 15.5) == 9  # ramping down: floor keeps 9.5 at 9
    assert vus_at(executor, 24.99) == 0
    assert vus_at(executor, 25) == 0
    start = Executor(RAMPING_VUS, vus=5, stages=(Stage(5, 2), Stage(20, 0), Stage(20, 1)))
    assert [vus_at(start, t) for t in (0, 1.9, 2, 2.5, 3)] == [5, 5, 20, 20, 0]
    with pytest.raises(ValueError, match="open executor"):
        vus_at(constant(5, 5), 1)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("total", [0, 1, 7, 10, 101])
def test_split_vus_sums_to_total_and_matches_owns_vu(total, count):
    shares = [split_vus(total, rank, count) for rank in range(count)]
    assert sum(shares) == total
    assert shares == sorted(shares, reverse=True)  # lower ranks take the remainder
    assert max(shares) - min(shares) <= 1
    for rank in range(count):
        assert shares[rank] == sum(owns_vu(j, rank, count) for j in range(total))


def test_split_vus_refuses_bad_ranks():
    for rank, count in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match="rank"):
            split_vus(4, rank, count)
        with pytest.raises(ValueError, match="rank"):
            owns_vu(4, rank, count)
    with pytest.raises(ValueError, match="total"):
        split_vus(-1, 0, 1)


def test_module_is_sans_io():
    tree = ast.parse((Path(__file__).parents[1] / "protocols" / "load_schedule.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"trio", "zmq", "socket", "time"}
