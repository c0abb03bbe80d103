"""Reading a Markov model file: the YAML a user writes, checked key by key into a ``MarkovModel``.

How this works: ``load_model`` parses the document with line bookkeeping
(``protocols.errors.load_document``), then builds frozen ``State``/``Edge``/``Login`` values
key by key, raising ``ModelError("file:line: what is wrong")`` at the first problem. Unknown
keys are errors, not ignored, because a misspelt ``captur:`` would otherwise silently turn
off the read-after-write check it was meant to feed. After the structure comes the data-flow
pass of ``protocols.markov_flow``.

The format is documented in docs/ARCHITECTURE.md ("Markov model file").
"""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Any

from protocols.errors import Document, load_document
from protocols.markov_flow import check_flow
from protocols.markov_model import (
    DEFAULT_EXPECT,
    FORMAT_VERSION,
    LOGIN_EXPECT,
    VAR_NAME,
    Capture,
    Edge,
    Expectation,
    Login,
    MarkovModel,
    ModelError,
    State,
    parse_expectation,
    parse_template,
)

# State names end up in counter names (markov.latency.<state>): no dots, no spaces.
_STATE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
# RFC 9110 §9.1: method = token.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

_TOP_KEYS = ("version", "start", "login", "states")
_STATE_KEYS = ("request", "expect", "next", "capture", "write", "read", "forget", "body")
_LOGIN_KEYS = ("request", "body", "expect")


def load_model(text: str, source: str) -> MarkovModel:
    """Parse and validate a Markov model document.

    Raises:
        ModelError: YAML syntax errors and every validation failure, with the line.
    """
    doc = load_document(text, source, ModelError)
    return _Builder(doc).build()


class _Builder:
    """Builds a ``MarkovModel`` key by key; ``fail`` makes the ``file:line`` error."""

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
        keys, warnings = check_flow(states, start, login, self.source)
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
        if not isinstance(var, str) or not VAR_NAME.match(var):
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
        if not isinstance(value, str) or not VAR_NAME.match(value):
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
            if not isinstance(name, str) or not VAR_NAME.match(name):
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
