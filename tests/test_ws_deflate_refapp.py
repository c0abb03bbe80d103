"""permessage-deflate cases against the refapp: silent when correct, the bomb defect caught."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest
import trio
from torture_servers import high_counters, walker_ctx

from actors import ws_torture
from protocols.ws_deflate_cases import CASES

launch = pytest.importorskip("refapp.launch")

pytestmark = pytest.mark.integration

NAMES = [case.name for case in CASES]
WS = {"ws_timeout": 2.0, "ws_case_timeout": 1.0, "ws_cases": NAMES}


def _walk(*defects: str, seconds: float, names: list[str] = NAMES):
    with launch.start_refapp(defects=defects, stderr=subprocess.DEVNULL) as process:
        port = urlsplit(process.url).port or 0

        async def main():
            ctx = walker_ctx(port, "ws", {**WS, "ws_cases": names}, seconds)
            await ws_torture.run(ctx)
            return ctx

        return trio.run(main)


def test_correct_refapp_passes_every_deflate_case() -> None:
    ctx = _walk(seconds=4.0)
    counters = ctx.tally.counters
    assert high_counters(counters) == {} and ctx.violations == []
    bad = {k: v for k, v in counters.items()
           if k.endswith((".violation", ".lenient", ".unjudged")) or "must_violation" in k}
    assert bad == {}, bad
    for name in NAMES:
        assert counters.get(f"ws.case.{name}.pass"), f"{name} did not pass: {counters}"
    assert "ws.deflate_unsupported" not in counters


def test_deflate_bomb_defect_is_caught() -> None:
    # Inflating the bomb takes the refapp real CPU: on a loaded machine (two test workers)
    # a 2 s walk ended before the confirming re-send came back (unconfirmed).
    ctx = _walk("ws-deflate-bomb", seconds=6.0, names=["pmd_bomb"])
    counters = ctx.tally.counters
    assert counters.get("ws.deflate_bomb_inflated", 0) >= 1, counters
    assert counters["ws.must_violation"] == counters["ws.deflate_bomb_inflated"]
    example = ctx.tally.examples["ws.deflate_bomb_inflated"]
    assert "refused" in example["detail"] and example["rfc"] == "RFC 6455 §10.4"
