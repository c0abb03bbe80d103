"""The coordinator's part in an ``assay watch`` run: the live line, backend probes, the end.

The run is an ordinary fleet run whose only slice is ``watch`` (``actors.watch_walker``);
this is what it does differently (a ``coordinator.extensions.RunExtension``). Beside the
walkers it prints each request's line as the shards grow (``ShardTail``; off with
``--no-request-lines``) and under them one live line from the merged tallies (rewritten in
place on a terminal, one line a second otherwise) and, with ``--backend-ports``, probes every
backend's ``/healthz`` directly every ``PROBE_EVERY_S``, keeping the up/down changes. The
run ends as soon as every actor's walker is done (``watch.done``). At the end the actors'
record shards are merged in time order into ``watch.csv`` in the run directory (and the
``--csv`` file) and judged by ``protocols.watch_report``: I-RECONF-FAIL fails the run
(exit 1) when any request failed while at least one backend was up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trio

from coordinator import extensions
from protocols import watch_records, watch_report
from protocols.watch_records import WatchPlan
from protocols.watch_report import BackendHealth, HealthSample

if TYPE_CHECKING:
    from coordinator.run import Coordinator

CSV_FILE = "watch.csv"
PROBE_EVERY_S = 0.1
PROBE_TIMEOUT_S = 0.5
LIVE_EVERY_S = 0.25
#: Without a terminal the live line is printed as a new line this often.
PLAIN_EVERY_S = 1.0
#: Most up/down changes kept per backend (a flapping backend cannot grow memory).
MAX_CHANGES = 100_000
HEALTH_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def probe(port: int) -> bool:
    """One ``/healthz`` on 127.0.0.1:port: up when it answers 200 within the timeout."""
    with trio.move_on_after(PROBE_TIMEOUT_S):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(HEALTH_REQUEST)
                head = b""
                while len(head) < 12:
                    chunk = await stream.receive_some(64)
                    if not chunk:
                        break
                    head += chunk
                return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
        except OSError:
            return False
    return False


class ShardTail:
    """The records the walkers appended to their shards since the last read (whole lines
    only), for the request lines printed during the run. Shards are flushed every 0.5 s,
    so these lines run up to a second behind and are in time order within one read; the
    CSV written at the end is in time order throughout."""

    def __init__(self, shard_dir: Path) -> None:
        self.shard_dir = shard_dir
        self.offsets: dict[Path, int] = {}

    def read(self) -> list[watch_records.WatchRecord]:
        lines: list[str] = []
        for path in sorted(self.shard_dir.glob("*.jsonl")):
            try:
                with open(path, "rb") as shard:
                    shard.seek(self.offsets.get(path, 0))
                    data = shard.read()
            except OSError:
                continue
            whole = data[:data.rfind(b"\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(whole)
            lines += whole.decode("utf-8", "replace").splitlines()
        return watch_records.merge([lines])


class WatchRun:
    KEY = "watch"
    quiet = False

    def __init__(self, plan: WatchPlan, csv: Path | None, summary_json: Path | None,
                 out: TextIO | None = None, print_requests: bool = True) -> None:
        self.plan = plan
        self.print_requests = print_requests
        self.csv = csv
        self.summary_json = summary_json
        self.out = out or sys.stdout
        self.samples: list[HealthSample] = []
        self.probes = 0
        self.interrupted = False
        self.final: dict[str, Any] | None = None

    @classmethod
    def of(cls, settings: dict[str, Any]) -> WatchRun | None:
        wire = settings.get("watch")
        if wire is None:
            return None
        csv, summary = settings.get("watch_csv"), settings.get("watch_summary_json")
        return cls(WatchPlan.from_wire(wire), Path(csv) if csv else None,
                   Path(summary) if summary else None,
                   print_requests=bool(settings.get("watch_print_requests", True)))

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        async with trio.open_nursery() as nursery:
            for port in self.plan.backend_ports:
                nursery.start_soon(self._probe_loop, port)
            await self._live(coord)
            nursery.cancel_scope.cancel()
        running.cancel()

    async def _probe_loop(self, port: int) -> None:
        last: bool | None = None
        changes = 0
        while True:
            at_us = time.time_ns() // 1000
            up = await probe(port)
            self.probes += 1
            if up != last and changes < MAX_CHANGES:
                self.samples.append(HealthSample(at_us, port, up))
                changes += 1
                last = up
            await trio.sleep(PROBE_EVERY_S)

    async def _live(self, coord: Coordinator) -> None:
        """Request lines as the shards grow, under them the live line, until every
        actor's walker is done."""
        tty = self.out.isatty()
        next_plain = time.monotonic() + PLAIN_EVERY_S
        tail = ShardTail(Path(self.plan.shard_dir))
        start_us = int((coord.run_started or time.time()) * 1e6)
        while True:
            await trio.sleep(LIVE_EVERY_S)
            counters = coord.counters()
            line = watch_report.live_line(counters)
            done = counters.get(watch_report.DONE, 0) >= len(coord.actors)
            requests = ("".join(watch_records.csv_line(r, start_us) for r in tail.read())
                        if self.print_requests else "")
            if tty:
                self.out.write("\r\x1b[2K" + requests + line + ("\n" if done else ""))
                self.out.flush()
            else:
                self.out.write(requests)
                if done or time.monotonic() >= next_plain:
                    self.out.write(line + "\n")
                    next_plain = time.monotonic() + PLAIN_EVERY_S
                self.out.flush()
            if done:
                return

    def _judge(self, coord: Coordinator) -> dict[str, Any]:
        """Merge the shards, write the CSV(s), judge. Once, at the end."""
        shard_dir = Path(self.plan.shard_dir)
        shards = [path.read_text(encoding="utf-8").splitlines()
                  for path in sorted(shard_dir.glob("*.jsonl"))]
        records = watch_records.merge(shards)
        start_us = int((coord.run_started or time.time()) * 1e6)
        health = BackendHealth(self.plan.backend_ports, self.samples,
                               int((PROBE_EVERY_S + PROBE_TIMEOUT_S) * 1e6))
        block = watch_report.report(records, health, start_us)
        paths = [coord.run_dir / CSV_FILE, *([self.csv] if self.csv is not None else [])]
        for path in paths:
            try:
                with open(path, "w", encoding="utf-8") as out:
                    out.write(watch_records.CSV_HEADER)
                    out.writelines(watch_records.csv_line(r, start_us) for r in records)
            except OSError as exc:
                coord.log.error("could not write the watch CSV", path=str(path),
                                error=str(exc))
        block.update(csv=[str(p) for p in paths], plan=self.plan.to_wire(),
                     health_probes=self.probes,
                     health_changes=[{"at_us": s.at_us - start_us, "port": s.port, "up": s.up}
                                     for s in self.samples])
        return block

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]:
        from coordinator.run_state import Phase

        if self.final is not None:
            return self.final
        if coord.phase is not Phase.JUDGING:  # a checkpoint mid-run: the counts so far
            counters = coord.counters()
            return {"live": watch_report.live_line(counters), "final": False}
        self.interrupted = coord.interrupted is not None
        self.final = self._judge(coord)
        return self.final

    def failed(self, document: dict[str, Any]) -> bool:
        """I-RECONF-FAIL failed. (An interrupted run exits 130/143 as any run does.)"""
        block = document.get("watch", {})
        return not block.get("ok_verdict", True) and not self.interrupted

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None:
        extensions.write_summary(coord, "watch", document, self.summary_json)

    def render(self, document: dict[str, Any]) -> str:
        block = document.get("watch", {})
        lines = [extensions.headline("watch", document),
                 f"  target         {document.get('target', {}).get('url')}",
                 *watch_report.render(block)]
        for entry in document.get("invariants", {}).get("failed", []):
            lines.append(f"  FAIL {entry['id']} [{entry['severity']}] {entry['meaning']}")
        if document.get("error"):
            lines.append(f"  error          {document['error']}")
        for path in block.get("csv", []):
            lines.append(f"  csv            {path}")
        lines.append(f"  results        {document.get('results_path')}")
        return "\n".join(lines)
