"""Request bodies generated from an OpenAPI schema: one JSON value per call, seeded, bounded.

How this works: ``generate_body`` draws one JSON value from a schema with the caller's
``random.Random``, so a walker's seed fixes every body it sends. Numbers are multiples of
0.25 (exact in binary and in two-decimal storage), so a server that stores what it was sent
reads back the same value and read-after-write checks do not trip on float formatting.
Schemas may be recursive (``protocols.openapi`` keeps ``$ref`` cycles as cycles), so every
walk here is bounded by depth and by a node budget. Separate from the spec loader because
generating values is its own grammar (JSON Schema keywords) and needs no document.
"""

from __future__ import annotations

import base64
import copy
import math
import random
from typing import Any

#: Bounds on generated values: nesting depth (optional members stop here), hard depth
#: (required members stop here too), array length, string length.
MAX_DEPTH = 6
HARD_DEPTH = 12
MAX_ITEMS = 8
MAX_STRING = 64
#: Values one body may contain; past it every value is null (wide-and-deep schemas).
MAX_NODES = 4096
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate_body(schema: Any, rng: random.Random) -> Any:
    """One JSON value drawn from ``schema``; the same rng state gives the same value.

    Honours type (and 3.1 type lists), const, enum, properties/required (readOnly members
    are never sent), allOf/oneOf/anyOf, string length and format (email, uuid, date-time,
    date, time, uri, hostname, ipv4, ipv6, byte), numeric bounds and multipleOf, array
    bounds and uniqueItems. ``example``/``examples``/``default`` are used verbatim half the
    time, and always when the schema carries a ``pattern`` we cannot generate for.
    """
    return _Generator(rng).value(schema, 0)


def write_only_properties(schema: Any) -> frozenset[str]:
    """Top-level properties marked ``writeOnly`` (a server need not echo them back)."""
    merged = _merge_all_of(schema, 0) if isinstance(schema, dict) else {}
    props = merged.get("properties")
    if not isinstance(props, dict):
        return frozenset()
    return frozenset(
        name for name, sub in props.items() if isinstance(sub, dict) and sub.get("writeOnly")
    )


def _merge_all_of(schema: dict, depth: int) -> dict:
    """``schema`` with its allOf parts folded in (properties and required are unioned)."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or depth > HARD_DEPTH:
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = _merge_all_of(part, depth + 1)
        props.update(part.get("properties") or {})
        required.extend(r for r in part.get("required") or [] if r not in required)
        for key, value in part.items():
            merged.setdefault(key, value)
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.budget = MAX_NODES

    def value(self, schema: Any, depth: int) -> Any:
        rng = self.rng
        self.budget -= 1
        if self.budget < 0:
            return None
        if not isinstance(schema, dict) or depth > HARD_DEPTH:
            return self.word(1, 8) if depth <= HARD_DEPTH else None
        if "allOf" in schema:
            schema = _merge_all_of(schema, 0)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return copy.deepcopy(rng.choice(enum))
        samples = [schema[k] for k in ("example", "default") if k in schema]
        examples = schema.get("examples")
        if isinstance(examples, list):
            samples.extend(examples)
        kind = self.kind(schema)
        if samples and ("pattern" in schema or kind is None or rng.random() < 0.5):
            return copy.deepcopy(rng.choice(samples))
        for key in ("oneOf", "anyOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.value(rng.choice(options), depth + 1)
        if kind == "object" or kind is None:
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def kind(self, schema: dict) -> str | None:
        declared = schema.get("type")
        if isinstance(declared, list):
            concrete = [t for t in declared if t != "null"]
            if not concrete:
                return "null"
            return self.rng.choice(concrete) if len(concrete) > 1 else concrete[0]
        if isinstance(declared, str):
            return declared
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if any(k in schema for k in ("minLength", "maxLength", "format", "pattern")):
            return "string"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return None

    def object(self, schema: dict, depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        for name, sub in props.items():
            if isinstance(sub, dict) and sub.get("readOnly"):
                continue
            if name in required or (depth < MAX_DEPTH and self.rng.random() < 0.5):
                result[str(name)] = self.value(sub, depth + 1)
        return result

    def array(self, schema: dict, depth: int) -> list[Any]:
        low = _int_or(schema.get("minItems"), 0, 0, MAX_ITEMS)
        high = _int_or(schema.get("maxItems"), low + 3, low, MAX_ITEMS)
        count = low if depth >= MAX_DEPTH else self.rng.randint(low, max(low, high))
        items = schema.get("items")
        result: list[Any] = []
        for _ in range(count * (3 if schema.get("uniqueItems") else 1)):
            if len(result) == count:
                break
            item = self.value(items, depth + 1)
            if not schema.get("uniqueItems") or item not in result:
                result.append(item)
        return result

    def string(self, schema: dict) -> str:
        rng = self.rng
        fmt = schema.get("format")
        if fmt == "email":
            return f"{self.word(4, 10)}@example.com"
        if fmt == "uuid":
            bits = rng.getrandbits(128)
            bits = (bits & ~(0xF << 76) | (4 << 76)) & ~(0x3 << 62) | (0x2 << 62)
            text = f"{bits:032x}"
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        if fmt in ("date-time", "date", "time"):
            date = f"20{rng.randint(20, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            return {"date": date, "time": clock + "Z"}.get(fmt, f"{date}T{clock}Z")
        if fmt in ("uri", "url", "uri-reference", "iri"):
            return f"https://example.com/{self.word(3, 10)}"
        if fmt in ("hostname", "idn-hostname"):
            return f"{self.word(3, 10)}.example.com"
        if fmt == "ipv4":
            return f"192.0.2.{rng.randint(1, 254)}"
        if fmt == "ipv6":
            return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        if fmt == "byte":
            return base64.b64encode(rng.randbytes(rng.randint(1, 12))).decode("ascii")
        low = _int_or(schema.get("minLength"), 1, 0, 1024)
        high = _int_or(schema.get("maxLength"), max(low, 12), low, max(low, MAX_STRING))
        return self.word(low, high)

    def word(self, low: int, high: int) -> str:
        rng = self.rng
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(low, high)))

    def integer(self, schema: dict) -> int:
        low, high = _bounds(schema, 1.0)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            if first <= last:
                return int(self.rng.randint(first, last) * step)
        first, last = math.ceil(low), math.floor(high)
        return self.rng.randint(first, last) if first <= last else first

    def number(self, schema: dict) -> float:
        low, high = _bounds(schema, 0.25)
        step = schema.get("multipleOf")
        if not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0):
            step = 0.25
        first, last = math.ceil(low / step), math.floor(high / step)
        return float(self.rng.randint(first, last) * step) if first <= last else float(low)


def _int_or(value: Any, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        value = default
    return max(low, min(high, value))


def _bounds(schema: dict, step: float) -> tuple[float, float]:
    """[low, high] from minimum/maximum and both styles of exclusive bounds."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low = low if _is_number(low) else None
    high = high if _is_number(high) else None
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _is_number(ex_low):  # OpenAPI 3.1 / JSON Schema 2020-12: a number
        low = ex_low + step if low is None else max(low, ex_low + step)
    elif ex_low is True and low is not None:  # OpenAPI 3.0: a flag on minimum
        low += step
    if _is_number(ex_high):
        high = ex_high - step if high is None else min(high, ex_high - step)
    elif ex_high is True and high is not None:
        high -= step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 1000
    if high is None:
        high = low + 1000
    return float(low), float(high)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
