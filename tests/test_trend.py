"""protocols.trend: a real leak fires; saw-teeth, noise, warm-up growth and plateaus do not."""

from __future__ import annotations

import math
import random

import pytest

from protocols.trend import Trend, TrendConfig, TrendStatus, least_squares_slope

# One sample per second; an hour of warm-up-free data in 60 s buckets.
CONFIG = TrendConfig(warmup_s=300, bucket_s=60, min_buckets=6, floor=16.0, min_slope_per_h=1.0)


def feed(trend: Trend, values, start: float = 0.0) -> Trend:
    for i, value in enumerate(values):
        trend.add(start + i, value)
    return trend


def sawtooth(t: float, period: float, height: float) -> float:
    """A GC-like saw-tooth: climbs for ``period`` seconds, then drops back."""
    return height * ((t % period) / period)


def test_least_squares_slope_is_exact_on_a_line():
    xs = [0.0, 1.0, 2.0, 3.0]
    assert least_squares_slope(xs, [5 + 2 * x for x in xs]) == pytest.approx(2.0)
    assert least_squares_slope([1.0, 1.0], [0.0, 9.0]) == 0.0
    assert least_squares_slope([1.0], [3.0]) == 0.0


def test_a_steady_leak_under_gc_sawtooth_and_noise_fires():
    rng = random.Random(1)
    # 50 MiB baseline, leaking 30 MiB/hour, with a 45 s GC saw-tooth of 20 MiB and noise.
    values = [50 + 30 * t / 3600 + sawtooth(t, 45, 20) + rng.uniform(0, 2)
              for t in range(2 * 3600)]
    verdict = feed(Trend(CONFIG), values).verdict()
    assert verdict.status is TrendStatus.GROWING
    assert verdict.slope_per_h == pytest.approx(30, rel=0.15)
    assert verdict.growth > CONFIG.floor


def test_a_sawtooth_alone_stays_silent_even_with_tall_teeth():
    values = [50 + sawtooth(t, 45, 200) for t in range(2 * 3600)]
    verdict = feed(Trend(CONFIG), values).verdict()
    assert verdict.status is TrendStatus.STEADY
    assert abs(verdict.slope_per_h) < 1


def test_a_sawtooth_slower_than_the_bucket_stays_silent():
    """Teeth of 7 minutes: bucket minima rise inside each tooth, but not across teeth."""
    values = [50 + sawtooth(t, 420, 30) for t in range(3 * 3600)]
    assert feed(Trend(CONFIG), values).verdict().status is TrendStatus.STEADY


def test_noise_stays_silent():
    rng = random.Random(7)
    values = [100 + rng.gauss(0, 5) for _ in range(2 * 3600)]
    assert feed(Trend(CONFIG), values).verdict().status is TrendStatus.STEADY


def test_a_slow_slope_below_the_floor_is_not_a_leak():
    """Steady, but only 8 MiB over the window: under the 16 MiB noise floor."""
    values = [50 + 8 * t / 7200 for t in range(2 * 3600 + 300)]
    verdict = feed(Trend(CONFIG), values).verdict()
    assert verdict.slope_per_h > CONFIG.min_slope_per_h
    assert verdict.status is TrendStatus.STEADY


def test_growth_that_levels_off_is_warm_up_not_a_leak():
    """A cache filling for 40 minutes after the warm-up, then flat for 80."""
    values = [50 + min(t, 2700) / 2700 * 60 for t in range(2 * 3600)]
    verdict = feed(Trend(CONFIG), values).verdict()
    assert verdict.growth > CONFIG.floor  # it did grow ...
    assert verdict.status is TrendStatus.STEADY  # ... but is not growing any more


def test_growth_inside_the_warm_up_is_ignored():
    values = [10 + t for t in range(300)] + [400.0] * 3600
    assert feed(Trend(CONFIG), values).verdict().status is TrendStatus.STEADY


def test_statuses_before_a_verdict_is_possible():
    trend = Trend(CONFIG)
    assert trend.verdict().status is TrendStatus.WARMING_UP
    feed(trend, [1.0] * 400)  # warm-up passed, one closed bucket
    verdict = trend.verdict()
    assert verdict.status is TrendStatus.NOT_ENOUGH_DATA and verdict.buckets == 1
    assert CONFIG.shortest_judged_run_s == 300 + 7 * 60


def test_open_bucket_is_left_out():
    trend = feed(Trend(TrendConfig(0, 10, 3, 1, 1)), [5.0] * 25)
    _, ys = trend.closed()
    assert len(ys) == 2  # buckets [0,10) and [10,20); [20,30) is still open


def test_memory_is_bounded_for_any_run_length():
    config = TrendConfig(warmup_s=0, bucket_s=1, min_buckets=6, floor=5, min_slope_per_h=1,
                         max_buckets=64)
    trend = Trend(config)
    for t in range(100_000):
        trend.add(t, 10 + t / 1000)
    _, ys = trend.closed()
    assert len(ys) <= 64
    verdict = trend.verdict()
    assert verdict.status is TrendStatus.GROWING
    assert verdict.slope_per_h == pytest.approx(3600 / 1000, rel=0.05)


def test_reset_starts_a_new_warm_up():
    trend = feed(Trend(CONFIG), [50.0] * 1000)
    trend.reset()
    assert trend.warming_up and trend.verdict().status is TrendStatus.WARMING_UP


def test_samples_going_back_in_time_are_ignored():
    trend = feed(Trend(TrendConfig(0, 1, 3, 1, 1)), [1.0, 2.0, 3.0, 4.0])
    trend.add(0.5, -100.0)
    assert min(trend.closed()[1]) == 1.0


@pytest.mark.parametrize("kwargs", [dict(bucket_s=0), dict(min_buckets=2),
                                    dict(max_buckets=5), dict(warmup_s=-1)])
def test_nonsense_configs_are_rejected(kwargs):
    base = dict(warmup_s=1, bucket_s=1, min_buckets=6, floor=1, min_slope_per_h=1)
    with pytest.raises(ValueError):
        TrendConfig(**{**base, **kwargs})


def test_fd_leak_of_one_per_minute_fires_over_an_hour():
    cfg = TrendConfig(warmup_s=300, bucket_s=60, min_buckets=6, floor=32, min_slope_per_h=4)
    rng = random.Random(3)
    # 40 fds of steady connection churn (0-40 extra), plus one leaked per minute.
    values = [20 + t // 60 + rng.randint(0, 40) for t in range(3600 + 300)]
    verdict = feed(Trend(cfg), values).verdict()
    assert verdict.status is TrendStatus.GROWING
    assert math.isclose(verdict.slope_per_h, 60, rel_tol=0.2)
