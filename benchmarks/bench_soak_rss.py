"""Is assay itself the weak link of a long soak? RSS slope of the coordinator and each actor.

How this works: starts ``python -m coordinator soak`` against the built-in refapp for
``--duration`` (default 30 min; the figure is only meaningful over long runs), samples the
resident set size of the coordinator, of every actor (followed across restarts by actor id)
and of the refapp every ``--interval`` seconds, and fits the same slope the target resource
oracles use (``protocols.trend``): per-bucket minima after a warm-up, least squares. A
plain least-squares slope over all post-warm-up samples is shown beside it. The target is
<= 1 MiB/hour for the coordinator and for each actor; the refapp's figure is informational
(it is the target, not assay).

Short runs are allowed (``--duration 10m``) but over-state slopes: allocator arenas and
interned strings keep settling for several minutes, so read a 10-minute figure as an upper
bound, and a 30+ minute run as the answer.

Run: ``python benchmarks/bench_soak_rss.py [--duration 30m --interval 5 --procs 2
--concurrency 16 --json out.json]``. Exit 0 when every assay process met the target, 1 when
one did not, 2 when the soak could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coordinator.config import ConfigError, parse_duration  # noqa: E402
from protocols.trend import Trend, TrendConfig, least_squares_slope  # noqa: E402

MIB = 1024 * 1024
TARGET_MIB_PER_H = 1.0


@dataclass
class Series:
    name: str
    pids: list[int] = field(default_factory=list)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)

    def add(self, pid: int, t: float, rss_mib: float) -> None:
        if not self.pids or self.pids[-1] != pid:
            self.pids.append(pid)
        self.samples.append((t, rss_mib))


def _rss_mib(process: psutil.Process) -> float | None:
    try:
        return process.memory_info().rss / MIB
    except psutil.Error:
        return None


def _role(process: psutil.Process) -> str | None:
    try:
        cmd = process.cmdline()
    except psutil.Error:
        return None
    if "actors" in cmd and "--actor-id" in cmd:
        return f"actor-{cmd[cmd.index('--actor-id') + 1]}"
    if "refapp" in cmd:
        return "refapp (target)"
    return None


def slope_report(series: Series, warmup_s: float, bucket_s: float) -> dict[str, object]:
    config = TrendConfig(warmup_s=warmup_s, bucket_s=bucket_s, min_buckets=3, floor=0.0,
                         min_slope_per_h=0.0, max_buckets=4096)
    trend = Trend(config)
    for t, value in series.samples:
        trend.add(t, value)
    verdict = trend.verdict()
    after = [(t, v) for t, v in series.samples if t - series.samples[0][0] >= warmup_s]
    raw = least_squares_slope([t / 3600 for t, _ in after], [v for _, v in after]) \
        if len(after) >= 2 else 0.0
    values = [v for _, v in series.samples]
    return {
        "process": series.name, "pids": series.pids, "samples": len(values),
        "rss_first_mib": round(values[0], 2) if values else None,
        "rss_last_mib": round(values[-1], 2) if values else None,
        "rss_max_mib": round(max(values), 2) if values else None,
        "buckets": verdict.buckets,
        "slope_mib_per_h": round(verdict.slope_per_h, 3),
        "raw_slope_mib_per_h": round(raw, 3),
        "judged": verdict.buckets >= config.min_buckets,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", default="30m", help="soak length (default 30m)")
    parser.add_argument("--interval", type=float, default=5.0, help="sampling period, s")
    parser.add_argument("--warmup", default=None,
                        help="ignored at first (default: a sixth of the run, at most 5m)")
    parser.add_argument("--bucket", default=None,
                        help="bucket for the minima (default: 1/20 of the run, 30s..5m)")
    parser.add_argument("--procs", default="2")
    parser.add_argument("--concurrency", default="16")
    parser.add_argument("--slices", help="comma-separated slices (default: all)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    try:
        duration = parse_duration(args.duration)
        warmup = parse_duration(args.warmup) if args.warmup else min(300.0, duration / 6)
        bucket = parse_duration(args.bucket) if args.bucket else \
            max(30.0, min(300.0, duration / 20))
    except ConfigError as exc:
        parser.error(str(exc))

    results = Path(tempfile.mkdtemp(prefix="assay-bench-soak-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "coordinator", "soak", "--duration", args.duration,
               "--procs", args.procs, "--concurrency", args.concurrency,
               "--results", str(results), "--progress-interval", "60s"]
    if args.slices:
        command += ["--slices", args.slices]
    console = open(results / "console.log", "w")  # noqa: SIM115
    soak = subprocess.Popen(command, cwd=REPO, env=env, stdout=console,
                            stderr=subprocess.STDOUT, start_new_session=True)
    coordinator = psutil.Process(soak.pid)
    series: dict[str, Series] = {"coordinator": Series("coordinator")}
    started = time.monotonic()
    print(f"soak pid {soak.pid} for {duration:.0f} s; sampling every {args.interval:g} s "
          f"(warm-up {warmup:.0f} s, buckets {bucket:.0f} s); results {results}", flush=True)
    try:
        while soak.poll() is None:
            t = time.monotonic() - started
            rss = _rss_mib(coordinator)
            if rss is not None:
                series["coordinator"].add(soak.pid, t, rss)
            try:
                children = coordinator.children()
            except psutil.Error:
                children = []
            for child in children:
                role = _role(child)
                value = _rss_mib(child) if role else None
                if role and value is not None:
                    series.setdefault(role, Series(role)).add(child.pid, t, value)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        soak.send_signal(signal.SIGINT)
        soak.wait()
    finally:
        console.close()
    elapsed = time.monotonic() - started
    report = [slope_report(s, warmup, bucket) for s in series.values()]
    failed = [r for r in report if not str(r["process"]).startswith("refapp")
              and r["judged"] and float(r["slope_mib_per_h"]) > TARGET_MIB_PER_H]
    print(f"\nsoak exit status {soak.returncode} after {elapsed:.0f} s "
          f"(results {results})")
    print(f"{'process':<18}{'RSS first':>10}{'last':>9}{'max':>9}{'buckets':>9}"
          f"{'slope MiB/h':>13}{'raw slope':>11}")
    for row in report:
        print(f"{row['process']:<18}{row['rss_first_mib']:>10}{row['rss_last_mib']:>9}"
              f"{row['rss_max_mib']:>9}{row['buckets']:>9}{row['slope_mib_per_h']:>13}"
              f"{row['raw_slope_mib_per_h']:>11}")
    print(f"target: <= {TARGET_MIB_PER_H} MiB/h for the coordinator and each actor "
          f"(bucket-minima slope); {'MET' if not failed else 'NOT MET'}"
          + ("" if elapsed >= 1800 else f" -- caveat: only {elapsed / 60:.0f} min, slopes "
             "over-state a long run's"))
    if args.json:
        args.json.write_text(json.dumps({"duration_s": round(elapsed, 1), "warmup_s": warmup,
                                         "bucket_s": bucket, "interval_s": args.interval,
                                         "soak_exit": soak.returncode, "processes": report,
                                         "samples": {name: [[round(t, 1), round(v, 3)]
                                                            for t, v in series.samples]
                                                     for name, series in series.items()}},
                                        indent=1))
    if soak.returncode not in (0, 1):
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
