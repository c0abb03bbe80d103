"""The coordinator's part in an ``assay hold`` run: live stats, the end, the verdict.

The run is an ordinary fleet run whose only slice is ``hold`` (``actors.hold_walker``);
this is what it does differently (a ``coordinator.extensions.RunExtension``). Every
``--interval`` it prints one line of the merged counts (dialed, established, closed by
peer, reset, failed, still open) and appends it to ``hold-intervals.csv`` in the run
directory. The run's deadline carries a grace period, but it ends as soon as every actor's
walker says its connections were judged and closed (``hold.done``). The verdict is
tcpgoon's: every connection asked for was established and is still open at the end of the
hold; anything else exits 1 with the counts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trio

from coordinator import extensions
from protocols import hold_stats
from protocols.hold_stats import HoldCounts, HoldPlan
from protocols.tally import latency_summary

if TYPE_CHECKING:
    from coordinator.run import Coordinator

INTERVALS_FILE = "hold-intervals.csv"
#: How often the watch looks for the end between two interval lines.
WATCH_EVERY_S = 0.1


class HoldRun:
    KEY = "hold"
    quiet = False

    def __init__(self, plan: HoldPlan, summary_json: Path | None,
                 out: TextIO | None = None) -> None:
        self.plan = plan
        self.summary_json = summary_json
        self.out = out or sys.stdout
        self.finished_at: float | None = None
        self.fd_warned = False
        self.interrupted = False

    @classmethod
    def of(cls, settings: dict[str, Any]) -> HoldRun | None:
        wire = settings.get("hold")
        if wire is None:
            return None
        summary = settings.get("hold_summary_json")
        return cls(HoldPlan.from_wire(wire), Path(summary) if summary else None)

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        """A stats line every interval; end the run once every actor's walker is done."""
        actors = len(coord.actors)
        interval = self.plan.interval_s
        start = coord.run_started or time.time()
        next_line = start + interval
        with open(coord.run_dir / INTERVALS_FILE, "w", encoding="utf-8") as csv:
            csv.write(hold_stats.CSV_HEADER)
            while True:
                now = time.time()
                await trio.sleep(max(0.0, min(next_line, now + WATCH_EVERY_S) - now))
                now = time.time()
                counts = HoldCounts.from_counters(coord.counters())
                self._warn_fd_limit(coord, counts)
                if counts.done >= actors:
                    self.finished_at = now - start
                    self._line(csv, self.finished_at, counts, final=True)
                    coord.log.info("hold complete", after_s=round(self.finished_at, 2))
                    running.cancel()
                    return
                if now >= next_line:
                    self._line(csv, now - start, counts)
                    while next_line <= now:
                        next_line += interval

    def _line(self, csv: TextIO, elapsed: float, counts: HoldCounts, final: bool = False) -> None:
        elapsed = max(0.0, elapsed)
        csv.write(hold_stats.csv_row(elapsed, counts))
        csv.flush()
        print(hold_stats.interval_line(elapsed, counts, self.plan.connections, final),
              file=self.out, flush=True)

    def _warn_fd_limit(self, coord: Coordinator, counts: HoldCounts) -> None:
        if counts.fd_limited and not self.fd_warned:
            self.fd_warned = True
            coord.log.warning(f"open-file limit: the actors can hold at most "
                              f"{counts.fd_capacity} connections; {counts.fd_limited} of the "
                              f"{self.plan.connections} asked will not be dialed (raise "
                              "`ulimit -Hn`, or use more --procs)")

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]:
        counters = coord.counters()
        self.interrupted = coord.interrupted is not None
        counts = HoldCounts.from_counters(counters)
        block = hold_stats.section(self.plan, counts, hold_stats.http_block(counters),
                                   finished=counts.done >= len(coord.actors))
        histograms = coord.merger.histograms()
        for key, name in (("connect_ms", hold_stats.CONNECT_HISTOGRAM),
                          ("dial_lag_ms", hold_stats.DIAL_LAG_HISTOGRAM)):
            hist = histograms.get(name)
            block[key] = latency_summary(hist) if hist is not None else {"count": 0}
        block["intervals_csv"] = str(coord.run_dir / INTERVALS_FILE)
        return block

    def failed(self, document: dict[str, Any]) -> bool:
        """Not every connection held to the end. (An interrupted run is not judged: it
        exits 130/143 as any run does, its counts written.)"""
        return not document.get("hold", {}).get("ok", False) and not self.interrupted

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None:
        extensions.write_summary(coord, "hold", document, self.summary_json)

    def render(self, document: dict[str, Any]) -> str:
        hold = document.get("hold", {})
        lines = [extensions.headline("hold", document),
                 f"  target         {document.get('target', {}).get('url')}"]
        if hold:
            lines += hold_stats.render(hold)
            for label, key in (("connect", "connect_ms"), ("dial lag", "dial_lag_ms")):
                times = hold.get(key, {})
                if times.get("count"):
                    lines.append(f"  {label:<14} p50 {times['p50_ms']:.2f} ms, p99 "
                                 f"{times['p99_ms']:.2f} ms, max {times['max_ms']:.2f} ms")
        for entry in document.get("invariants", {}).get("failed", []):
            lines.append(f"  FAIL {entry['id']} [{entry['severity']}] {entry['meaning']}")
        if document.get("error"):
            lines.append(f"  error          {document['error']}")
        lines.append(f"  results        {document.get('results_path')}")
        return "\n".join(lines)
