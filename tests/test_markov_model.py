"""protocols.markov_model: loading, validation, and error messages that name the right line."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.markov_loader import load_model
from protocols.markov_model import (
    ModelError,
    default_model,
    parse_expectation,
    template_key,
    validate_against_spec,
)
from protocols.openapi import load_spec

ROOT = Path(__file__).resolve().parent.parent

EXAMPLE = """\
version: 1
start: list_items
login:
  request: POST /login
  body: {username: walker, password: secret}
  expect: [2xx]
states:
  list_items:
    request: GET /items
    expect: [2xx]
    next: {create_item: 3, list_items: 1}
  create_item:
    request: POST /items
    expect: [201]
    capture: {item_id: id}
    write: item
    next: {read_item: 2, update_item: 1}
  update_item:
    request: PUT /items/{item_id}
    write: item
    next: {read_item: 1}
  read_item:
    request: GET /items/{item_id}
    read: item
    next: {list_items: 1, delete_item: 1}
  delete_item:
    request: DELETE /items/{item_id}
    forget: [item_id]
"""


def test_architecture_example_loads():
    model = load_model(EXAMPLE, "m.yaml")
    assert model.start == "list_items"
    assert list(model.states) == [
        "list_items",
        "create_item",
        "update_item",
        "read_item",
        "delete_item",
    ]
    create = model.states["create_item"]
    assert (create.method, create.path, create.line) == ("POST", "/items", 12)
    assert create.expect.accepts(201) and not create.expect.accepts(200)
    assert [(c.var, c.path) for c in create.capture] == [("item_id", ("id",))]
    assert create.write == "item"
    assert [(e.target, e.weight) for e in create.edges] == [
        ("read_item", 2.0),
        ("update_item", 1.0),
    ]
    read = model.states["read_item"]
    assert read.path_vars == ("item_id",) and read.read == "item"
    assert read.expect.text == ("2xx", "3xx")  # the default
    assert read.expect.accepts(204) and read.expect.accepts(302) and not read.expect.accepts(404)
    delete = model.states["delete_item"]
    assert delete.forget == ("item_id",)
    assert [e.target for e in delete.edges] == ["list_items"]  # next omitted: back to start
    assert model.login is not None
    assert (model.login.method, model.login.path, model.login.line) == ("POST", "/login", 3)
    assert model.login.body == {"username": "walker", "password": "secret"}
    assert model.resource_keys == {"item": ("item_id",)}
    assert model.warnings == ()


def test_login_defaults_to_2xx_and_scalars_are_accepted():
    model = load_model(
        "version: 1\nstart: a\nlogin: {request: POST /in}\n"
        "states:\n  a: {request: GET /, expect: 404, next: {a: 0.5}}\n",
        "m.yaml",
    )
    assert model.login is not None and model.login.expect.text == ("2xx",)
    assert model.states["a"].expect.codes == {404}
    assert model.states["a"].edges[0].weight == 0.5


def _error(text: str) -> ModelError:
    with pytest.raises(ModelError) as info:
        load_model(text, "bad.yaml")
    return info.value


HEAD = "version: 1\nstart: a\nstates:\n"  # states begin on line 4


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("version: 1\nstart: a\nstates:\n  a: [unclosed\n", 5, "invalid YAML"),
        ("version: 1\n\tstart: a\n", 2, "invalid YAML"),
        ("", 1, "empty"),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("version: 1\nstart: a\nstats: {}\n", 3, "unknown key 'stats'"),
        ("start: a\nstates: {a: {request: GET /}}\n", 1, "missing required key 'version'"),
        ("version: 2\nstart: a\nstates: {a: {request: GET /}}\n", 1, "unsupported version"),
        ("version: true\nstart: a\nstates: {a: {request: GET /}}\n", 1, "unsupported version"),
        ("version: 1\nstart: b\nstates:\n  a: {request: GET /}\n", 2, "start state 'b'"),
        ("version: 1\nstart: a\nstates: {}\n", 3, "non-empty mapping"),
        (HEAD + "  a:\n    request: GET /\n    captur: {x: id}\n", 6, "unknown key 'captur'"),
        (HEAD + "  a:\n    expect: [2xx]\n", 4, "has no 'request'"),
        (HEAD + "  a:\n    request: GET\n", 5, "must be 'METHOD /path'"),
        (HEAD + "  a:\n    request: GET items\n", 5, "must start with '/'"),
        (HEAD + "  a:\n    request: G(T /items\n", 5, "not an HTTP method"),
        (HEAD + "  a:\n    request: GET /items/{}\n", 5, "bad path variable"),
        (HEAD + "  a:\n    request: GET /items/{id\n", 5, "unbalanced"),
        (HEAD + "  a:\n    request: GET /\n    next:\n      a: 1\n      b: 1\n", 8, "undefined"),
        (HEAD + "  a:\n    request: GET /\n    next: {a: 0}\n", 6, "positive number"),
        (HEAD + "  a:\n    request: GET /\n    next: {a: -1}\n", 6, "positive number"),
        (HEAD + "  a:\n    request: GET /\n    next: {a: true}\n", 6, "positive number"),
        (HEAD + "  a:\n    request: GET /\n    next: {}\n", 6, "omit it to return"),
        (HEAD + "  a:\n    request: GET /\n    expect: [6xx]\n", 6, "neither a status code"),
        (HEAD + "  a:\n    request: GET /\n    expect: [99]\n", 6, "outside 100..599"),
        (HEAD + "  a:\n    request: GET /\n    expect: []\n", 6, "at least one"),
        (HEAD + "  a:\n    request: GET /\n  a:\n    request: GET /x\n", 6, "duplicate key 'a'"),
        (HEAD + "  a.b:\n    request: GET /\n", 4, "bad state name"),
        (HEAD + "  a:\n    request: GET /\n    body: !!binary aGk=\n", 6, "JSON"),
        (HEAD + "  a:\n    request: GET /\n    capture: {x: ''}\n", 6, "dotted path"),
        (HEAD + "  a:\n    request: GET /\n    capture: {1x: id}\n", 6, "capture variable"),
        (HEAD + "  a:\n    request: GET /\n    write: [x]\n", 6, "must name a resource"),
        (HEAD + "  a:\n    request: GET /\n    forget: [y]\n", 4, "never captured"),
        (
            HEAD + "  a:\n    request: GET /\n    next: {b: 1}\n  b:\n    request: GET /i/{id}\n",
            7,
            "path variable {id} is never captured",
        ),
        (
            "version: 1\nstart: a\nstates:\n  a:\n    request: GET /i/{id}\n"
            "    capture: {id: id}\n",
            4,
            "start state 'a' uses path variables",
        ),
        (
            # {id} is captured only in c, which no walk reaches before b.
            HEAD + "  a:\n    request: GET /\n    next: {b: 1}\n"
            "  b:\n    request: GET /i/{id}\n    next: {c: 1}\n"
            "  c:\n    request: POST /i\n    capture: {id: id}\n",
            7,
            "no walk from 'a' binds {id}",
        ),
        (HEAD + "  a:\n    request: GET /\n    read: item\n", 4, "which no state writes"),
        (
            "version: 1\nstart: a\nlogin:\n  request: POST /login/{x}\nstates:\n"
            "  a: {request: GET /}\n",
            4,
            "login: path variables",
        ),
        (
            "version: 1\nstart: a\nlogin:\n  request: POST /l\n  user: x\nstates:\n"
            "  a: {request: GET /}\n",
            5,
            "unknown key 'user' in login",
        ),
    ],
)
def test_errors_name_the_line(text: str, line: int, fragment: str):
    error = _error(text)
    assert fragment in error.message
    assert error.line == line, str(error)
    assert error.source == "bad.yaml"
    assert str(error) == f"bad.yaml:{line}: {error.message}"


def test_warnings_for_unreachable_states_and_unread_writes():
    model = load_model(
        HEAD + "  a:\n    request: GET /\n  lonely:\n    request: POST /x\n    write: thing\n",
        "m.yaml",
    )
    assert any("'lonely' is unreachable" in w for w in model.warnings)
    assert any("'thing' is written but never read" in w for w in model.warnings)


def test_variables_bound_through_start_fallback_are_reachable():
    # b is only entered from a, which a walker reaches only after start captured the id.
    model = load_model(
        HEAD + "  a:\n    request: POST /i\n    capture: {id: id}\n    next: {c: 1}\n"
        "  c:\n    request: GET /x\n    next: {b: 1}\n"
        "  b:\n    request: GET /i/{id}\n",
        "m.yaml",
    )
    assert model.warnings == ()


def test_aliases_and_merge_keys():
    model = load_model(
        "version: 1\nstart: a\nstates:\n"
        "  a: &a {request: GET /a, expect: [200]}\n"
        "  b:\n    <<: *a\n    request: GET /b\n",
        "m.yaml",
    )
    assert model.states["b"].path == "/b"
    assert model.states["b"].expect.codes == {200}


def test_default_model():
    model = default_model("/health?deep=1")
    state = model.states[model.start]
    assert (state.method, state.path) == ("GET", "/health?deep=1")
    assert state.expect.text == ("2xx", "3xx")
    assert [e.target for e in state.edges] == [model.start]
    assert default_model("").states["get"].path == "/"
    with pytest.raises(ModelError):
        default_model("/a b")


def test_parse_expectation_and_template_key():
    expectation = parse_expectation(["2XX", 404, "409"])
    assert expectation.classes == {2} and expectation.codes == {404, 409}
    assert template_key("get", "/items/{item_id}?x=1") == template_key("GET", "/items/{id}")


SPEC = """\
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /items:
    get: {responses: {"200": {description: ok}}}
    post: {responses: {"201": {description: ok}}}
  /items/{id}:
    get: {responses: {"200": {description: ok}}}
