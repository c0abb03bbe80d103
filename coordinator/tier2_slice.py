"""Tier 2 in ``assay run --spec F``: plan the tier2 walkers, report the ``tier_2`` block.

How this works: ``plan`` runs after the Tier 1 walker plan. Only a run given ``--spec``
gets tier2 walkers (the built-in refapp's default spec feeds the Markov walkers, not
this), and only when the spec's inferred graph has at least one producer/consumer chain;
otherwise the slice is "not judged" with the reason. Its walkers are taken from the Markov
share (``SHARE_PERCENT`` of all walkers, at least one), so a run without ``--spec`` plans
exactly as before and the other slices keep their shares; when Markov has no walker to
spare, tier2 walkers are added instead. ``results_block`` turns the merged ``tier2.*``
counters and per-bucket examples into ``validate-results.json``'s ``tier_2``. The verdicts
are the I-API-* invariants of ``coordinator.invariants`` (read from ``tier2.finding.*``).
"""

from __future__ import annotations

from typing import Any

from coordinator.planning import WalkerPlan
from protocols.errors import SourceError
from protocols.openapi_operations import load_operations
from protocols.tier2_checkers import INVARIANTS
from protocols.tier2_graph import infer
from protocols.tier2_overrides import Overrides, apply

#: Percent of all walkers that run Tier 2 sequences, taken from the Markov share.
SHARE_PERCENT = 10
PREFIX = "tier2."
NO_SPEC = "not judged: no --spec given (Tier 2 sequences come from an OpenAPI spec)"
#: A bucket the post-run step has not replayed alone (yet): mid-run, or it never ran (an
#: interrupted run, a target down, a harness error). ``confirmed_counters`` judges it so.
NOT_REPLAYED = {"confirmed": False, "confirm": "not replayed alone after the run (yet)",
                "shrink": {"status": "not shrunk (yet)"}}


def plan(walker_plan: WalkerPlan, spec_text: str | None, spec_source: str | None,
         *, max_length: int = 4) -> tuple[WalkerPlan, dict[str, Any] | None, str | None]:
    """(plan, settings for the walkers, None) or (unchanged plan, None, why not judged)."""
    if spec_text is None or spec_source is None:
        return walker_plan, None, NO_SPEC
    try:
        api = load_operations(spec_text, spec_source)
    except (SourceError, ValueError) as exc:
        return walker_plan, None, f"not judged: the spec gives Tier 2 nothing to run: {exc}"
    graph = apply(infer(api), Overrides())
    if not any(graph.consumers.values()):
        return walker_plan, None, ("not judged: the spec yields no producer/consumer chain "
                                   "(no operation consumes an identifier another produces)")
    new_plan, ids = _take_walkers(walker_plan)
    settings = {"spec_text": spec_text, "spec_source": spec_source, "walkers": ids,
                "operations": graph.fuzzable(api.by_id()),
                "max_length": max_length, "chains": sum(map(len, graph.consumers.values()))}
    return new_plan, settings, None


def _take_walkers(walker_plan: WalkerPlan) -> tuple[WalkerPlan, list[int]]:
    total = walker_plan.total
    wanted = max(1, round(total * SHARE_PERCENT / 100))
    markov = [(a, w) for a, ws in walker_plan.per_actor.items() for w, s in ws
              if s == "markov"]
    per_actor = {a: list(ws) for a, ws in walker_plan.per_actor.items()}
    per_slice = dict(walker_plan.per_slice)
    if len(markov) > wanted:  # the highest-numbered markov walkers change slice
        chosen = sorted(markov, key=lambda aw: aw[1])[-wanted:]
        for actor, walker in chosen:
            per_actor[actor] = [(w, "tier2" if w == walker else s) for w, s in per_actor[actor]]
        per_slice["markov"] -= wanted
        ids = sorted(w for _, w in chosen)
        note = f"tier 2: {wanted} walker(s) taken from markov's share"
    else:
        actors = sorted(walker_plan.local) or sorted(per_actor) or [0]
        first = 1 + max((w for ws in per_actor.values() for w, _ in ws), default=-1)
        ids = list(range(first, first + wanted))
        for n, walker in enumerate(ids):
            per_actor.setdefault(actors[n % len(actors)], []).append((walker, "tier2"))
        note = f"tier 2: {wanted} walker(s) added (markov had none to spare)"
    per_slice["tier2"] = wanted
    return WalkerPlan(per_slice, per_actor, [*walker_plan.notes, note],
                      walker_plan.remote), ids


