"""The target as the coordinator sees it: reachability, health probes and process liveness.

Liveness and hang are judged here, by the coordinator itself, independent of any walker: a
walker that sees errors cannot tell "the server is wrong" from "the server is gone", but a
probe on a fresh connection once a second plus the process table can.

The probe is a plain ``GET`` with ``Connection: close`` through h11, with a deadline on the
whole exchange and a cap on what it reads, so a hostile target (endless headers, no close)
costs a bounded few kilobytes and a bounded few seconds.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import h11
import psutil
import trio

from actors import net
from actors.walker import Target

PROBE_READ_CAP = 64 * 1024
DOWN_AFTER = 3  # consecutive refused probes (or a dead pid) => I-LIVENESS
HUNG_AFTER = 3  # consecutive timed-out probes => I-HANG


class ProbeStatus(enum.Enum):
    OK = "ok"
    BAD_STATUS = "bad_status"  # answered, but not 2xx/3xx
    REFUSED = "refused"
    TIMEOUT = "timeout"
    BROKEN = "broken"  # reset, garbage, oversized


@dataclass(frozen=True)
class ProbeResult:
    status: ProbeStatus
    code: int | None
    elapsed: float
    detail: str = ""


async def probe(target: Target, path: str, timeout: float) -> ProbeResult:
    started = time.monotonic()

    def done(status: ProbeStatus, code: int | None = None, detail: str = "") -> ProbeResult:
        return ProbeResult(status, code, time.monotonic() - started, detail)

    with trio.move_on_after(timeout):
        try:
            stream = await net.connect(target, timeout)
        except net.TransportError as exc:
            if exc.cause == "connect_timeout":
                return done(ProbeStatus.TIMEOUT, detail=str(exc))
            if exc.cause == "connect_refused":
                return done(ProbeStatus.REFUSED, detail=str(exc))
            return done(ProbeStatus.BROKEN, detail=str(exc))
        try:
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=PROBE_READ_CAP)
            request = h11.Request(method="GET", target=path, headers=[
                ("Host", target.host_header), ("Connection", "close"),
                ("User-Agent", "assay-health-probe")])
            await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
            received = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    chunk = await stream.receive_some(16384)
                    received += len(chunk)
                    if received > PROBE_READ_CAP:
                        return done(ProbeStatus.BROKEN, detail="health response over 64 KiB")
                    conn.receive_data(chunk)
                    continue
                if isinstance(event, h11.Response):
                    ok = 200 <= event.status_code < 400
                    return done(ProbeStatus.OK if ok else ProbeStatus.BAD_STATUS,
                                event.status_code)
                if isinstance(event, h11.ConnectionClosed):
                    return done(ProbeStatus.BROKEN, detail="closed without a response")
        except h11.RemoteProtocolError as exc:
            return done(ProbeStatus.BROKEN, detail=f"not HTTP: {exc}")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            return done(ProbeStatus.BROKEN, detail=f"reset: {exc}")
        finally:
            await net.aclose_quietly(stream)
    return done(ProbeStatus.TIMEOUT, detail=f"no answer within {timeout:.1f} s")


async def wait_reachable(target: Target, path: str, budget_s: float) -> ProbeResult:
    """Probe until the target answers at all (any status) or ``budget_s`` runs out."""
    deadline = time.monotonic() + budget_s
    result = ProbeResult(ProbeStatus.TIMEOUT, None, 0.0, "not probed")
    while time.monotonic() < deadline:
        remaining = max(0.2, deadline - time.monotonic())
        result = await probe(target, path, min(3.0, remaining))
        if result.status in (ProbeStatus.OK, ProbeStatus.BAD_STATUS):
            return result
        await trio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
    return result


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class HealthMonitor:
    """Once a second: probe the health path and check the pid; keep ``coord.*`` counters.

    With no health path (``assay hold``: a probe would take one of the connection slots
    being measured, and a silent TCP target would read as hung) only the pid is watched;
    I-LIVENESS and I-HANG are then not judged unless that process dies."""

    def __init__(self, target: Target, path: str | None, pid: int | None, interval: float = 1.0,
                 timeout: float = 3.0) -> None:
        self.target = target
        self.path = path
        self.pid = pid
        self.interval = interval
        self.timeout = timeout
        self.counters: dict[str, int] = {}
        self.examples: dict[str, dict[str, Any]] = {}
        self._refused_run = 0
        self._timeout_run = 0
        self.last: ProbeResult | None = None
        #: Wall clock of the last probe the target answered (crash attribution's "last
        #: sign of life").
        self.last_ok_at: float | None = None

    def _incr(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def down_reason(self) -> str | None:
        """Why the target is down or hung as of the latest probes, else None (a target that
        came back, restarted or recovered, is up again)."""
        if self.pid is not None and not pid_alive(self.pid):
            return f"target process {self.pid} has exited"
        if self._refused_run >= DOWN_AFTER:
            return f"the last {self._refused_run} health probes were refused"
        if self._timeout_run >= HUNG_AFTER:
            return f"the last {self._timeout_run} health probes timed out"
        return None

    def _trip(self, counter: str, detail: dict[str, Any]) -> bool:
        """Count a down/hung episode once per episode; return True on the first trip."""
        first = self.counters.get(counter, 0) == 0
        self._incr(counter)
        self.examples.setdefault(counter, detail)
        return first

    async def run(self, on_trip: Any = None) -> None:
        if self.path is None:
            await self._watch_pid(on_trip)
            return
        pid_reported = False
        while True:
            result = await probe(self.target, self.path, self.timeout)
            self.last = result
            if result.status is ProbeStatus.OK:
                self.last_ok_at = time.time()
            self._incr("coord.health_probes")
            self._incr(f"coord.health_{result.status.value}")
            tripped: str | None = None
            detail = {"probe": result.status.value, "code": result.code,
                      "detail": result.detail, "elapsed_s": round(result.elapsed, 3),
                      "at": time.time(), "path": self.path}
            if result.status is ProbeStatus.REFUSED:
                self._refused_run += 1
            elif result.status is ProbeStatus.TIMEOUT:
                self._timeout_run += 1
            else:
                self._refused_run = self._timeout_run = 0
            if self.pid is not None and not pid_alive(self.pid) and not pid_reported:
                pid_reported = True
                if self._trip("coord.target_down", {**detail, "pid": self.pid,
                                                    "reason": "target process exited"}):
                    tripped = "coord.target_down"
            elif self._refused_run == DOWN_AFTER:
                if self._trip("coord.target_down", {**detail, "reason":
                                                    f"{DOWN_AFTER} probes refused in a row"}):
                    tripped = "coord.target_down"
            elif self._timeout_run == HUNG_AFTER:
                if self._trip("coord.target_hung", {**detail, "reason":
                                                    f"{HUNG_AFTER} probes timed out in a row"}):
                    tripped = "coord.target_hung"
            if tripped and on_trip is not None:
                on_trip(tripped, self.examples[tripped])
            await trio.sleep(max(0.0, self.interval - result.elapsed))

    async def _watch_pid(self, on_trip: Any) -> None:
        """No health path: trip I-LIVENESS when the target process exits, nothing else."""
        if self.pid is None:
            return
        while pid_alive(self.pid):
            await trio.sleep(self.interval)
        detail = {"probe": None, "pid": self.pid, "reason": "target process exited",
                  "at": time.time(), "path": None}
        if self._trip("coord.target_down", detail) and on_trip is not None:
            on_trip("coord.target_down", self.examples["coord.target_down"])
