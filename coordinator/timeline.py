"""The run over time: a bounded series of samples for the results document's ``timeline``.

How this works: while the walkers run, the coordinator takes a sample every
``interval_s`` (1 s to start with): cumulative exchanges and transport errors summed over
the slices (the same sums as ``results.totals``), the p50/p99 of the latencies recorded
*during that interval* (the merged cumulative ``<slice>.latency`` histograms minus the
previous sample's counts, so a slow minute shows as a spike instead of vanishing into the
run's history), and the target's RSS, open fds and threads when its pid is known.

A 24 h soak must not grow the document without limit: once ``max_points`` samples are
held, every other one is dropped (the first and the newest are kept) and the interval
doubles, so the series always spans the whole run at an even spacing and never holds more
than ``max_points`` samples. A 24 h soak at the default 2000 points ends with a sample
every 64 s (1350 points, ~250 KB of JSON).

A resumed soak writes into the same run directory: before its first sample, ``follow``
carries over the samples the previous coordinator's last results write held (those up to
the resume point), so the series still covers the whole soak.

The pure parts (``Timeline``, ``interval_percentiles``) take values, never a clock or a
socket; ``follow`` is the thin loop the coordinator starts beside the walkers.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import trio
from hdrh.histogram import HdrHistogram

from actors.slices import SLICES
from coordinator.resources import METRICS
from coordinator.results import RESULTS_FILE

if TYPE_CHECKING:
    from coordinator.run import Coordinator

MAX_POINTS = 2000
FIRST_INTERVAL_S = 1.0


class Timeline:
    """Samples in time order, at most ``max_points``, thinned evenly as the run grows."""

    def __init__(self, max_points: int = MAX_POINTS, interval_s: float = FIRST_INTERVAL_S
                 ) -> None:
        if max_points < 4 or interval_s <= 0:
            raise ValueError("max_points must be >= 4 and interval_s > 0")
        self.max_points = max_points
        self.interval_s = interval_s
        self._points: list[dict[str, Any]] = []
        self._previous_counts: dict[str, list[int]] = {}

    def add(self, point: dict[str, Any]) -> None:
        """Append a sample (``t`` ascending); thin the series when it is full."""
        self._points.append(point)
        if len(self._points) > self.max_points:
            first, rest = self._points[0], self._points[1:]
            newest = rest[-1]
            kept = rest[1::2]
            if not kept or kept[-1] is not newest:
                kept.append(newest)
            self._points = [first, *kept]
            self.interval_s *= 2

    def carry_over(self, earlier: Sequence[Any], before_s: float) -> None:
        """Start from a previous coordinator's samples (a resumed soak): those with a
        numeric ``t`` up to ``before_s``, sampled no faster than they were."""
        kept = sorted((p for p in earlier if isinstance(p, dict)
                       and isinstance(p.get("t"), (int, float)) and 0 <= p["t"] <= before_s),
                      key=lambda p: p["t"])
        for point in kept:
            self.add(dict(point))
        if len(self._points) >= 2:
            self.interval_s = max(self.interval_s,
                                  self._points[-1]["t"] - self._points[-2]["t"])

    def points(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._points]

    def sample(self, t: float, counters: Mapping[str, int],
               histograms: Mapping[str, HdrHistogram],
               resources: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Build and add the sample at ``t`` seconds into the run."""
        exchanges, errors = exchange_totals(counters)
        latency = {name: h for name, h in histograms.items() if name.endswith(".latency")}
        p50, p99 = interval_percentiles(latency, self._previous_counts, (50.0, 99.0))
        point: dict[str, Any] = {"t": round(t, 3), "exchanges": exchanges, "errors": errors,
                                 "p50_ms": p50, "p99_ms": p99}
        for name, value in (resources or {}).items():
            point[name] = round(value, 3)
        self.add(point)
        return point


def exchange_totals(counters: Mapping[str, int]) -> tuple[int, int]:
    """(exchanges, transport errors) over all slices: each slice's own pair of counters
    (``actors.slices.SLICES``, as ``results.totals`` sums them), plus ``assay load``'s,
    which counts per scenario (``load.<scenario>.requests`` / ``.failed``)."""
    exchanges = sum(counters.get(SLICES[s][2], 0) for s in SLICES)
    errors = sum(counters.get(SLICES[s][3], 0) for s in SLICES)
    for name, value in counters.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "load":
            if parts[2] == "requests":
                exchanges += value
            elif parts[2] == "failed":
                errors += value
    return exchanges, errors


def interval_percentiles(histograms: Mapping[str, HdrHistogram],
                         previous: dict[str, list[int]],
                         percentiles: Sequence[float]) -> list[float | None]:
    """Percentiles (ms) of what the cumulative ``histograms`` gained since ``previous``.

    ``previous`` (name -> counts) is updated in place. Counts that went down (an actor's
    incarnation folded differently) count as zero rather than negative. None when the
    interval recorded nothing.
    """
    gained: dict[int, int] = {}
    some: HdrHistogram | None = None
    for name, hist in histograms.items():
        slots = min(hist.counts_len, hist.encoder.payload.counts_len)
        counts = hist.counts[:slots]
        before = previous.get(name, [])
        if len(before) < slots:
            before = before + [0] * (slots - len(before))
        # Tens of thousands of slots a histogram, once a second, in the coordinator that
        # shares the machine with the target: the differences and the slots that changed
        # are found by C-level map/compress, and only those are visited in Python.
        deltas = list(map(operator.sub, counts, before))
        for index in itertools.compress(range(slots), deltas):
            delta = deltas[index]
            if delta > 0:
                gained[index] = gained.get(index, 0) + delta
        previous[name] = counts
        some = hist
    total = sum(gained.values())
    if some is None or total == 0:
        return [None for _ in percentiles]
    found: list[float | None] = []
    ordered = sorted(gained.items())
    for pct in percentiles:
        target = max(1, int(total * pct / 100.0 + 0.5))
        running = 0
        value_ms: float | None = None
        for index, count in ordered:
            running += count
            if running >= target:
                value = some.get_value_from_index(index)
                value_ms = round(some.get_highest_equivalent_value(value) / 1000, 3)
                break
        found.append(value_ms)
    return found


def read_resources(pid: int | None) -> dict[str, float]:
    """The target's RSS (MiB), fds and threads, as ``coordinator.resources`` reads them;
    empty when the pid is unknown or unreadable (the series simply has no such column)."""
    if pid is None:
        return {}
    values: dict[str, float] = {}
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            for metric in METRICS:
                try:
                    values[f"{metric.name}"] = metric.read(process)
                except psutil.AccessDenied:
                    continue
    except psutil.Error:
        return {}
    return values


def previous_timeline(run_dir: Path) -> list[Any]:
    """The ``timeline`` of the results document already in ``run_dir`` (empty if none)."""
    try:
        document = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = document.get("timeline") if isinstance(document, dict) else None
    return found if isinstance(found, list) else []


async def follow(timeline: Timeline, coord: Coordinator,
                 clock: Callable[[], float] | None = None) -> None:
    """Sample ``coord`` until cancelled (the coordinator's run nursery ends it)."""
    import time

    now = clock or time.time
    if coord.elapsed_before > 0 and not timeline.points():
        timeline.carry_over(previous_timeline(coord.run_dir), coord.elapsed_before)
    while True:
        await trio.sleep(timeline.interval_s)
        started = coord.run_started
        if started is None:
            continue
        pid = coord.watch.restarts.pid
        timeline.sample(max(0.0, now() - started), coord.counters(),
                        coord.merger.histograms(), read_resources(pid))
