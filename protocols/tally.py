"""Tallies: counters and latency histograms, recorded in actors and merged by the coordinator.

How this works: an actor owns one ``Tally`` for its whole incarnation. Walkers bump counters
(``<slice>.<counter>``) and record latencies in microseconds. Every flush the actor ships a
*cumulative* snapshot (counters, encoded HdrHistograms, first example per counter) tagged
(actor, incarnation, seq). The coordinator's ``TallyMerger`` keeps, per (actor, incarnation),
only the snapshot with the highest seq and sums across them: a lost message is covered by
the next one, a duplicate or a late (reordered) one is ignored, and an actor restarted as a
new incarnation adds to, never replaces, what its predecessor reported.

Over a long soak with actor restarts the number of incarnations grows, so the first
snapshot of a newer incarnation *retires* the older ones of the same actor: their final
counters, histograms and examples fold into one per-actor aggregate, and a decoded
histogram is kept only for live incarnations. A frame that still arrives from a retired
incarnation is counted in ``late_frames`` and ignored (its predecessor snapshot is already
folded; at most one tally interval of a dead process is lost, never double counted).

Latency recording is on the hot path, so ``record_latency`` only counts quantised values in a
dict (and a ``latency_recorder`` function, for once-per-request callers, only appends to a
list); the HdrHistogram is fed in bulk at snapshot time (one slot update per distinct
value) and histograms are merged as histograms, never as percentiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    # Until the next drain: quantised latency -> count per histogram (``record_latency``),
    # and raw latencies per tuple of histograms (``latency_recorder``).
    _pending: dict[str, dict[int, int]] = field(default_factory=dict)
    _samples: dict[tuple[str, ...], list[float]] = field(default_factory=dict)
    _examples_sent: set[str] = field(default_factory=set)

    def incr(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def incr_each(self, names: tuple[str, ...]) -> None:
        """``incr(name)`` for each of ``names``, in one call (twice per request on the hot
        path: requests and status class)."""
        counters = self.counters
        for name in names:
            counters[name] = counters.get(name, 0) + 1

    def record_latency(self, name: str, micros: float) -> None:
        value = int(micros)
        if value >= 2048:  # _quantise(min(value, HIGHEST_US)), inlined: twice per request
            if value > HIGHEST_US:
                value = HIGHEST_US
            shift = value.bit_length() - 11
            value = (value >> shift) << shift
        elif value < 1:
            value = 1
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = {}
        pending[value] = pending.get(value, 0) + 1

    def latency_recorder(self, names: tuple[str, ...]) -> Callable[[float], None]:
        """A function that records one latency (microseconds) into each histogram of
        ``names`` (a slice's overall and per-state histograms, say), exactly as
        ``record_latency(name, micros)`` would for each name.

        For code that records on every request: the function is a bare ``list.append``,
        and the next drain (every ``snapshot``) counts the values in bulk, in C, then
        quantises the distinct ones. Until then the values are held one by one, so the
        tally must be snapshotted regularly, as an actor does at every flush.
        """
        samples = self._samples.get(names)
        if samples is None:
            samples = self._samples[names] = []
        return samples.append

    def keep_example(self, counter: str, example: Mapping[str, Any]) -> None:
        """Remember the first exchange that moved ``counter``; later ones are only counted."""
        if counter not in self.examples:
            self.examples[counter] = bounded_example(example)

    def histograms(self) -> dict[str, HdrHistogram]:
        self._drain_pending()
        return self._histograms

    def snapshot(
        self, all_examples: bool = True
    ) -> tuple[dict[str, int], dict[str, bytes], dict[str, dict[str, Any]]]:
        """Cumulative state in wire form: counters, encoded histograms, examples.

        Examples are first-per-counter and never change once kept, so with
        ``all_examples=False`` only those added since the previous snapshot travel (the
        merger takes their union); the final snapshot sends them all again.
        """
        encoded = {name: hist.encode() for name, hist in self.histograms().items()}
        if all_examples:
            examples = dict(self.examples)
        else:
            examples = {k: v for k, v in self.examples.items() if k not in self._examples_sent}
        self._examples_sent.update(examples)
        return dict(self.counters), encoded, examples

    def _drain_pending(self) -> None:
        for names, samples in self._samples.items():
            if samples:
                values = Counter(map(int, samples))  # truncated and counted in C
                samples.clear()  # the same list: recorders handed out keep appending to it
                _record_counts([self._histogram(name) for name in names], values)
        for name, values in self._pending.items():
            _record_counts([self._histogram(name)], values)
        self._pending.clear()

    def _histogram(self, name: str) -> HdrHistogram:
        hist = self._histograms.get(name)
        if hist is None:
            hist = self._histograms[name] = new_histogram()
        return hist


def _record_counts(hists: Sequence[HdrHistogram], values: Mapping[int, int]) -> None:
    """``hist.record_value(value, count)`` for each pair and each histogram, at a fraction
    of the cost.

    Latencies spread over many distinct microsecond values, so a flush drains about one
    value per request, and hdrh's ``record_value`` (five Python calls to find the slot)
    made draining cost more than recording. This computes the same slot with the same
    formula (``_counts_index_for``: bucket from the bit length, then sub-bucket; below the
    first bucket's top, with a unit of 1, the slot is the value itself), once for all the
    histograms (ours share one layout), and updates the same fields (counts, total, min,
    max). Values are whole microseconds, quantised or not: each is clamped to
    [1, HIGHEST_US] as ``record_latency`` clamps, and its slot is its quantisation (the bits
    below the resolution do not change the slot), so a raw value lands where
    ``record_latency`` would have put it.
    """
    first = hists[0]  # every histogram here is a new_histogram(): one layout for all
    limit = first.counts_len
    unit = first.unit_magnitude
    half_magnitude = first.sub_bucket_half_count_magnitude
    half = first.sub_bucket_half_count
    mask = first.sub_bucket_mask
    direct = mask if unit == 0 else -1  # values up to this one are their own slot
    bucket_offset = unit + half_magnitude + 1
    slots: list[tuple[int, int]] = []
    low, high, total = HIGHEST_US, 1, 0
    for value, count in values.items():
        if value > HIGHEST_US:
            value = HIGHEST_US
        elif value < 1:
            value = 1
        if value <= direct:
            index = value
        else:
            bucket = (value | mask).bit_length() - bucket_offset
            index = ((bucket + 1) << half_magnitude) + (value >> (bucket + unit)) - half
            if not 0 <= index < limit:
                continue  # record_value drops it too
        slots.append((index, count))
        total += count
        if value < low:
            low = value
        if value > high:
            high = value
    if not total:
        return
    # record_value saw quantised values: so must min and max be.
    low, high = _quantise(low), _quantise(high)
    for hist in hists:
        counts = hist.counts
        for index, count in slots:
            counts[index] += count
        hist.total_count += total
        hist.min_value = min(hist.min_value, low)
        hist.max_value = max(hist.max_value, high)


class UnrecordedTally(Tally):
    """Benchmark only: counters and latencies are dropped, so that a run with and one
    without recording show what recording costs (``ASSAY_BENCH_NO_RECORDING=1``).
    Examples are still kept: they are evidence, not recording, and cost nothing per request.
    """

    def incr(self, name: str, amount: int = 1) -> None:
        return None

    def incr_each(self, names: tuple[str, ...]) -> None:
        return None

    def record_latency(self, name: str, micros: float) -> None:
        return None

    def latency_recorder(self, names: tuple[str, ...]) -> Callable[[float], None]:
        return _ignore


def _ignore(micros: float) -> None:
    return None


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


@dataclass
class _Retired:
    """One actor's dead incarnations folded together: bounded however often it restarts."""

    seqs: dict[int, int] = field(default_factory=dict)  # incarnation -> final seq
    counters: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fold(self, incarnation: int, snap: _Snapshot, decoded: dict[str, HdrHistogram]) -> None:
        self.seqs[incarnation] = snap.seq
        for name, value in snap.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for name, hist in decoded.items():
            target = self.histograms.get(name)
            if target is None:
                target = self.histograms[name] = new_histogram()
            target.add(hist)
        for counter, example in snap.examples.items():
            self.examples.setdefault(counter, example)


class TallyMerger:
    """Coordinator-side merge of cumulative snapshots, robust to loss/duplication/reorder."""

    def __init__(self) -> None:
        self._latest: dict[tuple[int, int], _Snapshot] = {}
        self._decoded: dict[tuple[tuple[int, int], int], dict[str, HdrHistogram]] = {}
        self._retired: dict[int, _Retired] = {}
        #: Frames from an incarnation that was already retired (ignored, see module doc).
        self.late_frames = 0

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
        retired = self._retired.get(actor_id)
        if retired is not None and incarnation in retired.seqs:
            self.late_frames += 1
            return False
        held = self._latest.get(key)
        if held is not None and seq <= held.seq:
            # Stale counters are ignored, but examples only ever accumulate: actors send
            # each example once (see Tally.snapshot), so a late frame may carry new ones.
            for counter, example in (examples or {}).items():
                held.examples.setdefault(counter, example)
            return False
        kept = dict(held.examples) if held is not None else {}
        for counter, example in (examples or {}).items():
            kept.setdefault(counter, example)
        self._latest[key] = _Snapshot(seq, dict(counters), dict(histograms), kept)
        for older in [k for k in self._latest if k[0] == actor_id and k[1] < incarnation]:
            self._retire(older)
        return True

    def _retire(self, key: tuple[int, int]) -> None:
        """Fold a superseded incarnation into its actor's aggregate and free its decoding."""
        snap = self._latest.pop(key)
        decoded = self._decode(key, snap)
        self._decoded.pop((key, snap.seq), None)
        self._retired.setdefault(key[0], _Retired()).fold(key[1], snap, decoded)

    def sources(self) -> Iterable[tuple[int, int]]:
        return self._latest.keys()

    def seq_of(self, actor_id: int, incarnation: int) -> int | None:
        held = self._latest.get((actor_id, incarnation))
        if held is None:
            retired = self._retired.get(actor_id)
            return None if retired is None else retired.seqs.get(incarnation)
        return held.seq

    def incarnations_of(self, actor_id: int) -> list[int]:
        """Every incarnation of ``actor_id`` that reported, live or retired, ascending."""
        retired = self._retired.get(actor_id)
        found = set(retired.seqs) if retired is not None else set()
        found |= {inc for aid, inc in self._latest if aid == actor_id}
        return sorted(found)

    def counters(self) -> dict[str, int]:
        return sum_counters([*(r.counters for r in self._retired.values()),
                             *(snap.counters for snap in self._latest.values())])

    def counters_of_actor(self, actor_id: int) -> dict[str, int]:
        retired = self._retired.get(actor_id)
        return sum_counters([
            *([retired.counters] if retired is not None else []),
            *(snap.counters for (aid, _), snap in self._latest.items() if aid == actor_id),
        ])

    def examples(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for actor_id in sorted(self._retired):
            for counter, example in self._retired[actor_id].examples.items():
                merged.setdefault(counter, example)
        for key in sorted(self._latest):
            for counter, example in self._latest[key].examples.items():
                merged.setdefault(counter, example)
        return merged

    def histograms(self) -> dict[str, HdrHistogram]:
        merged: dict[str, HdrHistogram] = {}
        for retired in self._retired.values():
            for name, hist in retired.histograms.items():
                target = merged.get(name)
                if target is None:
                    target = merged[name] = new_histogram()
                target.add(hist)
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
        """Plain-data form, for checkpoints that a resumed coordinator reloads.

        Live incarnations under ``"ACTOR:INCARNATION"``; retired aggregates, when any, under
        ``"retired"`` keyed by actor.
        """
        state: dict[str, Any] = {
            f"{aid}:{inc}": {
                "seq": snap.seq,
                "counters": snap.counters,
                "histograms": {k: v.decode("ascii") for k, v in snap.histograms.items()},
                "examples": snap.examples,
            }
            for (aid, inc), snap in self._latest.items()
        }
        if self._retired:
            state["retired"] = {
                str(aid): {
                    "seqs": {str(inc): seq for inc, seq in r.seqs.items()},
                    "counters": r.counters,
                    "histograms": {k: h.encode().decode("ascii")
                                   for k, h in r.histograms.items()},
                    "examples": r.examples,
                }
                for aid, r in self._retired.items()
            }
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TallyMerger:
        merger = cls()
        for aid_text, folded in state.get("retired", {}).items():
            merger._retired[int(aid_text)] = _Retired(
                seqs={int(inc): int(seq) for inc, seq in folded["seqs"].items()},
                counters=dict(folded["counters"]),
                histograms={k: HdrHistogram.decode(v.encode("ascii"))
                            for k, v in folded["histograms"].items()},
                examples=dict(folded.get("examples", {})),
            )
        for key, snap in state.items():
            if key == "retired":
                continue
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


DEFAULT_PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "p99_9_ms": 99.9}


def latency_summary(hist: HdrHistogram,
                    wanted: Mapping[str, float] = DEFAULT_PERCENTILES) -> dict[str, float]:
    """Percentiles in milliseconds (``wanted``: key -> percentile), computed from a merged
    histogram, with ``max_ms``, ``min_ms`` and ``mean_ms``.

    One pass over the non-zero counts instead of hdrh's per-query walk over all ~21 000
    slots in Python (six queries per histogram took seconds per results write and stalled
    the coordinator's loop, long enough for actors to think it dead). Same values as
    ``get_value_at_percentile`` / ``get_mean_value``.
    """
    count = hist.get_total_count()
    if count == 0:
        return {"count": 0}
    slots = min(hist.counts_len, hist.encoder.payload.counts_len)
    recorded = [(i, c) for i, c in enumerate(hist.counts[:slots]) if c]
    found: dict[str, float] = {}
    targets = sorted((hist.get_target_count_at_percentile(pct), key) for key, pct in
                     wanted.items())
    running = 0
    weighted = 0
    for index, slot_count in recorded:
        value = hist.get_value_from_index(index)
        running += slot_count
        weighted += slot_count * hist._hdr_median_equiv_value(value)
        while targets and running >= targets[0][0]:
            found[targets.pop(0)[1]] = hist.get_highest_equivalent_value(value) / 1000
    for _, key in targets:  # counts and total disagree (never with our histograms)
        found[key] = 0.0
    return {
        "count": count,
        **{key: found[key] for key in wanted},
        "max_ms": hist.get_max_value() / 1000,
        "min_ms": hist.get_min_value() / 1000,
        "mean_ms": round(weighted / count / 1000, 3),
    }
