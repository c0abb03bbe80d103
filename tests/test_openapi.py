"""protocols.openapi, openapi_bodies, openapi_walk: spec loading, route lookup, body
generation, the default walk."""

from __future__ import annotations

import datetime
import ipaddress
import json
import random
import re
import uuid
from typing import Any

import pytest

from protocols.openapi import SpecError, load_spec
from protocols.openapi_bodies import generate_body, write_only_properties
from protocols.openapi_walk import model_from_spec

SPEC = """\
openapi: 3.1.0
info: {title: t, version: "1"}
servers:
  - url: https://api.example.com/v1/
components:
  parameters:
    Id: {name: id, in: path, required: true, schema: {type: string}}
  requestBodies:
    Thing:
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Thing"}
  schemas:
    Thing:
      type: object
      required: [name]
      properties:
        name: {type: string, minLength: 3, maxLength: 5}
        owner: {$ref: "#/components/schemas/User"}
        secret: {type: string, writeOnly: true}
    User:
      type: object
      required: [email]
      properties:
        email: {type: string, format: email}
    Node:
      type: object
      required: [children]
      properties:
        value: {type: integer}
        children:
          type: array
          items: {$ref: "#/components/schemas/Node"}
paths:
  /things:
    get:
      responses: {"200": {description: ok, content: {application/json: {}}}}
    post:
      operationId: createThing
      requestBody: {$ref: "#/components/requestBodies/Thing"}
      responses: {"201": {description: created}}
  /things/{id}:
    parameters: [{$ref: "#/components/parameters/Id"}]
    get: {responses: {"200": {description: ok}}}
    put:
      requestBody:
        content:
          application/merge-patch+json:
            schema: {$ref: "#/components/schemas/Thing"}
      responses: {"200": {description: ok}}
  /things/new:
    get: {responses: {"200": {description: ok}}}
  /tree:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Node"}
      responses: {"200": {description: ok}}
  /events:
    get:
      responses:
        "200": {description: stream, content: {text/event-stream: {schema: {type: string}}}}
  /ws:
    get: {responses: {"101": {description: upgrade}}}
  /:
    get: {responses: {"200": {description: root}}}
"""


def test_routes_and_resolved_schemas():
    spec = load_spec(SPEC, "spec.yaml")
    assert spec.openapi == "3.1.0"
    assert spec.base_path == "/v1"
    assert spec.warnings == ()
    pairs = [(r.method, r.path) for r in spec.routes]
    assert ("POST", "/things") in pairs and ("PUT", "/things/{id}") in pairs
    create = spec.find_route("POST", "/things")
    assert create is not None and create.operation_id == "createThing"
    assert create.request_schema["properties"]["owner"]["properties"]["email"]["format"] == "email"
    assert spec.find_route("get", "/things/{thing_id}").path_params == ("id",)
    put = spec.find_route("PUT", "/things/{x}")
    assert put is not None and put.request_schema["required"] == ["name"]
    assert spec.find_route("DELETE", "/things/{id}") is None
    node = spec.find_route("POST", "/tree").request_schema
    assert node["properties"]["children"]["items"] is node  # recursion kept, not expanded


def test_match_prefers_literal_segments_and_ignores_query():
    spec = load_spec(SPEC, "spec.yaml")
    assert spec.match("GET", "/things/new").path == "/things/new"
    assert spec.match("GET", "/things/42?x=1").path == "/things/{id}"
    assert spec.match("get", "/things").path == "/things"
    assert spec.match("GET", "/things/42/more") is None
    assert spec.match("PATCH", "/things/42") is None


def test_json_spec_equals_yaml_spec():
    yaml_spec = load_spec(SPEC, "spec.yaml")
    import yaml

    as_json = json.dumps(yaml.safe_load(SPEC)).replace("/", "\\/")  # "\/" is not YAML 1.1
    json_spec = load_spec(as_json, "spec.json")
    assert [(r.method, r.path) for r in json_spec.routes] == [
        (r.method, r.path) for r in yaml_spec.routes
    ]


