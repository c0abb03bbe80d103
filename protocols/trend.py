"""Is a process metric leaking, or only breathing? Slopes over noisy 1 Hz samples, sans-IO.

How this works: samples ``(t, value)`` arrive about once a second (RSS bytes, open fds,
threads). Samples inside the warm-up are ignored: allocators, pools and caches fill when
load begins, and that growth is not a leak. Later samples fall into fixed buckets of
``bucket_s`` seconds and each bucket keeps only its *minimum*: a garbage collector's
saw-tooth rises and falls inside a bucket, but its troughs (what the process really
retains) only move when something leaks. A least-squares line through the closed bucket
minima gives the slope; the open (last, partial) bucket is left out because a minimum over
fewer samples is biased upwards.

A metric is declared GROWING only when all of these hold, so that noise, saw-teeth and a
one-off step (a cache filling once) stay silent:

1. at least ``min_buckets`` closed buckets, else there is no slope to speak of;
2. the fitted slope exceeds ``min_slope_per_h`` (units per hour);
3. the observed growth - median of the last third of the minima minus the median of the
   first third - exceeds the noise floor ``floor`` (absolute units); medians make a single
   outlier bucket harmless;
4. it is still growing: the slope over the later half of the buckets exceeds half of
   ``min_slope_per_h`` (a ramp that flattened out is a warm-up that outlasted the warm-up).

Memory stays bounded over any run length: past ``max_buckets`` adjacent buckets merge
pairwise (the minimum of the two) and the bucket width doubles, so a 24 h run at 60 s
buckets and a 1 h run cost the same few kilobytes. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


class TrendStatus(enum.Enum):
    #: Still inside the warm-up window: growth here is expected, never judged.
    WARMING_UP = "warming_up"
    #: Past the warm-up, but fewer than ``min_buckets`` closed buckets: no verdict yet.
    NOT_ENOUGH_DATA = "not_enough_data"
    #: Enough data and at least one of the leak conditions fails.
    STEADY = "steady"
    #: Every leak condition holds.
    GROWING = "growing"


@dataclass(frozen=True)
class TrendConfig:
    """How one metric is judged. Units are the metric's own (bytes, fds, threads)."""

    warmup_s: float
    bucket_s: float
    min_buckets: int
    floor: float
    min_slope_per_h: float
    max_buckets: int = 512

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or self.warmup_s < 0 or self.min_buckets < 3:
            raise ValueError("bucket_s must be > 0, warmup_s >= 0 and min_buckets >= 3")
        if self.max_buckets < 2 * self.min_buckets:
            raise ValueError("max_buckets must be at least twice min_buckets")

    @property
    def shortest_judged_run_s(self) -> float:
        """Seconds of samples needed before a verdict is possible (for "not judged" text)."""
        return self.warmup_s + (self.min_buckets + 1) * self.bucket_s


@dataclass(frozen=True)
class TrendVerdict:
    status: TrendStatus
    buckets: int
    #: Fitted slope in units per hour (0 when there is no fit).
    slope_per_h: float = 0.0
    #: Median of the last third of bucket minima minus that of the first third.
    growth: float = 0.0
    #: Slope of the later half, units per hour.
    late_slope_per_h: float = 0.0
    span_s: float = 0.0
    first: float | None = None
    last: float | None = None

    @property
    def growing(self) -> bool:
        return self.status is TrendStatus.GROWING


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Ordinary least-squares slope of ys over xs; 0.0 when xs do not vary."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


@dataclass
class Trend:
    """Bucket minima of one metric of one process; feed ``add``, ask ``verdict``."""

    config: TrendConfig
    _first_t: float | None = None
    _origin: float | None = None
    _width: float = 0.0
    #: Closed and open buckets as [index, minimum], index ascending; the last may be open.
    _buckets: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._width = self.config.bucket_s

    def add(self, t: float, value: float) -> None:
        """One sample at time ``t`` (seconds, any monotonic origin). Older samples are dropped."""
        if self._first_t is None:
            self._first_t = t
        if t - self._first_t < self.config.warmup_s:
            return
        if self._origin is None:
            self._origin = t
        index = math.floor((t - self._origin) / self._width)
        if self._buckets and index < self._buckets[-1][0]:
            return  # out of order: the clock went backwards; ignore rather than corrupt
        if self._buckets and self._buckets[-1][0] == index:
            self._buckets[-1][1] = min(self._buckets[-1][1], value)
        else:
            self._buckets.append([index, value])
        if len(self._buckets) > self.config.max_buckets:
            self._halve()

    def _halve(self) -> None:
        """Merge buckets pairwise (keep the minimum) and double the width."""
        merged: list[list[float]] = []
        for index, minimum in self._buckets:
            half = index // 2
            if merged and merged[-1][0] == half:
                merged[-1][1] = min(merged[-1][1], minimum)
            else:
                merged.append([half, minimum])
        self._buckets = merged
        self._width *= 2

    def closed(self) -> tuple[list[float], list[float]]:
        """(bucket centre times in hours since the origin, bucket minima), open bucket left out."""
        closed = self._buckets[:-1]
        xs = [(index + 0.5) * self._width / 3600.0 for index, _ in closed]
        return xs, [minimum for _, minimum in closed]

    @property
    def warming_up(self) -> bool:
        return self._origin is None

    def reset(self) -> None:
        """Forget everything, warm-up included (the process was replaced by another one)."""
        self._first_t = self._origin = None
        self._width = self.config.bucket_s
        self._buckets = []

    def verdict(self) -> TrendVerdict:
        if self._origin is None:
            return TrendVerdict(TrendStatus.WARMING_UP, 0)
        xs, ys = self.closed()
        n = len(ys)
        if n < self.config.min_buckets:
            return TrendVerdict(TrendStatus.NOT_ENOUGH_DATA, n,
                                first=ys[0] if ys else None, last=ys[-1] if ys else None)
        slope = least_squares_slope(xs, ys)
        third = max(1, n // 3)
        growth = statistics.median(ys[-third:]) - statistics.median(ys[:third])
        half = n // 2
        late = least_squares_slope(xs[half:], ys[half:])
        cfg = self.config
        growing = (slope > cfg.min_slope_per_h and growth > cfg.floor
                   and late > cfg.min_slope_per_h / 2)
        return TrendVerdict(
            TrendStatus.GROWING if growing else TrendStatus.STEADY, n,
            slope_per_h=slope, growth=growth, late_slope_per_h=late,
            span_s=(xs[-1] - xs[0]) * 3600.0, first=ys[0], last=ys[-1],
        )
