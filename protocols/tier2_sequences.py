"""One request sequence, run as a sans-IO state machine: steps in, requests out.

How this works: a sequence is a tuple of ``Step``s. Each names an operation, a body (already
generated, so the sequence is plain data that can be saved, shrunk and replayed) and its
*bindings*: which earlier step produced the identifier each path parameter or body member
takes. ``SequenceRun`` turns the steps into concrete ``ApiRequest``s one at a time
(``next_request``), takes each response (``receive``) and records an ``Exchange``: the
status, the decoded JSON body, the identifiers the request addressed, the one it created,
the ones a list showed. It keeps the session's cookies (``Set-Cookie`` in, ``Cookie`` out),
so every run is its own session. A binding whose producer produced nothing (it failed)
ends the run early: the rest of the sequence cannot be built (RESTler calls such a
sequence invalid). No I/O here: the caller sends, reads, and reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from protocols.openapi_operations import Operation
from protocols.tier2_graph import CREATE, LIST, Graph

MAX_ID = 512  # longest identifier taken from a response


@dataclass(frozen=True)
class Binding:
    """``name`` (a path parameter or body member) takes the id step ``source`` produced."""

    name: str
    where: str
    source: int


@dataclass(frozen=True)
class Step:
    op_id: str
    #: "none", "valid", "best-effort" (a draw that breaks a pattern), "boundary" or
    #: "invalid:<kind>".
    payload: str = "none"
    body: Any = None
    binds: tuple[Binding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op_id, "payload": self.payload, "body": self.body,
                "binds": [[b.name, b.where, b.source] for b in self.binds]}

    @classmethod
    def from_json(cls, data: Any) -> Step:
        """Raises ValueError naming what is malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("op"), str):
            raise ValueError("a step must be an object with an 'op' string")
        binds = data.get("binds", [])
        if not isinstance(binds, list) or not all(
                isinstance(b, list) and len(b) == 3 and isinstance(b[0], str)
                and b[1] in ("path", "body") and isinstance(b[2], int) for b in binds):
            raise ValueError(f"step {data['op']!r}: 'binds' must be [name, path|body, index]s")
        return cls(data["op"], str(data.get("payload", "none")), data.get("body"),
                   tuple(Binding(*b) for b in binds))


@dataclass(frozen=True)
class ApiRequest:
    method: str
    #: Origin-form target, base path included.
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


@dataclass(frozen=True)
class Exchange:
    index: int
    step: Step
    method: str
    target: str
    status: int
    #: Decoded JSON body, or None (no body, or not JSON; see ``is_json``).
    body: Any = field(compare=False)
    is_json: bool
    #: (resource, id) pairs bound into the request, in path order (the last one is the
    #: resource the request is about; the ones before are its ancestors).
    addressed: tuple[tuple[str, str], ...]
    created: tuple[str, str] | None
    #: (resource, ids) a successful list showed.
    listed: tuple[str, frozenset[str]] | None
    role: str
    #: (resource, id) this exchange hands to consumers: what it created, or the first id
    #: of a list that is its resource's producer (a read-only collection).
    produced: tuple[str, str] | None = None
    #: The response's Content-Type ("" when it sent none).
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def summary(self) -> str:
        return f"{self.method} {self.target} -> {self.status}"


def is_valid(steps: tuple[Step, ...]) -> bool:
    """Every binding points at an earlier step (what a shrink candidate must keep)."""
    return all(0 <= b.source < i for i, s in enumerate(steps) for b in s.binds)


def drop_step(steps: tuple[Step, ...], index: int) -> tuple[Step, ...]:
    """``steps`` without step ``index``, later bindings renumbered."""
    out = []
    for i, step in enumerate(steps):
        if i == index:
            continue
        binds = tuple(Binding(b.name, b.where, b.source - (b.source > index)) if
                      b.source != index else Binding(b.name, b.where, -1) for b in step.binds)
        out.append(Step(step.op_id, step.payload, step.body, binds))
    return tuple(out)


