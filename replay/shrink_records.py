"""The shrinker's vocabulary: what goes in (granularities, the order), what the predicate may
raise, and what comes out (the result, its attempt log and per-pass statistics).

Separate from the engine (``replay.shrink``) because callers that only report a shrink, or
only raise from a predicate, need these values and not the search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Outcome names in the attempt log.
FAILS, PASSES, ERROR = "fails", "passes", "error"


class CandidateError(Exception):
    """The predicate could not judge a candidate (counted as 'does not fail', logged)."""


class ShrinkAbort(Exception):
    """The predicate cannot go on at all (e.g. the target is gone): stop, keep the best."""


@dataclass(frozen=True)
class Granularity(Generic[T]):
    """How to take one element apart and put it back, for deletion inside elements.

    ``split`` returns the parts (or None when this granularity does not apply);
    ``join(element, parts)`` builds the element back from a subset of them.
    """

    name: str
    split: Callable[[T], Sequence[Any] | None]
    join: Callable[[T, Sequence[Any]], T]


@dataclass
class PassStats:
    """One pass, as data: how often it ran the predicate and how often that paid off."""

    name: str
    attempts: int = 0
    successes: int = 0
    removed: int = 0

    @property
    def effectiveness(self) -> float:
        return self.successes / self.attempts if self.attempts else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "attempts": self.attempts, "successes": self.successes,
                "removed": self.removed}


@dataclass(frozen=True)
class Attempt:
    """One predicate run: which pass proposed it, its size, and what happened."""

    number: int
    pass_name: str
    size: int
    outcome: str
    elapsed_s: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"n": self.number, "pass": self.pass_name, "size": self.size,
               "outcome": self.outcome, "elapsed_s": round(self.elapsed_s, 4)}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class ShrinkResult(Generic[T]):
    """What the engine found and how; ``steps`` is the smallest failing case seen."""

    steps: tuple[T, ...]
    original: tuple[T, ...]
    flaky: bool
    stopped_by: str
    attempts: int
    cache_hits: int
    elapsed_s: float
    passes: list[PassStats] = field(default_factory=list)
    log: list[Attempt] = field(default_factory=list)
    pruned: int = 0

    @property
    def improved(self) -> bool:
        return self.steps != self.original

    def stats(self) -> dict[str, Any]:
        return {"original_size": len(self.original), "final_size": len(self.steps),
                "flaky": self.flaky, "stopped_by": self.stopped_by, "attempts": self.attempts,
                "cache_hits": self.cache_hits, "pruned": self.pruned,
                "elapsed_s": round(self.elapsed_s, 3),
                "passes": [p.to_json() for p in self.passes]}


def default_key(steps: Sequence[Any]) -> tuple[Any, ...]:
    """Shorter first, then fewer bytes (for bytes-like elements), then lexicographic."""
    sizes = sum(len(s) if isinstance(s, (bytes, str, tuple, list)) else 1 for s in steps)
    return (len(steps), sizes, tuple(repr(s) for s in steps))


Verdict = bool | str  # True/False, or an outcome name (ERROR) from a driver
