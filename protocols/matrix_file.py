"""Matrix files: the cells ``assay matrix`` runs, one ``assay run`` each, parsed and checked.

How this works: ``parse_matrix`` reads a TOML text through ``protocols.load_source`` (which
keeps the line of every field) into ``CellSpec`` values. A cell is a ``[[cell]]`` table; an
optional ``[defaults]`` table gives every cell the same settings (a cell's own value wins).
A cell names its target one of three ways: ``target`` (a URL already serving), ``launch``
(a shell command with ``{port}`` that assay starts), or neither (the built-in refapp,
optionally with ``refapp_defect = [...]``). Everything else is an ``assay run`` setting
under its flag's name (``duration``, ``slices``, ``body_path``...), so a cell is exactly
the run a user could have typed; ``CellSpec.run_args`` gives those flags back.
``run_args = ["--no-shrink", ...]`` passes any other ``assay run`` flag through verbatim
(the coordinator parses them with ``assay run``'s own parser before anything runs).

This module checks the shape (unknown keys, types, unique names, which keys go together)
and asks the caller's ``validators`` about each value: the coordinator hands in the same
parsers ``assay run`` uses (``coordinator.config``), so a matrix file cannot accept a
duration the run would refuse, and this module stays free of the coordinator. Every failure
is ONE line, ``FILE:LINE: cell[1].duration: what is wrong``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.load_errors import LoadInputError
from protocols.load_source import FieldPath, FieldReader, SourceDoc, parse_source
from protocols.load_values import type_name

#: A value check: raises ``ValueError`` with a one-line message when the value is unusable.
Validator = Callable[[Any], object]

#: Settings a cell (or ``[defaults]``) may carry -> how many values: one, or a list.
SETTINGS: dict[str, str] = {
    "duration": "one", "concurrency": "one", "procs": "one", "seed": "one",
    "health_path": "one", "ws_path": "one", "sse_path": "one", "launch_path": "one",
    "slices": "list", "body_path": "list", "refapp_defect": "list", "run_args": "list",
}
#: Keys that say what the cell runs against; they never come from ``[defaults]``.
TARGET_KEYS = ("target", "launch")
CELL_KEYS = frozenset({"name", *TARGET_KEYS, *SETTINGS})
#: A cell name is also its run's label and directory name.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class MatrixFileError(ValueError):
    """The matrix file cannot be used; the message is one line (exit status 2)."""


@dataclass(frozen=True)
class CellSpec:
    """One cell: its name, what it runs against, and its ``assay run`` settings."""

    name: str
    target: str | None
    launch: str | None
    #: (setting, value) in file order; list settings hold a tuple of strings.
    settings: tuple[tuple[str, Any], ...]
    line: int

    def setting(self, name: str) -> Any:
        return dict(self.settings).get(name)

    @property
    def kind(self) -> str:
        """``target``, ``launch`` or ``refapp`` (the built-in reference target)."""
        return "target" if self.target else "launch" if self.launch else "refapp"

    def run_args(self) -> list[str]:
        """The ``assay run`` flags of this cell (no ``--results``/``--label``: the caller's)."""
        args: list[str] = []
        if self.target is not None:
            args += ["--target", self.target]
        if self.launch is not None:
            args += ["--launch", self.launch]
        for name, value in self.settings:
            flag = "--" + name.replace("_", "-")
            if name == "slices":
                args += [flag, ",".join(value)]
            elif name == "run_args":
                args += list(value)
            elif isinstance(value, tuple):
                for item in value:
                    args += [flag, item]
            else:
                args += [flag, str(value)]
        return args


def parse_matrix(text: str, name: str, validators: Mapping[str, Validator] | None = None
                 ) -> tuple[CellSpec, ...]:
    """The cells of a matrix file, in file order.

    Args:
        text: the TOML text.
        name: what messages call the file (its path).
        validators: setting -> check, for any of ``target``, ``launch`` and ``SETTINGS``;
            a list setting's check sees each item.

    Raises:
        MatrixFileError: one line, ``NAME:LINE: field: problem``.
    """
    try:
        doc = parse_source(text, name, "toml")
        return _Reader(doc, validators or {}).cells()
    except LoadInputError as exc:
        raise MatrixFileError(str(exc)) from None


class _Reader(FieldReader):
    def __init__(self, doc: SourceDoc, validators: Mapping[str, Validator]) -> None:
        super().__init__(doc)
        self.validators = validators

    def cells(self) -> tuple[CellSpec, ...]:
        top = self.table(self.doc.data, (), {"cell", "defaults"})
        defaults: dict[str, Any] = {}
        if "defaults" in top.values:
            table = self.table(top.values["defaults"], ("defaults",), set(SETTINGS),
                               lambda key: _not_default(key))
            defaults = {key: self.setting(table.at(key), key, value)
                        for key, value in table.values.items()}
        raw = top.values.get("cell")
        if raw is None:
            raise self.fail((), "no [[cell]] tables: a matrix needs at least one cell")
        if not isinstance(raw, list):
            raise self.fail(("cell",), "expected [[cell]] tables (an array of tables), got "
                            f"{type_name(raw)}")
        cells: list[CellSpec] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            cell = self.cell(item, ("cell", index), defaults)
            if cell.name in seen:
                raise self.fail(("cell", index, "name"), f"name {cell.name!r} is already the "
                                f"name of cell[{seen[cell.name]}]; names must be unique")
            seen[cell.name] = index
            cells.append(cell)
        return tuple(cells)

    def cell(self, value: Any, path: FieldPath, defaults: Mapping[str, Any]) -> CellSpec:
        table = self.table(value, path, CELL_KEYS)
        if "name" not in table.values:
            raise self.fail(path, "name: missing (every cell needs a unique name)")
        name = self.string(table, "name").strip()
        if not NAME.fullmatch(name):
            raise self.fail(table.at("name"), f"{name!r} must be 1-64 of letters, digits, "
                            "'.', '_' or '-', starting with a letter or digit (it names the "
                            "cell's directory)")
        given = [key for key in TARGET_KEYS if key in table.values]
        if len(given) > 1:
            raise self.fail(table.at("launch"), "give target or launch, not both (launch "
                            "starts the target itself; target is one already serving)")
        target = self.one(table, "target") if "target" in table.values else None
        launch = self.one(table, "launch") if "launch" in table.values else None
        settings = dict(defaults)
        for key, item in table.values.items():
            if key in SETTINGS:
                settings[key] = self.setting(table.at(key), key, item)
        self.combinations(table, target, launch, settings)
        ordered = tuple((key, settings[key]) for key in SETTINGS if key in settings)
        return CellSpec(name, target, launch, ordered, self.doc.line(path))

    def combinations(self, table: Any, target: str | None, launch: str | None,
                     settings: Mapping[str, Any]) -> None:
        """The pairings ``assay run`` refuses, refused here with the line that has them."""
        if settings.get("refapp_defect") and (target or launch):
            where = table.at("refapp_defect") if "refapp_defect" in table.values \
                else table.at("target" if target else "launch")
            raise self.fail(where, "refapp_defect only applies to the built-in refapp (a "
                            "cell with neither target nor launch)")
        if settings.get("launch_path") and not launch:
            where = table.at("launch_path") if "launch_path" in table.values else table.path
            raise self.fail(where, "launch_path needs launch in the same cell")

    def one(self, table: Any, key: str) -> str:
        value = self.string(table, key)
        return str(self.check(table.at(key), key, value))

    def setting(self, path: FieldPath, key: str, value: Any) -> Any:
        if SETTINGS[key] == "one":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.fail(path, f"expected a string or number, got {type_name(value)}")
            self.check(path, key, value)
            return value
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self.fail(path, f"expected a list of strings, got {type_name(value)}")
        cleaned = tuple(item.strip() for item in items if item.strip()) \
            if key != "run_args" else tuple(items)
        if not cleaned:
            raise self.fail(path, "expected at least one value")
        for index, item in enumerate(cleaned):
            self.check(path if isinstance(value, str) else (*path, index), key, item)
        return cleaned

    def check(self, path: FieldPath, key: str, value: Any) -> Any:
        validator = self.validators.get(key)
        if validator is None:
            return value
        try:
            validator(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        return value


def _not_default(key: str) -> str:
    if key in ("name", *TARGET_KEYS):
        return f"{key} belongs in each [[cell]], not in [defaults]"
    return f"unknown key (expected one of: {', '.join(sorted(SETTINGS))})"
