"""The results document of a run (``validate-results.json``): what the coordinator has
counted, judged and kept, assembled in one place so the coordinator's loop stays about
running the fleet. Rewritten at every checkpoint and once, judged, at the end."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from actors import tls
from coordinator import (
    invariants,
    longrun,
    response_report,
    results,
    tier2_slice,
    tier3,
)
from coordinator.confirmation_report import block as confirmation_block
from coordinator.confirmation_report import unconfirmed_cases
from protocols import attribution as attribution_rules

if TYPE_CHECKING:
    from coordinator.run import Coordinator


def build(coord: Coordinator, final: bool) -> dict[str, Any]:
    """The results document as it stands; ``final``: the judgement at the end of the run
    (Tier 2 findings then count only once confirmed alone, ``coordinator.tier2_post_run``)."""
    counters = coord.counters()
    end = coord.run_ended or time.time()
    elapsed = max(0.0, end - coord.run_started) if coord.run_started else 0.0
    histograms = coord.merger.histograms()
    examples = {**coord.merger.examples(), **coord.health.examples, **coord.coord_examples}
    grouped_counters = results.per_slice_counters(counters)
    latency = results.latency_block(histograms)
    slices_block: dict[str, Any] = {}
    for name in sorted(set(coord.inputs.walker_plan.per_slice) | set(coord.inputs.not_run)):
        if name == "coord":
            continue
        slices_block[name] = {
            "walkers": coord.inputs.walker_plan.per_slice.get(name, 0),
            "not_run": coord.inputs.not_run.get(name),
            "counters": grouped_counters.get(name, {}),
            "latency": latency.get(name, {}),
        }
        confirmed = confirmation_block(name, counters)
        if confirmed is not None:
            slices_block[name]["confirmation"] = confirmed
    # The final verdict counts only Tier 2 findings confirmed alone after the run.
    judged = tier2_slice.confirmed_counters(counters, coord.tier2_shrunk) if final \
        else counters
    verdicts = invariants.judge_all(judged,
                                    {**coord.inputs.not_run, **coord.watch.not_judged(),
                                     **coord.leak_probes.not_judged()})
    attribution_rules.annotate_invariants(verdicts, coord.trips)  # consequence_of a death
    tier3_block = tier3.results_block(counters, examples, coord.inputs.settings.get("tier3"))
    tier3.add_verdict(verdicts, tier3_block)
    examples = tier3.tier1_examples(examples)
    tier2_block = tier2_slice.results_block(counters, examples,
                                            coord.inputs.settings.get("tier2"),
                                            coord.inputs.not_run.get("tier2"),
                                            coord.tier2_shrunk)
    examples = tier2_slice.tier1_examples(examples)
    return {
        "schema_version": results.SCHEMA_VERSION,
        "tool": {"name": "assay", "version": results.tool_version()},
        "mode": coord.config.mode,
        "label": coord.inputs.label,
        "run_id": coord.run_id,
        "status": "running" if not final else None,
        "exit_code": None,
        "started_at": results.iso(coord.started_at),
        "run_started_at": results.iso(coord.run_started),
        "finished_at": results.iso(time.time()) if final else None,
        "elapsed_s": round(elapsed, 3),
        "environment": results.environment(),
        "config": coord.config.to_json(),
        "seed": coord.inputs.seed,
        "target": {"url": coord.inputs.target_url, "builtin": coord.inputs.builtin,
                   "pid": coord.inputs.target_pid, "health_path": coord.inputs.health_path,
                   # How TLS was verified (https only): "verified" or "insecure", and files.
                   **({"tls": tls.installed().describe()}
                      if coord.inputs.target_url.startswith("https:") else {})},
        "actors": [vars(r) for r in coord.actors.values()],
        "notes": coord.inputs.notes + coord.inputs.walker_plan.notes,
        "tier_1": {
            "slices": slices_block,
            "coordinator": grouped_counters.get("coord", {}),
            "harness": grouped_counters.get("harness", {}),
            "totals": results.totals(counters, elapsed),
            "failing_cases": results.failing_cases(counters, examples),
            "unconfirmed_cases": unconfirmed_cases(counters, examples),
            "examples": examples,
        },
        "tier_2": tier2_block,
        "tier_3": tier3_block,
        "response_rules": response_report.section(counters, examples,
                                                  coord.config.no_clock),
        "invariants": verdicts,
        "trips": coord.trips,
        "timeline": coord.timeline.points(),
        "post_run_checks": coord.post_run,
        "leak_probes": coord.leak_probes.section(),
        "incidents": coord.incidents.summary(),
        "dropped_frames": coord.dropped_frames,
        "results_path": str(coord.run_dir),
        **longrun.sections(coord, elapsed),
        **({coord.extension.KEY: coord.extension.section(coord, elapsed)}
           if coord.extension is not None else {}),
        "_histograms": results.encode_histograms(histograms),
    }

