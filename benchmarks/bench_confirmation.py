"""The cost of confirmation: adversarial case rate with and without it, in the same run.

What it measures: two groups of adversarial walkers run side by side, in one trio process,
against the same target for the same time: one with ``adv_confirm_tries`` = 2 (the default:
every violation is re-sent alone, twice, before it counts; a hang also fetches the baseline
again), one with confirmation off (0). Each group has its own deck over the whole catalogue
and its own tally. Reported per group: cases judged per second (``adv.sent``, first sendings
only), the re-sends confirmation made, violations confirmed / unconfirmed, and the
violations that counted. The ratio of the two rates is the cost; taking both in the same
run on the same target is what makes it meaningful on a shared machine.

Targets: nginx (a correct server: confirmation should almost never run, so the cost should
be about nil) and the built-in refapp with defects that make cases fail
(``accept-conflicting-content-length``, ``cl-te-desync``: confirmation runs on every such
case, so this is its real cost). Without nginx on PATH the nginx target is skipped.

Run: ``python benchmarks/bench_confirmation.py [--seconds 15 --walkers 4 --json out.json]``.
Exit 0 when it ran, 2 when no target could be started.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from actors import adversarial  # noqa: E402
from actors.walker import Target, WalkerContext  # noqa: E402
from protocols.tally import Tally  # noqa: E402

DEFECTS = ("accept-conflicting-content-length", "cl-te-desync")


@contextmanager
def refapp(defects: tuple[str, ...]) -> Iterator[str]:
    from servers import free_port, wait_for_port

    port = free_port()
    args = [sys.executable, "-m", "coordinator", "refapp", "--port", str(port)]
    args += [f"--defect={d}" for d in defects]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 20)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def nginx_target() -> Iterator[str | None]:
    if shutil.which("nginx") is None:
        yield None
        return
    from servers import nginx

    with tempfile.TemporaryDirectory() as tmp, nginx(Path(tmp)) as (url, _proc):
        yield url


def _group(url: str, tries: int, walkers: int, seconds: float, seed: int) -> list[WalkerContext]:
    # The same seed for both groups: their decks deal the catalogue in the same order.
    settings = adversarial.prepare({"adv_confirm_tries": tries})
    tally = Tally()
    reports: list[str] = []
    contexts = []
    for walker in range(walkers):
        contexts.append(WalkerContext(
            actor_id=tries, walker_id=walker, slice_name="adv", seed=seed,
            rng=random.Random(f"{seed}/{walker}"), target=Target.from_url(url),
            tally=tally, settings=settings, deadline=trio.current_time() + seconds,
            violation_sink=lambda _w, counter, _p: reports.append(counter)))
    return contexts


def measure(url: str, walkers: int, seconds: float, seed: int) -> dict[str, Any]:
    """Both groups at once against ``url``; one row per group."""
    groups: dict[str, list[WalkerContext]] = {}

    async def main() -> None:
        groups["confirm"] = _group(url, 2, walkers, seconds, seed)
        groups["no-confirm"] = _group(url, 0, walkers, seconds, seed)
        async with trio.open_nursery() as nursery:
            for contexts in groups.values():
                for ctx in contexts:
                    nursery.start_soon(adversarial.run, ctx)

    trio.run(main)
    rows: dict[str, Any] = {}
    for name, contexts in groups.items():
        counters = contexts[0].tally.counters
        counted = sum(v for k, v in counters.items()
                      if k.startswith("adv.case.") and k.endswith(".violation"))
        rows[name] = {
            "cases": counters.get("adv.sent", 0),
            "cases_per_s": round(counters.get("adv.sent", 0) / seconds, 1),
            "resent": counters.get("adv.confirm_sent", 0),
            "confirmed": counters.get("adv.confirmed", 0),
            "unconfirmed": counters.get("adv.unconfirmed", 0),
            "violations_counted": counted,
            "violating_cases": sorted(k[len("adv.case."):-len(".violation")] for k in counters
                                      if k.startswith("adv.case.") and k.endswith(".violation")),
        }
    off = rows["no-confirm"]["cases_per_s"]
    rows["rate_ratio"] = round(rows["confirm"]["cases_per_s"] / off, 3) if off else None
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--walkers", type=int, default=4, help="walkers per group")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with nginx_target() as url:
        if url is not None:
            results["nginx"] = measure(url, args.walkers, args.seconds, args.seed)
        else:
            print("nginx not on PATH: skipped")
    with refapp(DEFECTS) as url:
        results["refapp+" + ",".join(DEFECTS)] = measure(url, args.walkers, args.seconds,
                                                        args.seed)
    if not results:
        return 2
    print(f"{'target':<60} {'group':<11} {'cases/s':>8} {'resent':>7} {'conf':>5} "
          f"{'unconf':>6} {'counted':>7}")
    for target, rows in results.items():
        for group in ("confirm", "no-confirm"):
            row = rows[group]
            print(f"{target:<60} {group:<11} {row['cases_per_s']:>8} {row['resent']:>7} "
                  f"{row['confirmed']:>5} {row['unconfirmed']:>6} {row['violations_counted']:>7}")
        print(f"{target:<60} rate with / without confirmation: {rows['rate_ratio']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
