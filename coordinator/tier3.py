"""Tier 3 in ``assay run --tier3 T``: plan the seed walkers, stop when done, report verdicts.

How this works: ``plan`` loads the corpus (a bad file is exit 2 before anything starts),
adds ``tier3`` walkers to the Tier 1 walker plan (dealt round-robin over the actors, after
the Tier 1 walkers) and returns the settings every actor needs to run its share (see
``actors.tier3``). During the run ``stop_when_done`` asks ``done`` of merged counters: once
every seed has a verdict the run may end before its duration. ``results_block`` turns
counters and examples into ``validate-results.json``'s ``tier_3``: attempted, passed,
failed, errored, unfinished, what tripped how often, and each failing seed with its replay
command. ``add_verdict`` makes failing seeds fail the run (I-TIER3, HIGH).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import trio

from coordinator.planning import WalkerPlan
from corpus import store
from corpus.plan import Profile

#: Duration when ``--tier3`` is given without ``--duration``: long enough for the tier.
TIER_BUDGET_S = {"pr": 600.0, "nightly": 3600.0, "weekend": 48 * 3600.0}
WALKERS_PER_ACTOR = 8
PREFIX = "tier3."


def plan(tier: str, walkers: int | None, walker_plan: WalkerPlan, *, url: str, builtin: bool,
         target_pid: int | None, health_path: str | None, ws_path: str | None,
         sse_path: str | None, defects: tuple[str, ...] = ()) -> tuple[WalkerPlan,
                                                                       dict[str, Any]]:
    """Add tier3 walkers to ``walker_plan``; CorpusError if the corpus cannot be used."""
    corpus = store.load()
    seeds = corpus.tier_seeds(tier)
    # Seeds run on this host's actors only: target faults (SIGSTOP, prlimit) need the pid.
    actors = sorted(walker_plan.local)
    count = walkers if walkers and walkers > 0 else WALKERS_PER_ACTOR * len(actors)
    count = max(1, min(count, len(seeds)))
    per_actor = {a: list(ws) for a, ws in walker_plan.per_actor.items()}
    first = 1 + max((w for ws in per_actor.values() for w, _ in ws), default=-1)
    ids = list(range(first, first + count))
    for n, walker_id in enumerate(ids):
        per_actor[actors[n % len(actors)]].append((walker_id, "tier3"))
    per_slice = {**walker_plan.per_slice, "tier3": count}
    profile = Profile.for_target(urlsplit(url).path, builtin=builtin, health_path=health_path,
                                 ws_path=ws_path, sse_path=sse_path)
    commit = None
    if builtin:
        from corpus.replay_seed import repo_commit

        commit = repo_commit()
    settings = {
        "tier": tier, "count": len(seeds), "corpus": str(corpus.path),
        "corpus_sha256": corpus.to_json()["sha256"], "walkers": ids,
        "profile": profile.to_json(), "pid": target_pid, "commit": commit,
        "replay_target": None if builtin else url, "defects": list(defects),
    }
    notes = [*walker_plan.notes, f"tier 3: {len(seeds)} seeds of tier {tier} in {count} "
             f"walker(s)"]
    return WalkerPlan(per_slice, per_actor, notes, walker_plan.remote), settings


def done(counters: dict[str, int], settings: dict[str, Any] | None) -> bool:
    """Every seed of the tier has a verdict (passed, failed or errored)."""
    if not settings:
        return False
    return counters.get("tier3.attempted", 0) >= int(settings["count"])


async def stop_when_done(coord: Any, running: trio.CancelScope, tick_s: float) -> None:
    """--tier3: end the run early once every seed of the tier has a verdict."""
    while not done(coord.counters(), coord.inputs.settings.get("tier3")):
        await trio.sleep(tick_s)
    coord.log.info("tier 3 complete: stopping the run", after_s=round(
        time.time() - (coord.run_started or time.time()), 1))
    running.cancel()


def results_block(counters: dict[str, int], examples: dict[str, dict[str, Any]],
                  settings: dict[str, Any] | None) -> dict[str, Any]:
    if not settings:
        return {"judged": False, "reason": "no --tier3 tier requested"}
    failing = [examples[k] for k in sorted(examples) if k.startswith("tier3.failed.")]
    errored = [examples[k] for k in sorted(examples) if k.startswith("tier3.errored.")]
    attempted = counters.get("tier3.attempted", 0)
    return {
        "judged": attempted > 0,
        "tier": settings["tier"],
        "seeds": settings["count"],
        "generator": _generator(),
        "profile": settings["profile"],
        "attempted": attempted,
        "passed": counters.get("tier3.passed", 0),
        "failed": counters.get("tier3.failed", 0),
        "errored": counters.get("tier3.errored", 0),
        "unfinished": counters.get("tier3.unfinished", 0),
        "not_reached": max(0, int(settings["count"]) - attempted
                           - counters.get("tier3.unfinished", 0)),
        "not_judged_segments": counters.get("tier3.not_judged_segments", 0),
        "trips": {k[len("tier3.trip."):]: v for k, v in sorted(counters.items())
                  if k.startswith("tier3.trip.")},
        "failing_seeds": failing,
        "errored_seeds": errored,
        "unlisted": counters.get("tier3.unlisted", 0),
    }


def add_verdict(verdicts: dict[str, list[dict[str, Any]]], block: dict[str, Any]) -> None:
    """I-TIER3: every attempted seed passes (HIGH); not judged when no seed ran."""
    if "attempted" not in block:
        return
    entry: dict[str, Any] = {"id": "I-TIER3", "severity": "HIGH",
                             "meaning": "a Tier 3 seed tripped an invariant or left the "
                                        "target dead", "counter": "tier3.failed"}
    if not block["attempted"]:
        verdicts["not_judged"].append({**entry, "reason": "no seed finished in the budget"})
    elif block["failed"]:
        verdicts["failed"].append({**entry, "value": block["failed"]})
    else:
        verdicts["passed"].append({**entry, "value": 0})


def tier1_examples(examples: dict[str, Any]) -> dict[str, Any]:
    """Examples without the per-seed entries (those belong to ``tier_3``)."""
    return {k: v for k, v in examples.items() if not k.startswith(PREFIX)}


def _generator() -> int:
    from corpus.generator import GENERATOR_VERSION

    return GENERATOR_VERSION
