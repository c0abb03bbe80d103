"""Candidates of a crash: the inputs every actor had in flight when the target died.

The coordinator's attribution step writes them as ``candidates.json`` in the incident
directory (format in ``replay.crash_shrink``); ``parse_candidates`` validates that document
into ``Candidate`` values, best-ranked first. An adversarial candidate whose capture the
actor's flight recorder capped is rebuilt from the catalogue (a capped 98 KiB header is
no longer the input that killed the target).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("liveness", "hang")


class CandidateFormatError(ValueError):
    """``candidates.json`` is malformed; the message names the first problem (one line)."""


@dataclass(frozen=True)
class Candidate:
    """One input in flight at the moment of death."""

    rank: int
    slice: str
    case: str
    sent_at: float
    writes: tuple[bytes, ...]
    end: str = "close"
    actor: int | None = None
    walker: int | None = None
    summary: str = ""

    @property
    def size(self) -> int:
        return sum(len(w) for w in self.writes)

    def describe(self) -> str:
        return f"#{self.rank} {self.slice}:{self.case}"

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "slice": self.slice, "case": self.case,
                "sent_at": self.sent_at, "end": self.end, "actor": self.actor,
                "walker": self.walker, "summary": self.summary,
                "writes": [{"base64": base64.b64encode(w).decode("ascii")}
                           for w in self.writes]}


def _write(value: Any, where: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return value.encode("utf-8")
    if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise CandidateFormatError(f"{where}: invalid base64") from None
    raise CandidateFormatError(f"{where}: a write must be a string or {{'base64': ...}}")


#: A capture at least this long may have been capped by the actor's flight recorder.
CAPTURE_CAP_HINT = 15 * 1024
_HOST_LINE = re.compile(rb"(?im)^host:[ \t]*([^\r\n]*)")


def _complete(item: Mapping[str, Any], data: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """An adversarial case whose capture was capped (``truncated``, fewer writes than sent,
    or a capture at the recorder's cap shorter than the case) is rebuilt from the
    catalogue: the case is what was sent, and a capped oversized header is no crash."""
    from protocols.adversarial_cases import BY_NAME

    case = BY_NAME.get(str(item.get("case"))) if item.get("slice") == "adv" else None
    if case is None:
        return data
    found = _HOST_LINE.search(b"".join(data))
    host = found.group(1).decode("latin-1").strip() if found else "127.0.0.1"
    built = case.build(host, "/")
    size = sum(len(w) for w in data)
    capped = bool(item.get("truncated")) or (
        isinstance(item.get("all_writes"), int) and item["all_writes"] > len(data)) or (
        size >= CAPTURE_CAP_HINT)
    return (built,) if capped and len(built) > size else data


def parse_candidates(doc: Any) -> tuple[str, tuple[Candidate, ...]]:
    """(kind, candidates sorted by rank) from a ``candidates.json`` document, or from a bare
    list of candidate objects (kind ``liveness``). Candidates without bytes are dropped:
    nothing can be replayed from them."""
    kind = "liveness"
    items: Any = doc
    if isinstance(doc, Mapping):
        kind = str(doc.get("kind") or "liveness")
        items = doc.get("candidates")
    if kind not in KINDS:
        raise CandidateFormatError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
        raise CandidateFormatError("'candidates' must be a list")
    found = []
    for index, item in enumerate(items):
        if isinstance(item, Candidate):
            found.append(item)
            continue
        where = f"candidate {index}"
        if not isinstance(item, Mapping):
            raise CandidateFormatError(f"{where}: must be an object")
        writes = item.get("writes") or []
        if not isinstance(writes, Sequence) or isinstance(writes, (str, bytes)):
            raise CandidateFormatError(f"{where}: 'writes' must be a list")
        data = tuple(w for w in (_write(v, f"{where} write {n}") for n, v in enumerate(writes))
                     if w)
        data = _complete(item, data)
        if not data:
            continue
        end = str(item.get("end") or "close")
        if end not in ("close", "rst", "open"):
            raise CandidateFormatError(f"{where}: 'end' must be close, rst or open")
        rank, sent_at = item.get("rank", index + 1), item.get("sent_at", 0.0)
        if not isinstance(rank, int) or not isinstance(sent_at, (int, float)):
            raise CandidateFormatError(f"{where}: 'rank' must be an integer, 'sent_at' a "
                                       "number")
        found.append(Candidate(rank, str(item.get("slice") or "?"),
                               str(item.get("case") or "?"), float(sent_at), data, end,
                               item.get("actor") if isinstance(item.get("actor"), int) else None,
                               item.get("walker") if isinstance(item.get("walker"), int)
                               else None, str(item.get("summary") or "")))
    return kind, tuple(sorted(found, key=lambda c: (c.rank, c.sent_at)))


def load_candidates(path: Path) -> tuple[str, tuple[Candidate, ...]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CandidateFormatError(f"{path}: {exc}") from None
    return parse_candidates(doc)
