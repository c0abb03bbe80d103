"""From the coordinator's plan to this actor's walkers: slice modules and their contexts.

Separate from ``actors.actor`` (the trio and ZeroMQ shell) because turning a plan into
walkers is plain data work done once, after the handshake: which slices this actor runs,
each slice's ``prepare``d settings, and its share of a catalogue split between actors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors import slices, tls
from actors.actor_lifecycle import ActorAbort, ActorState
from actors.walker import Target, WalkerContext, walker_rng
from protocols.tls_options import TlsOptions


def build_walkers(plan: dict[str, Any], state: ActorState,
                  violation_sink: Callable[[int, str, dict[str, Any]], None],
                  ) -> list[tuple[Any, WalkerContext]]:
    """This actor's walkers from the coordinator's plan: (slice module, context) pairs;
    ``ActorAbort`` when the plan does not fit (the actor exits non-zero)."""
    planned = plan.get("walkers")
    if isinstance(planned, dict) and str(state.actor_id) not in planned:
        raise ActorAbort(f"actor id {state.actor_id} is not in the coordinator's plan "
                         f"(planned ids: {', '.join(sorted(planned))})")
    try:
        target = Target.from_url(plan["target"])
        tls.install(TlsOptions.from_wire(plan.get("tls")))
        assignment = plan["walkers"][str(state.actor_id)]
        seed = int(plan["seed"])
        base_settings = dict(plan.get("settings", {}))
        prepared: dict[str, dict[str, Any]] = {}
        walkers = []
        for walker_id, slice_name in assignment:
            module = slices.load(slice_name)
            if slice_name not in prepared:
                prepare = getattr(module, "prepare", None)
                settings = dict(base_settings)
                settings["slice_share"] = _share(planned, slice_name, state.actor_id, seed)
                prepared[slice_name] = prepare(settings) if prepare else settings
            ctx = WalkerContext(
                actor_id=state.actor_id,
                walker_id=int(walker_id),
                slice_name=slice_name,
                seed=seed,
                rng=walker_rng(seed, state.actor_id, int(walker_id)),
                target=target,
                tally=state.tally,
                settings=prepared[slice_name],
                deadline=float("inf"),
                violation_sink=violation_sink,
            )
            walkers.append((module, ctx))
    except Exception as exc:
        raise ActorAbort(f"cannot build walkers from the plan: {exc!r}") from None
    return walkers


def _share(planned: dict[str, Any], slice_name: str, actor_id: int,
           seed: int) -> tuple[int, int, int]:
    """(this actor's rank among the actors running ``slice_name``, their count, run seed):
    lets a slice split a catalogue between actors (``adversarial.CaseDeck``) so that a short
    run covers it without two actors dealing the same stretch."""
    holders = sorted(int(actor) for actor, assigned in planned.items()
                     if any(name == slice_name for _, name in assigned))
    rank = holders.index(actor_id) if actor_id in holders else 0
    return rank, max(1, len(holders)), seed
