"""The API-level defects of ``/items`` (``api-*`` in ``refapp.defects``), kept out of the
handlers so the correct code path reads as it would without them.

Each hook returns a ``Response`` to send instead of the correct one, or None to let the
handler go on. Tombstones (ids deleted in this process) are what a second DELETE is
recognised by; they are bounded like the stores they shadow.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from refapp.items import ItemBody, ItemStore

TOMBSTONES = 4096


class ApiDefects:
    def __init__(self, defects: frozenset[str]) -> None:
        self.leave_readable = "api-delete-leaves-readable" in defects
        self.double_delete_500 = "api-double-delete-500" in defects
        self.invalid_creates = "api-invalid-body-creates" in defects
        self._tombstones: OrderedDict[str, None] = OrderedDict()

    def delete(self, items: ItemStore, item_id: str) -> bool | None:
        """True: answer 204; False: answer 500 (the crash); None: do the correct thing."""
        if self.double_delete_500 and item_id in self._tombstones:
            return False
        if self.leave_readable and items.get(item_id) is not None:
            self._bury(item_id)
            return True  # answered 204, item kept
        if self.double_delete_500 and items.delete(item_id):
            self._bury(item_id)
            return True
        return None

    def half_validated(self, doc: Any) -> ItemBody | None:
        """What ``api-invalid-body-creates`` stores from a body the schema rejects."""
        if not self.invalid_creates or not isinstance(doc, dict):
            return None
        name = doc.get("name")
        return ItemBody(str(name)[:64] if name else "unnamed", 0, ())

    def _bury(self, item_id: str) -> None:
        self._tombstones[item_id] = None
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