def results_block(counters: dict[str, int], examples: dict[str, dict[str, Any]],
                  settings: dict[str, Any] | None, reason: str | None,
                  shrunk: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``tier_2`` section: sequences, coverage, findings bucketed with their counts
    and, once shrunk after the run (``coordinator.tier2_post_run``), minimal sequences."""
    if not settings:
        return {"judged": False, "reason": reason or NO_SPEC}
    statuses: dict[str, dict[str, int]] = {}
    for key, value in counters.items():
        if key.startswith(PREFIX + "cov."):
            op, _, status = key[len(PREFIX + "cov."):].rpartition(".")
            statuses.setdefault(op, {})[status] = value
    buckets = {k[len(PREFIX + "bucket."):]: v for k, v in counters.items()
               if k.startswith(PREFIX + "bucket.")}
    findings = []
    for bucket, count in sorted(buckets.items()):
        example = examples.get(PREFIX + "bucket." + bucket, {})
        after = (shrunk or {}).get(bucket, NOT_REPLAYED)
        findings.append({**example, "bucket": bucket, "count": count, **after})
    sequences = counters.get(PREFIX + "sequences", 0)
    answered_2xx = {op for op, s in statuses.items() if any(k.startswith("2") for k in s)}
    operations = list(settings.get("operations", ()))
    return {
        "judged": sequences > 0,
        "spec": settings["spec_source"],
        "walkers": len(settings["walkers"]),
        "chains": settings.get("chains"),
        "sequences": sequences,
        "requests": counters.get(PREFIX + "requests", 0),
        "aborted_sequences": counters.get(PREFIX + "aborted", 0),
        "planners": counters.get(PREFIX + "planners", 0),
        "coverage": {
            "operations": len(operations),
            "operations_reached": len([op for op in operations if op in statuses]),
            "operations_2xx": len([op for op in operations if op in answered_2xx]),
            "never_2xx": sorted(set(operations) - answered_2xx),
            "status_pairs": sum(len(s) for s in statuses.values()),
            "statuses": {op: dict(sorted(s.items())) for op, s in sorted(statuses.items())},
        },
        "findings_by_invariant": {inv.id: counters[f"{PREFIX}finding.{inv.id}"]
                                  for inv in INVARIANTS
                                  if counters.get(f"{PREFIX}finding.{inv.id}")},
        "findings": findings,
    }


def tier1_examples(examples: dict[str, Any]) -> dict[str, Any]:
    """Examples without the per-bucket entries (those belong to ``tier_2``)."""
    return {k: v for k, v in examples.items() if not k.startswith(PREFIX + "bucket.")}


def confirmed_counters(counters: dict[str, int],
                       checked: dict[str, dict[str, Any]]) -> dict[str, int]:
    """``counters`` as the final judgement reads them: a bucket whose kept sequence did not
    show its finding again alone after the run (``coordinator.tier2_post_run``; or was
    never replayed: an interrupted run, a dead target) leaves ``tier2.finding.<id>`` and is
    counted under ``tier2.unconfirmed.<id>`` instead. A finding seen only while the whole
    fleet loaded a shared target is not a verdict."""
    judged = dict(counters)
    bucket_prefix = f"{PREFIX}bucket."
    for key, count in counters.items():
        if not key.startswith(bucket_prefix) or count <= 0:
            continue
        bucket = key[len(bucket_prefix):]
        if checked.get(bucket, {}).get("confirmed"):
            continue
        invariant = bucket.split(":", 1)[0]
        finding = f"{PREFIX}finding.{invariant}"
        judged[finding] = max(0, judged.get(finding, 0) - count)
        unconfirmed = f"{PREFIX}unconfirmed.{invariant}"
        judged[unconfirmed] = judged.get(unconfirmed, 0) + count
    return judged
