"""A Markov model compiled for the walker's hot path: ``Plan``s and the ``PlannedRequest``.

How this works: each state (and the login) becomes a ``Plan`` once per session -- target
pieces split around ``{var}`` placeholders, the body (fixed bytes, or a schema to generate
from), counter names, and cumulative edge weights -- so that planning a request is string
joins, a dict lookup or two and one ``rng.random()``. Separate from ``protocols.markov``
because compiling is done once and knows nothing of responses, cookies or records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocols.markov_values import json_bytes
from protocols.openapi_bodies import write_only_properties

if TYPE_CHECKING:
    from protocols.markov_model import Expectation, Login, State
    from protocols.openapi import Spec
    from protocols.tally import Tally

#: ``PlannedRequest.state`` of the login request (state names cannot start with "_").
LOGIN_STATE = "_login"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_TEMPLATE_SPLIT = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request the walker is about to send; ``wire`` is the exact bytes."""

    state: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    wire: bytes
    is_login: bool = False


class Plan:
    """A state (or the login) compiled for the hot path."""

    __slots__ = (
        "body_bytes",
        "body_obj",
        "capture",
        "cum_weights",
        "expect",
        "forget",
        "free",
        "is_login",
        "last_request",
        "latency_counter",
        "latency_names",
        "literals",
        "method",
        "name",
        "read",
        "recorder",
        "recorder_tally",
        "schema",
        "static_target",
        "targets",
        "total_weight",
        "var_set",
        "vars",
        "weights",
        "write",
        "write_only",
        "write_vars_known",
    )

    def __init__(
        self, name: str, method: str, path: str, expect: Expectation, base_path: str
    ) -> None:
        self.name = name
        self.method = method
        self.expect = expect
        pieces = _TEMPLATE_SPLIT.split(base_path + path)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.vars: tuple[str, ...] = tuple(pieces[1::2])
        self.var_set = frozenset(self.vars)
        self.static_target: str | None = None if self.vars else base_path + path
        self.latency_counter = f"markov.latency.{name}"
        self.latency_names = ("markov.latency", self.latency_counter)
        #: ``recorder_tally.latency_recorder(latency_names)``, made once per tally.
        self.recorder: Callable[[float], None] | None = None
        self.recorder_tally: Tally | None = None
        self.is_login = False
        self.body_bytes: bytes | None = None
        self.body_obj: Any = None
        self.schema: Any = None
        self.write_only: frozenset[str] = frozenset()
        self.capture: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.write: str | None = None
        self.read: str | None = None
        self.forget: tuple[str, ...] = ()
        self.write_vars_known = False
        self.targets: tuple[Plan, ...] = ()
        self.weights: tuple[float, ...] = ()
        self.cum_weights: list[float] = []
        self.total_weight = 0.0
        self.free = True
        #: (target, cookie header, request) of the last request planned from a fixed body:
        #: a walker repeats the same request most of the time, and a ``PlannedRequest`` is
        #: frozen, so the same one can be handed out again.
        self.last_request: tuple[str, str | None, PlannedRequest] | None = None


def compile_state(
    state: State, spec: Spec | None, base: str, key_vars: Mapping[str, tuple[str, ...]]
) -> Plan:
    """A model state as a ``Plan``; its edges are filled in by ``link_plan`` once all exist."""
    plan = Plan(state.name, state.method, state.path, state.expect, base)
    if state.body is not None:
        plan.body_obj = state.body
        plan.body_bytes = json_bytes(state.body)
    elif spec is not None and state.method in _BODY_METHODS:
        route = spec.find_route(state.method, state.path)
        if route is not None and route.request_schema is not None:
            plan.schema = route.request_schema
            plan.write_only = write_only_properties(route.request_schema)
    plan.capture = tuple((c.var, c.path) for c in state.capture)
    plan.write, plan.read, plan.forget = state.write, state.read, state.forget
    if state.write:
        known = set(state.path_vars) | {c.var for c in state.capture}
        plan.write_vars_known = set(key_vars.get(state.write, ())) <= known
    return plan


def link_plan(plan: Plan, state: State, plans: Mapping[str, Plan]) -> None:
    """Point ``plan`` at its edges' plans, with cumulative weights for ``bisect`` sampling."""
    plan.targets = tuple(plans[e.target] for e in state.edges)
    plan.weights = tuple(e.weight for e in state.edges)
    total = 0.0
    for weight in plan.weights:
        total += weight
        plan.cum_weights.append(total)
    plan.total_weight = total
    plan.free = not any(t.vars for t in plan.targets)


def compile_login(login: Login, base: str) -> Plan:
    """The model's login request as a ``Plan`` named ``LOGIN_STATE``."""
    plan = Plan(LOGIN_STATE, login.method, login.path, login.expect, base)
    plan.is_login = True
    if login.body is not None:
        plan.body_obj = login.body
        plan.body_bytes = json_bytes(login.body)
    return plan


_PLANNED_SETTERS = tuple(
    PlannedRequest.__dict__[name].__set__
    for name in ("state", "method", "target", "headers", "body", "wire", "is_login")
)


def new_planned(
    state: str,
    method: str,
    target: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
    wire: bytes,
    is_login: bool,
) -> PlannedRequest:
    """``PlannedRequest(...)`` without the frozen dataclass's per-field ``__setattr__``
    (once per request; same trick as ``http1._new_response``)."""
    planned = object.__new__(PlannedRequest)
    s0, s1, s2, s3, s4, s5, s6 = _PLANNED_SETTERS
    s0(planned, state)
    s1(planned, method)
    s2(planned, target)
    s3(planned, headers)
    s4(planned, body)
    s5(planned, wire)
    s6(planned, is_login)
    return planned
