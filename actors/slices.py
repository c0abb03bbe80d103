"""The slice registry: slice name -> the module that implements its walker.

A slice module exposes ``async def run(ctx: WalkerContext) -> None`` and may expose
``def prepare(settings: dict) -> dict`` to parse shared inputs (a Markov model, a spec) once
per actor rather than once per walker. Slices whose module is absent are simply not
offered, so the coordinator never plans walkers that cannot run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: name -> (module path, weight in percent of walkers, counter that counts exchanges,
#: counter that counts errors on our side)
SLICES: dict[str, tuple[str, int, str, str]] = {
    "markov": ("actors.markov_walker", 60, "markov.requests", "markov.errors"),
    "adv": ("actors.adversarial", 20, "adv.sent", "adv.unjudged"),
    "h2c": ("actors.h2c_churn", 10, "h2c.sent", "h2c.errors"),
    "tls": ("actors.tls_abuse", 10, "tls.sent", "tls.unjudged"),
    "ws": ("actors.ws_torture", 5, "ws.sessions", "ws.errors"),
    "sse": ("actors.sse_kill", 5, "sse.sent", "sse.errors"),
    "h2flood": ("actors.h2_flood", 5, "h2flood.sent", "h2flood.unjudged"),
    "h2": ("actors.h2_torture", 5, "h2.sent", "h2.unjudged"),
    # Weight 0: never planned by share; ``--spec`` takes its walkers from markov's share
    # (coordinator.tier2_slice), so a run without a spec plans as if it were absent.
    "tier2": ("actors.tier2_walker", 0, "tier2.requests", "tier2.aborted"),
    # Weight 0: never planned by share; ``--tier3`` adds its walkers explicitly.
    "tier3": ("actors.tier3", 0, "tier3.attempted", "tier3.errored"),
    # Weight 0 too: ``assay load`` plans one load walker per actor itself.
    "load": ("actors.load_walker", 0, "load.requests", "load.errors"),
    # And ``assay hold``: one hold walker per actor, each dialing its share.
    "hold": ("actors.hold_walker", 0, "hold.dialed", "hold.connect_failed"),
    # And ``assay loris``: one loris walker (the attack) and one load walker (the control
    # traffic) per actor.
    "loris": ("actors.loris_walker", 0, "loris.opened", "loris.connect_failed"),
    # And ``assay watch``: one watch walker per actor, each running its share of clients.
    "watch": ("actors.watch_walker", 0, "watch.requests", "watch.failed"),
    # And ``assay proxy``: one proxy walker per actor, each sending its share of cases.
    "proxy": ("actors.proxy_walker", 0, "proxy.sent", "proxy.errors"),
}

#: Slices that only make sense on one scheme: an h2c upgrade is cleartext by definition
#: (RFC 7540 §3.2 "HTTP/2 over cleartext TCP"), TLS-level torture needs TLS.
SCHEME_ONLY: dict[str, str] = {"h2c": "http", "tls": "https"}

_loaded: dict[str, ModuleType] = {}


def load(name: str) -> ModuleType:
    module = _loaded.get(name)
    if module is None:
        module = importlib.import_module(SLICES[name][0])
        if not callable(getattr(module, "run", None)):
            raise ImportError(f"{SLICES[name][0]} has no run(ctx)")
        _loaded[name] = module
    return module


def for_scheme(names: list[str], scheme: str) -> list[str]:
    """``names`` without the slices that do not apply to a ``scheme`` target."""
    return [n for n in names if SCHEME_ONLY.get(n, scheme) == scheme]


def available() -> list[str]:
    """Slices whose walker module imports cleanly, in registry order."""
    names = []
    for name in SLICES:
        try:
            load(name)
        except ImportError:
            continue
        names.append(name)
    return names
