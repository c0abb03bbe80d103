"""Markov walk models: load, validate and describe the YAML a user writes (format v1).

How this works: ``load_model`` parses the document with line bookkeeping
(``protocols.errors.load_document``), then builds frozen ``State``/``Edge``/``Login`` values
key by key, raising ``ModelError("file:line: what is wrong")`` at the first problem. Unknown
keys are errors, not ignored, because a misspelt ``captur:`` would otherwise silently turn
off the read-after-write check it was meant to feed.

After the structure, a small data-flow pass checks that every path variable can be bound:
it propagates "variables that may be bound on entry" from ``start`` along edges (an edge
is only taken when its target's variables are bound, exactly as the walker samples; the
walker may also fall back to ``start`` at any time) to a fixed point. A state whose
variables no walk can bind is an error; a state no walk reaches is a warning.

The format is documented in docs/ARCHITECTURE.md ("Markov model file").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from protocols.errors import Document, SourceError, load_document

if TYPE_CHECKING:
    from protocols.openapi import Spec

FORMAT_VERSION = 1
#: Expectation when a state says nothing (login defaults to 2xx only).
DEFAULT_EXPECT = ("2xx", "3xx")
LOGIN_EXPECT = ("2xx",)

# State names end up in counter names (markov.latency.<state>): no dots, no spaces.
_STATE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# RFC 9110 §9.1: method = token.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# A request target as written in a model: origin-form, printable ASCII without spaces.
_TARGET_CHARS = re.compile(r"/[\x21-\x7e]*\Z")
_TEMPLATE_SPLIT = re.compile(r"(\{[^{}]*\})")
_EXPECT_CLASS = re.compile(r"([1-5])xx\Z", re.IGNORECASE)

_TOP_KEYS = ("version", "start", "login", "states")
_STATE_KEYS = ("request", "expect", "next", "capture", "write", "read", "forget", "body")
_LOGIN_KEYS = ("request", "body", "expect")


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
            if not _VAR_NAME.match(name):
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


def load_model(text: str, source: str) -> MarkovModel:
    """Parse and validate a Markov model document.

    Raises:
        ModelError: YAML syntax errors and every validation failure, with the line.
    """
    doc = load_document(text, source, ModelError)
    return _Builder(doc).build()


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


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.source = doc.source

    def fail(self, line: int, message: str) -> ModelError:
        return ModelError(self.source, line, message)

    def mapping(self, value: Any, line: int, what: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(line, f"{what} must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    self.doc.key_line(value, key),
                    f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})",
                )
        return value

    def build(self) -> MarkovModel:
        doc = self.doc
        top = self.mapping(doc.value, 1, "the model", _TOP_KEYS)
        for key in ("version", "start", "states"):
            if key not in top:
                raise self.fail(doc.line(top) or 1, f"missing required key {key!r}")
        version = top["version"]
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise self.fail(
                doc.key_line(top, "version"),
                f"unsupported version {version!r} (this assay reads version {FORMAT_VERSION})",
            )
        states_node = top["states"]
        states_line = doc.value_line(top, "states")
        if not isinstance(states_node, dict) or not states_node:
            raise self.fail(states_line, "states must be a non-empty mapping of name -> state")
        for name in states_node:
            if not isinstance(name, str) or not _STATE_NAME.match(name):
                raise self.fail(
                    doc.key_line(states_node, name),
                    f"bad state name {name!r} (letters, digits, '_' and '-', starting with a "
                    "letter)",
                )
        start = top["start"]
        if not isinstance(start, str) or start not in states_node:
            raise self.fail(doc.key_line(top, "start"), f"start state {start!r} is not defined")

        login = None
        if top.get("login") is not None:
            login = self.login(top["login"], doc.key_line(top, "login"))
        states = {
            name: self.state(name, node, doc.key_line(states_node, name), states_node, start)
            for name, node in states_node.items()
        }
        keys, warnings = self.check_flow(states, start, login)
        return MarkovModel(
            source=self.source,
            start=start,
            states=MappingProxyType(states),
            login=login,
            resource_keys=MappingProxyType(keys),
            warnings=tuple(warnings),
        )

    def request(self, node: dict, line: int, what: str) -> tuple[str, str, tuple[str, ...]]:
        if "request" not in node:
            raise self.fail(line, f"{what} has no 'request' (e.g. 'GET /items')")
        value = node["request"]
        req_line = self.doc.key_line(node, "request")
        parts = value.split() if isinstance(value, str) else []
        if len(parts) != 2:
            raise self.fail(req_line, f"{what}: request must be 'METHOD /path', got {value!r}")
        method, target = parts
        if not _METHOD.match(method):
            raise self.fail(req_line, f"{what}: {method!r} is not an HTTP method")
        try:
            path_vars = parse_template(target)
        except ValueError as exc:
            raise self.fail(req_line, f"{what}: {exc}") from None
        return method, target, path_vars

    def expectation(self, node: dict, default: tuple[str, ...], what: str) -> Expectation:
        raw = node.get("expect", default)
        entries = raw if isinstance(raw, (list, tuple)) else [raw]
        try:
            return parse_expectation(entries)
        except ValueError as exc:
            raise self.fail(self.doc.value_line(node, "expect"), f"{what}: {exc}") from None

    def body(self, node: dict, what: str) -> Any:
        body = node.get("body")
        if body is None:
            return None
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise self.fail(
                self.doc.value_line(node, "body"), f"{what}: body is not JSON-serialisable"
            ) from None
        return body

    def login(self, node: Any, line: int) -> Login:
        node = self.mapping(node, line, "login", _LOGIN_KEYS)
        method, path, path_vars = self.request(node, line, "login")
        if path_vars:
            raise self.fail(
                self.doc.key_line(node, "request"), "login: path variables are not allowed"
            )
        return Login(
            method=method,
            path=path,
            body=self.body(node, "login"),
            expect=self.expectation(node, LOGIN_EXPECT, "login"),
            line=line,
        )

    def state(self, name: str, node: Any, line: int, all_states: dict, start: str) -> State:
        what = f"state '{name}'"
        node = self.mapping(node, line, what, _STATE_KEYS)
        method, path, path_vars = self.request(node, line, what)
        return State(
            name=name,
            method=method,
            path=path,
            path_vars=path_vars,
            expect=self.expectation(node, DEFAULT_EXPECT, what),
            body=self.body(node, what),
            capture=self.captures(node, what),
            write=self.resource(node, "write", what),
            read=self.resource(node, "read", what),
            forget=self.forget(node, what),
            edges=self.edges(node, line, what, all_states, start),
            line=line,
        )

    def captures(self, node: dict, what: str) -> tuple[Capture, ...]:
        raw = node.get("capture")
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise self.fail(
                self.doc.value_line(node, "capture"), f"{what}: capture must map var -> path"
            )
        return tuple(self.capture(raw, var, path, what) for var, path in raw.items())

    def capture(self, node: dict, var: Any, path: Any, what: str) -> Capture:
        line = self.doc.key_line(node, var)
        if not isinstance(var, str) or not _VAR_NAME.match(var):
            raise self.fail(line, f"{what}: bad capture variable name {var!r}")
        if isinstance(path, int) and not isinstance(path, bool):
            path = str(path)
        parts = tuple(path.split(".")) if isinstance(path, str) else ()
        if not parts or not all(parts):
            raise self.fail(line, f"{what}: capture {var} needs a dotted path like 'data.id'")
        return Capture(var, parts, line)

    def resource(self, node: dict, key: str, what: str) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not _VAR_NAME.match(value):
            raise self.fail(
                self.doc.key_line(node, key), f"{what}: {key} must name a resource, e.g. 'item'"
            )
        return value

    def forget(self, node: dict, what: str) -> tuple[str, ...]:
        raw = node.get("forget")
        if raw is None:
            return ()
        names = raw if isinstance(raw, list) else [raw]
        for name in names:
            if not isinstance(name, str) or not _VAR_NAME.match(name):
                raise self.fail(
                    self.doc.value_line(node, "forget"), f"{what}: bad variable {name!r} in forget"
                )
        return tuple(names)

    def edges(self, node: dict, line: int, what: str, all_states: dict, start: str) -> tuple:
        if "next" not in node:
            return (Edge(start, 1.0, line),)
        raw = node["next"]
        next_line = self.doc.value_line(node, "next")
        if not isinstance(raw, dict) or not raw:
            raise self.fail(
                next_line,
                f"{what}: next must map state -> weight (omit it to return to start)",
            )
        edges = []
        for target, weight in raw.items():
            edge_line = self.doc.key_line(raw, target)
            if target not in all_states:
                raise self.fail(edge_line, f"{what}: edge to undefined state {target!r}")
            if (
                isinstance(weight, bool)
                or not isinstance(weight, (int, float))
                or not 0 < weight < float("inf")
            ):
                raise self.fail(
                    edge_line, f"{what}: weight of edge to {target!r} must be a positive number"
                )
            edges.append(Edge(target, float(weight), edge_line))
        return tuple(edges)

    def check_flow(
        self, states: dict[str, State], start: str, login: Login | None
    ) -> tuple[dict[str, tuple[str, ...]], list[str]]:
        captured = {c.var for s in states.values() for c in s.capture}
        for state in states.values():
            for var in state.path_vars:
                if var not in captured:
                    raise self.fail(
                        state.line,
                        f"state '{state.name}': path variable {{{var}}} is never captured "
                        "(add 'capture: {" + var + ": <json.path>}' to an earlier state)",
                    )
            for var in state.forget:
                if var not in captured:
                    raise self.fail(
                        state.line,
                        f"state '{state.name}': forget names {var!r}, which is never captured",
                    )
        if states[start].path_vars:
            raise self.fail(
                states[start].line,
                f"start state '{start}' uses path variables; a walker starts with none bound",
            )

        entry = _may_bound_on_entry(states, start)
        warnings: list[str] = []
        for state in states.values():
            if state.name not in entry:
                if state.path_vars:
                    raise self.fail(
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
                raise self.fail(
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
