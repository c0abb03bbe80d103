"""What large messages cost the ws slice: its catalogue rate with ``--ws-max-message`` off and on.

What it measures: the whole ws slice as ``assay run --slices ws`` deals it (``actors.ws_torture
.run``: frame catalogue, handshake cases, permessage-deflate cases, and the large-message
ladder paced by ``actors.ws_large_walk.Pacer``), in one client process against the aiohttp
echo server of ``bench_ws.py`` (which echoes messages of any size), for the same time with
two budgets, one after the other, the order alternating by round:

* ``off``: ``ws_max_message`` 0, no large message;
* ``on``: ``ws_max_message`` = ``--budget`` (default 16 MiB, the run's default).

Reported per run: catalogue cases judged per second (every ``ws.case.<name>.<verdict>``
except the large ones), large messages per second and MiB/s sent, sessions per second, the
client's CPU seconds per wall second and its peak RSS. The ratio on / off of the catalogue
rate is what depth costs the rest of the slice; the peak RSS is what the large messages
cost in memory (every walker holds its own message while it runs one).

``ws_case_timeout`` is 1 s (as in docs/severity-calibration.md's server runs): aiohttp fails
some catalogue cases by hanging, and a 5 s wait would hide every other cost.

Run: ``python benchmarks/bench_ws_depth.py [--rounds 2 --seconds 20 --concurrency 8]``.
Exit 0 when it ran, 2 when aiohttp is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ws import REPO, _pinned, echo_server  # noqa: E402
from ws_bench_clients import assay_slice_client  # noqa: E402

MIB = 1 << 20


def run_one(budget: int, port: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [*_pinned(args.client_core), sys.executable, __file__, "--client",
               str(budget), "--port", str(port), "--seconds", str(args.seconds),
               "--concurrency", str(args.concurrency)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=args.seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"client failed: {done.stderr.strip()[-2000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    wall = got["wall_s"] or 1.0
    got.update(cases_per_s=got["catalogue_cases"] / wall, large_per_s=got["large_cases"] / wall,
               mib_per_s=got["large_bytes"] / wall / MIB, sessions_per_s=got["sessions"] / wall,
               cpu_share=got["cpu_s"] / wall)
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--budget", type=int, default=16 * MIB, help="bytes (16 MiB)")
    parser.add_argument("--client-core", type=int, default=None)
    parser.add_argument("--server-core", type=int, default=None)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client is not None:
        print(json.dumps(assay_slice_client(args.port, args.seconds, args.concurrency,
                                            args.client, 1.0)))
        return 0
    if importlib.util.find_spec("aiohttp") is None:
        print("bench_ws_depth: aiohttp is not installed", file=sys.stderr)
        return 2
    print(f"bench_ws_depth: {args.rounds} rounds x {args.seconds:g} s, concurrency "
          f"{args.concurrency}, budget {args.budget // MIB} MiB", flush=True)
    ratios = []
    with echo_server(args.server_core) as port:
        for round_no in range(args.rounds):
            budgets = (0, args.budget) if round_no % 2 == 0 else (args.budget, 0)
            got = {budget: run_one(budget, port, args) for budget in budgets}
            for budget in (0, args.budget):
                r = got[budget]
                print(f"round {round_no + 1} {'on ' if budget else 'off'} | catalogue "
                      f"{r['cases_per_s']:6.1f} cases/s | large {r['large_per_s']:5.2f} msg/s "
                      f"{r['mib_per_s']:6.1f} MiB/s | sessions {r['sessions_per_s']:6.1f}/s | "
                      f"CPU {r['cpu_share']:.2f} | peak RSS {r['max_rss_mib']:.0f} MiB",
                      flush=True)
            off = got[0]["cases_per_s"]
            ratios.append(got[args.budget]["cases_per_s"] / off if off else 0.0)
    print(f"catalogue rate on/off: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
