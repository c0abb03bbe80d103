"""Tier 2's pure core: inference, overrides, payloads, schema checks, sequence runs,
the planner and every checker -- no sockets."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from protocols.load_errors import LoadInputError
from protocols.openapi import SpecError
from protocols.openapi_operations import load_operations
from protocols.tier2_checkers import check
from protocols.tier2_graph import infer, plan_text
from protocols.tier2_overrides import apply, load_overrides
from protocols.tier2_payloads import boundary_body, example_body, invalid_bodies, valid_body
from protocols.tier2_planner import Planner
from protocols.tier2_schema import violations
from protocols.tier2_sequences import Binding, SequenceRun, Step, drop_step, is_valid
from replay.tier2_shrink import renumber

ROOT = Path(__file__).resolve().parent.parent
REFAPP = (ROOT / "refapp" / "openapi.yaml").read_text()

NESTED = """
openapi: 3.1.0
info: {title: shop, version: "1"}
paths:
  /users:
    post:
      operationId: createUser
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [name]
              additionalProperties: false
              properties:
                name: {type: string, maxLength: 8}
                role: {type: string, enum: [admin, member]}
      responses:
        "201":
          description: made
          content:
            application/json:
              schema:
                type: object
                required: [id]
                properties: {id: {type: string}, name: {type: string}}
  /users/{userId}:
    get:
      operationId: getUser
      responses: {"200": {description: ok}, "404": {description: gone}}
    delete:
      operationId: deleteUser
      responses: {"204": {description: gone}, "404": {description: gone}}
  /users/{userId}/orders:
    post:
      operationId: createOrder
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties: {status: {type: string}, couponId: {type: string}}
      responses:
        "201":
          description: made
          headers: {Location: {schema: {type: string}}}
    get:
      operationId: listOrders
      responses: {"200": {description: ok}}
  /users/{userId}/orders/{orderId}:
    get:
      operationId: getOrder
      responses: {"200": {description: ok}}
  /coupons:
    post:
      operationId: createCoupon
      responses:
        "201":
          description: made
          content:
            application/json:
              schema: {type: object, properties: {couponId: {type: string}}}
"""


def nested():
    api = load_operations(NESTED, "shop.yaml")
    return api, infer(api)


# -- inference -----------------------------------------------------------------------------


def test_refapp_graph_items_and_login_setup() -> None:
    api = load_operations(REFAPP, "openapi.yaml")
    graph = infer(api)
    assert graph.setup == "login"
    assert graph.producers["items"].op_id == "createItem"
    assert graph.producers["items"].field == "id"
    assert {graph.roles[o] for o in ("readItem", "updateItem", "deleteItem", "listItems")} == {
        "read", "update", "delete", "list"}
    assert [c.resource for c in graph.consumers["deleteItem"]] == ["items"]
    assert set(graph.skipped) == {"logout", "echo", "websocketEcho", "events"}
    text = plan_text(graph, api)
    assert "items: createItem (response member 'id')" in text and "logout: ends" in text


def test_nested_resources_location_and_body_consumers() -> None:
    _, graph = nested()
    assert graph.producers["orders"].location and not graph.producers["orders"].field
    assert graph.parents == {"orders": "users"}
    assert [(c.name, c.resource) for c in graph.consumers["getOrder"]] == [
        ("userId", "users"), ("orderId", "orders")]
    assert ("couponId", "coupons", "body") in [
        (c.name, c.resource, c.where) for c in graph.consumers["createOrder"]]
    assert graph.roles["listOrders"] == "list" and graph.resources["listOrders"] == "orders"


READ_ONLY = """
openapi: 3.0.3
info: {title: catalogue, version: "1"}
paths:
  /products:
    get:
      operationId: listProducts
      responses:
        "200":
          description: all
          content:
            application/json:
              schema:
                type: array
                items: {type: object, properties: {productId: {type: integer}}}
  /products/{productId}:
    get:
      operationId: getProduct
      responses: {"200": {description: one}}
