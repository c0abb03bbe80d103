"""Adversarial cases per second against nginx: the grown catalogue against the pre-change one.

What it measures: two groups of adversarial walkers run side by side, in one trio process,
against the same nginx for the same time (the rate of each, taken in the same run, is what
makes the ratio meaningful on a shared machine):

* ``current``: the whole catalogue of ``protocols.adversarial_cases`` (252+ cases);
* ``pre-change``: the 69 cases of the catalogue at commit ``a233655``, before it grew. Their
  names are read from that commit (``git show a233655:protocols/adversarial_cases.py``
  loaded as a temporary module) and their bytes checked equal to today's cases of the same
  name, so the group sends exactly what the old catalogue sent (through today's walker and
  oracle, which is what a run would use).

Each group has its own deck, tally and walkers, with the walker's default settings
(confirmation on). Reported per group: cases judged per second (``adv.sent``), the ratio
current / pre-change (target: within 10 %, i.e. >= 0.90), and the share of cases in each
group that waited for a deadline (hangs are what a catalogue's rate depends on).

Run: ``python benchmarks/bench_adv_cases.py [--seconds 20 --walkers 4 --rounds 3]``.
Exit 0 when it ran, 2 when nginx or the pre-change commit is not available.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from actors import adversarial  # noqa: E402
from actors.walker import Target, WalkerContext  # noqa: E402
from protocols.adversarial_cases import BY_NAME, CASES, AdversarialCase  # noqa: E402
from protocols.tally import Tally  # noqa: E402
from tests.servers import nginx  # noqa: E402

PRE_CHANGE = "a233655"


def pre_change_cases(commit: str = PRE_CHANGE) -> tuple[AdversarialCase, ...] | None:
    """Today's cases named by the catalogue at ``commit``, bytes checked equal; None when the
    commit cannot be read (a shallow clone)."""
    shown = subprocess.run(["git", "show", f"{commit}:protocols/adversarial_cases.py"],
                           cwd=REPO, capture_output=True)
    if shown.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "assay_pre_change_cases.py"
        path.write_bytes(shown.stdout)
        spec = importlib.util.spec_from_file_location("assay_pre_change_cases", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    old = module.CASES
    for case in old:
        for host, path_ in (("127.0.0.1:8080", "/"), ("h.test", "/a?b=1")):
            if case.build(host, path_) != BY_NAME[case.name].build(host, path_):
                raise SystemExit(f"case {case.name} changed bytes since {commit}")
    return tuple(BY_NAME[case.name] for case in old)


def _group(url: str, cases: tuple[AdversarialCase, ...], walkers: int, seconds: float,
           seed: int, actor: int) -> list[WalkerContext]:
    settings = adversarial.prepare({})
    settings["adv_deck"] = adversarial.CaseDeck(cases)
    tally = Tally()
    return [WalkerContext(
        actor_id=actor, walker_id=walker, slice_name="adv", seed=seed,
        rng=random.Random(f"{seed}/{walker}"), target=Target.from_url(url), tally=tally,
        settings=settings, deadline=trio.current_time() + seconds,
        violation_sink=lambda _w, _c, _p: None) for walker in range(walkers)]


def measure(url: str, groups: dict[str, tuple[AdversarialCase, ...]], walkers: int,
            seconds: float, seed: int) -> dict[str, Any]:
    contexts: dict[str, list[WalkerContext]] = {}

    async def main() -> None:
        for actor, (name, cases) in enumerate(groups.items()):
            contexts[name] = _group(url, cases, walkers, seconds, seed, actor)
        async with trio.open_nursery() as nursery:
            for group in contexts.values():
                for ctx in group:
                    nursery.start_soon(adversarial.run, ctx)

    trio.run(main)
    rows: dict[str, Any] = {}
    for name, group in contexts.items():
        counters = group[0].tally.counters
        sent = counters.get("adv.sent", 0)
        hangs = sum(v for k, v in counters.items() if k == "adv.hang_until_timeout")
        rows[name] = {"cases": len(groups[name]), "sent": sent,
                      "cases_per_s": round(sent / seconds, 2), "hang_until_timeout": hangs}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--walkers", type=int, default=4, help="walkers per group")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        print("nginx not on PATH")
        return 2
    old = pre_change_cases()
    if old is None:
        print(f"commit {PRE_CHANGE} not available (shallow clone?)")
        return 2
    groups = {"current": tuple(CASES), "pre-change": old}
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, nginx(Path(tmp)) as (url, _proc):
        for round_ in range(args.rounds):
            rows = measure(url, groups, args.walkers, args.seconds, args.seed + round_)
            base = rows["pre-change"]["cases_per_s"]
            rows["ratio"] = round(rows["current"]["cases_per_s"] / base, 3) if base else None
            rounds.append(rows)
            print(f"round {round_ + 1}: current {rows['current']['cases_per_s']} cases/s "
                  f"({rows['current']['cases']} cases), pre-change "
                  f"{rows['pre-change']['cases_per_s']} cases/s ({rows['pre-change']['cases']} "
                  f"cases), ratio {rows['ratio']}")
    ratios = sorted(r["ratio"] for r in rounds if r["ratio"] is not None)
    median = ratios[len(ratios) // 2] if ratios else None
    print(f"median ratio current / pre-change: {median} (target >= 0.90)")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "median_ratio": median}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
