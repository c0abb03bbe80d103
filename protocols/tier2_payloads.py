"""Request bodies for Tier 2: valid, boundary and invalid values drawn from a schema.

How this works: ``valid_body`` is ``protocols.openapi_bodies.generate_body`` (same seed, same
body). ``boundary_body`` takes a valid body and pushes each top-level string, number and
array to a bound the schema allows (``maxLength``, ``minimum``, ``maxItems``...): still
valid, so a 4xx is the server's choice, not a finding. ``invalid_bodies`` derives one body
per kind of schema violation -- wrong type, missing required member, enum value outside
the enum, string too long, pattern mismatch, value past a bound, unknown member where
``additionalProperties: false`` -- and keeps a mutation only when
``protocols.tier2_schema.violations`` confirms the body really breaks the schema, so a
server that accepts it has accepted something the spec forbids.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

from protocols.openapi_bodies import generate_body
from protocols.tier2_schema import violations

#: Kinds of invalid body, in the order they are tried.
INVALID_KINDS = ("wrong-type", "missing-required", "enum-outside", "too-long",
                 "pattern-mismatch", "out-of-range", "unknown-member")


@dataclass(frozen=True)
class Payload:
    """A body and how it was made (``valid``, ``boundary`` or ``invalid:<kind>``)."""

    kind: str
    body: Any
    #: What makes it invalid (the validator's first line), "" for valid bodies.
    why: str = ""

    @property
    def invalid(self) -> bool:
        return self.kind.startswith("invalid:")


#: Draws ``valid_body`` makes before it settles for a body that breaks the schema.
VALID_ATTEMPTS = 32


def valid_body(schema: Any, rng: random.Random) -> Payload:
    """A body the schema accepts. ``generate_body`` ignores ``pattern`` when there is no
    example, so a draw may break the schema; a few more draws from the same rng usually
    conform (same seed, same body). A body that still breaks it is sent as ``best-effort``:
    a 4xx to it is the server's right, and it is never judged as valid or invalid."""
    body = generate_body(schema, rng)
    for _ in range(VALID_ATTEMPTS - 1):
        if not violations(body, schema, "request"):
            return Payload("valid", body)
        body = generate_body(schema, rng)
    if not violations(body, schema, "request"):
        return Payload("valid", body)
    return Payload("best-effort", body)


def example_body(schema: Any, rng: random.Random) -> Any:
    """A valid body that uses every example/default it can (a login needs the example
    password, not a random one)."""
    return _examples_first(schema, rng, 0)


def _examples_first(schema: Any, rng: random.Random, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 8:
        return generate_body(schema, rng)
    for key in ("example", "default"):
        if key in schema:
            return copy.deepcopy(schema[key])
    props = schema.get("properties")
    if isinstance(props, dict) and schema.get("type", "object") == "object":
        required = set(schema.get("required") or [])
        return {name: _examples_first(sub, rng, depth + 1) for name, sub in props.items()
                if name in required and not (isinstance(sub, dict) and sub.get("readOnly"))}
    return generate_body(schema, rng)


def boundary_body(schema: Any, rng: random.Random) -> Payload | None:
    """A valid body with its top-level members at the bounds; None when nothing is bounded."""
    body = generate_body(schema, rng)
    props = _props(schema)
    if not isinstance(body, dict) or not props:
        return None
    changed = False
    for name, sub in props.items():
        if name not in body or not isinstance(sub, dict):
            continue
        kind = sub.get("type")
        if kind == "string" and isinstance(sub.get("maxLength"), int) and "pattern" not in sub \
                and "enum" not in sub and "format" not in sub:
            body[name], changed = "b" * sub["maxLength"], True
        elif kind in ("integer", "number") and isinstance(sub.get("maximum"), (int, float)) \
                and sub.get("exclusiveMaximum") in (None, False) and "multipleOf" not in sub:
            body[name], changed = sub["maximum"], True
        elif kind == "array" and isinstance(sub.get("maxItems"), int):
            items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
            body[name] = [generate_body(items, rng) for _ in range(sub["maxItems"])]
            changed = True
    if not changed or violations(body, schema, "request"):
        return None
    return Payload("boundary", body)


def invalid_bodies(schema: Any, rng: random.Random) -> list[Payload]:
    """One confirmed-invalid body per kind that the schema makes possible."""
    base = generate_body(schema, rng)
    props = _props(schema)
    out: list[Payload] = []
    if not isinstance(base, dict) or not props:
        return out
    for kind in INVALID_KINDS:
        body = _mutate(kind, base, schema, props, rng)
        if body is None:
            continue
        why = violations(body, schema, "request")
        if why:
            out.append(Payload(f"invalid:{kind}", body, why[0]))
    return out


def _props(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return {}
    return schema["properties"]


def _mutate(kind: str, base: dict, schema: dict, props: dict[str, Any],
            rng: random.Random) -> dict | None:
    body = copy.deepcopy(base)
    # A readOnly member "SHOULD NOT be sent as part of the request" (OpenAPI 3.0.3
    # §4.7.25): a server may ignore it, so a bad value there proves nothing.
    props = {name: sub for name, sub in props.items()
             if not (isinstance(sub, dict) and sub.get("readOnly"))}
    required = [r for r in schema.get("required") or [] if r in props]
    names = sorted(props)
    if kind == "wrong-type":
        for name in required or names:
            wanted = props[name].get("type") if isinstance(props[name], dict) else None
            if wanted:
                body[name] = [] if wanted != "array" else {"not": "an array"}
                return body
    elif kind == "missing-required" and any(r in body for r in required):
        del body[rng.choice([r for r in required if r in body])]
        return body
    for name in names:
        sub = props[name] if isinstance(props[name], dict) else {}
        if kind == "enum-outside" and isinstance(sub.get("enum"), list):
            body[name] = "not-in-enum-" + "x" * 8
            return body
        if kind == "too-long" and isinstance(sub.get("maxLength"), int):
            body[name] = "L" * (sub["maxLength"] + 1)
            return body
        if kind == "pattern-mismatch" and isinstance(sub.get("pattern"), str):
            body[name] = "\x01 \t"
            return body
        if kind == "out-of-range" and isinstance(sub.get("maximum"), (int, float)):
            body[name] = sub["maximum"] + 1
            return body
    if kind == "unknown-member" and schema.get("additionalProperties") is False:
        body["assayUnknownMember"] = 1
        return body
    return None
