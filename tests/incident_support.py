"""Test support for the incident path: real walker evidence from a defective refapp.

``harvest`` runs one slice's real walker (the same code an actor runs) against a refapp
with the given defect until the walker reports its first violation, and returns exactly
what ``WalkerContext.report_violation`` handed to the actor: the counter and the evidence,
ring of recent exchanges included. Tests then feed that to the incident path, without a
whole coordinator run.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from actors.walker import Target, WalkerContext, walker_rng
from protocols.tally import Tally
from refapp.launch import RefappProcess, start_refapp

ROOT = Path(__file__).resolve().parent.parent
MODULES = {"adv": "actors.adversarial", "ws": "actors.ws_torture", "h2c": "actors.h2c_churn",
           "sse": "actors.sse_kill", "markov": "actors.markov_walker"}

#: Per predicate: (defect, slice, walker settings that trip it within a second or so).
FAST: dict[str, tuple[str, str, dict[str, Any]]] = {
    "I-ADV-ACCEPTED": ("accept-conflicting-content-length", "adv",
                       {"adv_timeout": 1.0, "adv_grace": 0.1,
                        "adv_cases": ["chunk-ext-invalid", "cl-conflicting"]}),
    "I-ADV-DESYNC": ("cl-te-desync", "adv",
                     {"adv_timeout": 1.0, "adv_grace": 0.1, "adv_cases": ["cl-te-smuggle"]}),
    "I-WS-ACCEPTED": ("ws-accept-unmasked", "ws",
                      {"ws_timeout": 2.0, "ws_case_timeout": 0.5, "ws_cases": ["unmasked_text"]}),
    "I-WS-HANG": ("ws-hang-on-bad-frame", "ws",
                  {"ws_timeout": 2.0, "ws_case_timeout": 0.5,
                   "ws_cases": ["reserved_opcode_5"]}),
    "I-H2C-CRASHED": ("h2c-crash", "h2c", {"h2c_timeout": 1.0, "h2c_probe_pause_s": 0.2,
                                           "h2c_stages": ["request_sent"]}),
    "I-SSE-LEAK": ("sse-leak-on-reset", "sse",
                   {"sse_timeout": 1.0, "sse_hold_ms": [10, 30], "sse_leak_check_every": 5,
                    "sse_leak_grace_s": 0.3, "stats_url": "/stats",
                    "stats_field": "sse_subscribers"}),
    "I-DRV-1": ("lost-write", "markov", {"request_timeout_s": 5.0}),
}


def markov_settings() -> dict[str, Any]:
    return {"markov": {"model_text": (ROOT / "refapp/markov.yaml").read_text(),
                       "model_source": "refapp/markov.yaml",
                       "spec_text": (ROOT / "refapp/openapi.yaml").read_text(),
                       "spec_source": "refapp/openapi.yaml"}}


@contextlib.contextmanager
def refapp(*defects: str) -> Iterator[RefappProcess]:
    process = start_refapp(defects=defects, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.stop()


def url_of(process: RefappProcess) -> str:
    return process.url.rstrip("/") + "/"


async def _harvest(url: str, slice_name: str, settings: dict[str, Any],
                   seconds: float) -> tuple[str, dict[str, Any]]:
    module = importlib.import_module(MODULES[slice_name])
    prepared = dict(settings)
    if slice_name == "markov":
        prepared.update(markov_settings())
    prepare = getattr(module, "prepare", None)
    if prepare is not None:
        prepared = prepare(prepared)
    got: list[tuple[str, dict[str, Any]]] = []
    ctx = WalkerContext(actor_id=0, walker_id=3, slice_name=slice_name, seed=99,
                        rng=walker_rng(99, 0, 3), target=Target.from_url(url), tally=Tally(),
                        settings=prepared, deadline=trio.current_time() + seconds,
                        violation_sink=lambda walker, counter, ev: got.append((counter, ev)))

    async def until_first(scope: trio.CancelScope) -> None:
        while not got:
            await trio.sleep(0.02)
        scope.cancel()

    with trio.move_on_after(seconds + 5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_first, nursery.cancel_scope)
            await module.run(ctx)
            nursery.cancel_scope.cancel()
    assert got, f"the {slice_name} walker reported no violation in {seconds} s"
    return got[0]


_HARVESTED: dict[str, tuple[str, dict[str, Any], str]] = {}


def harvest(invariant: str, seconds: float = 10.0) -> tuple[str, dict[str, Any], str]:
    """(counter, evidence, defect) of the first violation of ``invariant``'s defect.

    Cached per test session: evidence is plain data, and a walker run costs a second.
    """
    held = _HARVESTED.get(invariant)
    if held is None:
        defect, slice_name, settings = FAST[invariant]
        with refapp(defect) as process:
            counter, evidence = trio.run(_harvest, url_of(process), slice_name, settings,
                                         seconds)
        held = _HARVESTED[invariant] = (counter, evidence, defect)
    return held
