"""The adversarial slice against real servers: refapp (correct and defective) and nginx.

Each run is one sequential pass over the catalogue (no load), with short deadlines. The
claims are the ones that matter for verdicts: a correct server produces zero HIGH counters,
and the injected defects are caught.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.adversarial import AdvSettings, BaselineCache, probe
from actors.walker import Target, WalkerContext
from protocols.adversarial_cases import CASES
from protocols.tally import Tally
from refapp.launch import start_refapp
from tests.servers import nginx

pytestmark = pytest.mark.integration

SETTINGS = {"adv_timeout": 1.0, "adv_grace": 0.15, "adv_drip_max": 0.3}
HIGH = ("adv.wrong_accepted", "adv.desync")


def sweep(url: str, names: Sequence[str] = ()) -> tuple[Tally, list[tuple[str, dict[str, Any]]]]:
    """Probe each case once (all of them unless ``names``); return the tally and reports."""
    reports: list[tuple[str, dict[str, Any]]] = []
    box: list[Tally] = []

    async def main() -> None:
        ctx = WalkerContext(
            actor_id=0, walker_id=0, slice_name="adv", seed=1, rng=random.Random(1),
            target=Target.from_url(url), tally=Tally(), settings=SETTINGS,
            deadline=trio.current_time() + 600,
            violation_sink=lambda walker, counter, payload: reports.append((counter, payload)),
        )
        settings = AdvSettings.from_mapping(ctx.settings)
        cache = BaselineCache(settings)
        # Six probes at once (each on its own connections): the 250-case catalogue would
        # take half a minute per target one by one.
        queue = iter([case for case in CASES if not names or case.name in names])

        async def worker() -> None:
            for case in queue:
                assert await probe(ctx, case, settings, cache), case.name

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(worker)
        box.append(ctx.tally)

    trio.run(main)
    return box[0], reports


def describe(reports: list[tuple[str, dict[str, Any]]]) -> str:
    return "; ".join(f"{c} {p['case']}: {p['reason']} {p['received'][:80]!r}" for c, p in reports)


@pytest.mark.parametrize("path", ["/healthz", "/"])
def test_correct_refapp_trips_no_high_counter(path: str) -> None:
    with start_refapp(stderr=subprocess.DEVNULL) as app:
        tally, reports = sweep(app.url.rstrip("/") + path)
    assert tally.counters["adv.sent"] == len(CASES)
    assert not any(tally.counters.get(name) for name in HIGH), describe(reports)
    assert reports == []


def test_defective_refapp_is_caught() -> None:
    names = ["cl-conflicting", "cl-conflicting-list", "cl-te-smuggle", "te-cl-smuggle"]
    defects = ["accept-conflicting-content-length", "cl-te-desync"]
    with start_refapp(defects=defects, stderr=subprocess.DEVNULL) as app:
        tally, reports = sweep(app.url.rstrip("/") + "/healthz", names)
    assert tally.counters["adv.wrong_accepted"] >= 2  # both conflicting-length cases
    assert tally.counters["adv.desync"] >= 3  # the first length, and CL over TE, both smuggle
    cases = {payload["case"] for counter, payload in reports if counter == "adv.desync"}
    assert {"cl-te-smuggle", "te-cl-smuggle", "cl-conflicting"} <= cases


def test_nginx_trips_no_high_counter(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _proc):
        tally, reports = sweep(url)
    assert tally.counters["adv.sent"] == len(CASES)
    assert not any(tally.counters.get(name) for name in HIGH), describe(reports)
    assert not tally.counters.get("adv.must_violation")
