"""Trailer fields merged into the header section, seen through a route that echoes fields.

How this works: a case that probes the merge (``AdversarialCase.forbid_merge``) sends a
marker field in its header section and a prohibited field (``Host``, ``Authorization``,
``Content-Length``, ``Transfer-Encoding``) with a distinctive value in its trailer section.
A body route that reflects the header fields the application saw (refapp's ``POST /echo``:
``{"headers": [[name, value], ...]}``) shows what the server handed the application as
its header section. ``judge_merge`` parses the response body as JSON and looks for the
*container* of the header marker: the dict or list that holds it as a field. If the trailer
field sits in that same container, the server merged it (RFC 9112 §7.1.2). A route that
reflects trailers apart (``{"headers": {...}, "trailers": {...}}``) keeps them apart: no
merge. A body that is not JSON, or that does not reflect the header marker (nginx's static
page, most applications), says nothing: ``UNOBSERVABLE``, never a violation.

A field is recognised by its name *and* its value, so a value that happens to appear
elsewhere (the echoed body, an unrelated field) is not taken for a reflected field. The
forms recognised, ``N`` the field name and ``V`` its value:

* ``{N: V}``: the dict is the container;
* ``{N: [V, ...]}`` (Go's ``http.Header``): the dict is the container;
* ``[..., [N, V], ...]`` (refapp, ASGI): the outer list is the container;
* ``[..., {"name": N, "value": V}, ...]``: the list is the container;
* ``[..., "N: V", ...]`` (raw field lines): the list is the container.

Names compare case-insensitively, with a CGI/WSGI ``HTTP_`` prefix dropped and ``_`` read
as ``-`` (``HTTP_X_ASSAY_ECHO`` is ``X-Assay-Echo``); a value matches when it equals the
marker or one of its comma-separated members (a merge that joined a second ``Host`` value
to the first). Hostile bodies are bounded: at most ``MAX_BODY`` bytes are parsed, at most
``MAX_NODES`` JSON nodes visited and ``MAX_DEPTH`` levels descended, and a body the JSON
decoder refuses (or nests past the interpreter's recursion limit) is ``UNOBSERVABLE``.
Sans-IO, pure.
"""

from __future__ import annotations

import enum
import json
from typing import Any

#: (field name, field value), as sent.
FieldMarker = tuple[bytes, bytes]

#: Longest response body parsed; a longer one is not judged.
MAX_BODY = 256 * 1024
#: JSON nodes visited at most, and nesting levels descended at most.
MAX_NODES = 20_000
MAX_DEPTH = 32
#: Keys of a ``{"name": N, "value": V}`` field object.
_NAME_KEYS = frozenset({"name", "key", "field"})
_VALUE_KEYS = frozenset({"value", "values"})


class Merge(enum.Enum):
    """What the echoed header section shows about the trailer field."""

    #: RFC 9112 §7.1.2 broken: the trailer field is among the header fields the app saw.
    MERGED = "merged"
    #: The header fields were reflected and the trailer field was not among them.
    APART = "apart"
    #: Not JSON, or no reflection of the header marker: the merge cannot be seen.
    UNOBSERVABLE = "unobservable"


def judge_merge(body: bytes, header: FieldMarker, trailer: FieldMarker) -> Merge:
    """Whether ``trailer`` was merged into the header section that ``body`` reflects.

    Args:
        body: the response body of the body route (any bytes; never raises on them).
        header: the marker field the request carried in its header section.
        trailer: the prohibited field it carried in its trailer section.

    Returns:
        ``MERGED`` when the trailer field sits in the container that holds the header
        marker, ``APART`` when the header marker was found and the trailer field was not
        beside it, ``UNOBSERVABLE`` otherwise.
    """
    if not body or len(body) > MAX_BODY or body.lstrip()[:1] not in (b"{", b"["):
        return Merge.UNOBSERVABLE
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        return Merge.UNOBSERVABLE
    wanted = (_marker(header), _marker(trailer))
    found = _containers(doc, wanted)
    if not found[0]:
        return Merge.UNOBSERVABLE
    return Merge.MERGED if found[0] & found[1] else Merge.APART


def _marker(field: FieldMarker) -> tuple[str, str]:
    return _name(field[0].decode("latin-1")), field[1].decode("latin-1").strip()


def _name(text: str) -> str:
    name = text.strip().lower().replace("_", "-")
    return name[5:] if name.startswith("http-") else name


def _value_matches(text: str, value: str) -> bool:
    return text.strip() == value or value in (part.strip() for part in text.split(","))


def _containers(doc: Any, wanted: tuple[tuple[str, str], ...]) -> tuple[set[int], ...]:
    """For each wanted (name, value), the ids of the containers that hold it as a field.

    Iterative and bounded (``MAX_NODES``, ``MAX_DEPTH``): a hostile body costs little.
    ``doc`` is kept alive by the caller, so ids are stable for the walk.
    """
    found: tuple[set[int], ...] = tuple(set() for _ in wanted)
    stack: list[tuple[Any, int]] = [(doc, 0)]
    visited = 0
    while stack and visited < MAX_NODES:
        node, depth = stack.pop()
        visited += 1
        if isinstance(node, dict):
            items = list(node.items())
            for index, (name, value) in enumerate(wanted):
                if _dict_holds(items, name, value):
                    found[index].add(id(node))
            children = [child for _, child in items]
        elif isinstance(node, list):
            for index, (name, value) in enumerate(wanted):
                if any(_entry_is(entry, name, value) for entry in node):
                    found[index].add(id(node))
            children = node
        else:
            continue
        if depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return found


def _dict_holds(items: list[tuple[str, Any]], name: str, value: str) -> bool:
    """``{N: V}`` or ``{N: [V, ...]}``."""
    for key, item in items:
        if _name(key) != name:
            continue
        if isinstance(item, str) and _value_matches(item, value):
            return True
        if isinstance(item, list) and any(
                isinstance(v, str) and _value_matches(v, value) for v in item[:64]):
            return True
    return False


def _entry_is(entry: Any, name: str, value: str) -> bool:
    """One list element as a field: ``[N, V]``, ``{"name": N, "value": V}`` or ``"N: V"``."""
    if isinstance(entry, list) and len(entry) == 2:
        first, second = entry
        return (isinstance(first, str) and isinstance(second, str) and _name(first) == name
                and _value_matches(second, value))
    if isinstance(entry, dict) and len(entry) <= 4:
        names = [v for k, v in entry.items() if k.lower() in _NAME_KEYS and isinstance(v, str)]
        values = [v for k, v in entry.items() if k.lower() in _VALUE_KEYS]
        if not any(_name(n) == name for n in names):
            return False
        flat = [v for item in values for v in (item if isinstance(item, list) else [item])]
        return any(isinstance(v, str) and _value_matches(v, value) for v in flat[:64])
    if isinstance(entry, str):
        head, colon, rest = entry.partition(":")
        return bool(colon) and _name(head) == name and _value_matches(rest, value)
    return False


__all__ = ["MAX_BODY", "MAX_DEPTH", "MAX_NODES", "FieldMarker", "Merge", "judge_merge"]
