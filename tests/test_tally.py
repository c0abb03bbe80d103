import random

from protocols.tally import Tally, TallyMerger, latency_summary


def _snapshots(seed: int, steps: int):
    """Cumulative snapshots of one actor's tally after each step, plus the truth."""
    rng = random.Random(seed)
    tally = Tally()
    snaps = []
    for _ in range(steps):
        for _ in range(rng.randrange(1, 20)):
            tally.incr("markov.requests")
            tally.record_latency("markov.latency", rng.randrange(50, 50_000))
        snaps.append(tally.snapshot())
    return tally, snaps


def _feed(merger, actor, incarnation, ordered):
    for seq, (counters, hists, examples) in ordered:
        merger.accept(actor, incarnation, seq, counters, hists, examples)


def test_merge_survives_loss_duplication_and_reordering():
    tally, snaps = _snapshots(1, 30)
    numbered = list(enumerate(snaps, start=1))
    rng = random.Random(2)
    delivered = [m for m in numbered[:-1] if rng.random() > 0.3]  # lose ~30 %
    delivered += rng.sample(delivered, k=len(delivered) // 2)  # duplicate some
    delivered.append(numbered[-1])  # the final snapshot arrives
    rng.shuffle(delivered)  # and everything is reordered
    merger = TallyMerger()
    _feed(merger, 0, 0, delivered)
    assert merger.counters() == tally.counters
    merged = merger.histograms()["markov.latency"]
    assert merged.get_total_count() == tally.counters["markov.requests"]


def test_stale_snapshot_never_replaces_newer():
    merger = TallyMerger()
    assert merger.accept(0, 0, 5, {"a": 10}, {})
    assert not merger.accept(0, 0, 3, {"a": 4}, {})
    assert not merger.accept(0, 0, 5, {"a": 99}, {})
    assert merger.counters() == {"a": 10}


def test_incarnations_add_up_and_actors_sum():
    merger = TallyMerger()
    merger.accept(0, 0, 9, {"a": 10}, {})
    merger.accept(0, 1, 1, {"a": 3, "b": 1}, {})
    merger.accept(1, 0, 2, {"a": 5}, {})
    assert merger.counters() == {"a": 18, "b": 1}
    assert merger.counters_of_actor(0) == {"a": 13, "b": 1}


def test_histograms_merge_as_histograms_not_percentiles():
    fast, slow = Tally(), Tally()
    for _ in range(990):
        fast.record_latency("x", 1000)
    for _ in range(10):
        slow.record_latency("x", 900_000)
    merger = TallyMerger()
    for actor, tally in enumerate((fast, slow)):
        counters, hists, _ = tally.snapshot()
        merger.accept(actor, 0, 1, counters, hists)
    summary = latency_summary(merger.histograms()["x"])
    assert summary["count"] == 1000
    assert summary["p50_ms"] == 1.0
    assert summary["p99_9_ms"] > 800  # the slow tail survives the merge


def test_state_round_trip_for_checkpoints():
    tally, snaps = _snapshots(3, 5)
    merger = TallyMerger()
    _feed(merger, 2, 1, list(enumerate(snaps, start=1)))
    clone = TallyMerger.from_state(merger.to_state())
    assert clone.counters() == merger.counters()
    assert clone.seq_of(2, 1) == 5
    assert clone.histograms()["markov.latency"].get_total_count() == tally.counters[
        "markov.requests"]


def test_examples_keep_the_first_and_are_bounded():
    tally = Tally()
    tally.keep_example("adv.desync", {"received": b"x" * 100_000})
    tally.keep_example("adv.desync", {"received": b"second"})
    example = tally.examples["adv.desync"]
    assert len(example["received"]) == 4096 and example["received_truncated"]


def test_latency_quantisation_stays_within_hdr_precision():
    tally = Tally()
    for value in (1, 999, 2047, 2049, 123_456, 9_999_999):
        tally.record_latency("h", value)
    hist = tally.histograms()["h"]
    assert hist.get_total_count() == 6
    assert abs(hist.get_max_value() - 9_999_999) / 9_999_999 < 0.001


def test_examples_travel_once_and_accumulate_even_out_of_order():
    tally = Tally()
    tally.keep_example("adv.desync", {"n": 1})
    _, _, first = tally.snapshot(all_examples=False)
    tally.keep_example("ws.hang_no_close", {"n": 2})
    _, _, second = tally.snapshot(all_examples=False)
    assert list(first) == ["adv.desync"] and list(second) == ["ws.hang_no_close"]
    merger = TallyMerger()
    merger.accept(0, 0, 2, {}, {}, second)
    merger.accept(0, 0, 1, {}, {}, first)  # late, stale: counters ignored, example kept
    assert set(merger.examples()) == {"adv.desync", "ws.hang_no_close"}
    _, _, final = tally.snapshot(all_examples=True)
    assert set(final) == {"adv.desync", "ws.hang_no_close"}
