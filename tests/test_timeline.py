"""The timeline's pure parts: bounded thinning and per-interval percentiles."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from coordinator.timeline import (
    Timeline,
    exchange_totals,
    interval_percentiles,
    previous_timeline,
)
from protocols.tally import new_histogram


def test_a_long_run_stays_bounded_evenly_spaced_and_keeps_both_ends() -> None:
    timeline = Timeline(max_points=100, interval_s=1.0)
    t = 0.0
    while t < 86_400:  # a day sampled as the coordinator does: every interval_s
        timeline.add({"t": t})
        t += timeline.interval_s
    points = timeline.points()
    assert 50 <= len(points) <= 100
    assert points[0]["t"] == 0.0
    assert points[-1]["t"] >= 86_400 - timeline.interval_s
    gaps = {b["t"] - a["t"] for a, b in pairwise(points)}
    assert gaps == {timeline.interval_s}  # even spacing, and sampling slowed to match


def test_a_short_run_keeps_every_sample() -> None:
    timeline = Timeline(max_points=100)
    for second in range(50):
        timeline.add({"t": float(second)})
    assert [p["t"] for p in timeline.points()] == [float(s) for s in range(50)]
    assert timeline.interval_s == 1.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Timeline(max_points=2)
    with pytest.raises(ValueError):
        Timeline(interval_s=0)


def _hist(values_us: list[int]):
    hist = new_histogram()
    for value in values_us:
        hist.record_value(value)
    return hist


def test_interval_percentiles_see_only_what_the_interval_added() -> None:
    previous: dict[str, list[int]] = {}
    first = _hist([1_000] * 100)  # 1 ms
    assert interval_percentiles({"a.latency": first}, previous, (50.0, 99.0)) == \
        [pytest.approx(1.0, rel=0.01), pytest.approx(1.0, rel=0.01)]
    later = _hist([1_000] * 100 + [50_000] * 100)  # cumulative: the interval added 50 ms ones
    p50, p99 = interval_percentiles({"a.latency": later}, previous, (50.0, 99.0))
    assert p50 == pytest.approx(50.0, rel=0.01) and p99 == pytest.approx(50.0, rel=0.01)
    assert interval_percentiles({"a.latency": later}, previous, (50.0,)) == [None]


def test_interval_percentiles_merge_slices_and_ignore_counts_that_went_down() -> None:
    previous: dict[str, list[int]] = {"b.latency": list(_hist([9_000] * 500).counts)}
    p50, p99 = interval_percentiles({"a.latency": _hist([2_000] * 99 + [80_000]),
                                     "b.latency": _hist([2_000] * 100)}, previous, (50.0, 99.9))
    assert p50 == pytest.approx(2.0, rel=0.01)
    assert p99 == pytest.approx(80.0, rel=0.01)


def test_a_sample_sums_the_slices_like_the_results_totals() -> None:
    timeline = Timeline()
    point = timeline.sample(2.5, {"markov.requests": 10, "adv.sent": 5, "markov.errors": 2,
                                  "adv.unjudged": 1, "markov.case.x": 99},
                            {"markov.latency": _hist([3_000] * 10),
                             "markov.latency.read_item": _hist([900_000])},
                            {"rss": 12.3456, "fds": 40.0})
    assert point["t"] == 2.5
    assert point["exchanges"] == 15 and point["errors"] == 3
    assert point["p50_ms"] == pytest.approx(3.0, rel=0.01)  # per-state histograms excluded
    assert point["rss"] == 12.346 and point["fds"] == 40.0
    assert timeline.points() == [point]


def test_assay_load_counts_per_scenario() -> None:
    assert exchange_totals({"load.api.requests": 40, "load.api.failed": 2,
                            "load.web.requests": 10, "load.api.error.eof": 2,
                            "load.done": 1, "hold.dialed": 5}) == (55, 2)


def test_a_resumed_soak_carries_over_the_samples_before_the_resume(tmp_path: Path) -> None:
    earlier = [{"t": float(t), "exchanges": t} for t in range(0, 640, 64)]
    (tmp_path / "validate-results.json").write_text(json.dumps(
        {"timeline": [*earlier, {"t": "bad"}, 7, {"t": 9999.0}]}))
    timeline = Timeline()
    timeline.carry_over(previous_timeline(tmp_path), before_s=600.0)
    assert [p["t"] for p in timeline.points()] == [float(t) for t in range(0, 640, 64)]
    assert timeline.interval_s == 64.0  # goes on sampling as sparsely as it had got
    assert previous_timeline(tmp_path / "missing") == []
