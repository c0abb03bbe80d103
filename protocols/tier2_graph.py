"""Producer/consumer dependency inference over an OpenAPI spec (RESTler's first step).

How this works: a *resource* is a collection path (``/users``, ``/users/{userId}/orders``)
whose POST answers 2xx with an identifier: a response member named ``id`` (or
``<singular>Id``/``<singular>_id``), or a documented ``Location`` header. That POST is the
resource's *producer*. A path parameter is *consumed* from the resource whose collection
path is the template up to that parameter (``/users/{userId}/orders/{orderId}``: userId
from ``/users``, orderId from ``/users/{userId}/orders``); failing that, from the resource
its name points at (``userId`` -> ``users``). Request-body members named like a resource's
identifier (``userId``) consume it too. Each operation gets a *role* from its method and
whether its path ends in a parameter: create, list, read, update, delete or other. A
resource nested under another has that one as *parent* (what ``I-API-DEPENDENT-LEAK``
looks at). Overrides (``protocols.tier2_overrides``) are applied on top: inference is a
guess, the override file is the user's word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.openapi_operations import ApiSpec, Operation

CREATE, LIST, READ, UPDATE, DELETE, OTHER = "create", "list", "read", "update", "delete", "other"
#: Operations left out unless an override includes them: they end the session, stream
#: forever, switch protocols, or take a body no schema describes.
_SESSION_ENDERS = ("logout", "signout", "sign-out", "log-out")


@dataclass(frozen=True)
class Producer:
    op_id: str
    resource: str
    #: Response member holding the identifier ("" when only ``Location`` carries it).
    field: str
    location: bool


@dataclass(frozen=True)
class Consumer:
    op_id: str
    #: Path parameter or body member that takes the value.
    name: str
    resource: str
    where: str  # "path" or "body"


@dataclass(frozen=True)
class Graph:
    producers: dict[str, Producer]
    #: op_id -> what it consumes, in path order.
    consumers: dict[str, tuple[Consumer, ...]]
    #: op_id -> role; op_id -> resource it addresses (its last path parameter's, or the
    #: one it creates or lists).
    roles: dict[str, str]
    resources: dict[str, str]
    parents: dict[str, str]
    #: Operation run before every sequence (sets the session cookie), or None.
    setup: str | None
    skipped: dict[str, str] = field(default_factory=dict)
    #: resource -> (member, terminal values) from overrides.
    terminal: dict[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)

    def fuzzable(self, ops: dict[str, Operation]) -> list[str]:
        return [op for op in ops if op not in self.skipped and op != self.setup]


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _shape(segments: list[str]) -> tuple[str, ...]:
    return tuple("{}" if _is_param(s) else s for s in segments)


def identifier_field(resource: str, schema: Any) -> str:
    """The member of a created object that names it, "" when none is recognisable."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return ""
    one = singular(resource)
    for name in ("id", f"{one}Id", f"{one}_id", f"{one}ID", "uuid", "name"):
        if name in props:
            return name if name != "name" else ""
    return ""


def infer(api: ApiSpec) -> Graph:
    """The dependency graph of ``api`` as inference sees it (no overrides)."""
    producers: dict[str, Producer] = {}
    collection_of: dict[tuple[str, ...], str] = {}
    for op in api.operations:
        segs = _segments(op.path)
        if op.method != "POST" or not segs or _is_param(segs[-1]):
            continue
        resource = segs[-1]
        for status in sorted(op.responses):
            if not status.startswith("2"):
                continue
            id_field = identifier_field(resource, op.responses[status])
            location = "location" in op.response_headers.get(status, ())
            if id_field or location:
                producers.setdefault(resource, Producer(op.op_id, resource, id_field, location))
                collection_of[_shape(segs)] = resource
                break
    _list_producers(api, producers, collection_of)
    consumers: dict[str, tuple[Consumer, ...]] = {}
    roles: dict[str, str] = {}
    resources: dict[str, str] = {}
    parents: dict[str, str] = {}
    by_singular = {singular(r): r for r in producers}
    for op in api.operations:
        segs = _segments(op.path)
        found: list[Consumer] = []
        for index, seg in enumerate(segs):
            if not _is_param(seg):
                continue
            name = seg[1:-1]
            resource = collection_of.get(_shape(segs[:index]))
            if resource is None:
                stem = name[:-2] if name.lower().endswith("id") else name
                resource = by_singular.get(stem.rstrip("_-")) or by_singular.get(stem)
            if resource is not None:
                found.append(Consumer(op.op_id, name, resource, "path"))
        found.extend(_body_consumers(op, by_singular))
        consumers[op.op_id] = tuple(found)
        roles[op.op_id], resources[op.op_id] = _role(op, segs, collection_of, found)
    for resource, producer in producers.items():
        path_uses = [c for c in consumers.get(producer.op_id, ()) if c.where == "path"]
        if path_uses:
            parents[resource] = path_uses[-1].resource
    setup, skipped = _setup_and_skipped(api)
    return Graph(producers, consumers, roles, resources, parents, setup, skipped)


