"""Scenario files as plain data that can still say on which line a field was written.

How this works: ``parse_source`` turns a TOML or YAML text into dicts, lists and scalars
(``SourceDoc.data``) plus a way to find the line of any field path such as
``("scenarios", "heartbeat", "stages", 1, "target")``. YAML goes through
``protocols.errors.load_document``, which records the line of every key while it builds
the data. ``tomllib`` records nothing, so ``toml_line`` scans the text: table headers
(``[a.b]``, ``[[a.b]]`` with their array index), ``key = value`` lines (dotted and quoted
keys too) and the items of arrays, also when an array spans several lines, so the second
threshold of a list is found on its own line. It is best-effort by design -- it never
raises, and a path it cannot see falls back to the nearest line it can: the first line
inside that path, else the line of the longest enclosing table or key (the table header of
a missing field, say).

``FieldReader`` is what a builder over that data starts from: reads of tables (unknown
keys, k6 aliases, a key given twice) and of typed values, each failing as
``FILE:LINE: dotted.field: what is wrong``, the path shown dotted
(``scenarios.heartbeat.stages[1].target``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from protocols.errors import Document, SourceError, load_document
from protocols.load_errors import LoadInputError
from protocols.load_values import type_name

FieldPath = tuple[Any, ...]

_BARE_KEY = r"[A-Za-z0-9_-]+"
_KEY_PART = rf"(?:{_BARE_KEY}|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?\Z")
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY_PART)
_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)\s*\Z")


@dataclass(frozen=True)
class SourceDoc:
    """A parsed scenario file: ``data`` and the line finder for its field paths."""

    name: str
    data: Any
    _line: Callable[[FieldPath], int]

    def line(self, path: FieldPath) -> int:
        """1-based line of ``path`` (or of the nearest field around it that is there)."""
        return self._line(path)

    def error(self, path: FieldPath, message: str, shown: FieldPath | None = None
              ) -> LoadInputError:
        """``FILE:LINE: dotted.path: message`` (no path part for the whole file).

        ``shown`` is the path to print when it differs from the one whose line is wanted:
        a message that already names its field (``checks.status: ...``) gets the line of
        that field and the path of the table around it.
        """
        shown = path if shown is None else shown
        where = f"{dotted(shown)}: " if shown else ""
        return LoadInputError(f"{self.name}:{self.line(path)}: {where}{message}")


class Table:
    """One table's keys under their canonical (snake_case) names, with where they were."""

    def __init__(self, path: FieldPath) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        self.written: dict[str, str] = {}

    def at(self, name: str) -> FieldPath:
        return (*self.path, self.written.get(name, name))


