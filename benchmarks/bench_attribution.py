"""Crash attribution: time from the target's death to the ranked candidates, and to a
confirmed reproducer; and whether the killer was ranked first.

How this works: ``--rounds`` full ``assay run`` invocations against the built-in refapp
with the ``crash-on-ws-close-code`` defect (a WebSocket Close frame with a forbidden code
kills the process), every slice running (``--procs`` actors, ``--concurrency`` walkers),
one seed per round. Each run's I-LIVENESS incident is read back:

* ``death->noticed``: from the death (the last answer any walker or probe read before it,
  ``protocols.attribution.estimate_death``) to the health monitor's verdict;
* ``death->candidates``: to ``candidates.json`` written (collection from every actor and
  the ranking included);
* ``death->repro``: to a reproducer that killed a fresh refapp twice
  (``replay.crash_shrink``, single candidates in rank order first);
* ``rank``: where the first killing case (a ``close_code_*`` that the defect dies on) sits
  in the ranking.

Run: ``python benchmarks/bench_attribution.py [--rounds 3 --duration 6s --procs 2
--concurrency 10 --seed 9 --json out.json]``. Prints one line per round and the medians.
Exit 0 when it ran (whatever the figures), 2 when no round produced an incident.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KILLERS = {f"close_code_{code}" for code in (0, 999, 1005, 1006, 1015, 5000, 65535)}


def one_round(seed: int, args: argparse.Namespace) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="assay-bench-attr-") as out:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "coordinator", "run", "--duration", args.duration,
                        "--procs", str(args.procs), "--concurrency", str(args.concurrency),
                        "--refapp-defect", "crash-on-ws-close-code", "--seed", str(seed),
                        "--leak-probes", "off", "--results", out],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        wall = time.monotonic() - began
        incidents = sorted(Path(out).glob("*/incidents/*-I-LIVENESS/incident.json"))
        if not incidents:
            return None
        doc = json.loads(incidents[0].read_text())
        stage = doc["stages"].get("attribution", {})
        shrink = doc["stages"].get("shrink", {})
        ranked = json.loads((incidents[0].parent / "candidates.json").read_text())
        rank = next((c["rank"] for c in ranked["candidates"] if c["case"] in KILLERS), None)
        return {"seed": seed, "rank": rank, "top": f"{ranked['candidates'][0]['slice']}/"
                f"{ranked['candidates'][0]['case']}" if ranked["candidates"] else None,
                "candidates": len(ranked["candidates"]),
                "death_to_noticed_s": stage.get("death_to_noticed_s"),
                "death_to_candidates_s": stage.get("death_to_candidates_s"),
                "collect_s": stage.get("collect_s"),
                "shrink": shrink.get("status"),
                "death_to_repro_s": shrink.get("death_to_reproducer_s"),
                "run_wall_s": round(wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", default="6s")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seed", type=int, default=9, help="first seed (one per round)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for number in range(args.rounds):
        row = one_round(args.seed + number, args)
        if row is None:
            print(f"seed {args.seed + number}: no I-LIVENESS incident")
            continue
        rows.append(row)
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if not rows:
        return 2

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if isinstance(r[key], (int, float))]
        return round(statistics.median(values), 3) if values else None

    summary = {"rounds": len(rows), "killer_ranked_first": sum(r["rank"] == 1 for r in rows),
               "death_to_noticed_s": median("death_to_noticed_s"),
               "death_to_candidates_s": median("death_to_candidates_s"),
               "death_to_repro_s": median("death_to_repro_s"),
               "reproduced": sum(r["shrink"] == "shrunk" for r in rows)}
    print("median  " + "  ".join(f"{k}={v}" for k, v in summary.items()))
    if args.json:
        args.json.write_text(json.dumps({"rounds": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
