"""Target watch: the target process's RSS, open fds and threads once a second, and restarts.

How this works: when the target's pid is known (the built-in refapp's, or ``--target-pid``)
the coordinator samples the process through psutil at 1 Hz and feeds each metric to a
``protocols.trend.Trend`` (warm-up, per-bucket minima, least-squares slope, noise floor). A
metric whose trend turns GROWING sets its ``res.<metric>_growing`` counter, which is what
the invariants I-MEM-RSS, I-FD-LEAK (HIGH) and I-THREADS (MED) read; for a HIGH one the
coordinator's trip path runs at once, as for any HIGH counter. A metric is "judged" once it
had enough buckets for a verdict; until then the invariants are not judged, with the reason
(pid unknown, run too short for a slope, process unreadable).

The same tick feeds ``coordinator.target_restarts``: the latest health probe, whether the
tracked pid lives, and - when it died - which process now listens on the target's port. A
restart moves sampling to the new pid and restarts the trends (a new process has its own
warm-up; its fresh, smaller RSS must not read as a leak that reversed).

Sampling is a few /proc reads per second: cheap enough to run inline in the trio loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil
import trio

from coordinator.target import HealthMonitor, ProbeStatus
from coordinator.target_restarts import Probe, TargetRestarts
from protocols.trend import Trend, TrendConfig, TrendStatus

SAMPLE_INTERVAL_S = 1.0
MIN_BUCKETS = 6
DEFAULT_WARMUP_S = 300.0
DEFAULT_BUCKET_S = 60.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    #: Growth below this (in ``unit``) is noise, however steady.
    floor: float
    #: Slope below this (``unit`` per hour) is not a leak worth a verdict.
    min_slope_per_h: float
    read: Callable[[psutil.Process], float]

    @property
    def counter(self) -> str:
        return f"res.{self.name}_growing"

    @property
    def judged_counter(self) -> str:
        return f"res.{self.name}_judged"


#: Floors are deliberately generous: a busy server's RSS moves by megabytes and its fds by
#: its connection count, and a false leak verdict on a 24 h soak costs a weekend.
METRICS: tuple[Metric, ...] = (
    Metric("rss", "MiB", 16.0, 1.0, lambda p: p.memory_info().rss / MIB),
    Metric("fds", "fds", 32.0, 4.0, lambda p: float(p.num_fds())),
    Metric("threads", "threads", 8.0, 2.0, lambda p: float(p.num_threads())),
)

Trip = Callable[[str, dict[str, Any]], None]


def probe_kind(health: HealthMonitor) -> Probe:
    last = health.last
    if last is None:
        return Probe.UNKNOWN
    if last.status in (ProbeStatus.OK, ProbeStatus.BAD_STATUS):
        return Probe.UP
    return Probe.REFUSED if last.status is ProbeStatus.REFUSED else Probe.UNKNOWN


def listener_pid(port: int) -> int | None:
    """The pid listening on TCP ``port`` on this host, if psutil may see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if (conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
                    and conn.pid):
                return int(conn.pid)
    except (psutil.Error, OSError):
        return None
    return None


