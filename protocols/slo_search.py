"""``assay slo``'s search: the highest sustained arrival rate per latency SLO, sans-IO.

How this works: the caller asks ``next_rate()`` for a rate, runs one step there (open
model, constant arrival rate, warm-up then several runs whose histograms it merges) and
hands the merged figures back with ``record(StepResult)``; it stops when ``next_rate()``
returns None and shows ``table()``. Nothing here does I/O or reads a clock, so the search
is tested against a simulated server (a function from rate to p99) in microseconds.

Every SLO keeps a bracket built from *all* the rates measured, since one step's p99 answers
every SLO at once (a step that meets 10 ms meets 50 ms too). A rate's verdict is its latest
step's; with ``sustains`` deciding each verdict:

* ``hi`` - the lowest rate that did not sustain the SLO (None: none failed);
* ``lo`` - the highest rate *below hi* that sustained it (None: none did).

Latency is not always monotonic in rate (a GC pause, a neighbour, a cold cache), so a rate
can fail an SLO that a higher rate sustained. Such a *contradicted* failure is measured
once more before anything else, and its second verdict stands; after that a failure is
believed over a success: a sustained rate above ``hi`` never raises ``lo``. So the rate
reported sustained the SLO and no rate at or below it failed - what an SLO promises - and
one spurious failure far below the limit costs one step instead of the answer. (Believing
every first failure, a single pause at 12.5 req/s made a 50 ms SLO whose limit is 240 req/s
report 12 req/s: see the tests.) Apart from that one re-measure every proposed rate
is new: a rate inside ``(lo, hi)``, above an open ``lo`` or below an open ``hi`` cannot
have been measured, or it would have moved the bracket. The next rate is, in this order:

1. no step yet: ``start_rate``;
2. a contradicted failure measured only once: that rate again;
3. the largest SLO never failed: probe up, ``lo * growth`` capped at ``max_rate`` (if
   the largest SLO never failed, no smaller SLO did either);
4. an SLO that nothing sustained below ``hi``: probe down, ``hi / growth`` floored at
   ``min_rate`` (every such SLO shares the same ``hi``, see ``_next``);
5. otherwise bisect the SLO whose bracket is widest relative to ``lo``.

An SLO is settled when ``(hi - lo) / lo <= resolution`` (found), when ``min_rate`` failed
with nothing sustained below it (not met), or when ``max_rate`` sustained it (at max rate:
the true limit is higher). After ``max_steps`` steps the search stops whatever the state
and unsettled rows say "step limit", with the best bracket known.

The bisection point is the geometric mean ``sqrt(lo * hi)``, not the arithmetic one: the
stopping rule is relative, and the geometric mean halves ``log(hi / lo)`` every step, so a
bracket needs the same number of steps at 50 req/s as at 50 000 (about four for a 2x
bracket at 5 %). The arithmetic midpoint wastes steps on the brackets that noise can leave
very wide (say 1 to 1000 req/s), where it keeps probing near the top.

Termination: ``max_steps`` bounds it outright, and no rate is measured more than twice.
Without noise each bisection halves one bracket's log-width and the probes move by
``growth``, so settling takes about
``log_growth(limit / start) + n_slos * log2(log(growth) / log(1 + resolution))`` steps.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: A step sustains a rate only if the generator really sent at least this fraction of the
#: asked rate: below it the server was not offered that load (the generator fell behind,
#: or requests were dropped because every VU was stuck), so its p99 says nothing about the
#: asked rate. 5 % leaves room for the edges of a fixed measurement window.
MIN_ACHIEVED_FRACTION = 0.95

#: At most this fraction of the step's requests may fail (errors, plus requests dropped
#: because every VU was in flight). A server that answers 503 in a millisecond is not
#: meeting a latency SLO, and a dropped request never got an answer at all. 1 % is the
#: tail that p99 itself already gives away: more than that and the failures alone could
#: hide the requests that would have broken the p99.
MAX_FAILED_FRACTION = 0.01


class SloStatus(enum.StrEnum):
    #: Bracketed: ``lo`` sustained it, ``hi`` did not, and ``(hi - lo) / lo <= resolution``.
    FOUND = "found"
    #: Nothing sustained it down to ``min_rate``: not met at any rate tried.
    NOT_MET = "not met"
    #: ``max_rate`` sustained it: the server's true limit for this SLO is higher.
    AT_MAX_RATE = "at max rate"
    #: ``max_steps`` steps were measured before the bracket was settled.
    STEP_LIMIT = "step limit"
    #: Not settled yet and steps are left (a table taken mid-search).
    SEARCHING = "searching"


@dataclass(frozen=True)
class StepResult:
    """One step's merged measurement (all runs, warm-up left out).

    ``rate`` is the arrival rate asked for (req/s); ``p99_ms`` the merged p99 latency, None
    when nothing was measured; ``achieved_rate`` the rate actually sent; ``requests`` the
    requests sent in the measured windows (answered or errored, ``dropped`` not included);
    ``errors`` how many of them failed; ``dropped`` the requests never sent because every
    VU was in flight.
    """

    rate: float
    p99_ms: float | None
    achieved_rate: float
    dropped: int
    requests: int
    errors: int


def sustains(result: StepResult, slo_ms: float) -> bool:
    """Whether ``result`` meets ``slo_ms``: p99 under it, the load really offered
    (``MIN_ACHIEVED_FRACTION``), and few failures (``MAX_FAILED_FRACTION``)."""
    if result.p99_ms is None or not result.p99_ms < slo_ms:  # NaN fails too
        return False
    if not result.achieved_rate >= MIN_ACHIEVED_FRACTION * result.rate:
        return False
    attempted = result.requests + result.dropped
    if attempted <= 0:
        return False
    return (result.errors + result.dropped) <= MAX_FAILED_FRACTION * attempted


@dataclass(frozen=True)
class SloRow:
    """One SLO's answer. ``max_rate`` is the highest sustained rate (``bracket[0]``), with
    the p99 measured there; ``bracket`` is ``(lo, hi)``, the true limit lying in between."""

    slo_ms: float
    max_rate: float | None
    p99_ms_at_max: float | None
    bracket: tuple[float | None, float | None]
    status: SloStatus


class SloSearch:
    """The search's state machine: ``next_rate()`` / ``record()`` until None (module doc)."""

    def __init__(self, slos_ms: Sequence[float], start_rate: float = 50.0,
                 max_rate: float = 1_000_000.0, resolution: float = 0.05,
                 growth: float = 2.0, max_steps: int = 40, min_rate: float = 1.0) -> None:
        """Raises ValueError for settings no search can use (a caller's bug: user input
        goes through ``parse_slos`` and the CLI's own checks first)."""
        slos = tuple(sorted(set(float(s) for s in slos_ms)))
        if not slos or not all(math.isfinite(s) and s > 0 for s in slos):
            raise ValueError(f"SLOs must be positive and finite, got {list(slos_ms)}")
        if not (0 < min_rate <= start_rate <= max_rate and math.isfinite(max_rate)):
            raise ValueError("need 0 < min_rate <= start_rate <= max_rate, got "
                             f"{min_rate}, {start_rate}, {max_rate}")
        if not (resolution > 0 and growth > 1 and max_steps >= 1):
            raise ValueError("need resolution > 0, growth > 1 and max_steps >= 1, got "
                             f"{resolution}, {growth}, {max_steps}")
        self.slos_ms = slos
        self.start_rate = float(start_rate)
        self.max_rate = float(max_rate)
        self.min_rate = float(min_rate)
        self.resolution = float(resolution)
        self.growth = float(growth)
        self.max_steps = max_steps
        self._steps: list[StepResult] = []

    @property
    def steps(self) -> tuple[StepResult, ...]:
        """Every step recorded, in order."""
        return tuple(self._steps)

    @property
    def step_limit_reached(self) -> bool:
        return len(self._steps) >= self.max_steps

    @property
    def done(self) -> bool:
        return self.next_rate() is None

    def record(self, result: StepResult) -> None:
        """Add one step. Any rate is accepted, asked for or not: brackets use ``result.rate``."""
        if not (math.isfinite(result.rate) and result.rate > 0):
            raise ValueError(f"a step's rate must be positive and finite, got {result.rate}")
        self._steps.append(result)

    def next_rate(self) -> float | None:
        """The next rate to measure (req/s), or None: every SLO settled or no steps left."""
        if self.step_limit_reached:
            return None
        return self._next()

    def _next(self) -> float | None:
        if not self._steps:
            return self.start_rate
        latest = self._latest()
        brackets = [self.bracket(slo) for slo in self.slos_ms]
        for slo, (_, hi) in zip(self.slos_ms, brackets, strict=True):
            if hi is not None and self._times_measured(hi) == 1 and any(
                    rate > hi and sustains(result, slo) for rate, result in latest.items()):
                return hi
        lo, hi = brackets[-1]
        if hi is None:  # the largest SLO never failed, so lo is set (a step was recorded)
            assert lo is not None
            if lo < self.max_rate:
                return min(lo * self.growth, self.max_rate)
        widest: tuple[float, float] | None = None  # (relative width, rate to measure)
        for slo, (lo, hi) in zip(self.slos_ms, brackets, strict=True):
            if self._settled(slo) is not None:
                continue
            if lo is None:
                # Every SLO with no sustained rate below hi has the same hi: a failure
                # for a larger SLO is a failure for every smaller one, and a lower
                # failure would be sustained or failed for the larger SLO too.
                assert hi is not None
                return max(hi / self.growth, self.min_rate)
            if hi is None:  # open above only at max_rate, so settled: unreachable
                continue
            width = (hi - lo) / lo
            if widest is None or width > widest[0]:
                widest = (width, math.sqrt(lo * hi))
        return None if widest is None else widest[1]

    def bracket(self, slo_ms: float) -> tuple[float | None, float | None]:
        """``(lo, hi)`` for one SLO from every rate's latest verdict (module doc)."""
        latest = self._latest()
        failing = [rate for rate, s in latest.items() if not sustains(s, slo_ms)]
        hi = min(failing) if failing else None
        held = [rate for rate, s in latest.items()
                if sustains(s, slo_ms) and (hi is None or rate < hi)]
        return (max(held) if held else None), hi

    def _latest(self) -> dict[float, StepResult]:
        """Each rate's latest step: a re-measure replaces the verdict it was taken to check."""
        return {s.rate: s for s in self._steps}

    def _times_measured(self, rate: float) -> int:
        return sum(1 for s in self._steps if s.rate == rate)

    def _settled(self, slo_ms: float) -> SloStatus | None:
        lo, hi = self.bracket(slo_ms)
        if lo is not None and hi is not None and (hi - lo) / lo <= self.resolution:
            return SloStatus.FOUND
        if lo is None and hi is not None and hi <= self.min_rate:
            return SloStatus.NOT_MET
        if hi is None and lo is not None and lo >= self.max_rate:
            return SloStatus.AT_MAX_RATE
        return None

    def table(self) -> list[SloRow]:
        """One row per SLO, smallest first."""
        rows = []
        for slo in self.slos_ms:
            lo, hi = self.bracket(slo)
            status = self._settled(slo) or (
                SloStatus.STEP_LIMIT if self.step_limit_reached else SloStatus.SEARCHING)
            p99 = None if lo is None else self._latest()[lo].p99_ms
            rows.append(SloRow(slo, lo, p99, (lo, hi), status))
        return rows

    def to_json(self) -> dict[str, Any]:
        """Rows, steps and settings as plain JSON data (non-finite numbers become None)."""
        return {
            "settings": {
                "slos_ms": list(self.slos_ms), "start_rate": self.start_rate,
                "max_rate": self.max_rate, "min_rate": self.min_rate,
                "resolution": self.resolution, "growth": self.growth,
                "max_steps": self.max_steps,
            },
            "step_limit_reached": self.step_limit_reached,
            "slos": [{
                "slo_ms": row.slo_ms, "max_rate": row.max_rate,
                "p99_ms_at_max": _finite(row.p99_ms_at_max),
                "bracket": list(row.bracket), "status": str(row.status),
            } for row in self.table()],
            "steps": [{
                "rate": s.rate, "p99_ms": _finite(s.p99_ms),
                "achieved_rate": _finite(s.achieved_rate), "dropped": s.dropped,
                "requests": s.requests, "errors": s.errors,
                "sustains_ms": [slo for slo in self.slos_ms if sustains(s, slo)],
            } for s in self._steps],
        }

    def render_table(self) -> str:
        """A fixed-width text table: SLO, max sustained rate, p99 there, status."""
        header = f"{'SLO (p99)':>10}  {'max rate req/s':>14}  {'p99 there':>10}  status"
        lines = [header, "-" * (len(header) + 6)]
        for row in self.table():
            rate = "-" if row.max_rate is None else f"{row.max_rate:.1f}"
            p99 = "-" if row.p99_ms_at_max is None else f"{row.p99_ms_at_max:.1f} ms"
            lines.append(f"{_ms(row.slo_ms):>10}  {rate:>14}  {p99:>10}  {row.status}")
        if self.step_limit_reached and any(
                row.status is SloStatus.STEP_LIMIT for row in self.table()):
            lines.append(f"stopped after the step limit ({self.max_steps} steps) before "
                         "every SLO was bracketed")
        return "\n".join(lines)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _ms(slo_ms: float) -> str:
    return f"{slo_ms:g} ms"


_SLO = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?")


def parse_slos(text: str) -> tuple[float, ...]:
    """``10ms,50ms,1s`` -> ``(10.0, 50.0, 1000.0)``: ms or s, a bare number is ms; sorted,
    duplicates dropped. Raises ValueError with a one-line message quoting the bad part."""
    values = set()
    for item in text.split(","):
        part = item.strip().lower()
        match = _SLO.fullmatch(part)
        if match is None:
            what = "an empty SLO" if not part else f"bad SLO {item.strip()!r}"
            raise ValueError(f"{what} in --slo {text!r}: expected numbers with ms or s, "
                             "e.g. 10ms,50ms,1s")
        value = float(match.group(1)) * (1000.0 if match.group(2) == "s" else 1.0)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"SLO {item.strip()!r} in --slo {text!r} must be above zero")
        values.add(value)
    return tuple(sorted(values))
