"""Tallies: counters and latency histograms, recorded in actors and merged by the coordinator.

How this works: an actor owns one ``Tally`` for its whole incarnation. Walkers bump counters
(``<slice>.<counter>``) and record latencies in microseconds. Every flush the actor ships a
*cumulative* snapshot (counters, encoded HdrHistograms, first example per counter) tagged
(actor, incarnation, seq). The coordinator's ``TallyMerger`` keeps, per (actor, incarnation),
only the snapshot with the highest seq and sums across them: a lost message is covered by
the next one, a duplicate or a late (reordered) one is ignored, and an actor restarted as a
new incarnation adds to, never replaces, what its predecessor reported.

Latency recording is on the hot path, so ``record_latency`` only counts quantised values in a
dict; the HdrHistogram is fed in bulk at snapshot time (one ``record_value(v, n)`` per
distinct value) and histograms are merged as histograms, never as percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

# 1 µs .. 10 min at 3 significant figures: covers loopback requests and hung sockets alike.
LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_FIGURES = 3
EXAMPLE_MAX_BYTES = 4096


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def _quantise(value_us: int) -> int:
    """Drop bits below HdrHistogram's 3-significant-figure resolution (2048 sub-buckets)."""
    if value_us < 2048:
        return value_us if value_us > 0 else 1
    shift = value_us.bit_length() - 11
    return (value_us >> shift) << shift


@dataclass
class Tally:
    """One actor incarnation's cumulative counters, latencies and first examples."""

    counters: dict[str, int] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    _histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    _pending: dict[str, dict[int, int]] = field(default_factory=dict)

    def incr(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def record_latency(self, name: str, micros: float) -> None:
        value = _quantise(min(int(micros), HIGHEST_US))
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = {}
        pending[value] = pending.get(value, 0) + 1

    def keep_example(self, counter: str, example: Mapping[str, Any]) -> None:
        """Remember the first exchange that moved ``counter``; later ones are only counted."""
        if counter not in self.examples:
            self.examples[counter] = bounded_example(example)

    def histograms(self) -> dict[str, HdrHistogram]:
        self._drain_pending()
        return self._histograms

    def snapshot(self) -> tuple[dict[str, int], dict[str, bytes], dict[str, dict[str, Any]]]:
        """Cumulative state in wire form: counters, encoded histograms, examples."""
        encoded = {name: hist.encode() for name, hist in self.histograms().items()}
        return dict(self.counters), encoded, dict(self.examples)

    def _drain_pending(self) -> None:
        for name, values in self._pending.items():
            hist = self._histograms.get(name)
            if hist is None:
                hist = self._histograms[name] = new_histogram()
            for value, count in values.items():
                hist.record_value(value, count)
        self._pending.clear()


def bounded_example(example: Mapping[str, Any]) -> dict[str, Any]:
    """Cap bytes/str fields so a hostile response cannot bloat tallies."""
    capped: dict[str, Any] = {}
    for key, value in example.items():
        if isinstance(value, (bytes, str)) and len(value) > EXAMPLE_MAX_BYTES:
            value = value[:EXAMPLE_MAX_BYTES]
            capped[f"{key}_truncated"] = True
        capped[key] = value
    return capped


@dataclass
class _Snapshot:
    seq: int
    counters: dict[str, int]
    histograms: dict[str, bytes]
    examples: dict[str, dict[str, Any]]


class TallyMerger:
    """Coordinator-side merge of cumulative snapshots, robust to loss/duplication/reorder."""

    def __init__(self) -> None:
        self._latest: dict[tuple[int, int], _Snapshot] = {}
        self._decoded: dict[tuple[tuple[int, int], int], dict[str, HdrHistogram]] = {}

    def accept(
        self,
        actor_id: int,
        incarnation: int,
        seq: int,
        counters: dict[str, int],
        histograms: dict[str, bytes],
        examples: dict[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Keep the snapshot if it is newer than what we hold; return whether it was."""
        key = (actor_id, incarnation)
        held = self._latest.get(key)
        if held is not None and seq <= held.seq:
            return False
        self._latest[key] = _Snapshot(seq, dict(counters), dict(histograms), dict(examples or {}))
        return True

    def sources(self) -> Iterable[tuple[int, int]]:
        return self._latest.keys()

    def seq_of(self, actor_id: int, incarnation: int) -> int | None:
        held = self._latest.get((actor_id, incarnation))
        return None if held is None else held.seq

    def counters(self) -> dict[str, int]:
        return sum_counters(snap.counters for snap in self._latest.values())

    def counters_of_actor(self, actor_id: int) -> dict[str, int]:
        return sum_counters(
            snap.counters for (aid, _), snap in self._latest.items() if aid == actor_id
        )

    def examples(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for key in sorted(self._latest):
            for counter, example in self._latest[key].examples.items():
                merged.setdefault(counter, example)
        return merged

    def histograms(self) -> dict[str, HdrHistogram]:
        merged: dict[str, HdrHistogram] = {}
        for key, snap in self._latest.items():
            for name, hist in self._decode(key, snap).items():
                target = merged.get(name)
                if target is None:
                    target = merged[name] = new_histogram()
                target.add(hist)
        return merged

    def _decode(self, key: tuple[int, int], snap: _Snapshot) -> dict[str, HdrHistogram]:
        cache_key = (key, snap.seq)
        decoded = self._decoded.get(cache_key)
        if decoded is None:
            # Drop stale decodings of this source so the cache stays bounded.
            for stale in [k for k in self._decoded if k[0] == key]:
                del self._decoded[stale]
            decoded = {name: HdrHistogram.decode(blob) for name, blob in snap.histograms.items()}
            self._decoded[cache_key] = decoded
        return decoded

    def to_state(self) -> dict[str, Any]:
        """Plain-data form, for checkpoints that a resumed coordinator reloads."""
        return {
            f"{aid}:{inc}": {
                "seq": snap.seq,
                "counters": snap.counters,
                "histograms": {k: v.decode("ascii") for k, v in snap.histograms.items()},
                "examples": snap.examples,
            }
            for (aid, inc), snap in self._latest.items()
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TallyMerger:
        merger = cls()
        for key, snap in state.items():
            aid, inc = (int(part) for part in key.split(":"))
            merger.accept(
                aid,
                inc,
                int(snap["seq"]),
                dict(snap["counters"]),
                {k: v.encode("ascii") for k, v in snap["histograms"].items()},
                dict(snap.get("examples", {})),
            )
        return merger


def sum_counters(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


def latency_summary(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles in milliseconds, computed from a merged histogram."""
    count = hist.get_total_count()
    if count == 0:
        return {"count": 0}
    return {
        "count": count,
        "p50_ms": hist.get_value_at_percentile(50) / 1000,
        "p90_ms": hist.get_value_at_percentile(90) / 1000,
        "p99_ms": hist.get_value_at_percentile(99) / 1000,
        "p99_9_ms": hist.get_value_at_percentile(99.9) / 1000,
        "max_ms": hist.get_max_value() / 1000,
        "mean_ms": round(hist.get_mean_value() / 1000, 3),
    }
