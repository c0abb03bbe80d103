"""The ``/items`` resource: body validation and a per-session store.

Validation mirrors the request schema in ``openapi.yaml`` exactly (same bounds, no unknown
fields), so a client that generates bodies from the spec never sees a 422, and a body the
server stores always reads back field for field: silently dropping an unknown field would
look like a lost write to a read-after-write checker.

Each session keeps at most ``MAX_ITEMS`` items and forgets the oldest beyond that. Load
walkers create items forever and delete only some, so an unbounded store would grow for the
length of a soak; the newest item, the one a walker still refers to, is never the one dropped.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

NAME_MAX = 64
QUANTITY_MAX = 1_000_000
TAGS_MAX = 16
TAG_MAX = 32
MAX_ITEMS = 256
_FIELDS = frozenset({"name", "quantity", "tags"})


@dataclass(frozen=True, slots=True)
class ItemBody:
    """A validated ``POST /items`` or ``PUT /items/{id}`` body."""

    name: str
    quantity: int
    tags: tuple[str, ...]


class InvalidItem(ValueError):
    """The body is JSON but does not match the item schema (answered with 422)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def validate_item(doc: Any) -> ItemBody:
    """Check a decoded JSON body against the item schema.

    Raises:
        InvalidItem: naming the first offending field.
    """
    if not isinstance(doc, dict):
        raise InvalidItem("body", "must be a JSON object")
    unknown = doc.keys() - _FIELDS
    if unknown:
        raise InvalidItem(sorted(unknown)[0], "unknown field")
    name = doc.get("name")
    if not isinstance(name, str):
        raise InvalidItem("name", "required string")
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidItem("name", f"length must be 1..{NAME_MAX}")
    quantity = doc.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise InvalidItem("quantity", "required integer")
    if not 0 <= quantity <= QUANTITY_MAX:
        raise InvalidItem("quantity", f"must be 0..{QUANTITY_MAX}")
    tags = doc.get("tags", [])
    if not isinstance(tags, list) or len(tags) > TAGS_MAX:
        raise InvalidItem("tags", f"must be an array of at most {TAGS_MAX} strings")
    for tag in tags:
        if not isinstance(tag, str) or len(tag) > TAG_MAX:
            raise InvalidItem("tags", f"each tag must be a string of at most {TAG_MAX} chars")
    return ItemBody(name, quantity, tuple(tags))


def item_json(item_id: str, body: ItemBody) -> dict[str, Any]:
    """The JSON representation of an item."""
    return {"id": item_id, "name": body.name, "quantity": body.quantity, "tags": list(body.tags)}


def new_item_id() -> str:
    """A fresh, unguessable item id (ids are not secrets, but sequential ids invite races)."""
    return os.urandom(8).hex()


class ItemStore:
    """One session's items in creation order, bounded to ``MAX_ITEMS``."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: OrderedDict[str, ItemBody] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def all(self) -> list[dict[str, Any]]:
        return [item_json(item_id, body) for item_id, body in self._items.items()]

    def get(self, item_id: str) -> ItemBody | None:
        return self._items.get(item_id)

    def put(self, item_id: str, body: ItemBody) -> None:
        """Insert or replace; a replace keeps the item's place in creation order."""
        self._items[item_id] = body
        while len(self._items) > MAX_ITEMS:
            self._items.popitem(last=False)

    def delete(self, item_id: str) -> bool:
        return self._items.pop(item_id, None) is not None
