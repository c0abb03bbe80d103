"""Walker planning: how many walkers each slice gets and which actor runs them.

Slices are weighted (markov ~60 %, adversarial ~20 %, h2c ~10 %, ws ~5 %, sse ~5 %), but a
weight never rounds a slice down to zero walkers: a short, small run that never exercises
WebSocket or SSE is a known way to ship a bug. Shares follow the weights, every enabled
slice gets at least one walker, and the total is matched by largest remainder. When the
concurrency is smaller than the number of enabled slices it is raised to that number, and
the plan says so.

Walkers are dealt to actors round-robin in walker-id order, so every actor carries a mix of
slices and losing one actor never removes a whole slice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WalkerPlan:
    per_slice: dict[str, int]
    per_actor: dict[int, list[tuple[int, str]]]
    notes: list[str] = field(default_factory=list)
    #: Actor ids the coordinator plans for but does not spawn: actors on other load hosts.
    remote: tuple[int, ...] = ()

    @property
    def local(self) -> list[int]:
        return [a for a in self.per_actor if a not in self.remote]

    @property
    def total(self) -> int:
        return sum(self.per_slice.values())

    def walkers_wire(self) -> dict[str, list[list[int | str]]]:
        return {str(a): [[w, s] for w, s in ws] for a, ws in self.per_actor.items()}


def split_walkers(
    concurrency: int, weights: Mapping[str, int]
) -> tuple[dict[str, int], list[str]]:
    """Share ``concurrency`` walkers among slices, at least one each."""
    notes: list[str] = []
    names = [n for n, w in weights.items() if w > 0]
    if not names:
        return {}, ["no slice enabled"]
    if concurrency < len(names):
        notes.append(
            f"concurrency raised from {concurrency} to {len(names)} so every slice runs")
        concurrency = len(names)
    total_weight = sum(weights[n] for n in names)
    ideal = {n: concurrency * weights[n] / total_weight for n in names}
    counts = {n: max(1, int(ideal[n])) for n in names}
    while sum(counts.values()) < concurrency:  # hand out by largest shortfall
        name = max(names, key=lambda n: (ideal[n] - counts[n], -names.index(n)))
        counts[name] += 1
    while sum(counts.values()) > concurrency:  # the minimum of one overshot: take back
        name = max((n for n in names if counts[n] > 1),
                   key=lambda n: (counts[n] - ideal[n], names.index(n)))
        counts[name] -= 1
    return counts, notes


def assign_to_actors(per_slice: Mapping[str, int], procs: int) -> dict[int, list[tuple[int, str]]]:
    """Interleave slices in walker-id order, then deal walkers round-robin to actors."""
    queues = {name: count for name, count in per_slice.items()}
    order: list[str] = []
    while any(queues.values()):
        for name in per_slice:
            if queues[name] > 0:
                order.append(name)
                queues[name] -= 1
    per_actor: dict[int, list[tuple[int, str]]] = {a: [] for a in range(procs)}
    for walker_id, name in enumerate(order):
        per_actor[walker_id % procs].append((walker_id, name))
    return per_actor


def plan_walkers(
    concurrency: int, procs: int, enabled: Sequence[str], weights: Mapping[str, int],
    remote: int = 0,
) -> WalkerPlan:
    """``procs`` local actors (ids first) and ``remote`` actors on other hosts (ids after
    them) share the walkers alike. When there are more actors than walkers, local actors
    are dropped first: remote hosts were added on purpose, and every one of them is awaited.
    """
    chosen = {name: weights[name] for name in enabled}
    per_slice, notes = split_walkers(concurrency, chosen)
    total = sum(per_slice.values())
    if remote > total:
        raise ValueError(f"{remote} remote actors but only {total} walkers: raise "
                         "--concurrency to at least the number of actors")
    if remote == total:
        raise ValueError(f"{remote} remote actors leave no walker for the coordinator's own "
                         f"actor: raise --concurrency above {total}")
    if procs + remote > total:
        notes.append(f"procs reduced from {procs} to {total - remote}: one walker per actor "
                     "at least")
        procs = total - remote
    per_actor = assign_to_actors(per_slice, procs + remote)
    return WalkerPlan(per_slice, per_actor, notes, tuple(range(procs, procs + remote)))
