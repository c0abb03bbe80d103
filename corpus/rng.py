"""The generator's own PRNG: SplitMix64, keyed by sha256, identical on every host and Python.

Why not ``random.Random``: its seeding from a string is stable, but the algorithms behind
``randrange``, ``choice``, ``shuffle`` and ``sample`` have changed between Python releases, and
a seed must expand to the same bytes on the CI runner and on a laptop two releases later.
SplitMix64 is a few lines of integer arithmetic with good statistical quality for this use;
every derived draw below is written out here (rejection sampling for bounded integers, so
there is no modulo bias), so nothing outside this file can move a digest.

``fork(label)`` gives an independent stream keyed by the parent key and a label, so one part
of a plan (the fault schedule, one segment) does not shift when another part draws more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
_MASK = (1 << 64) - 1


class SeedRng:
    """Deterministic stream of draws derived only from ``key`` (bytes or text)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._state = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")

    def fork(self, label: str) -> SeedRng:
        return SeedRng(f"{self.key}/{label}")

    def u64(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform integer in [0, n), by rejection (no modulo bias)."""
        if n <= 0:
            raise ValueError("below() needs n > 0")
        bits = max(1, (n - 1).bit_length())
        while True:
            value = self.u64() >> (64 - bits)
            if value < n:
                return value

    def between(self, low: int, high: int) -> int:
        """Uniform integer in [low, high] (both included)."""
        return low + self.below(high - low + 1)

    def chance(self, per_mille: int) -> bool:
        """True with probability ``per_mille`` / 1000 (integers keep it exact)."""
        return self.below(1000) < per_mille

    def millis(self, low_ms: int, high_ms: int) -> float:
        """A duration in seconds with millisecond resolution, in [low_ms, high_ms] ms."""
        return self.between(low_ms, high_ms) / 1000.0

    def choice(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def weighted(self, pairs: Sequence[tuple[T, int]]) -> T:
        """One item, with probability proportional to its integer weight."""
        total = sum(weight for _, weight in pairs)
        pick = self.below(total)
        for item, weight in pairs:
            if pick < weight:
                return item
            pick -= weight
        raise AssertionError("unreachable")

    def shuffled(self, items: Sequence[T]) -> list[T]:
        """A Fisher-Yates shuffle of a copy of ``items``."""
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out

    def token(self, nbytes: int) -> bytes:
        out = bytearray()
        while len(out) < nbytes:
            out += self.u64().to_bytes(8, "big")
        return bytes(out[:nbytes])
