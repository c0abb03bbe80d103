"""The shrinker: a bounded delta-debugging engine that sees only a case and a predicate.

How this works: ``Shrinker.run()`` is a generator (sans-IO, like h11): it yields candidate
sequences and is sent back whether each one *still fails*. ``shrink`` drives it with a plain
predicate (unit tests, pure functions); ``shrink_async`` drives it with an async one (a live
target). Nothing here knows about HTTP, programs or targets.

Rules, after hypothesis' shrinker:

* A total order decides what "smaller" means: ``key(candidate)``, by default shorter first,
  then fewer bytes, then lexicographic. A candidate is tried only if it is strictly smaller
  than the current best, and kept only if it still fails, so every kept step moves down a
  well-founded order and the search terminates.
* Every candidate tried is remembered (by its key), so no candidate costs two runs.
* The original is run first: if it no longer fails, the result is ``flaky`` and nothing is
  shrunk (shrinking a case that does not reproduce finds noise).
* Passes are named data with statistics (attempts, successes, units removed) and are
  reordered by effectiveness after each round; rounds repeat until one makes no progress.
* Deletion is adaptive: at each position, delete one element; on success grow the deleted
  run exponentially (2, 4, 8, ...) and then binary-search the largest run that can go, so a
  long irrelevant stretch costs log-many runs, not one per element. A classic ddmin pass
  (delete one of n chunks, n doubling) makes the first big cuts.
* Inside elements, ``Granularity`` values (e.g. the lines, then the bytes of a request)
  get the same adaptive deletion.
* Bounded three ways: ``max_attempts`` predicate runs, ``max_seconds`` of wall-clock, and
  ``stall_limit`` consecutive runs without progress.
* ``admissible(candidate)`` prunes candidates the caller knows are meaningless (e.g. a
  repro without the grace period its oracle assumes) without running them.

The values the engine reports (``ShrinkResult``, ``Attempt``, ``PassStats``), its inputs
(``Granularity``, ``default_key``) and the predicate's exceptions are
``replay.shrink_records``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any, Generic, TypeVar

from replay.shrink_records import (
    ERROR,
    FAILS,
    PASSES,
    Attempt,
    CandidateError,
    Granularity,
    PassStats,
    ShrinkAbort,
    ShrinkResult,
    Verdict,
    default_key,
)

T = TypeVar("T")
P = TypeVar("P")


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Gen = Generator[tuple[Any, ...], Verdict, bool]


class Shrinker(Generic[T]):
    """The engine; see the module docstring. One instance shrinks one case once."""

    def __init__(
        self,
        steps: Sequence[T],
        *,
        key: Callable[[Sequence[T]], Any] = default_key,
        granularities: Sequence[Granularity[T]] = (),
        max_attempts: int = 200,
        max_seconds: float = 60.0,
        stall_limit: int = 50,
        clock: Callable[[], float] = time.monotonic,
        admissible: Callable[[tuple[T, ...]], bool] | None = None,
    ) -> None:
        self.original = tuple(steps)
        self._admissible = admissible
        self.pruned = 0
        self.best = self.original
        self._key = key
        self._best_key = key(self.original)
        self._granularities = tuple(granularities)
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self.stall_limit = stall_limit
        self._clock = clock
        self._started = clock()
        self._tried: set[Any] = set()
        self._stall = 0
        self.attempts = 0
        self.cache_hits = 0
        self.log: list[Attempt] = []
        self.passes = [PassStats("ddmin"), PassStats("delete_runs")] + [
            PassStats(f"shrink_{g.name}") for g in self._granularities
        ]
        self._run_pass: dict[str, Callable[[PassStats], Gen]] = {
            "ddmin": self._ddmin,
            "delete_runs": self._delete_runs,
        }
        for granularity in self._granularities:
            self._run_pass[f"shrink_{granularity.name}"] = self._element_pass(granularity)

    # -- the driver protocol ---------------------------------------------------------------

    def run(self) -> Generator[tuple[T, ...], Verdict, ShrinkResult[T]]:
        """Yield candidates; send back True when a candidate still fails."""
        stopped = "fixpoint"
        verdict = yield self.original
        self._note("original", self.original, verdict, 0.0)
        if verdict is not True:
            return self._result(flaky=True, stopped_by="flaky")
        try:
            progress = True
            while progress:
                progress = False
                for stats in sorted(self.passes, key=lambda p: -p.effectiveness):
                    before = self._best_key
                    yield from self._run_pass[stats.name](stats)
                    progress |= self._best_key != before
        except _Stop as stop:
            stopped = stop.reason
        return self._result(flaky=False, stopped_by=stopped)

    def _result(self, *, flaky: bool, stopped_by: str) -> ShrinkResult[T]:
        return ShrinkResult(self.best, self.original, flaky, stopped_by, self.attempts,
                            self.cache_hits, self._clock() - self._started,
                            list(self.passes), list(self.log), self.pruned)

    def _note(self, pass_name: str, candidate: Sequence[T], verdict: Verdict,
              elapsed: float) -> None:
        self.attempts += 1
        outcome = FAILS if verdict is True else ERROR if verdict == ERROR else PASSES
        self.log.append(Attempt(self.attempts, pass_name, len(candidate), outcome, elapsed))

    def _try(self, candidate: Sequence[T], stats: PassStats) -> Gen:
        """Run one candidate if it is new and strictly smaller; True when it was kept."""
        candidate = tuple(candidate)
        key = self._key(candidate)
        if not key < self._best_key:
            return False
        if key in self._tried:
            self.cache_hits += 1
            return False
        if self._admissible is not None and not self._admissible(candidate):
            self._tried.add(key)
            self.pruned += 1
            return False
        if self.attempts >= self.max_attempts:
            raise _Stop("max_attempts")
        if self._clock() - self._started >= self.max_seconds:
            raise _Stop("max_seconds")
        self._tried.add(key)
        began = self._clock()
        verdict = yield candidate
        self._note(stats.name, candidate, verdict, self._clock() - began)
        stats.attempts += 1
        if verdict is True:
            stats.successes += 1
            stats.removed += max(0, len(self.best) - len(candidate))
            self.best, self._best_key = candidate, key
            self._stall = 0
            return True
        self._stall += 1
        if self._stall >= self.stall_limit:
            raise _Stop("stall")
        return False

    # -- passes over the sequence ----------------------------------------------------------

    def _ddmin(self, stats: PassStats) -> Gen:
        """Classic ddmin complements: drop one of n chunks, n from 2 up to one element each."""
        n = 2
        while len(self.best) >= 2 and n <= len(self.best):
            current = self.best
            size = -(-len(current) // n)
            for start in range(0, len(current), size):
                if (yield from self._try(current[:start] + current[start + size:], stats)):
                    n = max(n - 1, 2)
                    break
            else:
                n *= 2
        return False

    def _delete_runs(self, stats: PassStats) -> Gen:
        def attempt(start: int, length: int) -> Gen:
            current = self.best
            return (yield from self._try(current[:start] + current[start + length:], stats))

        yield from _adaptive(lambda: len(self.best), attempt)
        return False

    def _element_pass(self, granularity: Granularity[T]) -> Callable[[PassStats], Gen]:
        def run(stats: PassStats) -> Gen:
            index = 0
            while index < len(self.best):
                parts = granularity.split(self.best[index])
                if parts is not None and len(parts) > 0:
                    yield from self._shrink_parts(index, list(parts), granularity, stats)
                index += 1
            return False

        return run

    def _shrink_parts(self, index: int, parts: list[Any], granularity: Granularity[T],
                      stats: PassStats) -> Gen:
        held = {"parts": parts}

        def attempt(start: int, length: int) -> Gen:
            current = self.best
            kept = held["parts"][:start] + held["parts"][start + length:]
            element = granularity.join(current[index], kept)
            candidate = (*current[:index], element, *current[index + 1:])
            if (yield from self._try(candidate, stats)):
                held["parts"] = kept
                return True
            return False

        yield from _adaptive(lambda: len(held["parts"]), attempt)
        return False


def _adaptive(length: Callable[[], int], attempt: Callable[[int, int], Gen]) -> Gen:
    """Scan right to left: delete one item; on success grow the run leftwards 2, 4, 8 ...
    then binary-search the longest further run that can go.

    ``attempt(start, n)`` tries deleting ``n`` items at ``start`` of the *current* sequence
    and returns whether that was kept (kept deletions are cumulative); ``length()`` reads
    the current length. Monotonicity is only a heuristic: the engine's order and memory
    keep the search correct and finite when it does not hold.
    """
    index = length() - 1
    while index >= 0:
        index = min(index, length() - 1)
        if index < 0:
            break
        if not (yield from attempt(index, 1)):
            index -= 1
            continue
        end = index  # runs [end - k, end) sit just left of what was deleted
        run = 2
        while end - run >= 0 and (yield from attempt(end - run, run)):
            end -= run
            run *= 2
        high = min(run - 1, end)
        while high > 0:
            middle = (high + 1) // 2
            if (yield from attempt(end - middle, middle)):
                end -= middle
                high = min(high - middle, end)
            else:
                high = middle - 1
        index = end - 1
    return False


def shrink(
    steps: Sequence[T],
    still_fails: Callable[[tuple[T, ...]], bool],
    *,
    max_attempts: int = 200,
    max_seconds: float = 60.0,
    stall_limit: int = 50,
    key: Callable[[Sequence[T]], Any] = default_key,
    granularities: Iterable[Granularity[T]] = (),
    clock: Callable[[], float] = time.monotonic,
    admissible: Callable[[tuple[T, ...]], bool] | None = None,
) -> ShrinkResult[T]:
    """Shrink ``steps`` to a smaller sequence for which ``still_fails`` is still true.

    ``still_fails`` may raise ``CandidateError`` (logged as an error, treated as passing)
    or ``ShrinkAbort`` (stop now, keep the best so far).
    """
    engine = Shrinker(steps, key=key, granularities=tuple(granularities),
                      max_attempts=max_attempts, max_seconds=max_seconds,
                      stall_limit=stall_limit, clock=clock, admissible=admissible)
    gen = engine.run()
    try:
        candidate = next(gen)
        while True:
            try:
                verdict: Verdict = bool(still_fails(candidate))
            except CandidateError:
                verdict = ERROR
            except ShrinkAbort:
                gen.close()
                return engine._result(flaky=False, stopped_by="aborted")
            candidate = gen.send(verdict)
    except StopIteration as stop:
        return stop.value


async def shrink_async(
    steps: Sequence[T],
    still_fails: Callable[[tuple[T, ...]], Awaitable[bool]],
    *,
    max_attempts: int = 200,
    max_seconds: float = 60.0,
    stall_limit: int = 50,
    key: Callable[[Sequence[T]], Any] = default_key,
    granularities: Iterable[Granularity[T]] = (),
    clock: Callable[[], float] = time.monotonic,
    admissible: Callable[[tuple[T, ...]], bool] | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> ShrinkResult[T]:
    """``shrink`` with an async predicate (each candidate run against a live target)."""
    engine = Shrinker(steps, key=key, granularities=tuple(granularities),
                      max_attempts=max_attempts, max_seconds=max_seconds,
                      stall_limit=stall_limit, clock=clock, admissible=admissible)
    gen = engine.run()
    try:
        candidate = next(gen)
        while True:
            try:
                verdict: Verdict = bool(await still_fails(candidate))
            except CandidateError:
                verdict = ERROR
            except ShrinkAbort:
                gen.close()
                return engine._result(flaky=False, stopped_by="aborted")
            candidate = gen.send(verdict)
            if on_attempt is not None and engine.log:
                on_attempt(engine.log[-1])
    except StopIteration as stop:
        return stop.value
