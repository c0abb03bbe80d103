"""Decide the run's body routes before the actors start (see ``protocols.body_routes``).

How this works: ``--body-path`` wins and is used as given. Otherwise the POST/PUT/PATCH
routes of the spec and model that need no path parameter are each sent the adversarial
walker's own valid baseline request, one at a time on a fresh connection under a short
deadline, and the best-graded ones become the ``adv_body_paths`` setting. The built-in
refapp has ``POST /echo`` for this. With no usable route the body cases stay on the
target path, and the results say so. Bounded: at most ``MAX_CANDIDATES`` requests, each
``PROBE_TIMEOUT_S``, all within ``BUDGET_S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from actors import net
from actors.walker import Target
from coordinator.inputs import MarkovInputs
from protocols.adversarial_cases import baseline_request
from protocols.adversarial_oracle import observe, read_enough
from protocols.body_routes import Candidate, candidates, choose

#: The refapp route that reads any body without a session and echoes it.
REFAPP_BODY_PATHS = ("/echo",)
PROBE_TIMEOUT_S = 2.0
BUDGET_S = 8.0
READ_CAP = 64 * 1024


@dataclass(frozen=True)
class BodyRoutes:
    """The chosen paths (empty: the target path) and one line on how they were chosen."""

    paths: tuple[str, ...]
    note: str


def decide(url: str, given: tuple[str, ...], markov: MarkovInputs, builtin: bool) -> BodyRoutes:
    """The body routes for this run; never raises on what the target answers."""
    if given:
        return BodyRoutes(given, f"body routes from --body-path: {', '.join(given)}")
    if builtin:
        return BodyRoutes(REFAPP_BODY_PATHS, "body routes: the refapp's POST /echo")
    found = _candidates(markov)
    if not found:
        return BodyRoutes((), "body routes: none (no POST/PUT/PATCH route without path "
                          "parameters in --spec/--markov); body cases go to the target path")
    statuses = trio.run(_probe_all, Target.from_url(url), found)
    paths = choose(zip(found, statuses, strict=True))
    tried = ", ".join(f"{c.path} -> {s if s is not None else 'no answer'}"
                      for c, s in zip(found, statuses, strict=True))
    if not paths:
        return BodyRoutes((), f"body routes: none took a valid body ({tried}); body cases "
                          "go to the target path")
    return BodyRoutes(paths, f"body routes: {', '.join(paths)} (pre-flight: {tried})")


def _candidates(markov: MarkovInputs) -> list[Candidate]:
    """Routes from the spec and model texts (already validated by ``load_markov_inputs``)."""
    from protocols.markov_loader import load_model
    from protocols.markov_model import ModelError
    from protocols.openapi import SpecError, load_spec

    try:
        spec = (load_spec(markov.spec_text, markov.spec_source or "spec")
                if markov.spec_text is not None else None)
        model = (load_model(markov.model_text, markov.model_source or "model")
                 if markov.model_text is not None else None)
    except (ModelError, SpecError):
        return []
    return candidates(spec, model)


async def _probe_all(target: Target, found: list[Candidate]) -> list[int | None]:
    statuses: list[int | None] = [None] * len(found)
    with trio.move_on_after(BUDGET_S):
        for index, candidate in enumerate(found):
            statuses[index] = await _probe(target, candidate.path)
    return statuses


async def _probe(target: Target, path: str) -> int | None:
    """The status a valid ``POST path`` with the cases' body gets, or None."""
    request = baseline_request("POST", target.host_header, path)
    try:
        stream = await net.connect(target, PROBE_TIMEOUT_S)
    except net.TransportError:
        return None
    try:
        await net.send_all(stream, request, PROBE_TIMEOUT_S)
        reply = await net.read_until(stream, PROBE_TIMEOUT_S, READ_CAP, enough=read_enough)
    except net.TransportError:
        return None
    finally:
        await net.aclose_quietly(stream)
    return observe(reply.data, reply.ending.value).status
