"""Body-reading routes: where the adversarial cases that carry a request body are sent.

How this works: a malformed body sent to a route that answers 405 before reading anything
tests nothing but the router, so a server whose body framing is broken looks correct there
(RFC 9112 §6.3 framing errors only show where a body is read). The cases that carry a body
(``carries_body``) therefore go to *body routes*:

* named by the user (``--body-path``, used as given), or
* derived: ``candidates`` lists the POST/PUT/PATCH routes of the OpenAPI spec and of the
  Markov model that need no path parameter (binding ``{id}`` to an invented value would
  mostly reach a 404 before the body, or create a record the user never asked for), and a
  pre-flight sends each one the walker's own valid baseline request
  (``adversarial_cases.baseline_request``: ``Content-Length: 5`` and ``hello``, no
  Content-Type, exactly the body the cases carry). ``rank`` grades the answer and ``choose``
  keeps the best grade; with none usable the cases stay on the target path.

Why the pre-flight body is the cases' own body and not one "valid for the route" (a JSON
object for a JSON API): the baseline is what a case's answer is compared with. A route that
answered 200 to a JSON baseline and 415 to every ``hello`` case would make every accepted
malformed message look rejected. A route that refuses ``hello`` with a parser status (400)
cannot tell a framing rejection from the application's, so it is not chosen either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocols.adversarial_cases import AdversarialCase
    from protocols.markov_model import MarkovModel
    from protocols.openapi import Spec

#: Methods whose requests are expected to carry a body.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: At most this many routes are pre-flighted, and at most ``KEEP`` of the best grade used.
MAX_CANDIDATES = 8
KEEP = 4
#: Answers that say the route does not take this request at all (or that the valid request
#: failed): such a route is no body route. 400/411/413/417/431/505 are parser statuses: a
#: route that answers one to a valid body cannot tell its parser's verdict from the app's.
UNUSABLE = frozenset({400, 404, 405, 408, 410, 411, 413, 414, 417, 429, 431, 501, 505})
#: Route-level refusals that do not show the body was looked at (auth before the body).
AUTH = frozenset({401, 403, 407})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A route that may read bodies, and where it was found (for the log and results)."""

    path: str
    source: str


def carries_body(case: AdversarialCase) -> bool:
    """Whether ``case`` belongs on a body route: a POST/PUT/PATCH, or a body-only defect.

    A GET with a body (``get-with-body``) stays on the target path: its point is how a
    server frames a body on a method that has no body semantics.
    """
    return case.method.upper() in BODY_METHODS or case.body_defect


def candidates(spec: Spec | None, model: MarkovModel | None) -> list[Candidate]:
    """Parameter-less POST/PUT/PATCH routes of the spec, then of the model, deduplicated."""
    found: list[Candidate] = []
    seen: set[str] = set()

    def add(path: str, source: str) -> None:
        if path not in seen and "{" not in path and path.startswith("/"):
            seen.add(path)
            found.append(Candidate(path, source))

    if spec is not None:
        for route in spec.routes:
            if route.method.upper() in BODY_METHODS and not route.path_params:
                if spec.base_path:
                    add(spec.base_path.rstrip("/") + route.path, f"spec {route.method}")
                add(route.path, f"spec {route.method}")
    if model is not None:
        for state in model.states.values():
            if state.method.upper() in BODY_METHODS and not state.path_vars:
                add(state.path, f"model state {state.name}")
        if model.login is not None and model.login.method.upper() in BODY_METHODS:
            add(model.login.path, "model login")
    return found[:MAX_CANDIDATES]


def rank(status: int | None) -> int | None:
    """Grade a pre-flight answer: 0 best (the valid body was taken), None unusable.

    0: 1xx/2xx, the route read and accepted the body. 1: a 4xx about the content (409, 415,
    422 ...), so the body reached the application. 2: a redirect or an auth refusal (401,
    403, 407), which may come before the body is read but still routes the method somewhere
    other than a 405.
    """
    if status is None or status >= 500 or status in UNUSABLE:
        return None
    if status < 300:
        return 0
    return 2 if status < 400 or status in AUTH else 1


def choose(results: Iterable[tuple[Candidate, int | None]]) -> tuple[str, ...]:
    """The paths of the best grade among (candidate, pre-flight status), in input order."""
    graded = [(grade, cand.path) for cand, status in results
              if (grade := rank(status)) is not None]
    if not graded:
        return ()
    best = min(grade for grade, _ in graded)
    return tuple(path for grade, path in graded if grade == best)[:KEEP]


def route_for(case: AdversarialCase, routes: Sequence[str], default: str, pick: int = 0) -> str:
    """The path ``case`` is sent to: a body route (``pick`` rotates) or ``default``."""
    if not routes or not carries_body(case):
        return default
    return routes[pick % len(routes)]


def route_of(case: AdversarialCase, sent: bytes, routes: Sequence[str], default: str) -> str:
    """The route a recorded sending of ``case`` went to, read back from its request line
    (a reproducer's baseline must go there too); ``default`` for cases without a body."""
    if not routes or not carries_body(case):
        return default
    words = sent.split(b"\n", 1)[0].split(b" ")
    target = words[1].decode("latin-1") if len(words) > 2 else ""
    return next((r for r in routes if target == r or target.startswith(r + "?")), routes[0])


__all__ = ["BODY_METHODS", "Candidate", "candidates", "carries_body", "choose", "rank",
           "route_for", "route_of"]
