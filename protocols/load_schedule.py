"""When things happen in a load scenario: arrival instants, rates and VU counts (pure math).

How this works: an open executor's rate is piecewise linear in time -- one flat segment
for ``constant-arrival-rate``; for ``ramping-arrival-rate`` one segment per stage, from
the previous target (``start_rate`` for the first) to the stage's target. Let ``I(t)`` be
the integral of the rate from the scenario start and ``N = I(total)``. Then:

* arrival *n* exists iff ``n < N`` (so 1000/s for 10 s has exactly 10 000 arrivals, a
  ramp 0->100/s over 10 s exactly 500: the integral reaching ``N`` at the very end does
  not start one more request, the end is exclusive);
* arrival *n* is due at ``inf {t : I(t) > n}``: where the integral crosses *n*, or, when
  it sits at exactly *n* through a rate-0 stretch, at the end of that stretch. Arrival 0
  is at ``t = 0`` whenever the rate is positive right after 0 (a ramp from 0 included),
  and a rate-0 stretch never starts anything.

Inside a segment the integral is quadratic, so each instant is one square root, solved in
the cancellation-free form ``u = 2m / (r0 + sqrt(r0^2 + 2 s m))`` (slope ``s``): exact for a
flat segment, stable when the slope is tiny or negative. ``arrivals`` walks the segments
forward as *n* grows, so it costs O(1) amortised per arrival and never materialises the
schedule: actor ``rank`` of ``count`` takes ``arrivals(ex, rank, count)`` and the union
over the actors is exactly the one-actor schedule, with no coordination at run time.

Float noise: a total integral within ``_SNAP`` (relative) of an integer counts as that
integer, so ``100/1m`` over ``60s`` (``1.666...`` x 60) is 100 arrivals, not 101. VU counts
are floored after the same snap, so a ramp 0->10 has exactly 3 VUs at 30 %.

Closed executors (``constant-vus``, ``ramping-vus``) have VU counts, not arrivals, and open
executors have arrivals, not VU counts: asking for the other one is a caller's bug
(``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    RAMPING_ARRIVAL_RATE,
    RAMPING_VUS,
    Executor,
)

#: Relative tolerance under which a float that should be an integer is taken as one.
_SNAP = 1e-9


@dataclass(frozen=True, slots=True)
class _Segment:
    """The rate going linearly from ``r0`` to ``r1`` over ``[start, start + length)``;
    ``before`` is the integral of the rate up to ``start``."""

    start: float
    length: float
    r0: float
    r1: float
    before: float

    @property
    def area(self) -> float:
        return (self.r0 + self.r1) / 2.0 * self.length

    def offset_of(self, n: float) -> float:
        """The instant in this segment where the integral reaches ``n``."""
        m = max(0.0, n - self.before)
        if m == 0.0:
            return self.start
        slope = (self.r1 - self.r0) / self.length
        disc = max(0.0, self.r0 * self.r0 + 2.0 * slope * m)
        denom = self.r0 + math.sqrt(disc)
        u = 2.0 * m / denom if denom > 0.0 else 0.0
        return self.start + min(u, self.length)


def _snap(x: float) -> float:
    nearest = round(x)
    return float(nearest) if abs(x - nearest) <= _SNAP * max(1.0, abs(x)) else x


def _require_open(executor: Executor) -> None:
    if executor.kind not in (CONSTANT_ARRIVAL_RATE, RAMPING_ARRIVAL_RATE):
        raise ValueError(f"{executor.kind} is a closed executor: it has VUs, not arrivals")


def _segments(executor: Executor) -> list[_Segment]:
    """The rate as linear pieces, zero-length stages (instant jumps) dropped."""
    _require_open(executor)
    if executor.kind == CONSTANT_ARRIVAL_RATE:
        pieces = [(executor.rate, executor.rate, executor.duration_s)]
    else:
        pieces, previous = [], executor.start_rate
        for stage in executor.stages:
            pieces.append((previous, stage.target, stage.duration_s))
            previous = stage.target
    segments: list[_Segment] = []
    start = before = 0.0
    for r0, r1, length in pieces:
        if length > 0.0:
            segment = _Segment(start, length, float(r0), float(r1), before)
            segments.append(segment)
            before += segment.area
        start += length
    return segments


def expected_arrivals(executor: Executor) -> int:
    """How many requests the whole schedule starts: the integers below the total integral.

    This is what a report calls the rate asked for; it equals the length of
    ``arrivals(executor, 0, 1)`` exactly.
    """
    total = _snap(sum(segment.area for segment in _segments(executor)))
    return max(0, math.ceil(total))


def arrivals(executor: Executor, first: int, step: int) -> Iterator[float]:
    """Offsets (seconds from the scenario start) of arrivals ``first``, ``first + step``, ...

    Actor ``rank`` of ``count`` calls ``arrivals(executor, rank, count)``; the offsets are
    non-decreasing and all fall in ``[0, executor.total_s)``.

    Raises:
        ValueError: for a closed executor, ``first < 0`` or ``step < 1``.
    """
    if first < 0 or step < 1:
        raise ValueError(f"arrivals needs first >= 0 and step >= 1 (got {first}, {step})")
    segments = _segments(executor)
    return _walk(segments, expected_arrivals(executor), first, step, executor.total_s)


def _walk(
    segments: list[_Segment], total: int, first: int, step: int, end: float
) -> Iterator[float]:
    last_instant = math.nextafter(end, -math.inf)
    index = 0
    for n in range(first, total, step):
        # Move to the segment whose integral range [before, before + area) holds n; the
        # last segment takes any n that float noise pushed past its end.
        while index + 1 < len(segments) and n >= segments[index + 1].before:
            index += 1
        while segments[index].area <= 0.0 and index + 1 < len(segments):
            index += 1  # a rate-0 stretch: the arrival waits for the rate to rise
        yield min(segments[index].offset_of(n), last_instant)


def rate_at(executor: Executor, t: float) -> float:
    """Requests per second due at ``t`` seconds into the scenario; 0 outside it.

    At an instant jump (a zero-length stage) the rate after the jump is returned.

    Raises:
        ValueError: for a closed executor.
    """
    segments = _segments(executor)
    if t < 0.0 or t >= executor.total_s:
        return 0.0
    for segment in reversed(segments):
        if t >= segment.start:
            if t >= segment.start + segment.length:
                return 0.0  # pragma: no cover - segments tile [0, total) exactly
            return segment.r0 + (segment.r1 - segment.r0) * (t - segment.start) / segment.length
    return 0.0  # pragma: no cover


def vus_at(executor: Executor, t: float) -> int:
    """How many VUs a closed executor runs at ``t`` seconds into the scenario.

    ``constant-vus``: ``vus`` during ``[0, duration)``. ``ramping-vus``: ``vus`` at 0, each
    stage interpolating linearly to its target, floored as k6 does (0->10 over 10 s has 1
    VU from 1 s on, 10->0 keeps 9 until 1 s before the end). 0 outside the scenario.

    Raises:
        ValueError: for an open executor.
    """
    if executor.kind not in (CONSTANT_VUS, RAMPING_VUS):
        raise ValueError(f"{executor.kind} is an open executor: it has arrivals, not VUs")
    if t < 0.0 or t >= executor.total_s:
        return 0
    if executor.kind == CONSTANT_VUS:
        return executor.vus
    start, previous = 0.0, float(executor.vus)
    for stage in executor.stages:
        if t < start + stage.duration_s:
            value = previous + (stage.target - previous) * (t - start) / stage.duration_s
            return max(0, math.floor(_snap(value)))
        start, previous = start + stage.duration_s, stage.target
    return max(0, math.floor(_snap(previous)))  # pragma: no cover - t < total_s


def split_vus(total: int, rank: int, count: int) -> int:
    """Actor ``rank``'s share of ``total`` VUs among ``count`` actors.

    The shares sum to ``total``; the first ``total % count`` ranks take one more. It is
    exactly how many global VU numbers ``j < total`` satisfy ``owns_vu(j, rank, count)``,
    so an actor can grow and shrink its VUs by global number without asking anyone.
    """
    _check_rank(rank, count)
    if total < 0:
        raise ValueError(f"total must be >= 0 (got {total})")
    return total // count + (1 if rank < total % count else 0)


def owns_vu(j: int, rank: int, count: int) -> bool:
    """Whether global VU ``j`` (0-based) runs on actor ``rank`` of ``count``."""
    _check_rank(rank, count)
    return j % count == rank


def _check_rank(rank: int, count: int) -> None:
    if count < 1 or not 0 <= rank < count:
        raise ValueError(f"rank must be in [0, count) with count >= 1 (got {rank}, {count})")