"""


def test_a_list_produces_for_a_collection_nobody_creates() -> None:
    api = load_operations(READ_ONLY, "catalogue.yaml")
    graph = infer(api)
    assert graph.producers["products"].op_id == "listProducts"
    assert "member 'productId' of the first listed object" in plan_text(graph, api)
    planner = Planner(api, graph, 1)
    steps, _ = planner.next_sequence()
    assert [s.op_id for s in steps] == ["listProducts"]
    run = SequenceRun(steps, api.by_id(), graph)
    run.next_request()
    run.receive(*_json(200, [{"productId": 7}, {"productId": 8}]))
    planner.record(steps, run.exchanges, False)
    proposals = [planner.next_sequence()[0] for _ in range(2)]
    grown = next(p for p in proposals if p[-1].op_id == "getProduct")
    assert [s.op_id for s in grown] == ["listProducts", "getProduct"]
    run = SequenceRun(grown, api.by_id(), graph)
    run.next_request()
    run.receive(*_json(200, [{"productId": 7}]))
    assert run.next_request().target == "/products/7"


def test_bad_spec_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        load_operations("openapi: 2.0\npaths: {}\n", "bad.yaml")


# -- overrides -----------------------------------------------------------------------------


def test_overrides_apply_and_fail_with_file_line_field() -> None:
    api, graph = nested()
    text = ('skip = ["listOrders"]\n[[terminal]]\nresource = "orders"\nfield = "status"\n'
            'values = ["closed"]\n[[parent]]\nresource = "coupons"\nparent = "users"\n')
    fixed = apply(graph, load_overrides(text, "o.toml", set(api.by_id())))
    assert fixed.terminal == {"orders": ("status", ("closed",))}
    assert fixed.parents["coupons"] == "users" and "listOrders" in fixed.skipped
    assert graph.terminal == {}  # the inferred graph is not mutated
    with pytest.raises(LoadInputError, match=r"^o.toml:3: consumer\[0\].operation: no "):
        load_overrides('[[consumer]]\nname = "x"\noperation = "nope"\nresource = "users"\n',
                       "o.toml", set(api.by_id()))
    with pytest.raises(LoadInputError, match=r"^o.toml:1: bogus: unknown key"):
        load_overrides("bogus = 1\n", "o.toml", set(api.by_id()))
    with pytest.raises(LoadInputError, match=r"^o.yaml:\d+: skip\[1\]: no operation"):
        load_overrides("skip:\n  - getUser\n  - nope\n", "o.yaml", set(api.by_id()))


# -- payloads and schema -------------------------------------------------------------------


def test_payload_kinds_are_what_they_claim() -> None:
    api = load_operations(NESTED, "shop.yaml")
    schema = api.by_id()["createUser"].request_schema
    rng = random.Random(3)
    for _ in range(20):
        assert violations(valid_body(schema, rng).body, schema, "request") == []
    boundary = boundary_body(schema, rng)
    assert boundary is not None and boundary.body["name"] == "b" * 8
    assert not violations(boundary.body, schema, "request")
    kinds = {p.kind for p in invalid_bodies(schema, rng)}
    assert {"invalid:wrong-type", "invalid:missing-required", "invalid:enum-outside",
            "invalid:too-long", "invalid:unknown-member"} <= kinds
    assert all(violations(p.body, schema, "request") for p in invalid_bodies(schema, rng))
    login = load_operations(REFAPP, "r").by_id()["login"].request_schema
    assert example_body(login, rng)["password"] == "secret"


def test_payloads_are_deterministic_for_a_seed() -> None:
    schema = load_operations(REFAPP, "r").by_id()["createItem"].request_schema
    first = [p.body for p in invalid_bodies(schema, random.Random(9))]
    assert first == [p.body for p in invalid_bodies(schema, random.Random(9))]


@pytest.mark.parametrize(("value", "schema", "problem"), [
    ({"a": 1}, {"type": "object", "required": ["b"]}, "missing required 'b'"),
    ([1, "x"], {"type": "array", "items": {"type": "integer"}}, "$[1]: expected integer"),
    ("abc", {"type": "string", "pattern": "^[0-9]+$"}, "does not match pattern"),
    (5, {"type": "integer", "exclusiveMaximum": 5}, "not below exclusiveMaximum"),
    (5, {"type": "integer", "maximum": 5, "exclusiveMaximum": True}, "above maximum"),
    ("x", {"oneOf": [{"type": "string"}, {"minLength": 1}]}, "matches 2 of the oneOf"),
    ({"z": 1}, {"type": "object", "additionalProperties": False}, "unknown property 'z'"),
])
def test_violations_name_the_problem(value, schema, problem) -> None:
    assert any(problem in line for line in violations(value, schema))


def test_conforming_values_and_open_keywords_pass() -> None:
    assert violations(None, {"type": "string", "nullable": True}) == []
    assert violations(2.0, {"type": "integer"}) == []
    assert violations("not-an-email", {"type": "string", "format": "email"}) == []
    readonly = {"type": "object", "required": ["id"], "properties": {"id": {"readOnly": True}}}
    assert violations({}, readonly, "request") == [] and violations({}, readonly) != []


# -- sequence runs -------------------------------------------------------------------------


def _json(status: int, doc, headers=()) -> tuple[int, list, bytes]:
    return status, list(headers), json.dumps(doc).encode()


def test_sequence_run_binds_ids_keeps_cookies_and_stops_on_missing_producer() -> None:
    api = load_operations(REFAPP, "r")
    graph = infer(api)
    steps = (Step("login", "valid", {"username": "u", "password": "secret"}),
             Step("createItem", "valid", {"name": "n", "quantity": 1}),
             Step("readItem", binds=(Binding("id", "path", 1),)))
    run = SequenceRun(steps, api.by_id(), graph)
    first = run.next_request()
    assert first.method == "POST" and first.target == "/login" and b"secret" in first.body
    run.receive(*_json(200, {"user": "u"}, [(b"Set-Cookie", b"session=abc; Path=/")]))
    create = run.next_request()
    assert ("Cookie", "session=abc") in create.headers
    run.receive(*_json(201, {"id": "i/1", "name": "n", "quantity": 1, "tags": []}))
    read = run.next_request()
    assert read.target == "/items/i%2F1" and read.body is None
    ex = run.receive(*_json(200, {}))
    assert ex.addressed == (("items", "i/1"),) and run.done and not run.stopped
    broken = SequenceRun(steps, api.by_id(), graph)
    assert broken.next_request() is not None
    broken.receive(*_json(200, {}))
    broken.next_request()
    broken.receive(*_json(422, {"error": "no"}))
    assert broken.next_request() is None and "produced no identifier" in broken.stopped


def test_location_header_produces_and_failed_setup_stops() -> None:
    api, graph = nested()
    run = SequenceRun((Step("createUser", "valid", {"name": "a"}),
                       Step("createOrder", "valid", {}, (Binding("userId", "path", 0),))),
                      api.by_id(), graph)
    run.next_request()
    run.receive(*_json(201, {"id": "u1"}))
    assert run.next_request().target == "/users/u1/orders"
    ex = run.receive(201, [(b"location", b"/users/u1/orders/o9")], b"")
    assert ex.created == ("orders", "o9")


def test_drop_and_renumber_keep_bindings_valid() -> None:
    steps = (Step("a"), Step("b", binds=(Binding("x", "path", 0),)),
             Step("c", binds=(Binding("y", "path", 1),)))
    assert is_valid(steps) and not is_valid(drop_step(steps, 1))
    assert renumber(steps, (0, 2)) is None
    kept = renumber(steps, (0, 1))
    assert kept is not None and kept[1].binds[0].source == 0


# -- planner -------------------------------------------------------------------------------


def _ok_run(planner: Planner, steps):
    """Pretend every step answered 2xx; creates produce ids."""
    run = SequenceRun(steps, planner.ops, planner.graph)
    n = 0
    while (request := run.next_request()) is not None:
        n += 1
        run.receive(*_json(201 if request.method == "POST" else 200, {"id": f"id{n}"}))
    return run.exchanges


def test_planner_grows_breadth_first_and_is_deterministic() -> None:
    api = load_operations(REFAPP, "r")

    def proposals(seed: int) -> list:
        planner = Planner(api, infer(api), seed, max_length=3)
        out = []
        while (item := planner.next_sequence()) is not None:
            steps, variant = item
            out.append(tuple((s.op_id, s.payload, json.dumps(s.body)) for s in steps)
                       + ((("variant",),) if variant else ()))
            planner.record(steps, _ok_run(planner, steps), variant)
        return out

    first = proposals(5)
    assert first == proposals(5) and first != proposals(6)
    ops = [tuple(s[0] for s in p) for p in first]
    assert all(p[0] == "login" for p in ops)
    assert ("login", "createItem", "deleteItem", "readItem") in ops
    assert ("login", "createItem", "deleteItem", "deleteItem") in ops
    assert any(s[1].startswith("invalid:") for p in first for s in p if len(s) > 1)
    lengths = [len(p) for p in ops if p[-1] != "variant"]
    assert lengths == sorted(lengths) and lengths[-1] == 4  # breadth first, bounded
    # a GET changes nothing, so a grown sequence never continues after one
    reads = {"readItem", "listItems", "healthz", "stats"}
    assert not any(op in reads for p in ops if p[-1] != "variant" for op in p[1:-1])


# -- checkers ------------------------------------------------------------------------------


def _judge(api, graph, script):
    """Run ``script`` = [(step, (status, headers, body))] through a SequenceRun and check."""
    run = SequenceRun(tuple(s for s, _ in script), api.by_id(), graph)
    for _, response in script:
        assert run.next_request() is not None
        run.receive(*response)
    return [f.bucket for f in check(run.exchanges, api.by_id(), graph)]


def _refapp_script(*tail):
    api = load_operations(REFAPP, "r")
    login = (Step("login", "valid", {"username": "u", "password": "secret"}), _json(200, {}))
    create = (Step("createItem", "valid", {"name": "n", "quantity": 1}),
              _json(201, {"id": "i1", "name": "n", "quantity": 1, "tags": []}))
    bound = (Binding("id", "path", 1),)
    steps = [login, create]
    for op, response in tail:
        steps.append((Step(op, binds=bound), response))
    return api, infer(api), steps


ITEM = {"id": "i1", "name": "n", "quantity": 1, "tags": []}


@pytest.mark.parametrize(("tail", "expected"), [
    ((("deleteItem", (204, [], b"")), ("readItem", _json(200, ITEM))),
     ["I-API-USE-AFTER-DELETE:readItem:2xx"]),
    ((("deleteItem", (204, [], b"")), ("readItem", _json(404, {"error": "x"}))), []),
    ((("deleteItem", (202, [], b"")), ("readItem", _json(200, ITEM))), []),  # not enacted
    ((("deleteItem", (204, [], b"")), ("deleteItem", _json(500, {"error": "x"}))),
     ["I-API-DOUBLE-DELETE:deleteItem:5xx"]),
    ((("deleteItem", (204, [], b"")), ("deleteItem", (410, [], b""))), []),
    ((("deleteItem", (204, [], b"")), ("deleteItem", (204, [], b""))), []),  # idempotent
    ((("deleteItem", (204, [], b"")), ("updateItem", _json(200, ITEM))),
     ["I-API-USE-AFTER-DELETE:updateItem:2xx"]),
    # a PUT that re-creates answers 201 (RFC 9110 §9.3.4): the item lives again
    ((("deleteItem", (204, [], b"")), ("updateItem", _json(201, ITEM)),
      ("readItem", _json(200, ITEM))), []),
    ((("deleteItem", (204, [], b"")), ("deleteItem", _json(409, {"error": "x"}))),
     ["I-API-DOUBLE-DELETE:deleteItem:4xx"]),  # 409 not documented for deleteItem
    ((("readItem", _json(500, {"error": "x"})),), ["I-API-5XX:readItem:5xx"]),
    ((("readItem", _json(200, {"id": "i1"})),), ["I-API-SCHEMA:readItem:2xx"]),
    ((("readItem", _json(200, ITEM)),), []),
])
def test_refapp_checkers(tail, expected) -> None:
    api, graph, steps = _refapp_script(*tail)
    assert _judge(api, graph, steps) == expected


def test_invalid_accepted_and_side_effect() -> None:
    api = load_operations(REFAPP, "r")
    graph = infer(api)
    login = (Step("login", "valid", {}), _json(200, {}))
    bad = Step("createItem", "invalid:too-long", {"name": "L" * 65, "quantity": 1})
    accepted = [login, (bad, _json(201, ITEM))]
    assert _judge(api, graph, accepted) == ["I-API-INVALID-ACCEPTED:createItem:2xx"]
    listing = Step("listItems")
    leaked = [login, (listing, _json(200, {"items": []})), (bad, _json(422, {"error": "x"})),
              (listing, _json(200, {"items": [ITEM]}))]
    assert _judge(api, graph, leaked) == ["I-API-INVALID-SIDE-EFFECT:createItem:4xx"]
    clean = [*leaked[:3], (listing, _json(200, {"items": []}))]
    assert _judge(api, graph, clean) == []


def test_dependent_leak_stale_id_and_terminal_reopened() -> None:
    api, graph = nested()
    graph = apply(graph, load_overrides(
        '[[terminal]]\nresource = "orders"\nfield = "status"\nvalues = ["closed"]\n',
        "o.toml", set(api.by_id())))
    user = (Step("createUser", "valid", {"name": "a"}), _json(201, {"id": "u1"}))
    order = (Step("createOrder", "valid", {}, (Binding("userId", "path", 0),)),
             (201, [(b"location", b"/users/u1/orders/o1")], b""))
    both = (Binding("userId", "path", 0), Binding("orderId", "path", 1))
    delete_user = (Step("deleteUser", binds=(Binding("userId", "path", 0),)), (204, [], b""))
    get_order = (Step("getOrder", binds=both), _json(200, {"status": "open"}))
    assert _judge(api, graph, [user, order, delete_user, get_order]) == [
        "I-API-DEPENDENT-LEAK:getOrder:2xx"]
    again = (Step("createUser", "valid", {"name": "b"}), _json(201, {"id": "u1"}))
    assert _judge(api, graph, [user, delete_user, again]) == ["I-API-STALE-ID:createUser:2xx"]
    closed = (Step("getOrder", binds=both), _json(200, {"status": "closed"}))
    assert _judge(api, graph, [user, order, closed, get_order]) == [
        "I-API-TERMINAL-REOPENED:getOrder:2xx"]
    assert _judge(api, graph, [user, order, get_order, closed]) == []
