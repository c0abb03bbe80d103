"""JSON Schema checks for Tier 2: does a body match the schema the spec documents?

How this works: ``violations(value, schema)`` walks value and schema together and returns
one line per mismatch (empty: the value conforms). It covers the keywords OpenAPI 3.0/3.1
schemas use to constrain data -- type (3.1 type lists, 3.0 ``nullable``), enum, const,
properties/required/additionalProperties, items, min/maxItems, min/maxLength, pattern,
minimum/maximum (both styles of exclusive bounds), allOf/anyOf/oneOf -- and leaves
``format`` alone: OpenAPI 3 says formats are open-ended ("tools that do not recognize a
specific format MAY default back to the type alone"), so a format mismatch is no finding.

Two directions matter. A *request* body is checked with ``direction="request"``: readOnly
members are not required ("If the property is marked as readOnly being true and is in the
required list, the required will take effect on the response only", OpenAPI 3.0.3
§4.7.25). A *response* body is checked with ``direction="response"``, where writeOnly
members are not required. Recursive schemas are bounded by ``MAX_DEPTH``.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 24
MAX_VIOLATIONS = 8


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_ok(value: Any, kind: str) -> bool:
    actual = json_type(value)
    if kind == "number":
        return actual in ("integer", "number") and math.isfinite(float(value))
    if kind == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == kind


def conforms(value: Any, schema: Any, direction: str = "response") -> bool:
    return not violations(value, schema, direction)


def violations(value: Any, schema: Any, direction: str = "response") -> list[str]:
    """Lines naming where ``value`` breaks ``schema`` (``$.a[0].b: expected integer``)."""
    out: list[str] = []
    _check(value, schema, "$", direction, 0, out)
    return out[:MAX_VIOLATIONS]


def _check(value: Any, schema: Any, at: str, direction: str, depth: int, out: list[str]) -> None:
    if not isinstance(schema, dict) or depth > MAX_DEPTH or len(out) >= MAX_VIOLATIONS:
        return
    declared = schema.get("type")
    kinds = declared if isinstance(declared, list) else [declared] if declared else []
    if value is None and (schema.get("nullable") is True or "null" in kinds):
        return
    if kinds and not any(_type_ok(value, str(k)) for k in kinds):
        out.append(f"{at}: expected {'|'.join(map(str, kinds))}, got {json_type(value)}")
        return
    if "const" in schema and value != schema["const"]:
        out.append(f"{at}: expected const {schema['const']!r}")
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        out.append(f"{at}: {value!r} not in enum {enum!r}")
    for part in schema.get("allOf") or []:
        _check(value, part, at, direction, depth + 1, out)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            matching = sum(1 for o in options if not _sub(value, o, direction, depth))
            if matching == 0 or (key == "oneOf" and matching > 1):
                out.append(f"{at}: matches {matching} of the {key} alternatives")
    if isinstance(value, dict):
        _object(value, schema, at, direction, depth, out)
    elif isinstance(value, list):
        _array(value, schema, at, direction, depth, out)
    elif isinstance(value, str):
        _string(value, schema, at, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _number(value, schema, at, out)


def _sub(value: Any, schema: Any, direction: str, depth: int) -> list[str]:
    found: list[str] = []
    _check(value, schema, "$", direction, depth + 1, found)
    return found


def _object(value: dict, schema: dict, at: str, direction: str, depth: int,
            out: list[str]) -> None:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    skip = "readOnly" if direction == "request" else "writeOnly"
    for name in schema.get("required") or []:
        sub = props.get(name)
        if name not in value and not (isinstance(sub, dict) and sub.get(skip)):
            out.append(f"{at}: missing required {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(item, props[name], f"{at}.{name}", direction, depth + 1, out)
        elif extra is False:
            out.append(f"{at}: unknown property {name!r} (additionalProperties: false)")
        elif isinstance(extra, dict):
            _check(item, extra, f"{at}.{name}", direction, depth + 1, out)


def _array(value: list, schema: dict, at: str, direction: str, depth: int,
           out: list[str]) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        out.append(f"{at}: {len(value)} items, fewer than minItems {low}")
    if isinstance(high, int) and len(value) > high:
        out.append(f"{at}: {len(value)} items, more than maxItems {high}")
    items = schema.get("items")
    for index, item in enumerate(value):
        _check(item, items, f"{at}[{index}]", direction, depth + 1, out)


def _string(value: str, schema: dict, at: str, out: list[str]) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        out.append(f"{at}: length {len(value)} below minLength {low}")
    if isinstance(high, int) and len(value) > high:
        out.append(f"{at}: length {len(value)} above maxLength {high}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                out.append(f"{at}: does not match pattern {pattern!r}")
        except re.error:
            pass  # an ECMA-262 pattern Python cannot compile: no verdict rather than a guess


def _number(value: float, schema: dict, at: str, out: list[str]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _num(low) and (value < low or (ex_low is True and value == low)):
        out.append(f"{at}: {value} below minimum {low}")
    if _num(high) and (value > high or (ex_high is True and value == high)):
        out.append(f"{at}: {value} above maximum {high}")
    if _num(ex_low) and value <= ex_low:
        out.append(f"{at}: {value} not above exclusiveMinimum {ex_low}")
    if _num(ex_high) and value >= ex_high:
        out.append(f"{at}: {value} not below exclusiveMaximum {ex_high}")
    step = schema.get("multipleOf")
    if _num(step) and step > 0 and not math.isclose(value / step, round(value / step)):
        out.append(f"{at}: {value} not a multiple of {step}")


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
