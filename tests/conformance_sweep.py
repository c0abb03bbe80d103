"""Run the adversarial catalogue once, sequentially, against one server: verdict per case.

Used by ``tests/test_conformance_servers.py`` and ``benchmarks/bench_adv_cases.py``: each
case goes through the walker's own ``probe`` (baseline, case, canary, oracle), with short
deadlines and no load, so a verdict here is the verdict the slice would record.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.adversarial import AdvSettings, BaselineCache, probe
from actors.walker import Target, WalkerContext
from protocols.adversarial_cases import CASES, AdversarialCase
from protocols.tally import Tally

SETTINGS = {"adv_timeout": 1.5, "adv_grace": 0.15, "adv_drip_max": 0.3, "adv_confirm_tries": 0}
VERDICTS = ("violation", "lenient", "pass", "unjudged")


@dataclass
class Sweep:
    """Per-case verdicts of one pass, the tally, and the HIGH reports."""

    verdicts: dict[str, str] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    elapsed: float = 0.0

    def with_verdict(self, verdict: str) -> list[str]:
        return sorted(name for name, seen in self.verdicts.items() if seen == verdict)

    def high(self) -> dict[str, set[str]]:
        """Cases behind each HIGH adversarial counter (other slices' reports left out: the
        response rules report through the same sink)."""
        out: dict[str, set[str]] = {}
        for counter, payload in self.reports:
            if counter.startswith("adv."):
                out.setdefault(counter, set()).add(str(payload.get("case")))
        return out


def sweep(url: str, cases: Iterable[AdversarialCase] = CASES,
          settings: dict[str, Any] | None = None, concurrency: int = 1) -> Sweep:
    """Probe each case once against ``url``; never raises on what the server does.

    ``concurrency`` probes run at once (each on its own connections), so a catalogue whose
    cases mostly wait on deadlines takes a fraction of the sequential time; 1 is the
    sequential pass a verdict-by-verdict comparison wants.
    """
    result = Sweep()
    chosen = list(cases)

    async def main() -> None:
        ctx = WalkerContext(
            actor_id=0, walker_id=0, slice_name="adv", seed=1, rng=random.Random(1),
            target=Target.from_url(url), tally=result.tally,
            settings=dict(settings or SETTINGS), deadline=trio.current_time() + 3600,
            violation_sink=lambda walker, counter, payload: result.reports.append(
                (counter, payload)),
        )
        adv = AdvSettings.from_mapping(ctx.settings)
        cache = BaselineCache(adv)
        started = trio.current_time()
        queue = iter(chosen)

        async def worker() -> None:
            for case in queue:
                await probe(ctx, case, adv, cache)

        async with trio.open_nursery() as nursery:
            for _ in range(max(1, concurrency)):
                nursery.start_soon(worker)
        result.elapsed = trio.current_time() - started

    trio.run(main)
    counters = result.tally.counters
    for case in chosen:
        for verdict in VERDICTS:
            if counters.get(f"adv.case.{case.name}.{verdict}"):
                result.verdicts[case.name] = verdict
                break
        else:
            result.verdicts[case.name] = "unjudged"
    return result


def example(result: Sweep, name: str) -> dict[str, Any] | None:
    """The kept example (or HIGH report) of a failing case, for a readable assertion."""
    for counter, payload in result.reports:
        if counter.startswith("adv.") and payload.get("case") == name:
            return {"counter": counter, **payload}
    for key in (f"adv.case.{name}.violation", f"adv.case.{name}.lenient"):
        if key in result.tally.examples:
            return result.tally.examples[key]
    return None


def failing(result: Sweep) -> str:
    """Each violated case with its reason and the first bytes received: the message of an
    assertion on a sweep's verdicts."""
    lines = []
    for name in result.with_verdict("violation"):
        seen = example(result, name) or {}
        lines.append(f"{name}: {seen.get('reason')} {seen.get('received', b'')[:120]!r}")
    return "\n".join(lines)
