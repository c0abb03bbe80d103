"""Results for a target that is up but broken at the pre-flight GET (exit 1, no load).

Why no load: every slice, and the health monitor that judges liveness and hangs, starts
from "a plain GET gets a complete answer". A target that answers garbage, nothing, or a
response that never ends fails that premise, so load numbers against it would measure
nothing but the defect the pre-flight already found. The run stops there, with a verdict:
the results directory holds the usual ``validate-results.json`` shape, the HIGH invariant
named for what the target did (``I-PREFLIGHT-GARBAGE``, ``-SILENT``, ``-ENDLESS``), the
evidence bytes (capped) and the timings of every probe, and every other invariant "not
judged" with that reason.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from actors.slices import SLICES
from coordinator import invariants, results
from coordinator.config import RunConfig
from coordinator.preflight import Preflight
from coordinator.reports import write_reports

#: Behaviour value -> the counter its invariant reads (see coordinator.invariants).
COUNTERS = {"garbage": "preflight.garbage", "silent": "preflight.silent",
            "endless": "preflight.endless"}
NO_LOAD = ("not judged: the target failed the pre-flight GET, and a target that cannot "
           "answer a GET cannot be load-tested")


def summary_line(preflight: Preflight) -> str:
    """The one line for stderr: what the target did, which invariant, and why no load."""
    run = preflight.broken_run
    finding = run[0].finding
    assert finding is not None
    ids = ", ".join(sorted({_invariant_id(a.finding.behaviour.value) for a in run
                            if a.finding is not None}))
    return (f"target broken: {finding.detail} ({ids}, {len(run)} probes in a row); "
            "no load sent, since a target that cannot answer a GET cannot be load-tested")


def _invariant_id(behaviour: str) -> str:
    return "I-PREFLIGHT-" + behaviour.upper()


def broken_counters(preflight: Preflight) -> dict[str, int]:
    counters = {"preflight.probes": len(preflight.attempts),
                "coord.health_probes": len(preflight.attempts)}
    for attempt in preflight.broken_run:
        assert attempt.finding is not None
        name = COUNTERS[attempt.finding.behaviour.value]
        counters[name] = counters.get(name, 0) + 1
    return counters


def verdicts(counters: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    """Judge the registry; only the pre-flight invariants mean anything here."""
    not_run = {name: NO_LOAD for name in (*SLICES, "coord", "res", "tier3")}
    grouped = invariants.judge_all(counters, not_run)
    judged: dict[str, list[dict[str, Any]]] = {"passed": [], "failed": [], "not_judged": []}
    for status, entries in grouped.items():
        for entry in entries:
            if entry["counter"].startswith("preflight."):
                judged[status].append(entry)
            else:  # whatever the registry says it needs, it needed load that never ran
                entry.pop("value", None)
                judged["not_judged"].append({**entry, "reason": NO_LOAD})
    return judged


def write_broken_results(config: RunConfig, *, url: str, label: str, health_path: str,
                         builtin: bool, target_pid: int | None, preflight: Preflight) -> Path:
    """Create a run directory and write the verdict; returns the directory."""
    run_dir = results.create_run_dir(config.results_dir, config.mode, label)
    counters = broken_counters(preflight)
    grouped = verdicts(counters)
    finding = preflight.broken_run[0].finding
    assert finding is not None
    examples = {COUNTERS[a.finding.behaviour.value]: a.to_json()
                for a in reversed(preflight.broken_run) if a.finding is not None}
    by_slice = results.per_slice_counters(counters)
    document: dict[str, Any] = {
        "schema_version": results.SCHEMA_VERSION,
        "tool": {"name": "assay", "version": results.tool_version()},
        "mode": config.mode,
        "label": label,
        "run_id": uuid.uuid4().hex[:12],
        "status": "failed",
        "exit_code": 1,
        "started_at": results.iso(preflight.attempts[0].at),
        "run_started_at": None,
        "finished_at": results.iso(time.time()),
        "elapsed_s": 0.0,
        "environment": results.environment(),
        "config": config.to_json(),
        "seed": config.seed,
        "target": {"url": url, "builtin": builtin, "pid": target_pid,
                   "health_path": health_path},
        "actors": [],
        "notes": [f"pre-flight: {summary_line(preflight)}"],
        "preflight": {
            "verdict": finding.behaviour.value,
            "detail": finding.detail,
            "path": health_path,
            "elapsed_s": round(preflight.elapsed_s, 3),
            "budget_s": preflight.budget_s,
            "attempts": [a.to_json() for a in preflight.attempts],
        },
        "tier_1": {
            "slices": {name: {"walkers": 0, "not_run": NO_LOAD, "counters": {},
                              "latency": {}} for name in SLICES},
            "coordinator": by_slice.get("coord", {}),
            "preflight": by_slice.get("preflight", {}),
            "harness": {},
            "totals": results.totals({}, 0.0),
            "failing_cases": {},
            "examples": examples,
        },
        "tier_3": None,
        "invariants": grouped,
        "trips": {},
        "post_run_checks": {},
        "incidents": [],
        "dropped_frames": 0,
        "results_path": str(run_dir),
        "error": None,
    }
    results.write_json_atomic(run_dir / results.RESULTS_FILE, document)
    results.write_json_atomic(run_dir / results.HISTOGRAMS_FILE, {})
    write_reports(run_dir)  # report.html + junit.xml; never raises
    print(results.render_summary(document), flush=True)
    return run_dir

