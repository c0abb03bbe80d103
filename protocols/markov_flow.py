"""The Markov model's data-flow check: can every path variable be bound before it is used?

How this works: it propagates "variables that may be bound on entry" from ``start`` along
edges (an edge is only taken when its target's variables are bound, exactly as the walker
samples; the walker may also fall back to ``start`` at any time) to a fixed point. A state
whose variables no walk can bind is an error; a state no walk reaches is a warning. Separate
from the loader because it is an analysis of the whole graph, not of one key.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from protocols.markov_model import ModelError

if TYPE_CHECKING:
    from protocols.markov_model import Login, State


def check_flow(
    states: dict[str, State], start: str, login: Login | None, source: str
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Check that every path variable can be bound; return (resource keys, warnings).

    Resource keys: each resource -> the path variables of every state that reads or writes
    it (what identifies one record). Warnings: unreachable states, unchecked writes, writes
    never read back.

    Raises:
        ModelError: a variable never captured, or no walk binding it before its state.
    """
    fail = partial(ModelError, source)
    captured = {c.var for s in states.values() for c in s.capture}
    for state in states.values():
        for var in state.path_vars:
            if var not in captured:
                raise fail(
                    state.line,
                    f"state '{state.name}': path variable {{{var}}} is never captured "
                    "(add 'capture: {" + var + ": <json.path>}' to an earlier state)",
                )
        for var in state.forget:
            if var not in captured:
                raise fail(
                    state.line,
                    f"state '{state.name}': forget names {var!r}, which is never captured",
                )
    if states[start].path_vars:
        raise fail(
            states[start].line,
            f"start state '{start}' uses path variables; a walker starts with none bound",
        )

    entry = _may_bound_on_entry(states, start)
    warnings: list[str] = []
    for state in states.values():
        if state.name not in entry:
            if state.path_vars:
                raise fail(
                    state.line,
                    f"state '{state.name}': no walk from '{start}' binds "
                    f"{', '.join('{' + v + '}' for v in state.path_vars)} before reaching it",
                )
            warnings.append(f"state '{state.name}' is unreachable from '{start}'")

    written = {s.write for s in states.values() if s.write}
    keys: dict[str, set[str]] = {}
    for state in states.values():
        for resource in (state.write, state.read):
            if resource:
                keys.setdefault(resource, set()).update(state.path_vars)
        if state.read and state.read not in written:
            raise fail(
                state.line,
                f"state '{state.name}': reads {state.read!r}, which no state writes",
            )
    for state in states.values():
        if state.write:
            known = set(state.path_vars) | {c.var for c in state.capture}
            if not set(keys[state.write]) <= known:
                warnings.append(
                    f"state '{state.name}' writes {state.write!r} but its path and captures "
                    "do not identify the record; that write is not checked"
                )
    read = {s.read for s in states.values() if s.read}
    warnings.extend(
        f"resource {r!r} is written but never read back" for r in sorted(written - read)
    )
    return {r: tuple(sorted(v)) for r, v in keys.items()}, warnings


def _may_bound_on_entry(states: Mapping[str, State], start: str) -> dict[str, frozenset[str]]:
    """Fixed point of 'variables possibly bound when entering each reachable state'."""
    entry: dict[str, frozenset[str]] = {start: frozenset()}
    work = [start]
    while work:
        name = work.pop()
        state = states[name]
        out = (entry[name] | {c.var for c in state.capture}) - set(state.forget)
        targets = [e.target for e in state.edges if set(states[e.target].path_vars) <= out]
        targets.append(start)  # the walker may always fall back to start
        for target in targets:
            held = entry.get(target)
            merged = out if held is None else held | out
            if held is None or merged != held:
                entry[target] = merged
                work.append(target)
    return entry
