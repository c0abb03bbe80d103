"""The coordinator's part in an ``assay loris`` run: live rows, the end, the verdict.

The run is an ordinary fleet run with two slices per actor: ``loris`` (the slow
connections, ``actors.loris_walker``) and ``load`` (the control traffic: a
constant-arrival-rate scenario named ``control``, ``actors.load_walker``). This is what
it does differently (a ``coordinator.extensions.RunExtension``):

* once a second it samples the merged counters into a row in slowhttptest's terms
  (``protocols.loris_report``), printed and appended to ``loris-intervals.csv``;
* it ends the run once every actor's control traffic is done (``load.done``) and
  ``--duration`` is over: the attack lasts until the last control request is answered
  or timed out, so a server that recovers only when the attack stops cannot pass;
* its verdict is the control traffic's success % against ``--threshold-control``;
* the control traffic's own summary is ``coordinator.load_run.LoadRun``'s (reused, not
  copied), nested as ``control``; its latency histogram is ``load.control.latency`` in
  ``histograms.json``, and ``control-latency.hgrm`` holds its percentile table.
"""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trio
from hdrh.histogram import HdrHistogram

from coordinator import extensions, load_report
from coordinator.load_run import LoadRun
from protocols import loris_report
from protocols.load_model import LoadPlan
from protocols.loris import LorisCounts, LorisPlan, status_codes
from protocols.loris_report import CONTROL, ControlTotals, IntervalSampler

if TYPE_CHECKING:
    from coordinator.run import Coordinator

INTERVALS_FILE = "loris-intervals.csv"
HGRM_FILE = "control-latency.hgrm"
#: How often the watch looks for the end between two rows.
WATCH_EVERY_S = 0.1


def hgrm_ms(hist: HdrHistogram) -> str:
    """HdrHistogram's percentile table (the ``.hgrm`` text its plotter reads), in
    milliseconds; empty without samples. (The hdrh package scales every figure but the
    standard deviation, which is put right here.)"""
    if not hist.get_total_count():
        return ""
    out = io.BytesIO()
    hist.output_percentile_distribution(out, 1000.0)
    return re.sub(r"StdDeviation   = *[0-9.]+",
                  f"StdDeviation   = {hist.get_stddev() / 1000.0:12.3f}",
                  out.getvalue().decode("ascii"))


class LorisRun:
    KEY = "loris"

    def __init__(self, plan: LorisPlan, control: LoadPlan, summary_json: Path | None,
                 quiet: bool = False, out: TextIO | None = None) -> None:
        self.plan = plan
        self.control = LoadRun(control, None, quiet=True)
        self.summary_json = summary_json
        #: ``assay stress``'s run: no rows and no summary printed.
        self.quiet = quiet
        self.out = out or sys.stdout
        self.sampler = IntervalSampler()
        self.final_written = False
        self.interrupted = False

    @classmethod
    def of(cls, settings: dict[str, Any]) -> LorisRun | None:
        wire = settings.get("loris")
        if wire is None:
            return None
        summary = settings.get("loris_summary_json")
        quiet = bool(settings.get("loris_quiet") or settings.get("load_quiet"))
        return cls(LorisPlan.from_wire(wire), LoadPlan.from_wire(settings["load_plan"]),
                   Path(summary) if summary else None, quiet)

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        """A row every second; end the run once every actor's control traffic is done and
        the attack has lasted its duration."""
        actors = len(coord.actors)
        start = coord.run_started or time.time()
        self._append(coord, "")
        while True:
            await trio.sleep(WATCH_EVERY_S)
            elapsed = time.time() - start
            counters = coord.counters()
            if counters.get("load.done", 0) >= actors and elapsed >= self.plan.duration_s:
                self.control.finished_early_at = elapsed
                coord.log.info("control traffic complete: stopping the attack",
                               after_s=round(elapsed, 2))
                running.cancel()
                return
            if self.sampler.due(elapsed):
                self._sample(coord, elapsed, counters)

    def _sample(self, coord: Coordinator, elapsed: float, counters: dict[str, int],
                final: bool = False) -> None:
        row = self.sampler.sample(max(0.0, elapsed), LorisCounts.from_counters(counters),
                                  ControlTotals.from_counters(counters), final)
        if row is None:
            return
        self._append(coord, row.csv())
        if not self.quiet:
            print(row.line(final), file=self.out, flush=True)

    def _append(self, coord: Coordinator, text: str) -> None:
        """Append to the CSV (writing its header first when it does not exist yet)."""
        path = coord.run_dir / INTERVALS_FILE
        try:
            with open(path, "a", encoding="utf-8") as csv:
                if csv.tell() == 0:
                    csv.write(loris_report.CSV_HEADER)
                csv.write(text)
        except OSError as exc:
            coord.log.error("could not write the loris intervals", path=str(path),
                            error=str(exc))

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]:
        counters = coord.counters()
        self.interrupted = coord.interrupted is not None
        if coord.run_ended is not None and not self.final_written:
            # The final tallies are in: the last row (the run ends between two seconds).
            self.final_written = True
            start = coord.run_started or coord.run_ended
            self._sample(coord, coord.run_ended - start, counters, final=True)
        block = loris_report.section(
            self.plan, LorisCounts.from_counters(counters),
            ControlTotals.from_counters(counters), status_codes(counters), self.sampler,
            self.control.section(coord, elapsed))
        block["intervals_csv"] = str(coord.run_dir / INTERVALS_FILE)
        block["control_latency_hgrm"] = str(coord.run_dir / HGRM_FILE)
        return block

    def failed(self, document: dict[str, Any]) -> bool:
        """The control traffic did not get through often enough. (An interrupted run is not
        judged: it exits 130/143 as any run does, its counts written.)"""
        return not document.get(self.KEY, {}).get("ok", False) and not self.interrupted

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None:
        extensions.write_summary(coord, self.KEY, document, self.summary_json)
        hist = coord.merger.histograms().get(f"load.{CONTROL}.latency")
        try:
            (coord.run_dir / HGRM_FILE).write_text(hgrm_ms(hist) if hist is not None else "")
        except OSError as exc:
            coord.log.error("could not write the control latency table", error=str(exc))

    def render(self, document: dict[str, Any]) -> str:
        block = document.get(self.KEY, {})
        lines = [extensions.headline("loris", document),
                 f"  target         {document.get('target', {}).get('url')}"]
        if block:
            lines += loris_report.render(block)
            lines += [f"  control {line.strip()}" for line in load_report.render(block["control"])]
        for entry in document.get("invariants", {}).get("failed", []):
            lines.append(f"  FAIL {entry['id']} [{entry['severity']}] {entry['meaning']}")
        for note in document.get("notes", []):
            lines.append(f"  note           {note}")
        if document.get("error"):
            lines.append(f"  error          {document['error']}")
        if block:
            lines.append(f"  intervals      {block['intervals_csv']}")
        lines.append(f"  results        {document.get('results_path')}")
        return "\n".join(lines)