def _list_producers(api: ApiSpec, producers: dict[str, Producer],
                    collection_of: dict[tuple[str, ...], str]) -> None:
    """A collection nobody creates through the API (read-only, or seeded) is produced by
    its list: a GET whose 200 body is an array of objects with an identifier member (at
    the top or as the first array member of an object)."""
    for op in api.operations:
        segs = _segments(op.path)
        if op.method != "GET" or not segs or _is_param(segs[-1]) or segs[-1] in producers:
            continue
        schema = op.responses.get("200")
        items = _array_items(schema)
        id_field = identifier_field(segs[-1], items)
        if id_field:
            producers[segs[-1]] = Producer(op.op_id, segs[-1], id_field, False)
            collection_of[_shape(segs)] = segs[-1]


def _array_items(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "array" or "items" in schema:
        return schema.get("items")
    props = schema.get("properties")
    if isinstance(props, dict):
        for sub in props.values():
            if isinstance(sub, dict) and (sub.get("type") == "array" or "items" in sub):
                return sub.get("items")
    return None


def _body_consumers(op: Operation, by_singular: dict[str, str]) -> list[Consumer]:
    props = op.request_schema.get("properties") if isinstance(op.request_schema, dict) else None
    if not isinstance(props, dict):
        return []
    found = []
    for name in props:
        for suffix in ("Id", "_id", "ID"):
            if name.endswith(suffix) and name[: -len(suffix)] in by_singular:
                found.append(Consumer(op.op_id, name, by_singular[name[: -len(suffix)]], "body"))
    return found


def _role(op: Operation, segs: list[str], collection_of: dict[tuple[str, ...], str],
          found: list[Consumer]) -> tuple[str, str]:
    last_param = bool(segs) and _is_param(segs[-1])
    if not last_param:
        resource = collection_of.get(_shape(segs), "")
        if resource and op.method == "POST":
            return CREATE, resource
        if resource and op.method == "GET":
            return LIST, resource
        return OTHER, resource
    # The role is about the last path parameter's resource: /widgets/{id}/labels/{label}
    # with an unbound {label} deletes a label, not the widget bound before it.
    last = segs[-1][1:-1]
    resource = next((c.resource for c in found if c.where == "path" and c.name == last), "")
    role = {"GET": READ, "PUT": UPDATE, "PATCH": UPDATE, "DELETE": DELETE}.get(op.method, OTHER)
    return (role if resource else OTHER), resource


def _setup_and_skipped(api: ApiSpec) -> tuple[str | None, dict[str, str]]:
    setup = None
    skipped: dict[str, str] = {}
    for op in api.operations:
        if api.session_cookie and any("set-cookie" in h for s, h in op.response_headers.items()
                                      if s.startswith("2")):
            setup = setup or op.op_id
        lowered = (op.op_id + " " + op.path).lower()
        if any(word in lowered for word in _SESSION_ENDERS):
            skipped[op.op_id] = "ends the session"
        elif op.opaque_body:
            skipped[op.op_id] = "request body is not JSON"
        elif "101" in op.responses:
            skipped[op.op_id] = "switches protocols"
        elif any("event-stream" in t for t in op.response_types):
            skipped[op.op_id] = "streams without end"
    if setup is not None:
        skipped.pop(setup, None)
    return setup, skipped


def plan_text(graph: Graph, api: ApiSpec) -> str:
    """The inferred graph as the text ``assay tier2 --plan`` prints."""
    lines = [f"spec: {api.spec.source} ({len(api.operations)} operations)"]
    lines.append(f"setup: {graph.setup or '(none)'}"
                 + (f" (session cookie {api.session_cookie!r})" if api.session_cookie else ""))
    lines.append("producers:")
    for resource, p in sorted(graph.producers.items()):
        carrier = f"response member {p.field!r}" if p.field else "Location header"
        if graph.roles.get(p.op_id) == LIST:
            carrier = f"member {p.field!r} of the first listed object"
        parent = f", child of {graph.parents[resource]}" if resource in graph.parents else ""
        lines.append(f"  {resource}: {p.op_id} ({carrier}{parent})")
    lines.append("operations:")
    for op in api.operations:
        if op.op_id in graph.skipped:
            continue
        uses = ", ".join(f"{c.name}<-{c.resource}({c.where})" for c in graph.consumers[op.op_id])
        resource = graph.resources.get(op.op_id) or "-"
        lines.append(f"  {op.method:6} {op.path:28} {op.op_id:18} {graph.roles[op.op_id]:6} "
                     f"{resource:10} {uses or 'no dependencies'}")
    for resource, (member, values) in sorted(graph.terminal.items()):
        lines.append(f"terminal: {resource}.{member} in {list(values)}")
    if graph.skipped:
        lines.append("skipped:")
        lines.extend(f"  {op}: {why}" for op, why in graph.skipped.items())
    return "\n".join(lines) + "\n"
