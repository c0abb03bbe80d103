"""Tier 2 speed and reach: sequences per second and operation/status coverage over time.

Runs the real path, ``assay tier2`` against the built-in refapp (its own spec), for
``--budget`` seconds with ``--max-length`` deep sequences (deep enough that breadth-first
growth is not exhausted before the budget) and no shrinking, then reads the coverage
timeline of ``validate-results.json`` at 1 and 5 minutes (or wherever the budget ends).
``--defects`` runs against the defective refapp instead and reports how long after the
start each finding bucket first appeared.

Usage: ``python benchmarks/bench_tier2.py [--budget 300] [--max-length 12] [--defects]``.

Measured (2-core VM, load ~2-4 from other work, seed 1, one connection):
correct refapp, ``--max-length 12``: 9,628 sequences at 1 min (160/s), 42,029 at 5 min
(140/s, 469,351 requests), 7/7 operations answered 2xx and 13 operation/status pairs from
the first minute on, no finding. ``--max-length 8`` is exhausted after 7,029 sequences in
42 s. With the three ``api-*`` defects, 1 min: 11,233 sequences (187/s), all 4 buckets.
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
DEFECTS = ("api-delete-leaves-readable", "api-double-delete-500", "api-invalid-body-creates")


def at(points: list[list[float]], second: float) -> list[float] | None:
    """The last timeline point at or before ``second``."""
    before = [p for p in points if p[0] <= second + 0.5]
    return before[-1] if before else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--max-length", type=int, default=12)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--defects", action="store_true")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="assay-bench-tier2-") as tmp:
        command = [sys.executable, "-m", "coordinator", "tier2", "--budget",
                   f"{args.budget}s", "--max-length", str(args.max_length), "--seed",
                   args.seed, "--no-shrink", "--out", tmp]
        for name in DEFECTS if args.defects else ():
            command += ["--refapp-defect", name]
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.monotonic() - started
        path = Path(tmp) / "validate-results.json"
        if not path.is_file():
            sys.stderr.write(done.stderr[-3000:])
            return 1
        section = json.loads(path.read_text())["tier_2"]
    points = section["timeline"]["points"]
    marks = {}
    for label, second in (("1m", 60.0), ("5m", 300.0)):
        point = at(points, second)
        if point is not None and second <= section["elapsed_s"] + 0.5:
            marks[label] = {"sequences": point[1], "sequences_per_s": round(point[1] / point[0], 1),
                            "status_pairs": point[2], "buckets": point[3]}
    cov = section["coverage"]
    summary = {
        "budget_s": args.budget, "max_length": args.max_length, "exit": done.returncode,
        "stopped_by": section["stopped_by"], "sequences": section["sequences"],
        "sequences_per_s": section["sequences_per_s"], "requests": section["requests"],
        "operations_2xx": f"{cov['operations_2xx']}/{cov['operations']}",
        "status_pairs": cov["status_pairs"], "at": marks,
        "by_length": section["planner"].get("by_length"),
        "findings": {f["bucket"]: {"count": f["count"], "first_seen_s": f["first_seen_s"],
                                   "first_sequence": f["first_sequence"]}
                     for f in section["findings"]},
        "wall_s": round(wall, 1), "cpus": os.cpu_count(),
        "load": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
