"""The default Markov walk derived from an OpenAPI spec: every parameter-less GET route.

What a ``--spec`` without a ``--markov`` model walks. Separate from the spec loader because it
builds a ``MarkovModel`` (the walker's concept), while the loader only knows the document.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from protocols.markov_model import DEFAULT_EXPECT, Edge, MarkovModel, State, parse_expectation
from protocols.openapi import Spec, SpecError


def model_from_spec(spec: Spec) -> MarkovModel:
    """A uniform walk over the spec's GET routes that need no path parameters.

    Routes that would not answer a plain GET with a finite response (SSE streams, WebSocket
    upgrades) are left out.

    Raises:
        SpecError: the spec has no such route.
    """
    routes = [
        r
        for r in spec.routes
        if r.method == "GET"
        and not r.path_params
        and "text/event-stream" not in r.response_types
        and "101" not in r.response_statuses
    ]
    if not routes:
        raise SpecError(spec.source, 0, "no GET route without path parameters to walk")
    names: list[str] = []
    for route in routes:
        base = "get_" + (re.sub(r"[^A-Za-z0-9_-]+", "_", route.path).strip("_") or "root")
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    expect = parse_expectation(DEFAULT_EXPECT)
    states = {
        name: State(
            name=name,
            method="GET",
            path=route.path,
            path_vars=(),
            expect=expect,
            body=None,
            capture=(),
            write=None,
            read=None,
            forget=(),
            edges=tuple(Edge(target, 1.0, route.line) for target in names),
            line=route.line,
        )
        for name, route in zip(names, routes, strict=True)
    }
    return MarkovModel(source=spec.source, start=names[0], states=MappingProxyType(states))
