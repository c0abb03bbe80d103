"""Seeds against the real refapp: faults happen, a fault-only defect fails a seed the same way
in-process, through ``assay replay --seed`` and through ``assay run --tier3``."""

from __future__ import annotations

import collections
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from actors.walker import Target
from corpus import store
from corpus.generator import expand
from corpus.plan import DEFAULT_PROFILE
from corpus.runner import run_seed
from refapp.launch import start_refapp
from tests.assay_cli import assay, only_results

pytestmark = pytest.mark.integration

#: A seed whose schedule has a pause, a half-close, RSTs and a (small) aborted upload.
FAULT_SEED = 38
#: A seed whose schedule aborts 24 uploads: more than the 20-slot pool of the leak defect.
STORM_SEED = 21
LEAK = "leak-on-reset-mid-body"


def _stats(url: str) -> dict | None:
    """The refapp's counters; None when it answers 503 (a drained pool refuses everything)."""
    try:
        with urllib.request.urlopen(url + "/stats", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
        return None


def _run(seed: int, defects: list[str]):
    with start_refapp(defects=defects) as app:
        before = _stats(app.url)
        outcome = trio.run(lambda: run_seed(seed, Target.from_url(app.url + "/"),
                                            DEFAULT_PROFILE, pid=app.pid))
        return outcome, before, _stats(app.url)


def test_faults_really_happen_and_the_correct_refapp_passes() -> None:
    plan = expand(FAULT_SEED)
    planned = collections.Counter()
    for fault in plan.schedule:
        for key in ("resets", "half_closes", "aborted_bodies", "pauses"):
            planned[key] += fault.detail.get(key, 0)
    assert all(planned[k] for k in ("resets", "half_closes", "aborted_bodies", "pauses"))
    outcome, before, after = _run(FAULT_SEED, [])
    assert outcome.verdict.passed, outcome.verdict.summary()
    assert before is not None and after is not None
    seen = {k: after["faults"][k] - before["faults"][k] for k in planned}
    assert seen["pauses"] == planned["pauses"]  # SIGCONTs: exact
    for kind in ("resets", "half_closes", "aborted_bodies"):  # other segments add some too
        assert seen[kind] >= planned[kind], (kind, seen, planned)
    limits = [f.detail for f in plan.schedule if f.kind == "fd_limit"]
    if any(d["headroom"] < d["connections"] for d in limits):
        assert after["faults"]["accept_exhausted"] > before["faults"]["accept_exhausted"]
    assert not outcome.verdict.not_judged or all(
        kind == "fault.network" for _, kind, _ in outcome.verdict.not_judged)


def test_a_fault_only_defect_fails_the_seed_and_replay_fails_the_same_way() -> None:
    assert any(f.kind == "abort_body" and f.detail["storm"] for f in expand(STORM_SEED).schedule)
    outcome, _, after = _run(STORM_SEED, [LEAK])
    assert not outcome.verdict.passed
    assert after is None  # even /stats is refused: the pool leaked dry
    invariants = {t.invariant for t in outcome.verdict.trips}
    assert "I-FAULT-RECOVERY" in invariants and "I-LIVENESS" in invariants
    first = outcome.verdict.trips[0]

    replayed = assay("replay", "--seed", str(STORM_SEED), "--refapp-defect", LEAK)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert f"digest: {outcome.digest}" in replayed.stdout
    assert f"tripped: {first.invariant} ({first.severity}) in segment {first.segment:02d}" \
        in replayed.stdout
    assert f"replay: assay replay --seed {STORM_SEED}" in replayed.stdout

    correct = assay("replay", "--seed", str(STORM_SEED))
    assert correct.returncode == 0, correct.stdout + correct.stderr
    assert "verdict: PASS" in correct.stdout and f"digest: {outcome.digest}" in correct.stdout


def test_dry_run_prints_the_plan_and_sends_nothing() -> None:
    dry = assay("replay", "--seed", "5", "--dry-run", "--target", "http://127.0.0.1:9/x")
    assert dry.returncode == 0, dry.stderr
    from corpus.plan import Profile

    plan = expand(5, Profile.for_target("/x", builtin=False))
    assert f"digest: {plan.digest()}" in dry.stdout and "fault schedule:" in dry.stdout
    bad = assay("replay", "--seed", "-3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_run_tier3_reports_failing_seeds_with_their_replay_command(tmp_path: Path) -> None:
    corpus_file = tmp_path / "seeds.json"
    shutil.copy(store.DEFAULT_PATH, corpus_file)
    corpus = store.load(corpus_file)
    corpus.tiers["pr"] = 3
    corpus.add_seed(STORM_SEED, "leak defect storm", 1)
    corpus.save()
    results = tmp_path / "results"
    done = assay("run", "--tier3", "pr", "--refapp-defect", LEAK, "--concurrency", "5",
                 "--tier3-walkers", "2", "--duration", "60s", "--results", str(results),
                 env={"ASSAY_CORPUS": str(corpus_file)}, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    document = only_results(results)
    tier3 = document["tier_3"]
    assert tier3["seeds"] == 4 and tier3["attempted"] == 4 and tier3["failed"] >= 1
    assert document["elapsed_s"] < 55  # ended when the tier was done, not at the budget
    failing = {entry["seed"]: entry for entry in tier3["failing_seeds"]}
    assert STORM_SEED in failing
    command = failing[STORM_SEED]["replay"]
    assert command.startswith(f"assay replay --seed {STORM_SEED} ")  # + --commit when known
    assert command.endswith(f" --refapp-defect {LEAK}")
    assert failing[STORM_SEED]["digest"] == expand(STORM_SEED).digest()
    assert any(e["id"] == "I-TIER3" for e in document["invariants"]["failed"])
