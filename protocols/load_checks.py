"""Response checks for ``assay load`` (k6's ``check``): build them from a scenario, judge them.

How this works: ``build_checks`` turns a scenario file's ``checks:`` mapping into
``Check`` values (``protocols.load_model``), validating every type up front so a typo
fails before the run. ``evaluate_all`` judges every check on one ``Response``, parsing a
JSON body at most once however many ``json_equals`` checks there are: it runs on every
response of a load run. A check never raises on the server's bytes: a missing header, a
body that is not JSON, a path that is not there are all a failed check.

Which responses count as *failed* requests (``http_req_failed``) is decided here too:
``is_failed_status`` against the scenario's ``status`` check, as k6's
``expected_response`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from protocols.http1 import Response
from protocols.load_errors import LoadInputError
from protocols.load_model import Check

STATUS = "status"
HEADER_EQUALS = "header_equals"
HEADER_CONTAINS = "header_contains"
JSON_EQUALS = "json_equals"
KINDS = (STATUS, HEADER_EQUALS, HEADER_CONTAINS, JSON_EQUALS)

# RFC 9110 §5.6.2: a field name is a token.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789"
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_INVALID = object()  # the body is not JSON
_MISSING = object()  # the path is not in the document


def is_failed_status(status: int, expected: frozenset[int] | None) -> bool:
    """Whether a response with ``status`` is a failed request.

    With a ``status`` check, anything outside its set failed (a scenario expecting 429s
    under overload says so). Without one, k6's default ``expected_response`` applies:
    200-399 are expected, so 4xx and 5xx (and a stray 1xx, e.g. a 101) are failures.
    """
    if expected is None:
        return not 200 <= status <= 399
    return status not in expected


def expected_statuses(checks: Iterable[Check]) -> frozenset[int] | None:
    """The status set of the scenario's ``status`` check, or None when it has none."""
    for check in checks:
        if check.kind == STATUS:
            return frozenset(check.expected)
    return None


# --- evaluation -------------------------------------------------------------------------


def evaluate(check: Check, response: Response) -> bool:
    """Whether ``response`` passes ``check`` (one check; see ``evaluate_all`` for many)."""
    return evaluate_all((check,), response)[0]


def evaluate_all(checks: Sequence[Check], response: Response) -> list[bool]:
    """Every check on one response, in order; the body is parsed as JSON at most once."""
    document: Any = _MISSING  # not parsed yet
    results = []
    for check in checks:
        kind = check.kind
        if kind == JSON_EQUALS:
            if document is _MISSING:
                document = _parse_json(response.body)
            results.append(document is not _INVALID
                           and _json_equal(_lookup(document, check.name), check.expected))
        else:
            judge = _JUDGES.get(kind)
            if judge is None:
                raise ValueError(f"unknown check kind {kind!r} (build checks with build_checks)")
            results.append(judge(check, response))
    return results


def _status(check: Check, response: Response) -> bool:
    return response.status in check.expected


def _header_equals(check: Check, response: Response) -> bool:
    value = response.header(check.name)
    return value is not None and value.decode("latin-1") == check.expected


def _header_contains(check: Check, response: Response) -> bool:
    return any(check.expected in value.decode("latin-1")
               for value in response.header_values(check.name))


_JUDGES: dict[str, Callable[[Check, Response], bool]] = {
    STATUS: _status, HEADER_EQUALS: _header_equals, HEADER_CONTAINS: _header_contains,
}


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are both
        return _INVALID


def _lookup(document: Any, path: str) -> Any:
    """Walk a dotted path; an all-digit segment indexes a list (and is a key in a dict)."""
    node = document
    for segment in path.split("."):
        if isinstance(node, dict):
            node = node.get(segment, _MISSING)
        elif (isinstance(node, list) and segment.isascii() and segment.isdigit()
              and int(segment) < len(node)):
            node = node[int(segment)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _json_equal(actual: Any, expected: Any) -> bool:
    """Python ``==``, except that a bool equals only a bool (``true`` is not ``1``)."""
    if actual is _MISSING:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(_json_equal(actual[k], v) for k, v in expected.items()))
    if isinstance(expected, list | tuple):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(_json_equal(a, e) for a, e in zip(actual, expected, strict=True)))
    return bool(actual == expected)


# --- building ---------------------------------------------------------------------------


def build_checks(spec: Mapping[str, Any]) -> tuple[Check, ...]:
    """Checks from a scenario file's ``checks:`` mapping, one per status set, header, path.

    ``{"status": [200, 429], "header_equals": {"content-type": "application/json"},
    "header_contains": {"x-request-id": "-"}, "json_equals": {"data.count": 3}}``. A lone
    status code (``status: 200``) is accepted as a one-element list.

    Raises:
        LoadInputError: one line naming the key: an unknown key, a wrong type, a status
            outside 100..599, a header name that is not a token, an empty path segment.
    """
    if not isinstance(spec, Mapping):
        raise LoadInputError(f"checks must be a mapping, not {type(spec).__name__}")
    checks: list[Check] = []
    for key, value in spec.items():
        builder = _BUILDERS.get(key)
        if builder is None:
            raise LoadInputError(f"checks: unknown key {key!r} (use {', '.join(KINDS)})")
        checks += builder(value)
    return tuple(checks)


def _build_status(value: Any) -> list[Check]:
    codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(codes, list | tuple) or not codes:
        raise LoadInputError("checks.status must be a status code or a non-empty list of them")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise LoadInputError(f"checks.status: {code!r} is not a status code (100..599)")
    unique = tuple(dict.fromkeys(codes))
    label = f"status == {unique[0]}" if len(unique) == 1 else f"status in {unique}"
    return [Check(STATUS, "", unique, label)]


def _build_headers(kind: str, verb: str) -> Callable[[Any], list[Check]]:
    def build(value: Any) -> list[Check]:
        if not isinstance(value, Mapping):
            raise LoadInputError(f"checks.{kind} must map header names to strings")
        checks = []
        for name, expected in value.items():
            if not isinstance(name, str) or not name or not _TCHAR.issuperset(name):
                raise LoadInputError(f"checks.{kind}: {name!r} is not a header name")
            if not isinstance(expected, str):
                raise LoadInputError(f"checks.{kind}.{name} must be a string, "
                                     f"not {type(expected).__name__}")
            lower = name.lower()
            checks.append(Check(kind, lower, expected, f"header {lower} {verb} {expected!r}"))
        return checks
    return build


def _build_json(value: Any) -> list[Check]:
    if not isinstance(value, Mapping):
        raise LoadInputError(f"checks.{JSON_EQUALS} must map dotted paths to JSON values")
    checks = []
    for path, expected in value.items():
        if not isinstance(path, str) or not all(path.split(".")):
            raise LoadInputError(f"checks.{JSON_EQUALS}: {path!r} is not a dotted path "
                                 "like data.items.0.id")
        try:
            expected = _plain_json(expected)
            shown = json.dumps(expected, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise LoadInputError(f"checks.{JSON_EQUALS}.{path}: {expected!r} is not a JSON "
                                 "value") from None
        checks.append(Check(JSON_EQUALS, path, expected, f"json {path} == {shown}"))
    return checks


def _plain_json(value: Any) -> Any:
    """``value`` if it is made only of JSON types (str keys), else TypeError."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain_json(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


_BUILDERS: dict[str, Callable[[Any], list[Check]]] = {
    STATUS: _build_status,
    HEADER_EQUALS: _build_headers(HEADER_EQUALS, "=="),
    HEADER_CONTAINS: _build_headers(HEADER_CONTAINS, "contains"),
    JSON_EQUALS: _build_json,
}
