"""A Tier 2 campaign: plan sequences, run them against the target, judge, shrink, report.

How this works: ``load_graph`` parses the spec, infers the dependency graph and applies
the override file. ``campaign`` asks the ``Planner`` for sequence after sequence until the
planner is exhausted or the budget is spent, runs each in a fresh session with one
``SequenceRunner``, judges it with ``protocols.tier2_checkers.check`` and buckets the
findings (first sequence kept, later ones counted). Then each bucket's first sequence is
shrunk against the live target (``replay.tier2_shrink``) and written as a replayable
reproducer. ``report`` is the ``tier_2`` section of ``validate-results.json``: sequences
tried, operation and status coverage, findings with bucket, count and minimal sequence.
A target that stops answering mid-campaign ends it early with what was measured kept.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.tier2_exec import ExchangeFailed, SequenceRunner
from actors.walker import Target
from coordinator.logs import get_logger
from protocols.openapi_operations import ApiSpec, load_operations
from protocols.tier2_checkers import Finding, check
from protocols.tier2_graph import Graph, infer
from protocols.tier2_overrides import Overrides, apply, load_overrides
from protocols.tier2_planner import Planner
from protocols.tier2_sequences import Step
from replay import tier2_repro
from replay.tier2_shrink import minimize

log = get_logger("tier2")
#: Consecutive sequences without any response after which the target counts as gone.
MAX_FAILED_IN_A_ROW = 5
#: Wall-clock cap on shrinking all buckets (each bucket also stops at 60 runs or 10 s).
SHRINK_TOTAL_S = 120.0
#: Seconds between coverage timeline points.
TIMELINE_S = 10.0


def load_graph(spec_text: str, spec_source: str, overrides: tuple[str, str] | None
               ) -> tuple[ApiSpec, Graph, Overrides]:
    """Spec -> (operations, graph with overrides applied, overrides).

    Raises:
        SpecError, LoadInputError: a bad spec or override file (one line, FILE:LINE).
    """
    api = load_operations(spec_text, spec_source)
    chosen = Overrides()
    if overrides is not None:
        chosen = load_overrides(overrides[1], overrides[0], set(api.by_id()))
    return api, apply(infer(api), chosen), chosen


@dataclass
class Bucket:
    first: Finding
    steps: tuple[Step, ...]
    count: int = 1
    minimal: tuple[Step, ...] | None = None
    shrink: dict[str, Any] = field(default_factory=dict)
    repro: str | None = None
    #: Seconds into the campaign and sequence number at which the bucket first showed.
    first_seen_s: float = 0.0
    first_sequence: int = 0


@dataclass
class Campaign:
    api: ApiSpec
    graph: Graph
    target: Target
    seed: int
    budget_s: float
    max_length: int = 4
    setup_body: Any = None
    shrink: bool = True
    spec_text: tuple[str, str] = ("", "")
    overrides_text: tuple[str, str] | None = None
    target_info: dict[str, Any] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)
    sequences: int = 0
    aborted: int = 0
    stopped: str = "exhausted"
    elapsed_s: float = 0.0
    requests: int = 0
    planner_stats: dict[str, Any] = field(default_factory=dict)
    #: (elapsed s, sequences, operation/status pairs, buckets) every TIMELINE_S.
    timeline: list[list[float]] = field(default_factory=list)

    async def run(self, out_dir: Path | None = None) -> None:
        ops = self.api.by_id()
        planner = Planner(self.api, self.graph, self.seed, max_length=self.max_length,
                          setup_body=self.setup_body)
        runner = SequenceRunner(self.target, ops, self.graph, self.api.spec.base_path)
        started = time.monotonic()
        failed_in_a_row = 0
        try:
            while (proposal := planner.next_sequence()) is not None:
                now = time.monotonic() - started
                if now >= self.budget_s:
                    self.stopped = "budget"
                    break
                if now >= TIMELINE_S * (len(self.timeline) + 1):
                    self._mark(now)
                steps, is_variant = proposal
                try:
                    run = await runner.run(steps)
                    failed_in_a_row = 0
                except ExchangeFailed as exc:
                    run, failed_in_a_row = exc.run, failed_in_a_row + 1
                    self.aborted += 1
                    if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                        self.stopped = f"target stopped answering ({exc.cause})"
                        break
                self.sequences += 1
                for ex in run.exchanges:
                    statuses = self.coverage.setdefault(ex.step.op_id, {})
                    statuses[str(ex.status)] = statuses.get(str(ex.status), 0) + 1
                for finding in check(run.exchanges, ops, self.graph):
                    held = self.buckets.get(finding.bucket)
                    if held is None:
                        self.buckets[finding.bucket] = Bucket(
                            finding, steps, first_seen_s=round(time.monotonic() - started, 3),
                            first_sequence=self.sequences)
                        log.info("tier2.finding", bucket=finding.bucket, detail=finding.detail)
                    else:
                        held.count += 1
                planner.record(steps, run.exchanges, is_variant)
            self._settle(planner, runner, started)
            if self.shrink and not self.stopped.startswith("target"):
                shrink_started = time.monotonic()
                for key, bucket in self.buckets.items():
                    if time.monotonic() - shrink_started > SHRINK_TOTAL_S:
                        bucket.shrink = {"skipped": f"shrinking past {SHRINK_TOTAL_S:.0f} s"}
                        continue
                    await self._shrink(runner, key, bucket, len(planner.setup_steps),
                                       out_dir)
        except BaseException:  # Ctrl-C or a crash: what was measured is still reported
            if not self.elapsed_s:
                self.stopped = "interrupted"
                self._settle(planner, runner, started)
            raise
        finally:
            runner.close()

    def _settle(self, planner: Planner, runner: SequenceRunner, started: float) -> None:
        self.elapsed_s = time.monotonic() - started
        self._mark(self.elapsed_s)
        self.requests = runner.requests
        self.planner_stats = {"proposed": planner.stats.proposed,
                              "valid": planner.stats.valid,
                              "variants": planner.stats.variants,
                              "by_length": planner.stats.by_length}

    def _mark(self, elapsed: float) -> None:
        pairs = sum(len(v) for v in self.coverage.values())
        self.timeline.append([round(elapsed, 1), self.sequences, pairs, len(self.buckets)])

    async def _shrink(self, runner: SequenceRunner, key: str, bucket: Bucket, setup_len: int,
                      out_dir: Path | None) -> None:
        try:
            bucket.minimal, bucket.shrink = await minimize(runner, bucket.steps, setup_len, key)
        except ExchangeFailed as exc:
            bucket.shrink = {"error": exc.cause}
            return
        if out_dir is None:
            return
        steps = [s.to_json() for s in bucket.minimal]
        doc = tier2_repro.build(key, finding_json(bucket.first), self.spec_text,
                                self.overrides_text, steps, self.seed, self.target_info)
        name = key.replace(":", "-").replace(" ", "_").replace("/", "_")
        path = out_dir / f"tier2-repro-{name}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        bucket.repro = str(path)

    def report(self) -> dict[str, Any]:
        fuzzable = self.graph.fuzzable(self.api.by_id())
        reached = [op for op in fuzzable if self.coverage.get(op)]
        succeeded = [op for op in fuzzable
                     if any(s.startswith("2") for s in self.coverage.get(op, {}))]
        pairs = sum(len(v) for v in self.coverage.values())
        return {
            "spec": self.spec_text[0], "setup": self.graph.setup,
            "seed": self.seed, "budget_s": self.budget_s, "elapsed_s": round(self.elapsed_s, 3),
            "stopped_by": self.stopped, "sequences": self.sequences,
            "sequences_per_s": round(self.sequences / self.elapsed_s, 1) if self.elapsed_s
            else 0.0,
            "requests": self.requests, "aborted_sequences": self.aborted,
            "planner": self.planner_stats,
            "coverage": {
                "operations": len(fuzzable), "operations_reached": len(reached),
                "operations_2xx": len(succeeded), "status_pairs": pairs,
                "never_2xx": sorted(set(fuzzable) - set(succeeded)),
                "statuses": self.coverage,
            },
            "timeline": {"columns": ["elapsed_s", "sequences", "status_pairs", "buckets"],
                         "points": self.timeline},
            "findings": [
                {**finding_json(b.first), "bucket": key, "count": b.count,
                 "first_seen_s": b.first_seen_s, "first_sequence": b.first_sequence,
                 "sequence": [s.to_json() for s in b.steps],
                 "minimal_sequence": ([s.to_json() for s in b.minimal] if b.minimal
                                      else None),
                 "minimal_length": len(b.minimal) if b.minimal else None,
                 "shrink": b.shrink, "repro": b.repro}
                for key, b in sorted(self.buckets.items())
            ],
        }


def finding_json(finding: Finding) -> dict[str, Any]:
    inv = finding.invariant
    return {"invariant": inv.id, "severity": inv.severity.value, "meaning": inv.meaning,
            "basis": inv.basis, "operation": finding.op_id, "status": finding.status,
            "detail": finding.detail}


def run_campaign(campaign: Campaign, out_dir: Path | None) -> None:
    trio.run(campaign.run, out_dir)