def _alive(process: psutil.Process | None) -> bool:
    try:
        return process is not None and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class TargetWatch:
    """The coordinator's 1 Hz view of the target process: resources and restarts."""

    def __init__(self, health: HealthMonitor, pid: int | None, port: int,
                 warmup_s: float = DEFAULT_WARMUP_S, bucket_s: float = DEFAULT_BUCKET_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.health = health
        self.port = port
        self.clock = clock
        self.trend_config = {
            m.name: TrendConfig(warmup_s, bucket_s, MIN_BUCKETS, m.floor, m.min_slope_per_h)
            for m in METRICS}
        self.trends = {m.name: Trend(self.trend_config[m.name]) for m in METRICS}
        self.restarts = TargetRestarts(pid)
        self.res_counters: dict[str, int] = {}
        self.samples = 0
        self.errors: dict[str, str] = {}
        self.sampled_s = 0.0
        self._first_sample: float | None = None
        self._process: psutil.Process | None = None
        self._pids_seen: list[int] = [pid] if pid is not None else []
        self.tripped: dict[str, dict[str, Any]] = {}

    # -- the loop -------------------------------------------------------------------------
    async def run(self, on_trip: Trip | None = None) -> None:
        while True:
            self.tick(on_trip)
            await trio.sleep(SAMPLE_INTERVAL_S)

    def tick(self, on_trip: Trip | None = None) -> None:
        """One observation: follow restarts, sample, re-judge. Never raises on the target."""
        wall = time.time()
        pid = self.restarts.pid
        alive: bool | None = None
        replacement = None
        if pid is not None:
            if self._process is None or self._process.pid != pid:
                self._process = _process(pid)
            alive = _alive(self._process)
            if not alive:
                replacement = listener_pid(self.port)
                if replacement == pid:
                    replacement = None
        episode = self.restarts.observe(wall, probe_kind(self.health), alive, replacement)
        if episode is not None and episode.get("new_pid") not in (None, pid):
            self._switch(int(episode["new_pid"]))
        if alive:
            self._sample(on_trip)

    def _switch(self, pid: int) -> None:
        """The target was replaced: sample the new process from a fresh warm-up."""
        self._process = _process(pid)
        if pid not in self._pids_seen and len(self._pids_seen) < 64:
            self._pids_seen.append(pid)
        for trend in self.trends.values():
            trend.reset()

    def _sample(self, on_trip: Trip | None) -> None:
        process = self._process
        if process is None:
            return
        now = self.clock()
        values: dict[str, float] = {}
        try:
            with process.oneshot():
                for metric in METRICS:
                    try:
                        values[metric.name] = metric.read(process)
                    except psutil.AccessDenied:
                        self.errors[metric.name] = f"permission denied reading pid {process.pid}"
        except psutil.NoSuchProcess:
            return
        except psutil.Error as exc:
            self.errors["process"] = f"{type(exc).__name__}: {exc}"
            return
        self.samples += 1
        if self._first_sample is None:
            self._first_sample = now
        self.sampled_s = now - self._first_sample
        for metric in METRICS:
            if metric.name in values:
                self.trends[metric.name].add(now, values[metric.name])
        self._judge(on_trip, process.pid)

    def _judge(self, on_trip: Trip | None, pid: int) -> None:
        for metric in METRICS:
            verdict = self.trends[metric.name].verdict()
            if verdict.status in (TrendStatus.STEADY, TrendStatus.GROWING):
                self.res_counters[metric.judged_counter] = 1
            if verdict.growing and metric.counter not in self.tripped:
                detail = {"metric": metric.name, "unit": metric.unit, "pid": pid,
                          "slope_per_h": round(verdict.slope_per_h, 3),
                          "growth": round(verdict.growth, 3), "buckets": verdict.buckets,
                          "first": verdict.first, "last": verdict.last,
                          "floor": metric.floor, "min_slope_per_h": metric.min_slope_per_h}
                self.tripped[metric.counter] = detail
                self.res_counters[metric.counter] = 1
                if on_trip is not None:
                    on_trip(metric.counter, detail)

    # -- what the run reads ---------------------------------------------------------------
    @property
    def counters(self) -> dict[str, int]:
        return {**self.res_counters, **self.restarts.counters}

    def not_judged(self) -> dict[str, str]:
        """``{"res": reason}`` while no resource metric could be judged (for judge_all)."""
        if any(self.res_counters.get(m.judged_counter) or self.res_counters.get(m.counter)
               for m in METRICS):
            return {}
        return {"res": self.reason()}

    def reason(self) -> str:
        if not self._pids_seen:
            return ("target pid unknown: give --target-pid (the built-in refapp's pid is "
                    "known)")
        if self.errors:
            return "cannot read the target process: " + "; ".join(
                f"{k}: {v}" for k, v in sorted(self.errors.items()))
        shortest = next(iter(self.trend_config.values())).shortest_judged_run_s
        cfg = next(iter(self.trend_config.values()))
        return (f"run too short for a slope: needs {shortest:.0f} s of samples (warm-up "
                f"{cfg.warmup_s:g} s + {cfg.min_buckets + 1} buckets of {cfg.bucket_s:g} s), "
                f"had {self.sampled_s:.0f} s")

    def report(self) -> dict[str, Any]:
        cfg = next(iter(self.trend_config.values()))
        metrics: dict[str, Any] = {}
        for metric in METRICS:
            verdict = self.trends[metric.name].verdict()
            metrics[metric.name] = {
                "unit": metric.unit, "status": verdict.status.value,
                "slope_per_h": round(verdict.slope_per_h, 3),
                "growth": round(verdict.growth, 3), "late_slope_per_h":
                round(verdict.late_slope_per_h, 3), "buckets": verdict.buckets,
                "first_bucket_min": verdict.first, "last_bucket_min": verdict.last,
                "floor": metric.floor, "min_slope_per_h": metric.min_slope_per_h,
                "tripped": self.tripped.get(metric.counter),
            }
        judged = not self.not_judged()
        return {
            "pid": self.restarts.pid, "pids": list(self._pids_seen),
            "judged": judged, "reason": None if judged else self.reason(),
            "samples": self.samples, "sampled_s": round(self.sampled_s, 1),
            "settings": {"warmup_s": cfg.warmup_s, "bucket_s": cfg.bucket_s,
                         "min_buckets": cfg.min_buckets, "interval_s": SAMPLE_INTERVAL_S},
            "metrics": metrics,
        }

    def to_state(self) -> dict[str, Any]:
        return {"restarts": self.restarts.to_state(), "res_counters": dict(self.res_counters),
                "tripped": dict(self.tripped)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """After a resume: keep restart history and sticky leak verdicts; trends start over."""
        self.restarts.restore(state.get("restarts", {}))
        self.res_counters.update({k: int(v) for k, v in state.get("res_counters", {}).items()})
        self.tripped.update(state.get("tripped", {}))


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
