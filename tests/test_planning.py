import pytest

from actors.slices import SLICES, for_scheme
from coordinator.planning import assign_to_actors, plan_walkers, split_walkers

#: What an http:// target plans from (the tls slice is https-only, h2c http-only).
WEIGHTS = {name: SLICES[name][1] for name in for_scheme(list(SLICES), "http")}


def test_weights_respected_at_scale():
    counts, notes = split_walkers(100, WEIGHTS)
    assert counts == {"markov": 55, "adv": 18, "h2c": 9, "ws": 5, "sse": 5, "h2flood": 4,
                      "h2": 4}
    assert notes == []


@pytest.mark.parametrize("concurrency", [7, 8, 10, 11, 33])
def test_small_runs_still_exercise_every_slice(concurrency):
    counts, _ = split_walkers(concurrency, WEIGHTS)
    assert sum(counts.values()) == concurrency
    assert all(count >= 1 for count in counts.values())


def test_concurrency_below_slice_count_is_raised_and_said():
    counts, notes = split_walkers(2, WEIGHTS)
    assert sum(counts.values()) == 7
    assert "raised from 2 to 7" in notes[0]


def test_actors_get_a_mix_and_every_walker_once():
    per_actor = assign_to_actors({"markov": 6, "adv": 2, "ws": 1}, 3)
    walkers = [w for ws in per_actor.values() for w in ws]
    assert sorted(w for w, _ in walkers) == list(range(9))
    assert {name for _, name in walkers} == {"markov", "adv", "ws"}
    assert all(len(ws) == 3 for ws in per_actor.values())


def test_more_procs_than_walkers_is_reduced():
    plan = plan_walkers(1, 8, ["markov"], {"markov": 60})
    assert list(plan.per_actor) == [0]
    assert any("procs reduced" in note for note in plan.notes)
