"""Breadth-first growth of request sequences (RESTler's algorithm), as a pure planner.

How this works: level 1 holds every fuzzable operation that consumes nothing. A sequence
whose every step answered 2xx is *valid* and, if its last step changed something (not a
GET/HEAD: appending to a read reaches no state its prefix did not), is extended at the
next level by every operation whose dependencies a producer in it satisfies; the binding
takes the latest such producer, so after ``create, delete`` a ``read`` addresses the
deleted resource, which is exactly what the use-after-delete and double-delete checkers
need. Each valid sequence ending in a body-carrying step also spawns *fuzz variants*: that
step with a boundary body and with each kind of invalid body, wrapped in list requests of
its resource (before and after) when the spec has one, so a rejected request's side
effects can be seen. Variants are never extended.

The planner proposes (``next_sequence``) and learns (``record``); the caller runs each
sequence. Bounds: ``max_length`` steps, ``max_sequences`` proposals; time is the caller's.
The same seed against the same behaviour proposes the same sequences with the same bodies.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from protocols.openapi_operations import ApiSpec
from protocols.tier2_graph import LIST, Graph
from protocols.tier2_payloads import (
    Payload,
    boundary_body,
    example_body,
    invalid_bodies,
    valid_body,
)
from protocols.tier2_sequences import Binding, Exchange, Step

_SAFE = ("GET", "HEAD", "OPTIONS")


@dataclass
class PlannerStats:
    proposed: int = 0
    valid: int = 0
    variants: int = 0
    by_length: dict[int, int] = field(default_factory=dict)


class Planner:
    def __init__(self, api: ApiSpec, graph: Graph, seed: int, *, max_length: int = 4,
                 max_sequences: int = 100_000, setup_body: Any = None) -> None:
        self.api = api
        self.ops = api.by_id()
        self.graph = graph
        self.rng = random.Random(seed)
        self.max_length = max_length
        self.max_sequences = max_sequences
        self.stats = PlannerStats()
        self.fuzzable = graph.fuzzable(self.ops)
        self._queue: deque[tuple[tuple[Step, ...], bool]] = deque()
        self._seen: set[tuple[Any, ...]] = set()
        self._setup: tuple[Step, ...] = ()
        if graph.setup is not None:
            op = self.ops[graph.setup]
            if op.request_schema is not None:
                body = setup_body if setup_body is not None else \
                    example_body(op.request_schema, self.rng)
                self._setup = (Step(graph.setup, "valid", body),)
            else:
                self._setup = (Step(graph.setup),)
        for op_id in self.fuzzable:
            if not graph.consumers.get(op_id):
                self._push((*self._setup, self._step(op_id, ())), extend=True)

    @property
    def setup_steps(self) -> tuple[Step, ...]:
        return self._setup

    def next_sequence(self) -> tuple[tuple[Step, ...], bool] | None:
        """(steps, is_variant) of the next sequence to run, or None when exhausted."""
        if not self._queue or self.stats.proposed >= self.max_sequences:
            return None
        steps, extend = self._queue.popleft()
        self.stats.proposed += 1
        length = len(steps) - len(self._setup)
        self.stats.by_length[length] = self.stats.by_length.get(length, 0) + 1
        return steps, not extend

    def record(self, steps: tuple[Step, ...], exchanges: list[Exchange], is_variant: bool
               ) -> None:
        """Learn from a run of ``steps``: extend it if it was valid (every step 2xx)."""
        if is_variant or len(exchanges) < len(steps) or not all(e.ok for e in exchanges):
            return
        self.stats.valid += 1
        last = self.ops[steps[-1].op_id]
        if last.request_schema is not None and steps[-1].payload == "valid":
            self._variants(steps)
        produces = exchanges[-1].produced is not None
        if (last.method in _SAFE and not produces) or \
                len(steps) - len(self._setup) >= self.max_length:
            return
        for op_id in self.fuzzable:
            binds = self._bindings(op_id, steps, exchanges)
            if binds is not None:
                self._push((*steps, self._step(op_id, binds)), extend=True)

    # -- building ----------------------------------------------------------------------

    def _step(self, op_id: str, binds: tuple[Binding, ...],
              payload: Payload | None = None) -> Step:
        schema = self.ops[op_id].request_schema
        if schema is None:
            return Step(op_id, "none", None, binds)
        payload = payload or valid_body(schema, self.rng)
        return Step(op_id, payload.kind, payload.body, binds)

    def _bindings(self, op_id: str, steps: tuple[Step, ...],
                  exchanges: list[Exchange]) -> tuple[Binding, ...] | None:
        wanted = self.graph.consumers.get(op_id, ())
        binds = []
        for consumer in wanted:
            source = next((e.index for e in reversed(exchanges)
                           if e.produced and e.produced[0] == consumer.resource), None)
            if source is None:
                return None
            binds.append(Binding(consumer.name, consumer.where, source))
        return tuple(binds)

    def _variants(self, steps: tuple[Step, ...]) -> None:
        last = steps[-1]
        schema = self.ops[last.op_id].request_schema
        payloads: list[Payload] = []
        boundary = boundary_body(schema, self.rng)
        if boundary is not None:
            payloads.append(boundary)
        payloads.extend(invalid_bodies(schema, self.rng))
        lister = self._lister(self.graph.resources.get(last.op_id, ""))
        for payload in payloads:
            mutated = Step(last.op_id, payload.kind, payload.body, last.binds)
            if lister is not None and payload.invalid:
                # the list goes in after every producer the step binds to: no renumbering
                variant = (*steps[:-1], Step(lister), mutated, Step(lister))
            else:
                variant = (*steps[:-1], mutated)
            if self._push(variant, extend=False):
                self.stats.variants += 1

    def _lister(self, resource: str) -> str | None:
        if not resource:
            return None
        return next((op for op in self.fuzzable if self.graph.roles.get(op) == LIST
                     and self.graph.resources.get(op) == resource
                     and not self.graph.consumers.get(op)), None)

    def _push(self, steps: tuple[Step, ...], *, extend: bool) -> bool:
        key = (tuple((s.op_id, s.payload, tuple(b.source for b in s.binds)) for s in steps),
               extend)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._queue.append((steps, extend))
        return True
