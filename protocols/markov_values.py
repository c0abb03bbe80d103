"""The JSON values a Markov walk sends, captures from responses, and compares on a read.

Kept apart from the session because these are pure value functions with their own rules
(what counts as a usable capture, when two JSON values are "the same" for read-after-write),
testable without any walk.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

#: What an unparseable body becomes: not a dict, so checks fail and captures miss.
INVALID: Any = object()


def json_bytes(value: Any) -> bytes:
    """Compact JSON, as a request body is sent (NaN is not JSON)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def parse_json(body: bytes) -> Any:
    """The parsed body, or ``INVALID`` for one that is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return INVALID


def dig(value: Any, path: tuple[str, ...]) -> str | None:
    """The value at a dotted path, as a path-safe string, or None if absent/unusable."""
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
        return None
    return quote(str(value), safe="")


def same_json(expected: Any, actual: Any) -> bool:
    """JSON equality; objects compare as 'every expected member present and equal'."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and same_json(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(same_json(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and expected == actual
    return type(expected) is type(actual) and expected == actual
