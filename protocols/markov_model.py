"""Markov walk models (format v1): the frozen values a walk follows, and their small grammars.

What is here: ``MarkovModel`` and its ``State``/``Edge``/``Capture``/``Login``/``Expectation``
values, the request-target template and ``expect`` grammars they are built from, the
one-state ``default_model`` of a bare ``--target``, and the check against an OpenAPI spec.
Reading the YAML a user writes is ``protocols.markov_loader``; the data-flow check that every
path variable can be bound is ``protocols.markov_flow``. They are separate because a model
is also made without YAML (``default_model``, ``openapi_walk.model_from_spec``).

The format is documented in docs/ARCHITECTURE.md ("Markov model file").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from protocols.errors import SourceError

if TYPE_CHECKING:
    from protocols.openapi import Spec

FORMAT_VERSION = 1
#: Expectation when a state says nothing (login defaults to 2xx only).
DEFAULT_EXPECT = ("2xx", "3xx")
LOGIN_EXPECT = ("2xx",)

VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A request target as written in a model: origin-form, printable ASCII without spaces.
_TARGET_CHARS = re.compile(r"/[\x21-\x7e]*\Z")
_TEMPLATE_SPLIT = re.compile(r"(\{[^{}]*\})")
_EXPECT_CLASS = re.compile(r"([1-5])xx\Z", re.IGNORECASE)


class ModelError(SourceError):
    """The Markov model is invalid at ``source``:``line``."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """Acceptable statuses: whole classes (2 for 2xx) and exact codes."""

    classes: frozenset[int]
    codes: frozenset[int]
    #: As written in the model, for messages ("2xx", "404").
    text: tuple[str, ...]

    def accepts(self, status: int) -> bool:
        return status in self.codes or status // 100 in self.classes


@dataclass(frozen=True, slots=True)
class Edge:
    target: str
    weight: float
    line: int


@dataclass(frozen=True, slots=True)
class Capture:
    """``var`` <- the value at dotted ``path`` in the JSON response body."""

    var: str
    path: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class State:
    name: str
    method: str
    #: Request target template, e.g. ``/items/{item_id}`` (query string allowed).
    path: str
    #: Variables in ``path``, in order of appearance, without duplicates.
    path_vars: tuple[str, ...]
    expect: Expectation
    #: Literal JSON body from the model, or None (then a spec schema may supply one).
    body: Any
    capture: tuple[Capture, ...]
    write: str | None
    read: str | None
    forget: tuple[str, ...]
    edges: tuple[Edge, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Login:
    method: str
    path: str
    body: Any
    expect: Expectation
    line: int


@dataclass(frozen=True, slots=True)
class MarkovModel:
    source: str
    start: str
    states: Mapping[str, State]
    login: Login | None = None
    version: int = FORMAT_VERSION
    #: resource -> the variables that identify one record of it (see ``resource_keys``).
    resource_keys: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: Non-fatal findings (unreachable states, writes never read back).
    warnings: tuple[str, ...] = ()


def parse_template(target: str) -> tuple[str, ...]:
    """Variables of a request-target template, or ValueError saying what is malformed."""
    if not _TARGET_CHARS.match(target):
        raise ValueError(f"path must start with '/' and be printable ASCII: {target!r}")
    names: list[str] = []
    for index, piece in enumerate(_TEMPLATE_SPLIT.split(target)):
        if index % 2:
            name = piece[1:-1]
            if not VAR_NAME.match(name):
                raise ValueError(f"bad path variable {piece!r} in {target!r}")
            if name not in names:
                names.append(name)
        elif "{" in piece or "}" in piece:
            raise ValueError(f"unbalanced '{{' or '}}' in {target!r}")
    return tuple(names)


def template_key(method: str, target: str) -> tuple[str, str]:
    """(METHOD, path with variables blanked and query dropped): equal for the same route."""
    path = target.split("?", 1)[0]
    return method.upper(), _TEMPLATE_SPLIT.sub("{}", path)


def parse_expectation(entries: Iterable[Any]) -> Expectation:
    """``["2xx", 404, "409"]`` -> Expectation, or ValueError naming the bad entry."""
    classes: set[int] = set()
    codes: set[int] = set()
    text: list[str] = []
    for entry in entries:
        if isinstance(entry, int) and not isinstance(entry, bool):
            code = entry
        elif isinstance(entry, str) and (match := _EXPECT_CLASS.match(entry.strip())):
            classes.add(int(match.group(1)))
            text.append(entry.strip().lower())
            continue
        elif isinstance(entry, str) and entry.strip().isdigit():
            code = int(entry.strip())
        else:
            raise ValueError(f"expect entry {entry!r} is neither a status code nor 1xx..5xx")
        if not 100 <= code <= 599:
            raise ValueError(f"expect entry {entry!r} is outside 100..599")
        codes.add(code)
        text.append(str(code))
    if not text:
        raise ValueError("expect must list at least one status or class")
    return Expectation(frozenset(classes), frozenset(codes), tuple(text))


def default_model(path: str) -> MarkovModel:
    """One state, ``GET path``, looping on itself: what a bare ``--target URL`` walks."""
    target = path or "/"
    try:
        if parse_template(target):
            raise ValueError(f"the target path contains '{{…}}' placeholders: {target!r}")
    except ValueError as exc:
        raise ModelError("--target", 0, str(exc)) from None
    state = State(
        name="get",
        method="GET",
        path=target,
        path_vars=(),
        expect=parse_expectation(DEFAULT_EXPECT),
        body=None,
        capture=(),
        write=None,
        read=None,
        forget=(),
        edges=(Edge("get", 1.0, 0),),
        line=0,
    )
    return MarkovModel(source="<default>", start="get", states=MappingProxyType({"get": state}))


def validate_against_spec(model: MarkovModel, spec: Spec) -> None:
    """Every state's route (and the login's) must exist in ``spec``.

    Raises:
        ModelError: naming the state, its line, and the spec it was looked up in.
    """
    if model.login is not None and spec.find_route(model.login.method, model.login.path) is None:
        raise ModelError(
            model.source,
            model.login.line,
            f"login: {model.login.method} {model.login.path} is not in the spec {spec.source}",
        )
    for state in model.states.values():
        if spec.find_route(state.method, state.path) is None:
            raise ModelError(
                model.source,
                state.line,
                f"state '{state.name}': {state.method} {state.path} is not in the spec "
                f"{spec.source}",
            )