def test_undeclared_path_parameter_is_a_warning():
    spec = load_spec("openapi: 3.0.0\npaths:\n  /a/{x}:\n    get: {responses: {}}\n", "s.yaml")
    assert spec.routes[0].path_params == ("x",)
    assert any("does not declare path parameter(s) x" in w for w in spec.warnings)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("openapi: 3.0.0\npaths: {/a: [\n", 3, "invalid YAML"),
        ("info: {}\npaths: {}\n", 1, "missing 'openapi'"),
        ("swagger: '2.0'\npaths: {}\n", 1, "Swagger 2.0"),
        ("openapi: 2.5\npaths: {}\n", 1, "unsupported openapi"),
        ("openapi: 3.0.0\ninfo: {}\n", 1, "missing 'paths'"),
        ("openapi: 3.0.0\npaths: []\n", 2, "must be a mapping"),
        ("openapi: 3.0.0\npaths:\n  /ok: {}\n  /a/{id:\n    get: {}\n", 4, "malformed path"),
        ("openapi: 3.0.0\npaths:\n  /a/{}:\n    get: {}\n", 3, "malformed path"),
        ("openapi: 3.0.0\npaths:\n  items:\n    get: {}\n", 3, "must start with '/'"),
        ("openapi: 3.0.0\npaths:\n  /a/{x}/{x}:\n    get: {}\n", 3, "repeats"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    get: nope\n", 4, "must be a mapping"),
        (
            "openapi: 3.0.0\npaths:\n  /a:\n    post:\n      requestBody:\n"
            "        $ref: '#/components/requestBodies/Missing'\n",
            6,
            "points nowhere",
        ),
        (
            "openapi: 3.0.0\ncomponents:\n  schemas:\n    A: {$ref: '#/components/schemas/B'}\n"
            "    B: {$ref: '#/components/schemas/A'}\npaths:\n  /a:\n    post:\n"
            "      requestBody: {content: {application/json: {schema: {$ref: "
            "'#/components/schemas/A'}}}}\n",
            5,  # the $ref that closes the loop
            "circular $ref",
        ),
        ('{"openapi": "3.0.0",\n "paths": {"/a": ]}}', 2, "invalid JSON"),
    ],
)
def test_spec_errors_name_the_line(text: str, line: int, fragment: str):
    with pytest.raises(SpecError) as info:
        load_spec(text, "bad.yaml")
    assert fragment in info.value.message, str(info.value)
    assert info.value.line == line, str(info.value)
    assert str(info.value) == f"bad.yaml:{line}: {info.value.message}"


def test_external_refs_are_warned_not_fetched():
    spec = load_spec(
        "openapi: 3.0.0\npaths:\n  /a:\n    post:\n      requestBody:\n        content:\n"
        "          application/json: {schema: {$ref: 'other.yaml#/X'}}\n",
        "s.yaml",
    )
    assert spec.routes[0].request_schema == {}
    assert any("external $ref" in w for w in spec.warnings)


def test_model_from_spec_walks_plain_gets_only():
    model = model_from_spec(load_spec(SPEC, "spec.yaml"))
    assert sorted(model.states) == ["get_root", "get_things", "get_things_new"]
    for state in model.states.values():
        assert state.method == "GET" and not state.path_vars
        assert sorted(e.target for e in state.edges) == sorted(model.states)
        assert len({e.weight for e in state.edges}) == 1
    assert model.start in model.states
    with pytest.raises(SpecError):
        model_from_spec(load_spec("openapi: 3.0.0\npaths: {}\n", "s.yaml"))


# -- body generation ----------------------------------------------------------------------


def check(schema: dict, value: Any, depth: int = 0) -> None:
    """A small validator for the keywords generate_body promises to honour."""
    if "const" in schema:
        assert value == schema["const"]
        return
    if "enum" in schema:
        assert value in schema["enum"]
        return
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(t for t in kind if t != "null") if value is not None else "null"
    if kind == "object" or "properties" in schema:
        assert isinstance(value, dict)
        for name in schema.get("required", []):
            if not schema["properties"][name].get("readOnly"):
                assert name in value
        for name, sub in value.items():
            assert not schema["properties"][name].get("readOnly")
            check(schema["properties"][name], sub, depth + 1)
    elif kind == "array":
        assert isinstance(value, list)
        assert schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9)
        if schema.get("uniqueItems"):
            assert len({json.dumps(v) for v in value}) == len(value)
        for item in value:
            check(schema.get("items", {}), item, depth + 1)
    elif kind == "string":
        assert isinstance(value, str)
        fmt = schema.get("format")
        if fmt == "email":
            assert re.fullmatch(r"[a-z0-9]+@example\.com", value)
        elif fmt == "uuid":
            assert uuid.UUID(value).version == 4
        elif fmt == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt is None and "pattern" not in schema and "example" not in schema:
            assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
    elif kind in ("integer", "number"):
        assert isinstance(value, int if kind == "integer" else (int, float))
        assert not isinstance(value, bool)
        if "minimum" in schema:
            assert value >= schema["minimum"]
        if "maximum" in schema:
            assert value <= schema["maximum"]
        if isinstance(schema.get("exclusiveMinimum"), (int, float)):
            assert value > schema["exclusiveMinimum"]
        if "multipleOf" in schema:
            assert value % schema["multipleOf"] == 0
        if kind == "number":
            assert (value * 4) == int(value * 4)  # quarter steps: exact round trips
    elif kind == "boolean":
        assert isinstance(value, bool)


