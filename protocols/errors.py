"""Errors typed by whose fault they are, and the plumbing that lets input errors name a line.

How this works: three families, never mixed.

* ``HarnessError`` -- our bug or a caller's misuse (a header value with CR/LF handed to a
  builder, a response fed for a request that was never planned). It must fail loudly.
* ``TargetError`` -- the server under test misbehaved (malformed or oversized response).
  The parsers raise subclasses; the actor turns them into counted outcomes, never a crash.
* ``SourceError`` -- a user-supplied document (Markov model, OpenAPI spec) is wrong. It
  carries ``source``, ``line`` (1-based, 0 when unknown) and ``message``; ``str()`` is the
  compiler-style ``"source:line: message"`` the CLI prints before exiting 2.

``load_document`` parses YAML (or JSON) into plain dicts/lists while remembering the line
of every container and mapping key, so later validation can say *where* a value is wrong
without carrying YAML nodes around. Timestamps stay strings (JSON has no dates) and aliases
become shared objects, so a "billion laughs" document costs no memory; walkers over the
result must still guard against shared and cyclic containers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Deeper nesting than this is refused rather than risking Python's recursion limit.
MAX_NESTING = 128


class HarnessError(Exception):
    """Our bug or a caller's misuse; never caused by the target's bytes."""


class TargetError(Exception):
    """The target violated the protocol; ``reason`` says how, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceError(Exception):
    """A user-supplied document is invalid at ``source``:``line``."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(source, line, message)
        self.source = source
        self.line = line
        self.message = message

    def __str__(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}: {self.message}"
        return f"{self.source}: {self.message}"


@dataclass
class Document:
    """Plain data parsed from a document, plus the line where each container/key sits."""

    source: str
    value: Any
    _lines: dict[int, int] = field(default_factory=dict, repr=False)
    _key_lines: dict[int, dict[Any, int]] = field(default_factory=dict, repr=False)

    def line(self, container: Any) -> int:
        """Line where ``container`` (a dict or list from ``value``) starts; 0 if unknown."""
        return self._lines.get(id(container), 0)

    def key_line(self, mapping: Any, key: Any) -> int:
        """Line of ``key`` inside ``mapping``, falling back to the mapping's own line."""
        lines = self._key_lines.get(id(mapping))
        if lines is not None and key in lines:
            return lines[key]
        return self.line(mapping)

    def value_line(self, mapping: Any, key: Any) -> int:
        """Line of the value under ``key``: the container's line, or the key's for scalars."""
        value = mapping.get(key) if isinstance(mapping, dict) else None
        if isinstance(value, (dict, list)):
            line = self.line(value)
            if line:
                return line
        return self.key_line(mapping, key)


def load_document(
    text: str, source: str, error: type[SourceError], *, json_fallback: bool = False
) -> Document:
    """Parse one YAML document into plain data with line bookkeeping.

    Raises:
        error: on a syntax error, an empty document, duplicate or complex keys, or nesting
            deeper than ``MAX_NESTING``. With ``json_fallback``, a document that YAML 1.1
            rejects but that looks like JSON is parsed as JSON (without line numbers).
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            if json_fallback and text.lstrip().startswith(("{", "[")):
                return _load_json(text, source, error)
            raise error(source, _mark_line(exc), f"invalid YAML: {_problem(exc)}") from None
        except yaml.YAMLError as exc:
            raise error(source, 0, f"invalid YAML: {exc}") from None
        if node is None:
            raise error(source, 1, "document is empty")
        doc = Document(source, None)
        builder = _Builder(loader, doc, error)
        try:
            doc.value = builder.convert(node, 0)
        except yaml.MarkedYAMLError as exc:
            raise error(source, _mark_line(exc), f"invalid YAML: {_problem(exc)}") from None
        return doc
    finally:
        loader.dispose()


def _load_json(text: str, source: str, error: type[SourceError]) -> Document:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(source, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise error(source, 0, "invalid JSON: nesting too deep") from None
    return Document(source, value)


def _mark_line(exc: yaml.MarkedYAMLError) -> int:
    mark = exc.problem_mark or exc.context_mark
    return mark.line + 1 if mark is not None else 0


def _problem(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return ", ".join(parts) if parts else "syntax error"


class _Builder:
    """Turns a composed node tree into dicts/lists/scalars, recording lines."""

    def __init__(self, loader: Any, doc: Document, error: type[SourceError]) -> None:
        self._loader = loader
        self._doc = doc
        self._error = error
        self._memo: dict[int, Any] = {}

    def convert(self, node: yaml.Node, depth: int) -> Any:
        if depth > MAX_NESTING:
            raise self._fail(node, f"nesting deeper than {MAX_NESTING} levels")
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                return node.value
            return self._loader.construct_object(node)
        held = self._memo.get(id(node))
        if held is not None:  # an alias: share the object, like YAML means it
            return held
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            self._memo[id(node)] = items
            self._doc._lines[id(items)] = node.start_mark.line + 1
            items.extend(self.convert(child, depth + 1) for child in node.value)
            return items
        if isinstance(node, yaml.MappingNode):
            return self._convert_mapping(node, depth)
        raise self._fail(node, "unsupported YAML node")  # pragma: no cover

    def _convert_mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        mapping: dict[Any, Any] = {}
        self._memo[id(node)] = mapping
        self._doc._lines[id(mapping)] = node.start_mark.line + 1
        key_lines: dict[Any, int] = {}
        self._doc._key_lines[id(mapping)] = key_lines
        merged: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail(key_node, "complex mapping keys are not supported")
            key = self.convert(key_node, depth + 1)
            try:
                hash(key)
            except TypeError:
                raise self._fail(key_node, "unhashable mapping key") from None
            line = key_node.start_mark.line + 1
            if key in key_lines:
                raise self._fail(
                    key_node, f"duplicate key {key!r} (first at line {key_lines[key]})"
                )
            key_lines[key] = line
            mapping[key] = self.convert(value_node, depth + 1)
        for key, value in merged:  # explicit keys win over `<<:` merged ones
            if key not in mapping:
                mapping[key] = value
                key_lines[key] = self._doc.line(mapping)
        return mapping

    def _merge_sources(self, node: yaml.Node, depth: int) -> list[tuple[Any, Any]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[Any, Any]] = []
        for source in sources:
            value = self.convert(source, depth + 1)
            if not isinstance(value, dict):
                raise self._fail(source, "a merge key (<<) needs a mapping")
            pairs.extend(value.items())
        return pairs

    def _fail(self, node: yaml.Node, message: str) -> SourceError:
        return self._error(self._doc.source, node.start_mark.line + 1, message)
