"""Tier 3 speed: how long the ``pr`` tier (200 seeds + regression seeds) takes against refapp.

Runs the real path, ``assay run --tier3 pr`` against the built-in refapp, with the Tier 1
slices at their minimum (one walker each) so the figure is the seeds' own cost, and reads
the time to the last verdict from ``validate-results.json`` (the run ends when the tier is
done). The host's load average and core count are printed beside the figure, because a
shared machine's other work slows the refapp and so the seeds.

Usage: ``python benchmarks/bench_tier3.py [--tier pr] [--walkers 16] [--limit-s 300]``.
Exit status 0 when every seed passed within the limit, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", default="pr", choices=("pr", "nightly", "weekend"))
    parser.add_argument("--walkers", type=int, default=16, help="tier3 walkers in total")
    parser.add_argument("--concurrency", type=int, default=5, help="Tier 1 walkers alongside")
    parser.add_argument("--limit-s", type=float, default=300.0, help="pass/fail threshold")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="assay-bench-tier3-") as tmp:
        command = [sys.executable, "-m", "coordinator", "run", "--tier3", args.tier,
                   "--tier3-walkers", str(args.walkers), "--concurrency",
                   str(args.concurrency), "--results", tmp, "--duration", "3600s"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.monotonic() - started
        load_after = os.getloadavg()
        runs = sorted(Path(tmp).glob("*/validate-results.json"))
        if not runs:
            sys.stderr.write(done.stderr[-3000:])
            return 1
        document = json.loads(runs[-1].read_text())
    tier3 = document["tier_3"]
    latency = document["tier_1"]["slices"].get("tier3", {}).get("latency", {}).get(
        "tier3.latency", {})
    summary = {
        "tier": args.tier, "seeds": tier3["seeds"], "attempted": tier3["attempted"],
        "passed": tier3["passed"], "failed": tier3["failed"], "errored": tier3["errored"],
        "run_elapsed_s": document["elapsed_s"], "wall_s": round(wall, 1),
        "seed_latency_ms": {k: latency.get(k) for k in ("p50_ms", "p90_ms", "max_ms")},
        "walkers": args.walkers, "tier1_walkers": args.concurrency,
        "cpus": os.cpu_count(), "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after], "exit_code": done.returncode,
    }
    print(json.dumps(summary, indent=1))
    ok = (tier3["attempted"] == tier3["seeds"] and tier3["failed"] == tier3["errored"] == 0
          and document["elapsed_s"] <= args.limit_s)
    print(f"tier {args.tier}: {tier3['attempted']}/{tier3['seeds']} seeds, "
          f"{tier3['passed']} passed, in {document['elapsed_s']:.1f} s of run time "
          f"({wall:.1f} s wall, load {load_before[0]:.2f} -> {load_after[0]:.2f} on "
          f"{os.cpu_count()} cores): {'OK' if ok else 'NOT OK'} (limit {args.limit_s:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
