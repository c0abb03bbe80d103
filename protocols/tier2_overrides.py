"""The override file: what the user says where dependency inference guessed wrong.

How this works: a TOML (or YAML, by extension) file with these keys, all optional::

    setup = "login"              # operation run first in every sequence ("" for none)
    skip = ["stats"]             # operations never fuzzed
    include = ["logout"]         # operations inference skipped, fuzzed after all
    setup_body = {username = "u", password = "p"}
    [[producer]]                 # operation = "createOrder", resource = "orders",
                                 # field = "orderId", location = false
    [[consumer]]                 # operation = "getOrder", name = "orderId",
                                 # resource = "orders", where = "path"
    [[parent]]                   # resource = "orders", parent = "users"
    [[terminal]]                 # resource = "orders", field = "status",
                                 # values = ["closed", "cancelled"]

``load_overrides`` checks every field against the spec's operations and fails with one
line ``FILE:LINE: field: what is wrong`` (``protocols.load_source`` finds the line).
``apply`` returns a new ``Graph``; the inferred one is never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from protocols.load_source import FieldReader, Table, parse_source
from protocols.load_values import type_name
from protocols.tier2_graph import Consumer, Graph, Producer

_TOP = ("setup", "skip", "include", "setup_body", "producer", "consumer", "parent", "terminal")


@dataclass(frozen=True)
class Overrides:
    setup: str | None = None  # None: keep inference's; "": no setup
    skip: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    setup_body: Any = None
    producers: tuple[Producer, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    parents: tuple[tuple[str, str], ...] = ()
    terminal: tuple[tuple[str, str, tuple[Any, ...]], ...] = field(default=())


def load_overrides(text: str, name: str, op_ids: set[str]) -> Overrides:
    """Parse an override file; ``LoadInputError`` (one line, with FILE:LINE) when wrong."""
    kind = "yaml" if name.endswith((".yaml", ".yml")) else "toml"
    doc = parse_source(text, name, kind)
    reader = FieldReader(doc)
    top = reader.table(doc.data if doc.data is not None else {}, (), _TOP)

    def operation(table: Table, key: str) -> str:
        value = reader.string(table, key)
        if value not in op_ids:
            raise reader.fail(table.at(key), f"no operation {value!r} in the spec")
        return value

    def names(key: str) -> tuple[str, ...]:
        value = top.values.get(key, [])
        if not isinstance(value, list):
            raise reader.fail(top.at(key), f"expected a list, got {type_name(value)}")
        for index, item in enumerate(value):
            if item not in op_ids:
                raise reader.fail((*top.at(key), index), f"no operation {item!r} in the spec")
        return tuple(value)

    def tables(key: str, allowed: tuple[str, ...]) -> list[Table]:
        value = top.values.get(key, [])
        if not isinstance(value, list):
            raise reader.fail(top.at(key), f"expected [[{key}]] tables, got {type_name(value)}")
        out = []
        for index, item in enumerate(value):
            table = reader.table(item, (*top.at(key), index), allowed)
            for required in allowed[:2]:
                if required not in table.values:
                    raise reader.fail(table.path, f"missing {required!r}")
            out.append(table)
        return out

    setup = None
    if "setup" in top.values:
        setup = reader.string(top, "setup")
        if setup and setup not in op_ids:
            raise reader.fail(top.at("setup"), f"no operation {setup!r} in the spec")
    producers = tuple(
        Producer(operation(t, "operation"), reader.string(t, "resource"),
                 reader.string(t, "field", ""), reader.boolean(t, "location"))
        for t in tables("producer", ("operation", "resource", "field", "location")))
    consumers = []
    for t in tables("consumer", ("operation", "name", "resource", "where")):
        where = reader.string(t, "where", "path")
        if where not in ("path", "body"):
            raise reader.fail(t.at("where"), f"expected 'path' or 'body', got {where!r}")
        consumers.append(Consumer(operation(t, "operation"), reader.string(t, "name"),
                                  reader.string(t, "resource"), where))
    parents = tuple((reader.string(t, "resource"), reader.string(t, "parent"))
                    for t in tables("parent", ("resource", "parent")))
    terminal = []
    for t in tables("terminal", ("resource", "field", "values")):
        values = t.values.get("values")
        if not isinstance(values, list) or not values:
            raise reader.fail(t.at("values"), "expected a non-empty list of values")
        terminal.append((reader.string(t, "resource"), reader.string(t, "field"),
                         tuple(values)))
    return Overrides(setup, names("skip"), names("include"), top.values.get("setup_body"),
                     producers, tuple(consumers), parents, tuple(terminal))


def apply(graph: Graph, overrides: Overrides) -> Graph:
    """``graph`` with the user's corrections on top."""
    producers = dict(graph.producers)
    roles, resources = dict(graph.roles), dict(graph.resources)
    for p in overrides.producers:
        producers[p.resource] = p
        roles[p.op_id], resources[p.op_id] = "create", p.resource
    consumers = dict(graph.consumers)
    for c in overrides.consumers:
        kept = tuple(x for x in consumers.get(c.op_id, ()) if x.name != c.name)
        consumers[c.op_id] = (*kept, c)
    skipped = {k: v for k, v in graph.skipped.items() if k not in overrides.include}
    skipped.update({op: "skipped by the override file" for op in overrides.skip})
    setup = graph.setup if overrides.setup is None else (overrides.setup or None)
    parents = {**graph.parents, **dict(overrides.parents)}
    terminal = {**graph.terminal, **{r: (f, v) for r, f, v in overrides.terminal}}
    return replace(graph, producers=producers, consumers=consumers, roles=roles,
                   resources=resources, parents=parents, setup=setup, skipped=skipped,
                   terminal=terminal)