class SequenceRun:
    """Runs ``steps`` over one session: ``next_request`` / ``receive`` until it is done."""

    def __init__(self, steps: tuple[Step, ...], ops: dict[str, Operation], graph: Graph,
                 base_path: str = "") -> None:
        self.steps = steps
        self.ops = ops
        self.graph = graph
        self.base_path = base_path
        self.exchanges: list[Exchange] = []
        self.produced: dict[int, tuple[str, str]] = {}
        self.cookies: dict[str, str] = {}
        #: Why the run stopped before its last step ("" when it ran them all).
        self.stopped = ""
        self._pending: tuple[Step, str, tuple[tuple[str, str], ...]] | None = None

    @property
    def done(self) -> bool:
        return self._pending is None and (bool(self.stopped)
                                          or len(self.exchanges) == len(self.steps))

    def next_request(self) -> ApiRequest | None:
        """The next request to send, or None when the run is over."""
        if self.done:
            return None
        assert self._pending is None, "receive() the previous response first"
        index = len(self.exchanges)
        step = self.steps[index]
        op = self.ops[step.op_id]
        values: dict[str, str] = {}
        addressed: list[tuple[str, str]] = []
        for bind in step.binds:
            made = self.produced.get(bind.source)
            if made is None:
                self.stopped = f"step {index} ({step.op_id}): its producer (step " \
                               f"{bind.source}) produced no identifier"
                return None
            values[bind.name] = made[1]
            if bind.where == "path":
                addressed.append(made)
        path = op.path
        for name in op.path_params:
            path = path.replace("{" + name + "}", quote(values.get(name, "assay-unbound"),
                                                         safe=""))
        body = step.body
        if isinstance(body, dict):
            body = dict(body)
            body.update({b.name: values[b.name] for b in step.binds if b.where == "body"})
        headers: list[tuple[str, str]] = [("Accept", "application/json")]
        if self.cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        payload = None
        if step.payload != "none":
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers.append(("Content-Type", "application/json"))
        self._pending = (step, path, tuple(addressed))
        return ApiRequest(op.method, self.base_path + path, tuple(headers), payload)

    def receive(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Exchange:
        """Record the response to the request ``next_request`` returned."""
        assert self._pending is not None, "no request in flight"
        step, path, addressed = self._pending
        self._pending = None
        index = len(self.exchanges)
        for name, value in headers:
            if name.lower() == b"set-cookie":
                self._store_cookie(value.decode("latin-1"))
        try:
            doc, is_json = json.loads(body), True
        except (ValueError, RecursionError):
            doc, is_json = None, False
        role = self.graph.roles.get(step.op_id, "other")
        resource = self.graph.resources.get(step.op_id, "")
        created = listed = None
        if role == CREATE and 200 <= status < 300:
            made = self._identifier(resource, doc, headers)
            if made:
                created = (resource, made)
                self.produced[index] = created
        elif role == LIST and 200 <= status < 300:
            ids = _listed_ids(doc, self._id_field(resource))
            listed = (resource, frozenset(ids))
            producer = self.graph.producers.get(resource)
            if producer is not None and producer.op_id == step.op_id and ids \
                    and len(ids[0]) <= MAX_ID:
                self.produced[index] = (resource, ids[0])
        exchange = Exchange(index, step, self.ops[step.op_id].method, self.base_path + path,
                            status, doc, is_json, addressed, created, listed, role,
                            self.produced.get(index), _content_type(headers))
        self.exchanges.append(exchange)
        if index == 0 and self.graph.setup == step.op_id and not exchange.ok:
            self.stopped = f"setup {step.op_id} answered {status}"
        return exchange

    def _id_field(self, resource: str) -> str:
        producer = self.graph.producers.get(resource)
        return producer.field if producer and producer.field else "id"

    def _identifier(self, resource: str, doc: Any,
                    headers: list[tuple[bytes, bytes]]) -> str | None:
        name = self._id_field(resource)
        if isinstance(doc, dict) and isinstance(doc.get(name), (str, int)) \
                and not isinstance(doc.get(name), bool):
            text = str(doc[name])
            return text if 0 < len(text) <= MAX_ID else None
        for key, value in headers:
            if key.lower() == b"location":
                last = value.decode("latin-1").split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                return last if 0 < len(last) <= MAX_ID else None
        return None

    def _store_cookie(self, text: str) -> None:
        pair = text.split(";", 1)[0]
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or len(self.cookies) >= 64:
            return
        if value:
            self.cookies[name] = value
        else:
            self.cookies.pop(name, None)


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    return next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")


def _listed_ids(doc: Any, id_field: str) -> list[str]:
    """Identifiers in a list response: a top-level array, or the first array member."""
    items = doc if isinstance(doc, list) else None
    if isinstance(doc, dict):
        items = next((v for v in doc.values() if isinstance(v, list)), None)
    return [str(item[id_field]) for item in items or ()
            if isinstance(item, dict) and isinstance(item.get(id_field), (str, int))]
