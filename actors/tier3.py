"""The tier3 slice: run the corpus tier's seeds one after another and tally their verdicts.

How this works: the coordinator puts the tier, the corpus file and its checksum, the
target's profile and pid, and the ids of all tier3 walkers in ``settings["tier3"]``.
``prepare`` loads and verifies the corpus once per actor (a corpus that differs from the
coordinator's is a bad plan, not a silent divergence). Seed ``i`` of the tier belongs to the
walker at position ``i mod K`` among the K tier3 walkers, so every seed runs exactly once
whatever the number of actors. A walker runs its seeds with ``corpus.runner.run_seed`` (the
one executor and the seed oracle) until its share is done or the deadline cancels it.

What reaches the coordinator is cumulative tally state, so it survives lost messages:
``tier3.attempted|passed|failed|errored`` counters, ``tier3.trip.<invariant>`` per trip, a
``tier3.latency`` histogram, and one example per failing or errored seed
(``tier3.failed.<seed>`` with the trips, digest and replay command), capped per actor so a
broken target cannot flood the tallies. A seed cut off by the deadline counts as
``tier3.unfinished`` and has no verdict.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import trio

from actors.walker import WalkerContext
from corpus import store
from corpus.plan import Profile
from corpus.runner import SEED_TIME_LIMIT_S, replay_command, run_seed

SLICE = "tier3"
#: Failing/errored seeds listed in detail per actor (all are counted).
MAX_LISTED = 100
_TRIP_LINE_MAX = 400


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Load the corpus once per actor and check it is the coordinator's."""
    config = settings["tier3"]
    corpus = store.load(Path(config["corpus"]))
    if corpus.to_json()["sha256"] != config["corpus_sha256"]:
        raise ValueError("this actor's corpus file differs from the coordinator's")
    seeds = corpus.tier_seeds(config["tier"])
    return {**settings, "_tier3_seeds": seeds,
            "_tier3_profile": Profile.from_json(config["profile"])}


async def run(ctx: WalkerContext) -> None:
    config = ctx.settings["tier3"]
    seeds: list[int] = ctx.settings["_tier3_seeds"]
    profile: Profile = ctx.settings["_tier3_profile"]
    walkers: list[int] = list(config["walkers"])
    share = seeds[walkers.index(ctx.walker_id)::len(walkers)]
    for seed in share:
        if ctx.expired():
            break
        await _one(ctx, seed, profile, config)
    ctx.tally.incr("tier3.walkers_done")


async def _one(ctx: WalkerContext, seed: int, profile: Profile, config: dict[str, Any]) -> None:
    tally = ctx.tally
    started = trio.current_time()
    outcome = None
    error = ""
    with trio.move_on_at(ctx.deadline) as scope:
        try:
            outcome = await run_seed(seed, ctx.target, profile, pid=config.get("pid"),
                                     commit=config.get("commit"),
                                     builtin=config.get("replay_target") is None,
                                     time_limit_s=SEED_TIME_LIMIT_S)
        except Exception:  # a harness bug on this seed: count it, keep the run going
            error = traceback.format_exc(limit=8)
    if scope.cancelled_caught:
        tally.incr("tier3.unfinished")
        return
    tally.incr("tier3.attempted")
    tally.record_latency("tier3.latency", (trio.current_time() - started) * 1e6)
    command = replay_command(seed, config.get("replay_target"), config.get("commit"))
    command += "".join(f" --refapp-defect {d}" for d in config.get("defects", ()))
    if outcome is not None and len(outcome.transcript.results) < len(
            outcome.plan.program.steps):
        error = f"the seed ran past its {SEED_TIME_LIMIT_S:g} s time limit"
    if error or outcome is None:
        tally.incr("tier3.errored")
        _listed(ctx, f"tier3.errored.{seed}", {"seed": seed, "error": error[-2000:],
                                                "replay": command})
        return
    verdict = outcome.verdict
    tally.incr("tier3.not_judged_segments", len(verdict.not_judged))
    if verdict.passed:
        tally.incr("tier3.passed")
        return
    tally.incr("tier3.failed")
    for trip in verdict.trips:
        tally.incr(f"tier3.trip.{trip.invariant}")
    _listed(ctx, f"tier3.failed.{seed}", {
        "seed": seed, "digest": outcome.digest, "generator": outcome.plan.version,
        "identity": outcome.identity(), "replay": command,
        "tripped": [t.line()[:_TRIP_LINE_MAX] for t in verdict.trips[:5]],
        "trips": len(verdict.trips), "elapsed_s": round(outcome.transcript.elapsed_s, 3),
    })


def _listed(ctx: WalkerContext, key: str, example: dict[str, Any]) -> None:
    if ctx.tally.counters.get("tier3.listed", 0) >= MAX_LISTED:
        ctx.tally.incr("tier3.unlisted")
        return
    ctx.tally.incr("tier3.listed")
    ctx.tally.keep_example(key, example)
