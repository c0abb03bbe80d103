"""protocols.slo_search against simulated servers: brackets hold the analytic limit."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from protocols.slo_search import (
    MAX_FAILED_FRACTION,
    MIN_ACHIEVED_FRACTION,
    SloSearch,
    SloStatus,
    StepResult,
    parse_slos,
    sustains,
)

SLOS = (10.0, 50.0, 100.0, 500.0, 1000.0)
Server = Callable[[float], StepResult]


def mm1(service_ms: float = 20.0, capacity: float = 400.0,
        noise: Callable[[], float] = lambda: 1.0) -> Server:
    """p99 = s / (1 - rate / capacity) below capacity; at or past it the generator drops
    requests and falls behind. Sustained for an SLO iff rate < capacity * (1 - s / slo)."""
    def step(rate: float) -> StepResult:
        requests = int(rate * 100)
        if rate >= capacity:
            return StepResult(rate, 60_000.0, capacity, requests // 2, requests, 0)
        p99 = service_ms / (1 - rate / capacity) * noise()
        return StepResult(rate, p99, rate, 0, requests, 0)
    return step


def limit(slo_ms: float, service_ms: float = 20.0, capacity: float = 400.0) -> float:
    return capacity * (1 - service_ms / slo_ms)


def drive(search: SloSearch, server: Server) -> list[float]:
    """Run the search to the end; the rates measured, in order."""
    rates = []
    while (rate := search.next_rate()) is not None:
        assert len(rates) < search.max_steps, "next_rate past max_steps"
        rates.append(rate)
        search.record(server(rate))
    return rates


def step(rate: float, p99: float | None, *, achieved: float | None = None,
         dropped: int = 0, requests: int = 1000, errors: int = 0) -> StepResult:
    return StepResult(rate, p99, rate if achieved is None else achieved, dropped,
                      requests, errors)


# --- sustains -----------------------------------------------------------------------------

def test_sustains_needs_p99_under_the_slo():
    assert sustains(step(100, 49.9), 50)
    assert not sustains(step(100, 50.0), 50)
    assert not sustains(step(100, None), 50)
    assert not sustains(step(100, math.inf), 50)
    assert not sustains(step(100, math.nan), 50)


def test_sustains_needs_the_asked_rate_really_sent():
    assert MIN_ACHIEVED_FRACTION == 0.95
    assert sustains(step(100, 5, achieved=95.0), 50)
    assert not sustains(step(100, 5, achieved=94.9), 50)


def test_sustains_counts_errors_and_drops_against_one_percent():
    assert MAX_FAILED_FRACTION == 0.01
    assert sustains(step(100, 5, errors=10), 50)          # 10 / 1000
    assert not sustains(step(100, 5, errors=11), 50)
    assert sustains(step(100, 5, requests=990, dropped=10), 50)   # 10 / 1000 attempted
    assert not sustains(step(100, 5, requests=990, dropped=11), 50)
    assert not sustains(step(100, 5, requests=990, dropped=5, errors=6), 50)
    assert not sustains(step(100, 5, requests=0), 50)


# --- whole searches -----------------------------------------------------------------------

def test_mm1_brackets_the_analytic_limit_of_every_slo():
    search = SloSearch(SLOS)
    rates = drive(search, mm1())
    assert rates[:4] == [50.0, 100.0, 200.0, 400.0]      # probe up until 1000 ms fails
    assert len(rates) <= 30 and not search.step_limit_reached
    assert len(set(rates)) == len(rates)                  # never measures a rate twice
    rows = {row.slo_ms: row for row in search.table()}
    # 20 ms of service never meets 10 ms: probed down to the 1 req/s floor.
    assert rows[10.0].status is SloStatus.NOT_MET and rows[10.0].max_rate is None
    assert rows[10.0].bracket == (None, 1.0)
    assert min(rates) == 1.0
    for slo, expected in ((50.0, 240.0), (100.0, 320.0), (500.0, 384.0), (1000.0, 392.0)):
        assert limit(slo) == pytest.approx(expected)
        row = rows[slo]
        lo, hi = row.bracket
        assert row.status is SloStatus.FOUND, slo
        assert row.max_rate == lo
        assert lo < expected <= hi, (slo, lo, hi)
        assert (hi - lo) / lo <= 0.05
        assert row.p99_ms_at_max == pytest.approx(20 / (1 - lo / 400))
        assert row.p99_ms_at_max < slo


def test_a_finer_resolution_narrows_the_bracket():
    search = SloSearch([100.0], resolution=0.005)
    drive(search, mm1())
    (row,) = search.table()
    lo, hi = row.bracket
    assert lo < 320.0 <= hi and (hi - lo) / lo <= 0.005
    assert row.max_rate > 318.0


def test_fixed_service_time_with_a_hard_capacity():
    """20 ms every request until 400 req/s, then drops: every SLO above 20 ms tops out
    at the capacity, whatever its size."""
    def server(rate: float) -> StepResult:
        if rate >= 400:
            return step(rate, 20.0, achieved=380.0, dropped=int(rate * 5))
        return step(rate, 20.0)
    search = SloSearch(SLOS)
    drive(search, server)
    rows = {row.slo_ms: row for row in search.table()}
    assert rows[10.0].status is SloStatus.NOT_MET
    for slo in (50.0, 100.0, 500.0, 1000.0):
        lo, hi = rows[slo].bracket
        assert rows[slo].status is SloStatus.FOUND
        assert lo < 400.0 <= hi and (hi - lo) / lo <= 0.05
        assert rows[slo].p99_ms_at_max == 20.0


def test_a_start_rate_failing_everything_searches_downwards():
    search = SloSearch(SLOS, start_rate=1000.0)
    rates = drive(search, mm1())
    assert rates[:3] == [1000.0, 500.0, 250.0]
    rows = {row.slo_ms: row for row in search.table()}
    for slo in (50.0, 100.0, 500.0, 1000.0):
        lo, hi = rows[slo].bracket
        assert rows[slo].status is SloStatus.FOUND
        assert lo < limit(slo) <= hi and (hi - lo) / lo <= 0.05


def test_a_server_too_slow_for_every_slo_goes_down_to_the_floor():
    search = SloSearch(SLOS)
    rates = drive(search, mm1(service_ms=2000.0))
    assert rates == [50.0, 25.0, 12.5, 6.25, 3.125, 1.5625, 1.0]
    assert [row.status for row in search.table()] == [SloStatus.NOT_MET] * 5
    assert all(row.max_rate is None and row.p99_ms_at_max is None for row in search.table())


def test_max_rate_sustained_says_the_limit_is_higher():
    search = SloSearch(SLOS, max_rate=1000.0)
    rates = drive(search, mm1(service_ms=1.0, capacity=1e9))
    assert rates == [50.0, 100.0, 200.0, 400.0, 800.0, 1000.0]
    for row in search.table():
        assert row.status is SloStatus.AT_MAX_RATE
        assert row.max_rate == 1000.0 and row.bracket == (1000.0, None)
        assert row.p99_ms_at_max == pytest.approx(1.0, rel=1e-4)


def test_max_rate_reached_by_some_slos_only():
    # Limits: 50 ms -> 240, 100 ms -> 320, 1000 ms -> 392; max_rate 300 sits between.
    search = SloSearch([50.0, 100.0, 1000.0], max_rate=300.0)
    drive(search, mm1())
    rows = {row.slo_ms: row for row in search.table()}
    assert rows[50.0].status is SloStatus.FOUND
    assert rows[100.0].status is SloStatus.AT_MAX_RATE
    assert rows[1000.0].status is SloStatus.AT_MAX_RATE
    assert rows[1000.0].max_rate == 300.0


def test_the_step_limit_stops_the_search_and_says_so():
    search = SloSearch(SLOS, max_steps=5)
    rates = drive(search, mm1())
    # Open brackets first: 10 ms failed at 50 with nothing below, so down before bisecting.
    assert rates == [50.0, 100.0, 200.0, 400.0, 25.0]
    assert search.next_rate() is None and search.done
    rows = {row.slo_ms: row for row in search.table()}
    assert rows[1000.0].status is SloStatus.STEP_LIMIT
    assert rows[1000.0].bracket == (200.0, 400.0) and rows[1000.0].max_rate == 200.0
    assert rows[10.0].status is SloStatus.STEP_LIMIT and rows[10.0].bracket == (None, 25.0)
    assert search.to_json()["step_limit_reached"] is True
    assert "stopped after the step limit (5 steps)" in search.render_table()


def test_mid_search_rows_say_searching():
    search = SloSearch([100.0])
    search.record(mm1()(50.0))
    (row,) = search.table()
    assert row.status is SloStatus.SEARCHING and row.bracket == (50.0, None)
    assert search.next_rate() == 100.0


# --- noise: latency is not monotonic in rate ----------------------------------------------

def test_a_contradicted_failure_is_measured_once_more_then_believed():
    search = SloSearch([100.0], start_rate=100.0)
    search.record(step(100, 50))
    search.record(step(200, 500))
    search.record(step(300, 50))            # noise: sustained above a failure
    assert search.bracket(100.0) == (100.0, 200.0)   # a success above hi never raises lo
    assert search.next_rate() == 200.0      # ... but the failure is checked once
    search.record(step(200, 500))           # confirmed: believed from now on
    assert search.bracket(100.0) == (100.0, 200.0)
    assert search.next_rate() == pytest.approx(math.sqrt(100 * 200))
    search.record(step(141.42, 500))
    search.record(step(120, 50))
    assert search.bracket(100.0) == (120.0, 141.42)
    # A failure below lo wins: lo is the best sustained rate below every failure.
    search.record(step(110, 500))
    assert search.bracket(100.0) == (100.0, 110.0)
    assert search.next_rate() == 110.0      # contradicted by 120: measured again
    search.record(step(110, 60))            # the second verdict stands
    assert search.bracket(100.0) == (120.0, 141.42)
    search.record(step(90, 500))
    search.record(step(90, 500))
    assert search.bracket(100.0) == (None, 90.0)
    assert search.next_rate() == 45.0       # confirmed twice: probe down below it
    (row,) = search.table()
    assert row.status is SloStatus.SEARCHING and row.max_rate is None


def test_a_one_off_pause_far_below_the_limit_costs_one_step():
    """The 10 ms probe down meets a pause at 12.5 req/s that fails 50 ms too; 50 ms had
    sustained 200 req/s, so 12.5 is measured again and the limit near 240 still found."""
    base = mm1()
    paused = []

    def server(rate: float) -> StepResult:
        if rate == 12.5 and not paused:
            paused.append(rate)
            return step(rate, 400.0)
        return base(rate)
    search = SloSearch(SLOS)
    rates = drive(search, server)
    assert rates[:7] == [50.0, 100.0, 200.0, 400.0, 25.0, 12.5, 12.5]
    rows = {row.slo_ms: row for row in search.table()}
    lo, hi = rows[50.0].bracket
    assert rows[50.0].status is SloStatus.FOUND and lo < 240.0 <= hi
    assert len(rates) == 20                 # the noise-free search's 19, plus one


def test_a_latency_spike_band_is_searched_below():
    """A spike at 180-220 req/s (say, a cache thrashing) fails 100 ms there though 300
    sustains: the answer is the rate under the band, never one above a failure."""
    base = mm1()

    def server(rate: float) -> StepResult:
        result = base(rate)
        return step(rate, 900.0) if 180 <= rate <= 220 else result
    search = SloSearch([100.0])
    rates = drive(search, server)
    (row,) = search.table()
    lo, hi = row.bracket
    assert rates[:4] == [50.0, 100.0, 200.0, 100.0 * math.sqrt(2)]
    assert row.status is SloStatus.FOUND
    assert lo < 180.0 <= hi and (hi - lo) / lo <= 0.05
    assert not search.done or search.next_rate() is None


@pytest.mark.parametrize("seed", range(40))
def test_noisy_searches_terminate_and_report_only_clean_rates(seed):
    rng = random.Random(seed)

    def noise() -> float:
        # +-30 % jitter, and one step in eight hit by a 5x pause.
        return rng.uniform(0.7, 1.3) * (5.0 if rng.random() < 0.125 else 1.0)
    search = SloSearch(SLOS, max_steps=40)
    rates = drive(search, mm1(noise=noise))
    assert len(rates) <= 40
    assert max(Counter(rates).values()) <= 2
    assert all(1.0 <= r <= 1_000_000.0 for r in rates)
    # 10 ms is never met (20 ms of service); every other SLO is bracketed despite pauses,
    # thanks to the re-measure of contradicted failures.
    assert [row.status for row in search.table()] == [SloStatus.NOT_MET] + [SloStatus.FOUND] * 4
    latest = {s.rate: s for s in search.steps}
    for row in search.table():
        lo, hi = row.bracket
        failing = [r for r, s in latest.items() if not sustains(s, row.slo_ms)]
        if lo is not None:
            assert all(f > lo for f in failing)
            assert sustains(latest[lo], row.slo_ms)
        if hi is not None:
            assert hi == min(failing)
        if row.status is SloStatus.FOUND:
            assert (hi - lo) / lo <= 0.05
            # Noise and pauses only ever lower the limit; never far above the truth.
            assert lo < limit(row.slo_ms, service_ms=20 * 0.7)


def test_mild_noise_still_lands_near_the_analytic_limit():
    rng = random.Random(3)
    search = SloSearch(SLOS)
    drive(search, mm1(noise=lambda: rng.uniform(0.95, 1.05)))
    rows = {row.slo_ms: row for row in search.table()}
    for slo in (50.0, 100.0, 500.0, 1000.0):
        assert rows[slo].status is SloStatus.FOUND
        assert rows[slo].max_rate == pytest.approx(limit(slo), rel=0.08)


def test_fast_errors_do_not_meet_an_slo():
    """A server that answers 503 in 1 ms to 2 % of requests meets no SLO."""
    search = SloSearch([50.0, 1000.0])
    rates = drive(search, lambda rate: step(rate, 1.0, errors=20))
    assert rates == [50.0, 25.0, 12.5, 6.25, 3.125, 1.5625, 1.0]
    assert [row.status for row in search.table()] == [SloStatus.NOT_MET] * 2


# --- reports ------------------------------------------------------------------------------

def test_to_json_is_strict_json_with_rows_and_steps():
    search = SloSearch([100.0, 1000.0], max_steps=6)
    search.record(step(50, 10.0))
    search.record(step(100, math.inf))
    data = json.loads(json.dumps(search.to_json(), allow_nan=False))
    assert data["slos"][0] == {"slo_ms": 100.0, "max_rate": 50.0, "p99_ms_at_max": 10.0,
                               "bracket": [50.0, 100.0], "status": "searching"}
    assert data["steps"][0]["sustains_ms"] == [100.0, 1000.0]
    assert data["steps"][1]["p99_ms"] is None and data["steps"][1]["sustains_ms"] == []
    assert data["settings"]["slos_ms"] == [100.0, 1000.0]
    assert data["step_limit_reached"] is False


def test_render_table_lines_up():
    search = SloSearch([10.0, 100.0, 1000.0], max_rate=1000.0)
    drive(search, mm1(service_ms=20.0, capacity=1e9))
    text = search.render_table()
    lines = text.splitlines()
    assert lines[0] == " SLO (p99)  max rate req/s   p99 there  status"
    assert lines[2] == "     10 ms               -           -  not met"
    assert lines[4] == "   1000 ms          1000.0     20.0 ms  at max rate"
    assert len({len(line) for line in lines[2:]} - {len(lines[4])}) <= 1


# --- settings and parsing -----------------------------------------------------------------

def test_slos_are_sorted_and_deduplicated():
    assert SloSearch([500, 10, 500.0, 50]).slos_ms == (10.0, 50.0, 500.0)


@pytest.mark.parametrize("kwargs", [
    {"slos_ms": []}, {"slos_ms": [0]}, {"slos_ms": [math.inf]},
    {"slos_ms": [10], "start_rate": 0}, {"slos_ms": [10], "start_rate": 0.5},
    {"slos_ms": [10], "start_rate": 100, "max_rate": 50},
    {"slos_ms": [10], "growth": 1.0}, {"slos_ms": [10], "resolution": 0},
    {"slos_ms": [10], "max_steps": 0},
])
def test_unusable_settings_raise(kwargs):
    with pytest.raises(ValueError):
        SloSearch(**kwargs)


def test_record_rejects_a_rate_no_step_can_have():
    with pytest.raises(ValueError):
        SloSearch([10]).record(step(0, 1.0))


@pytest.mark.parametrize(("text", "expected"), [
    ("10ms,50ms,100ms,500ms,1s", (10.0, 50.0, 100.0, 500.0, 1000.0)),
    ("1s, 250, 0.5s,250ms", (250.0, 500.0, 1000.0)),
    ("2.5ms", (2.5,)),
    (" 1 S ", (1000.0,)),
])
def test_parse_slos(text, expected):
    assert parse_slos(text) == expected


@pytest.mark.parametrize(("text", "quoted"), [
    ("", "an empty SLO"), ("10ms,,20ms", "an empty SLO"), ("5us", "'5us'"),
    ("abc", "'abc'"), ("-5ms", "'-5ms'"), ("1e3ms", "'1e3ms'"), ("inf", "'inf'"),
    ("0ms", "'0ms'"), ("10ms,0", "'0'"),
])
def test_parse_slos_errors_are_one_line(text, quoted):
    with pytest.raises(ValueError) as info:
        parse_slos(text)
    message = str(info.value)
    assert "\n" not in message and quoted in message
