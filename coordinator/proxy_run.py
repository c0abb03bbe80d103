"""The coordinator's part in an ``assay proxy`` run: collect what the backends received,
judge it against what was sent (``protocols.proxy_oracle``), and write reproducers.

Once every actor's walker has sent its cases (``proxy.done``), the coordinator asks each
backend for the records after the ones it held when the run began
(``GET /__assay/received?since=N``, paged), keeps those carrying this run's marker, and
ends the run. Each finding's case is written to ``proxy-repro-CASE.bin`` in the run
directory: ``nc 127.0.0.1 PORT < FILE`` sends the same bytes again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import trio

from coordinator import extensions
from protocols import proxy_oracle
from protocols.backend_echo import RECEIVED_PATH, Record
from protocols.proxy_oracle import Arrived, Sent

if TYPE_CHECKING:
    from coordinator.run import Coordinator

FETCH_TIMEOUT_S = 5.0
#: Pages of records fetched per backend at most (1000 each).
MAX_PAGES = 100
#: Time the backends get to record what the proxy forwards after the last case.
SETTLE_S = 0.3


async def fetch(port: int, since: int) -> dict[str, Any]:
    """One page of ``/__assay/received`` from 127.0.0.1:port (Connection: close)."""
    request = (f"GET {RECEIVED_PATH}?since={since} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Connection: close\r\n\r\n").encode()
    with trio.fail_after(FETCH_TIMEOUT_S):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request)
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


async def records_after(port: int, since: int) -> tuple[int, list[Record]]:
    records: list[Record] = []
    backend = -1
    for _ in range(MAX_PAGES):
        page = await fetch(port, since)
        backend = int(page["backend"])
        batch = [Record.from_json(r) for r in page["records"]]
        if not batch:
            break
        records += batch
        since = batch[-1].seq
    return backend, records


class ProxyRun:
    KEY = "proxy"
    quiet = False

    def __init__(self, settings: dict[str, Any], out: TextIO | None = None) -> None:
        self.run = str(settings["proxy"]["run"])
        self.shard_dir = Path(settings["proxy"]["shard_dir"])
        self.ports = [int(p) for p in settings["proxy"]["backend_ports"]]
        summary = settings.get("proxy_summary_json")
        self.summary_json = Path(summary) if summary else None
        self.out = out or sys.stdout
        self.arrived: list[Arrived] = []
        self.fetch_errors: dict[str, str] = {}
        self.final: dict[str, Any] | None = None
        #: The backends' records were read after every case was sent (not cut off).
        self.collected = False

    @classmethod
    def of(cls, settings: dict[str, Any]) -> ProxyRun | None:
        return cls(settings) if settings.get("proxy") is not None else None

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        marks: dict[int, int] = {}
        for port in self.ports:  # what each backend held before this run's cases
            try:
                marks[port] = int((await fetch(port, 1 << 62))["last_seq"])
            except (OSError, ValueError, KeyError, trio.TooSlowError) as exc:
                self.fetch_errors[str(port)] = f"before the run: {exc!r}"
        while coord.counters().get("proxy.done", 0) < len(coord.actors):
            await trio.sleep(0.1)
        await trio.sleep(SETTLE_S)
        for port, since in marks.items():
            try:
                backend, records = await records_after(port, since)
            except (OSError, ValueError, KeyError, trio.TooSlowError) as exc:
                self.fetch_errors[str(port)] = repr(exc)
                continue
            for record in records:
                if self.run.encode() in record.raw:
                    parsed = proxy_oracle.parse_record(backend, record)
                    if parsed is not None:
                        self.arrived.append(parsed)
        self.collected = True
        running.cancel()

    def _sent(self) -> list[Sent]:
        sent = []
        for path in sorted(self.shard_dir.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                    sent.append(Sent(item["case"], item["sent"].encode("latin-1"),
                                     item["received"].encode("latin-1"), item["error"]))
                except (ValueError, KeyError):
                    continue
        return sent

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]:
        from coordinator.run_state import Phase

        if self.final is not None or coord.phase is not Phase.JUDGING:
            return self.final or {"final": False}
        sent = self._sent()
        findings = proxy_oracle.judge(self.run, sent, self.arrived)
        repros = {}
        for finding in findings:
            if finding.case not in repros:
                path = coord.run_dir / f"proxy-repro-{finding.case}.bin"
                path.write_bytes(next(s.sent for s in sent if s.case == finding.case))
                repros[finding.case] = str(path)
        self.final = {
            "run_marker": self.run, "backend_ports": self.ports,
            "cases_sent": [s.case for s in sent],
            "backend_records": len(self.arrived),
            "fetch_errors": self.fetch_errors,
            "verdicts": proxy_oracle.verdicts(findings),
            "findings": [f.to_json() for f in findings],
            "reproducers": repros,
            "collected": self.collected,
            "ok": (not proxy_oracle.failed_high(findings) and not self.fetch_errors
                   and self.collected),
        }
        return self.final

    def failed(self, document: dict[str, Any]) -> bool:
        """A HIGH invariant failed, or the backends could not be asked after every case
        was sent (nothing judged: never a pass)."""
        return not document.get("proxy", {}).get("ok", False)

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None:
        extensions.write_summary(coord, "proxy", document, self.summary_json)

    def render(self, document: dict[str, Any]) -> str:
        block = document.get("proxy", {})
        lines = [extensions.headline("proxy", document),
                 f"  target         {document.get('target', {}).get('url')}",
                 f"  cases          {len(block.get('cases_sent', []))} sent, "
                 f"{block.get('backend_records', 0)} requests arrived at the backends"]
        for verdict in block.get("verdicts", []):
            lines.append(f"  {verdict['status'].upper():<6} {verdict['id']} "
                         f"[{verdict['severity']}] {verdict['meaning']}")
        for finding in block.get("findings", []):
            lines.append(f"    {finding['invariant']} {finding['case']}: {finding['detail']}")
        for path in block.get("reproducers", {}).values():
            lines.append(f"  reproducer     {path}")
        if block and not block.get("collected", True):
            lines.append("  not judged     the run ended before the backends' records were read")
        for port, error in block.get("fetch_errors", {}).items():
            lines.append(f"  backend {port} could not be asked: {error}")
        if document.get("error"):
            lines.append(f"  error          {document['error']}")
        lines.append(f"  results        {document.get('results_path')}")
        return "\n".join(lines)