"""


def test_validate_against_spec():
    spec = load_spec(SPEC, "spec.yaml")
    good = load_model(
        HEAD + "  a:\n    request: POST /items\n    capture: {item_id: id}\n    next: {b: 1}\n"
        "  b:\n    request: GET /items/{item_id}\n",
        "m.yaml",
    )
    validate_against_spec(good, spec)
    bad = load_model(
        HEAD + "  a:\n    request: GET /items\n  gone:\n    request: GET /x\n", "m.yaml"
    )
    with pytest.raises(ModelError) as info:
        validate_against_spec(bad, spec)
    assert info.value.line == 6
    assert "state 'gone'" in info.value.message and "spec.yaml" in info.value.message
    login = load_model(
        "version: 1\nstart: a\nlogin: {request: POST /login}\nstates:\n"
        "  a: {request: GET /items}\n",
        "m.yaml",
    )
    with pytest.raises(ModelError) as info:
        validate_against_spec(login, spec)
    assert info.value.line == 3 and "login" in info.value.message


def test_refapp_model_and_spec_agree():
    model_path, spec_path = ROOT / "refapp" / "markov.yaml", ROOT / "refapp" / "openapi.yaml"
    if not (model_path.exists() and spec_path.exists()):
        pytest.skip("refapp/markov.yaml or refapp/openapi.yaml not written yet")
    model = load_model(model_path.read_text(), str(model_path))
    spec = load_spec(spec_path.read_text(), str(spec_path))
    validate_against_spec(model, spec)
    assert model.warnings == ()
    assert spec.warnings == ()
