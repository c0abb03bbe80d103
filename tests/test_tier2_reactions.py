"""Reactions a correct API may have that Tier 2 must not report: a DELETE of a sub-item
whose last parameter nothing produces, a pattern the body generator ignores, a list page
in no documented order, an empty child list under a deleted parent."""

from __future__ import annotations

import random

from protocols.openapi_operations import load_operations
from protocols.tier2_graph import infer
from protocols.tier2_payloads import invalid_bodies, valid_body
from protocols.tier2_schema import violations
from protocols.tier2_sequences import Binding, Step
from tests.test_tier2_core import ITEM, REFAPP, _json, _judge, nested

LABELS = """
openapi: 3.0.3
info: {title: labels, version: "1"}
paths:
  /widgets:
    post:
      operationId: createWidget
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [name]
              properties: {name: {type: string, pattern: "^[a-z]+$", maxLength: 12}}
      responses:
        "201":
          description: made
          content: {application/json: {schema: {type: object, properties: {id: {type: string}}}}}
    get:
      operationId: listWidgets
      responses: {"200": {description: a page}}
  /widgets/{widgetId}:
    get:
      operationId: readWidget
      responses: {"200": {description: ok}, "404": {description: no}}
  /widgets/{widgetId}/labels/{label}:
    delete:
      operationId: removeLabel
      responses: {"204": {description: removed or absent}}
"""


def test_an_unbound_last_parameter_is_not_its_parents_delete() -> None:
    """DELETE /widgets/{id}/labels/{label} removes a label; its 204 must not mark the
    widget deleted (which made a later GET of the widget a false use-after-delete)."""
    api = load_operations(LABELS, "labels.yaml")
    graph = infer(api)
    assert graph.roles["removeLabel"] == "other"
    made = (Step("createWidget", "valid", {"name": "a"}), _json(201, {"id": "w1"}))
    bound = (Binding("widgetId", "path", 0),)
    script = [made, (Step("removeLabel", binds=bound), (204, [], b"")),
              (Step("readWidget", binds=bound), _json(200, {"id": "w1"}))]
    assert _judge(api, graph, script) == []


def test_valid_bodies_honour_patterns_the_generator_ignores() -> None:
    schema = load_operations(LABELS, "l").by_id()["createWidget"].request_schema
    rng = random.Random(3)
    for _ in range(20):
        payload = valid_body(schema, rng)
        assert payload.kind == "valid" and violations(payload.body, schema, "request") == []
    impossible = {"type": "object", "required": ["a"],
                  "properties": {"a": {"type": "string", "pattern": "^$", "minLength": 1}}}
    assert valid_body(impossible, rng).kind == "best-effort"


def test_a_page_in_no_order_and_an_empty_child_list_are_no_findings() -> None:
    api = load_operations(REFAPP, "r")
    graph = infer(api)
    login = (Step("login", "valid", {}), _json(200, {}))
    bad = Step("createItem", "invalid:too-long", {"name": "L" * 65, "quantity": 1})
    listing = Step("listItems")
    page = [{**ITEM, "id": f"i{n}"} for n in range(6)]
    shuffled = [login, (listing, _json(200, {"items": page[:3]})),
                (bad, _json(422, {"error": "x"})), (listing, _json(200, {"items": page[3:]}))]
    assert _judge(api, graph, shuffled) == []
    grew = [*shuffled[:3], (listing, _json(200, {"items": page[:4]}))]
    assert _judge(api, graph, grew) == ["I-API-INVALID-SIDE-EFFECT:createItem:4xx"]
    nested_api, nested_graph = nested()
    user = (Step("createUser", "valid", {"name": "a"}), _json(201, {"id": "u1"}))
    by_user = (Binding("userId", "path", 0),)
    gone = (Step("deleteUser", binds=by_user), (204, [], b""))
    orders = Step("listOrders", binds=by_user)
    assert _judge(nested_api, nested_graph, [user, gone, (orders, _json(200, []))]) == []
    assert _judge(nested_api, nested_graph, [user, gone, (orders, _json(
        200, [{"id": "o1"}]))]) == ["I-API-DEPENDENT-LEAK:listOrders:2xx"]


def test_a_natural_key_created_again_is_no_stale_id() -> None:
    """The client names the id (``name`` becomes the id): creating it again after its
    DELETE is the client's choice, not a reissued id. A server-chosen one is still judged."""
    api, graph = nested()
    by_user = (Binding("userId", "path", 0),)
    user = (Step("createUser", "valid", {"name": "alice"}), _json(201, {"id": "alice"}))
    gone = (Step("deleteUser", binds=by_user), (204, [], b""))
    again = (Step("createUser", "valid", {"name": "alice"}), _json(201, {"id": "alice"}))
    assert _judge(api, graph, [user, gone, again]) == []
    server_chosen = (Step("createUser", "valid", {"name": "bob"}), _json(201, {"id": "alice"}))
    assert _judge(api, graph, [user, gone, server_chosen]) == ["I-API-STALE-ID:createUser:2xx"]


def test_a_repeat_delete_refused_for_pace_or_credentials_is_no_double_delete() -> None:
    """Under load a rate-limited server answers 429 to anything, the repeat DELETE too,
    documented or not (deleteUser documents 204 and 404 only)."""
    api, graph = nested()
    user = (Step("createUser", "valid", {"name": "a"}), _json(201, {"id": "u1"}))
    delete = Step("deleteUser", binds=(Binding("userId", "path", 0),))
    for status in (429, 401, 403):
        script = [user, (delete, (204, [], b"")), (delete, _json(status, {}))]
        assert _judge(api, graph, script) == [], status
    script = [user, (delete, (204, [], b"")), (delete, _json(409, {}))]
    assert _judge(api, graph, script) == ["I-API-DOUBLE-DELETE:deleteUser:4xx"]


def test_invalid_bodies_leave_read_only_members_alone() -> None:
    """One schema for request and response (``id`` readOnly and required): a server may
    ignore a readOnly member, so no invalid body breaks only that one (and deleting the
    absent member no longer crashes the campaign with a KeyError)."""
    schema = {"type": "object", "required": ["id", "name"],
              "properties": {"id": {"type": "string", "readOnly": True, "maxLength": 4},
                             "name": {"type": "string", "maxLength": 8}}}
    for seed in range(8):  # the readOnly member was picked to delete: a KeyError
        bodies = invalid_bodies(schema, random.Random(seed))
        assert {p.kind for p in bodies} == {"invalid:wrong-type", "invalid:missing-required",
                                            "invalid:too-long"}
        for payload in bodies:
            assert "id" not in payload.body and "name" in payload.why


def test_a_body_of_another_media_type_is_not_judged_by_the_documented_schema() -> None:
    """refapp's readItem documents application/json; a problem+json body (RFC 9457) is
    not described by that schema (OpenAPI 3.0.3 §4.7.17: a schema per media type)."""
    api = load_operations(REFAPP, "r")
    graph = infer(api)
    login = (Step("login", "valid", {}), _json(200, {}))
    create = (Step("createItem", "valid", {"name": "n", "quantity": 1}), _json(201, ITEM))
    read = Step("readItem", binds=(Binding("id", "path", 1),))
    for content_type, expected in (
            (b"application/problem+json", []),
            (b"application/json; charset=utf-8", ["I-API-SCHEMA:readItem:2xx"]),
            (None, ["I-API-SCHEMA:readItem:2xx"])):
        headers = [(b"content-type", content_type)] if content_type else []
        script = [login, create, (read, _json(200, {"id": "i1"}, headers))]
        assert _judge(api, graph, script) == expected, content_type