WIDGET = {
    "type": "object",
    "required": ["id", "name", "count", "tags", "kind", "when", "ref", "ratio"],
    "properties": {
        "id": {"type": "string", "readOnly": True},
        "name": {"type": "string", "minLength": 2, "maxLength": 6},
        "count": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 5},
        "ratio": {"type": "number", "minimum": -1, "exclusiveMinimum": -1, "maximum": 1},
        "tags": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "uniqueItems": True,
            "items": {"type": "string", "enum": ["a", "b", "c", "d"]},
        },
        "kind": {"const": "widget"},
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "ref": {"type": "string", "format": "uuid"},
        "mail": {"type": "string", "format": "email"},
        "ip": {"type": "string", "format": "ipv4"},
        "maybe": {"type": ["null", "boolean"]},
        "nested": {
            "type": "object",
            "properties": {"deep": {"type": "integer", "exclusiveMinimum": 5, "maximum": 6}},
        },
    },
}


def test_generated_bodies_respect_the_schema():
    rng = random.Random(7)
    for _ in range(300):
        value = generate_body(WIDGET, rng)
        json.dumps(value, allow_nan=False)
        check(WIDGET, value)
        assert "id" not in value


def test_generation_is_deterministic_per_rng_state():
    first = [generate_body(WIDGET, random.Random(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert [generate_body(WIDGET, rng_a) for _ in range(20)] == [
        generate_body(WIDGET, rng_b) for _ in range(20)
    ]
    assert generate_body(WIDGET, random.Random(1)) != generate_body(WIDGET, random.Random(2))


def test_examples_defaults_and_patterns():
    rng = random.Random(3)
    schema = {"type": "string", "example": "given"}
    seen = {generate_body(schema, rng) for _ in range(50)}
    assert "given" in seen and len(seen) > 1  # used, but not always
    patterned = {"type": "string", "pattern": "^[A-Z]{3}$", "example": "ABC"}
    assert {generate_body(patterned, rng) for _ in range(20)} == {"ABC"}
    assert generate_body({"default": {"a": 1}}, rng) == {"a": 1}  # nothing else to go on


def test_composition_keywords():
    rng = random.Random(11)
    all_of = {
        "allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
            {"required": ["b"], "properties": {"b": {"type": "boolean"}}},
        ]
    }
    for _ in range(20):
        value = generate_body(all_of, rng)
        assert isinstance(value["a"], int) and isinstance(value["b"], bool)
    one_of = {"oneOf": [{"type": "integer"}, {"type": "string", "format": "email"}]}
    kinds = {type(generate_body(one_of, rng)) for _ in range(40)}
    assert kinds == {int, str}


def test_recursive_schema_is_bounded():
    spec = load_spec(SPEC, "spec.yaml")
    node = spec.find_route("POST", "/tree").request_schema
    rng = random.Random(0)
    for _ in range(50):
        value = generate_body(node, rng)
        text = json.dumps(value)
        assert len(text) < 200_000


def test_write_only_properties():
    spec = load_spec(SPEC, "spec.yaml")
    schema = spec.find_route("POST", "/things").request_schema
    assert write_only_properties(schema) == {"secret"}
    assert write_only_properties(None) == frozenset()


def test_wide_and_deep_schema_is_bounded():
    level: dict = {"type": "integer"}
    for _ in range(8):
        level = {
            "type": "object",
            "required": [f"p{i}" for i in range(12)],
            "properties": {f"p{i}": level for i in range(12)},
        }
    value = generate_body(level, random.Random(0))
    assert len(json.dumps(value)) < 200_000
