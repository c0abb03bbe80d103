"""The coordinator's part in an ``assay load`` run: end it when the plan is done, stop it on
an abort-on-fail threshold, show live progress, and write the summary.

The run itself is an ordinary fleet run (``coordinator.run.Coordinator``) whose only
slice is ``load``; this module is what that run does differently, kept out of run.py as
``longrun`` and ``tier3`` are. Its deadline is the plan's duration plus a drain grace
(``drain_grace_s``), but it ends as soon as every actor's load walker says it finished
(``load.done``), so a run lasts its schedule and the requests still in flight, not the
grace.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from coordinator import extensions, load_report
from protocols.load_model import LoadPlan

if TYPE_CHECKING:
    from coordinator.run import Coordinator

WATCH_EVERY_S = 0.25
ABORT_EVERY_S = 1.0


def drain_grace_s(request_timeout_s: float) -> float:
    """What the run's deadline adds to the plan: the longest a request still in flight at
    the end of the schedule may take, and a second for the final tallies."""
    return request_timeout_s + 1.0


class LoadRun:
    KEY = "load"

    def __init__(self, plan: LoadPlan, summary_json: Path | None, quiet: bool = False) -> None:
        self.plan = plan
        self.summary_json = summary_json
        #: ``assay slo``'s runs: no summary printed (the step line says what matters).
        self.quiet = quiet
        self.aborted_by: list[str] = []
        self.finished_early_at: float | None = None

    @classmethod
    def of(cls, settings: dict[str, Any]) -> LoadRun | None:
        wire = settings.get("load_plan")
        if wire is None:
            return None
        summary = settings.get("load_summary_json")
        return cls(LoadPlan.from_wire(wire), Path(summary) if summary else None,
                   bool(settings.get("load_quiet")))

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        """End the run once every actor's walker is done; stop it early on an abort-on-fail
        threshold; log progress every progress interval."""
        actors = len(coord.actors)
        interval = coord.config.progress_interval_s
        next_progress = time.time() + interval
        next_abort = time.time() + ABORT_EVERY_S
        last_requests, last_at = 0, time.time()
        abortable = any(t.abort_on_fail for t in self.plan.thresholds)
        while True:
            await trio.sleep(WATCH_EVERY_S)
            counters = coord.counters()
            now = time.time()
            elapsed = now - (coord.run_started or now)
            if counters.get("load.done", 0) >= actors:
                self.finished_early_at = elapsed
                coord.log.info("load plan complete", after_s=round(elapsed, 2))
                running.cancel()
                return
            if abortable and now >= next_abort:
                next_abort = now + ABORT_EVERY_S
                failing = load_report.aborting(self.plan, counters, coord.merger.histograms(),
                                               elapsed)
                if failing:
                    self.aborted_by = failing
                    coord.log.warning("abort-on-fail threshold failed: stopping the run",
                                      thresholds=failing, after_s=round(elapsed, 2))
                    running.cancel()
                    return
            if now >= next_progress:
                next_progress = now + interval
                requests = sum(v for k, v in counters.items()
                               if k.startswith("load.") and k.endswith(".requests"))
                failed = sum(v for k, v in counters.items()
                             if k.startswith("load.") and k.endswith(".failed"))
                dropped = sum(v for k, v in counters.items()
                              if k.startswith("load.") and k.endswith(".dropped"))
                rate = (requests - last_requests) / max(1e-9, now - last_at)
                last_requests, last_at = requests, now
                coord.log.info("load", elapsed_s=round(elapsed, 1), requests=requests,
                               rate_per_s=round(rate, 1), failed=failed, dropped=dropped)

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]:
        # A plan that ran to its end ran for its duration (the walkers' "done" lands a
        # moment before the last answer's second is over); one cut short (abort-on-fail,
        # Ctrl-C, a dead actor) ran for as long as it ran.
        seconds = self.plan.duration_s
        if self.finished_early_at is None and 0 < elapsed < seconds:
            seconds = elapsed
        block = load_report.section(self.plan, coord.counters(), coord.merger.histograms(),
                                    seconds)
        if self.aborted_by:
            block["aborted_by"] = self.aborted_by
        return block

    def failed(self, document: dict[str, Any]) -> bool:
        return bool(document.get("load", {}).get("thresholds_failed"))

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None:
        extensions.write_summary(coord, "load", document, self.summary_json)

    def render(self, document: dict[str, Any]) -> str:
        load = document.get("load", {})
        lines = [extensions.headline("load", document),
                 f"  target   {document.get('target', {}).get('url')}"]
        if load:
            lines += load_report.render(load)
        if load.get("aborted_by"):
            lines.append(f"  stopped early: abort-on-fail threshold {load['aborted_by'][0]}")
        invariants = document.get("invariants", {})
        judged = [entry["id"] for entry in invariants.get("passed", [])]
        for entry in invariants.get("failed", []):
            lines.append(f"  FAIL {entry['id']} [{entry['severity']}] {entry['meaning']}")
        if judged:
            lines.append(f"  invariants passed: {', '.join(judged)}")
        for note in document.get("notes", []):
            lines.append(f"  note     {note}")
        if document.get("error"):
            lines.append(f"  error    {document['error']}")
        lines.append(f"  results  {document.get('results_path')}")
        return "\n".join(lines)
