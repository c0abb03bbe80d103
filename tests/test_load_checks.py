"""protocols.load_checks: checks built from a scenario's mapping with readable labels, judged
on responses (never raising on the server's bytes), JSON parsed once, and failed statuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

import protocols.load_checks as load_checks
from protocols.http1 import Response
from protocols.load_checks import (
    build_checks,
    evaluate,
    evaluate_all,
    expected_statuses,
    is_failed_status,
)
from protocols.load_errors import LoadInputError
from protocols.load_model import (
    CONSTANT_VUS,
    Check,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
)


def response(status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = (),
             body: bytes = b"") -> Response:
    return Response(status=status, reason=b"OK", http_version=b"1.1", headers=headers,
                    body=body, keep_alive=True)


JSON_BODY = json.dumps({
    "status": "ok", "ready": True, "zero": 0, "nothing": None, "ratio": 0.5,
    "data": {"count": 3, "items": [{"id": "a1"}, {"id": "b2", "tags": ["x", 1]}],
             "0": "key-not-index"},
}).encode()


def test_build_checks_from_the_scenario_shape():
    checks = build_checks({
        "status": [200, 429],
        "header_equals": {"Content-Type": "application/json"},
        "header_contains": {"x-request-id": "-"},
        "json_equals": {"status": "ok", "data.count": 3},
    })
    assert checks == (
        Check("status", "", (200, 429), "status in (200, 429)"),
        Check("header_equals", "content-type", "application/json",
              "header content-type == 'application/json'"),
        Check("header_contains", "x-request-id", "-", "header x-request-id contains '-'"),
        Check("json_equals", "status", "ok", 'json status == "ok"'),
        Check("json_equals", "data.count", 3, "json data.count == 3"),
    )


def test_build_labels_and_shapes():
    assert build_checks({"status": 200}) == (Check("status", "", (200,), "status == 200"),)
    assert build_checks({"status": [204, 204]})[0].expected == (204,)
    assert build_checks({}) == ()
    assert build_checks({"header_equals": {}}) == ()
    (check,) = build_checks({"json_equals": {"data.items.0.tags": ["x", 1],
                                             "a": {"b": None, "c": True}}})[:1]
    assert check.label == 'json data.items.0.tags == ["x", 1]'
    labels = [c.label for c in build_checks({"json_equals": {"a": {"b": None, "c": True},
                                                             "u": "é"}})]
    assert labels == ['json a == {"b": null, "c": true}', 'json u == "é"']


def test_built_checks_survive_the_plan_wire():
    """The actors get checks through to_wire/from_wire: tuples come back as lists."""
    checks = build_checks({"status": [200], "json_equals": {"data.items.1.tags": ["x", 1]}})
    scenario = Scenario("s", Executor(CONSTANT_VUS, duration_s=1.0), RequestTemplate(),
                        checks=checks)
    (back,) = LoadPlan.from_wire(LoadPlan(scenarios=(scenario,)).to_wire()).scenarios
    assert [c.label for c in back.checks] == [c.label for c in checks]
    ok = response(200, body=JSON_BODY)
    assert evaluate_all(back.checks, ok) == evaluate_all(checks, ok) == [True, True]
    assert evaluate_all(back.checks, response(201)) == [False, False]
    assert expected_statuses(back.checks) == frozenset({200})


BUILD_ERRORS: list[tuple[Any, str]] = [
    ([200], "checks must be a mapping, not list"),
    ({"statuses": [200]}, "checks: unknown key 'statuses' (use status, header_equals, "
     "header_contains, json_equals)"),
    ({"status": []}, "checks.status must be a status code or a non-empty list of them"),
    ({"status": "200"}, "checks.status must be a status code or a non-empty list of them"),
    ({"status": [200, "201"]}, "checks.status: '201' is not a status code (100..599)"),
    ({"status": [99]}, "checks.status: 99 is not a status code (100..599)"),
    ({"status": [600]}, "checks.status: 600 is not a status code (100..599)"),
    ({"status": [True]}, "checks.status: True is not a status code (100..599)"),
    ({"status": True}, "checks.status must be a status code or a non-empty list of them"),
    ({"status": [200.0]}, "checks.status: 200.0 is not a status code (100..599)"),
    ({"header_equals": ["content-type"]}, "checks.header_equals must map header names to "
     "strings"),
    ({"header_equals": {"content type": "x"}},
     "checks.header_equals: 'content type' is not a header name"),
    ({"header_contains": {"x\n": "x"}}, "checks.header_contains: 'x\\n' is not a header name"),
    ({"header_contains": {"": "x"}}, "checks.header_contains: '' is not a header name"),
    ({"header_equals": {"x-n": 5}}, "checks.header_equals.x-n must be a string, not int"),
    ({"json_equals": "ok"}, "checks.json_equals must map dotted paths to JSON values"),
    ({"json_equals": {"a..b": 1}}, "checks.json_equals: 'a..b' is not a dotted path like "
     "data.items.0.id"),
    ({"json_equals": {"": 1}}, "checks.json_equals: '' is not a dotted path like "
     "data.items.0.id"),
    ({"json_equals": {"a": {1, 2}}}, "checks.json_equals.a: {1, 2} is not a JSON value"),
    ({"json_equals": {"a": {"k": b"x"}}}, "checks.json_equals.a: {'k': b'x'} is not a JSON "
     "value"),
    ({"json_equals": {"a": float("nan")}}, "checks.json_equals.a: nan is not a JSON value"),
]


@pytest.mark.parametrize(("spec", "message"), BUILD_ERRORS)
def test_build_errors_are_one_line_naming_the_key(spec, message):
    with pytest.raises(LoadInputError) as info:
        build_checks(spec)
    assert "\n" not in str(info.value)
    assert str(info.value) == message


def test_a_cyclic_expected_value_is_refused_not_a_crash():
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(LoadInputError, match=r"^checks.json_equals.a: .* is not a JSON value$"):
        build_checks({"json_equals": {"a": cyclic}})


# --- evaluation -------------------------------------------------------------------------


def one(spec: dict[str, Any]) -> Check:
    (check,) = build_checks(spec)
    return check


@pytest.mark.parametrize(("status", "ok"), [(200, True), (429, True), (201, False),
                                            (500, False)])
def test_status(status, ok):
    assert evaluate(one({"status": [200, 429]}), response(status)) is ok


HEADERS = ((b"content-type", b"application/json"), (b"x-request-id", b"abc"),
           (b"x-request-id", b"a-b"), (b"x-name", b"caf\xe9"), (b"set-cookie", b"a=1"))


@pytest.mark.parametrize(("spec", "ok"), [
    ({"header_equals": {"Content-Type": "application/json"}}, True),
    ({"header_equals": {"content-type": "application/json; charset=utf-8"}}, False),
    ({"header_equals": {"content-type": "Application/JSON"}}, False),
    ({"header_equals": {"x-request-id": "a-b"}}, False),  # only the first value counts
    ({"header_equals": {"x-request-id": "abc"}}, True),
    ({"header_equals": {"x-name": "café"}}, True),  # latin-1
    ({"header_equals": {"x-missing": ""}}, False),
    ({"header_contains": {"x-request-id": "-"}}, True),  # any value
    ({"header_contains": {"X-Request-Id": "bc"}}, True),
    ({"header_contains": {"x-request-id": "z"}}, False),
    ({"header_contains": {"x-missing": ""}}, False),
    ({"header_contains": {"content-type": "json"}}, True),
])
def test_headers(spec, ok):
    assert evaluate(one(spec), response(headers=HEADERS)) is ok


@pytest.mark.parametrize(("path", "expected", "ok"), [
    ("status", "ok", True),
    ("status", "OK", False),
    ("data.count", 3, True),
    ("data.count", 3.0, True),  # Python ==: 3 == 3.0
    ("data.count", "3", False),
    ("data.items.0.id", "a1", True),
    ("data.items.1.id", "b2", True),
    ("data.items.1.tags", ["x", 1], True),
    ("data.items.1.tags", ["x", True], False),  # bool is strict, even nested
    ("data.items.1.tags.1", 1, True),
    ("data.items.1.tags.1", True, False),
    ("data.items.2.id", "c3", False),  # index out of range
    ("data.items.-1.id", "b2", False),  # negative indexes are not paths
    ("data.items.x", None, False),
    ("data.0", "key-not-index", True),  # a digit segment on a dict is a key
    ("data", {"count": 3}, False),  # dicts compare whole
    ("ready", True, True),
    ("ready", 1, False),  # true is not 1
    ("zero", False, False),  # 0 is not false
    ("zero", 0, True),
    ("nothing", None, True),
    ("missing", None, False),  # missing is not null
    ("ratio", 0.5, True),
    ("status.deeper", "ok", False),  # walking into a string
])
def test_json_equals(path, expected, ok):
    assert evaluate(one({"json_equals": {path: expected}}), response(body=JSON_BODY)) is ok


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"\xff\xfe\x00", b"[" * 100_000])
def test_a_body_that_is_not_json_fails_json_checks_only(body):
    checks = build_checks({"status": [200], "json_equals": {"a": 1}})
    assert evaluate_all(checks, response(body=body)) == [True, False]


def test_top_level_list_bodies_index_by_position():
    body = b'[{"id": 7}, {"id": 8}]'
    assert evaluate(one({"json_equals": {"1.id": 8}}), response(body=body)) is True
    assert evaluate(one({"json_equals": {"id": 7}}), response(body=body)) is False


def test_evaluate_all_parses_the_body_once(monkeypatch):
    calls: list[bytes] = []
    real = load_checks._parse_json

    def counting(body: bytes) -> Any:
        calls.append(body)
        return real(body)

    monkeypatch.setattr(load_checks, "_parse_json", counting)
    checks = build_checks({"status": [200], "header_contains": {"content-type": "json"},
                           "json_equals": {"status": "ok", "data.count": 3, "ready": 1}})
    assert evaluate_all(checks, response(headers=HEADERS, body=JSON_BODY)) == [
        True, True, True, True, False]
    assert calls == [JSON_BODY]
    calls.clear()
    assert evaluate_all(build_checks({"status": 200}), response()) == [True]
    assert calls == []  # no json check: the body is never parsed


def test_unknown_kind_is_a_harness_bug_not_a_false():
    with pytest.raises(ValueError, match=r"unknown check kind 'bogus'"):
        evaluate(Check("bogus", "", None, "bogus"), response())


def test_expected_statuses():
    assert expected_statuses(build_checks({"json_equals": {"a": 1}})) is None
    assert expected_statuses(()) is None
    assert expected_statuses(build_checks({"header_equals": {"a": "b"},
                                           "status": [200, 429]})) == frozenset({200, 429})


@pytest.mark.parametrize(("status", "expected", "failed"), [
    (200, None, False), (204, None, False), (301, None, False), (399, None, False),
    (400, None, True), (404, None, True), (500, None, True), (101, None, True),
    (429, frozenset({200, 429}), False), (200, frozenset({200, 429}), False),
    (201, frozenset({200, 429}), True), (404, frozenset({404}), False),
])
def test_is_failed_status(status, expected, failed):
    assert is_failed_status(status, expected) is failed