class FieldReader:
    """Reads tables of a ``SourceDoc`` field by field; every failure names its position.

    ``aliases`` maps other spellings of a key to its canonical name (k6's camelCase).
    """

    aliases: dict[str, str] = {}

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc

    def fail(self, path: FieldPath, message: str) -> LoadInputError:
        return self.doc.error(path, message)

    def parse(self, path: FieldPath, parser: Callable[..., Any], *args: Any, **kw: Any
              ) -> Any:
        """``parser(*args, **kw)``, its ``LoadInputError`` prefixed with the position."""
        try:
            return parser(*args, **kw)
        except LoadInputError as exc:
            raise self.fail(path, str(exc)) from None

    def table(self, value: Any, path: FieldPath, allowed: Collection[str],
              unknown: Callable[[str], str] | None = None) -> Table:
        """``value`` as a ``Table``; a key outside ``allowed`` fails with ``unknown(key)``
        (the canonical name) or a list of the allowed keys."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type_name(value)}")
        table = Table(path)
        for key, item in value.items():
            if not isinstance(key, str):
                raise self.fail((*path, key), f"a key must be a string, got {type_name(key)}")
            name = self.aliases.get(key, key)
            if name not in allowed:
                why = unknown(name) if unknown else None
                raise self.fail((*path, key), why or "unknown key (expected one of: "
                                f"{', '.join(sorted(allowed))})")
            if name in table.values:
                raise self.fail((*path, key),
                                f"given twice (as {table.written[name]} and {key})")
            table.values[name], table.written[name] = item, key
        return table

    def boolean(self, table: Table, name: str, default: bool = False) -> bool:
        value = table.values.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(table.at(name), f"expected true or false, got {type_name(value)}")
        return value

    def string(self, table: Table, name: str, default: str | None = None) -> str:
        value = table.values.get(name, default)
        if not isinstance(value, str):
            raise self.fail(table.at(name), f"expected a string, got {type_name(value)}")
        return value

    def strings(self, value: Any, path: FieldPath) -> tuple[tuple[str, str], ...]:
        """A table of string -> string (tags, headers)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type_name(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.fail((*path, key), f"expected a string, got {type_name(item)}")
        return tuple((str(key), item) for key, item in value.items())


def dotted(path: FieldPath) -> str:
    """``("scenarios", "a", "stages", 1)`` -> ``scenarios.a.stages[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_source(text: str, name: str, kind: str) -> SourceDoc:
    """Parse ``text`` (``kind`` is ``toml`` or ``yaml``); ``name`` prefixes messages.

    Raises:
        LoadInputError: a syntax error, as ``NAME:LINE: invalid TOML|YAML: what``.
    """
    if kind == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            at = _TOML_AT.search(message)
            line = int(at[1]) if at else max(1, text.count("\n") + 1)
            problem = message[:at.start()] if at else message.replace(" (at end of document)", "")
            raise LoadInputError(f"{name}:{line}: invalid TOML: {problem}") from None
        lines = _toml_lines(text)
        return SourceDoc(name, data, lambda path: _lookup(lines, tuple(path)))
    try:
        doc = load_document(text, name, _YamlError)
    except _YamlError as exc:
        raise LoadInputError(f"{exc.source}:{exc.line or 1}: {exc.message}") from None
    return SourceDoc(name, doc.value, lambda path: _yaml_line(doc, tuple(path)))


class _YamlError(SourceError):
    """What ``load_document`` raises for us; turned into a ``LoadInputError`` at once."""


def _yaml_line(doc: Document, path: FieldPath) -> int:
    node, line = doc.value, doc.line(doc.value) or 1
    for key in path:
        if isinstance(node, dict) and key in node:
            line = doc.key_line(node, key) or line
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
            line = doc.line(node) or line  # a scalar item has no line of its own
        else:
            break
    return line


def toml_line(text: str, path: FieldPath) -> int:
    """The line of ``path`` in a TOML ``text``, best effort (see the module docstring)."""
    return _lookup(_toml_lines(text), tuple(path))


def _lookup(lines: dict[FieldPath, int], path: FieldPath) -> int:
    if path in lines:
        return lines[path]
    inside = [line for seen, line in lines.items() if seen[:len(path)] == path]
    if inside:
        return min(inside)
    for size in range(len(path) - 1, 0, -1):
        if path[:size] in lines:
            return lines[path[:size]]
    return 1


def _split_key(text: str) -> FieldPath:
    parts: list[str] = []
    for part in _PART.findall(text):
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def _toml_lines(text: str) -> dict[FieldPath, int]:
    """Every table, key and array item the scan can see -> its first line."""
    lines: dict[FieldPath, int] = {}
    table: FieldPath = ()
    array_tables: dict[FieldPath, int] = {}  # [[x]] header (as written) -> current index
    scan: _ArrayScan | None = None
    open_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if scan is not None:
            if scan.feed(line, number):
                scan = None
            continue
        if open_string is not None:
            if line.count(open_string) % 2:
                open_string = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _resolve(_split_key(header[2]), array_tables, header[1] == "[[")
            lines.setdefault(table, number)
            continue
        key = _KEY_LINE.match(line)
        if not key:
            continue
        path = table + _split_key(key[1])
        lines.setdefault(path, number)
        rest = line[key.end():].lstrip()
        for quotes in ('"""', "'''"):
            if rest.startswith(quotes) and rest.count(quotes) % 2:
                open_string = quotes
        if rest.startswith("["):
            scan = _ArrayScan(path, lines)
            if scan.feed(rest, number):
                scan = None
    return lines


def _resolve(parts: FieldPath, array_tables: dict[FieldPath, int], new_item: bool
             ) -> FieldPath:
    """A header's field path: the current index follows each array-of-tables prefix."""
    if new_item:
        array_tables[parts] = array_tables.get(parts, -1) + 1
        for known in list(array_tables):  # a new item starts its sub-arrays afresh
            if len(known) > len(parts) and known[:len(parts)] == parts:
                del array_tables[known]
    path: FieldPath = ()
    for size in range(1, len(parts) + 1):
        path += (parts[size - 1],)
        if parts[:size] in array_tables:
            path += (array_tables[parts[:size]],)
    return path


class _ArrayScan:
    """Follows one array value across lines, recording the line where each item starts."""

    def __init__(self, path: FieldPath, lines: dict[FieldPath, int]) -> None:
        self.path, self.lines = path, lines
        self.depth, self.index, self.expecting = 0, 0, True
        self.quote: str | None = None

    def feed(self, chunk: str, number: int) -> bool:
        """Scan one line's worth; True once the array has closed."""
        escaped = False
        for char in chunk:
            if self.quote is not None:
                if escaped:
                    escaped = False
                elif char == "\\" and self.quote == '"':
                    escaped = True
                elif char == self.quote:
                    self.quote = None
                continue
            if char == "#":
                break
            if char.isspace():
                continue
            if char in "]}":
                self.depth -= 1
                if self.depth == 0:
                    return True
                continue
            if char == "," and self.depth == 1:
                self.index, self.expecting = self.index + 1, True
                continue
            if self.depth == 1 and self.expecting:
                self.lines.setdefault((*self.path, self.index), number)
                self.expecting = False
            if char in "[{":
                self.depth += 1
            elif char in "\"'":
                self.quote = char
        return False
