"""The seed corpus file: tiers of seeds, regression seeds and reproducers, checksummed.

Format ``assay-corpus/1`` (``corpus/seeds.json``, JSON, UTF-8)::

    {
      "format": "assay-corpus/1",
      "derivation": {"key": "assay-corpus/1", "count": 50000},
      "seeds_sha256": "<sha256 of the derived seeds as 8-byte big-endian words>",
      "tiers": {"pr": 200, "nightly": 1000, "weekend": 50000},
      "regression": [{"seed": 7, "note": "...", "generator": 1, "added": "2026-..Z"}],
      "reproducers": [{"file": "repro/<digest16>.json", "sha256": "...", "digest": "...",
                       "note": "...", "added": "..."}],
      "sha256": "<sha256 of this object's canonical JSON without the sha256 key>"
    }

Why derived rather than listed: 50 000 explicit u64s would make the file a megabyte of noise
in every diff. Seed ``i`` is the first 8 bytes of ``sha256(key/i)``; tiers are prefixes of
one list (pr within nightly within weekend), and ``seeds_sha256`` pins the list, so a change
to the derivation is caught like a corrupt file. Regression seeds (failures found by runs
and incidents) run first in every tier. A reproducer is a repro file (``replay.repro``)
copied beside the corpus, its bytes pinned by sha256.

Anything wrong with the file (unreadable, truncated JSON, other format, checksum mismatch,
a field of the wrong type, a reproducer whose bytes changed) is a ``CorpusError`` with one
line naming the file and the problem; the CLI exits 2 with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_FORMAT = "assay-corpus/1"
DERIVATION_KEY = "assay-corpus/1"
TIERS = {"pr": 200, "nightly": 1000, "weekend": 50_000}
DEFAULT_PATH = Path(__file__).resolve().parent / "seeds.json"
SEED_MAX = (1 << 64) - 1


class CorpusError(ValueError):
    """The corpus file cannot be trusted; the message is one line naming what is wrong."""


def default_path() -> Path:
    return Path(os.environ.get("ASSAY_CORPUS") or DEFAULT_PATH)


def derive_seeds(count: int, key: str = DERIVATION_KEY) -> list[int]:
    return [int.from_bytes(hashlib.sha256(f"{key}/{i}".encode()).digest()[:8], "big")
            for i in range(count)]


def seeds_checksum(seeds: list[int]) -> str:
    return hashlib.sha256(b"".join(s.to_bytes(8, "big") for s in seeds)).hexdigest()


def _canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Corpus:
    path: Path
    count: int
    tiers: dict[str, int]
    key: str = DERIVATION_KEY
    regression: list[dict[str, Any]] = field(default_factory=list)
    reproducers: list[dict[str, Any]] = field(default_factory=list)
    _seeds: list[int] | None = None

    # -- reading ---------------------------------------------------------------------------

    def seeds(self) -> list[int]:
        if self._seeds is None:
            self._seeds = derive_seeds(self.count, self.key)
        return self._seeds

    def tier_seeds(self, tier: str) -> list[int]:
        """Regression seeds first (they are why the corpus exists), then the tier's share."""
        if tier not in self.tiers:
            raise CorpusError(f"unknown tier {tier!r} (tiers: {', '.join(self.tiers)})")
        out: list[int] = []
        seen: set[int] = set()
        for seed in [int(r["seed"]) for r in self.regression] + self.seeds()[: self.tiers[tier]]:
            if seed not in seen:
                seen.add(seed)
                out.append(seed)
        return out

    def to_json(self) -> dict[str, Any]:
        document = {
            "format": CORPUS_FORMAT,
            "derivation": {"key": self.key, "count": self.count},
            "seeds_sha256": seeds_checksum(self.seeds()),
            "tiers": dict(self.tiers),
            "regression": self.regression,
            "reproducers": self.reproducers,
        }
        document["sha256"] = hashlib.sha256(_canonical(document)).hexdigest()
        return document

    # -- writing ---------------------------------------------------------------------------

    def save(self) -> None:
        """Write atomically (a crash leaves the old file, never half of a new one)."""
        text = json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CorpusError(f"corpus {self.path}: cannot write: {exc.strerror or exc}") from None

    def add_seed(self, seed: int, note: str, generator: int) -> bool:
        """Record a regression seed; False when it is already recorded."""
        if not 0 <= seed <= SEED_MAX:
            raise CorpusError(f"seed {seed} is outside 0..2^64-1")
        if any(int(r["seed"]) == seed for r in self.regression):
            return False
        self.regression.append({"seed": seed, "note": note, "generator": generator,
                                "added": _now()})
        return True

    def add_reproducer(self, source: Path, note: str) -> dict[str, Any]:
        """Copy a repro file beside the corpus and pin its bytes; returns the entry."""
        from replay.repro import ReproError, load_repro

        try:
            repro = load_repro(source)
        except ReproError as exc:
            raise CorpusError(f"reproducer {source}: {exc}") from None
        data = source.read_bytes()
        digest = repro.program.digest()
        relative = f"repro/{digest[:16]}.json"
        for entry in self.reproducers:
            if entry["digest"] == digest:
                return entry
        destination = self.path.parent / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        entry = {"file": relative, "sha256": hashlib.sha256(data).hexdigest(), "digest": digest,
                 "note": note, "added": _now()}
        self.reproducers.append(entry)
        return entry


def load(path: Path | None = None) -> Corpus:
    """Read and verify a corpus file; CorpusError (one line) on anything wrong."""
    path = path or default_path()
    where = f"corpus {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{where}: unreadable: {getattr(exc, 'strerror', None) or exc}") \
            from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        kind = "corrupt" if text.rstrip().endswith("}") else "truncated"
        raise CorpusError(f"{where}: not valid JSON ({kind}): {exc}") from None
    if not isinstance(document, dict):
        raise CorpusError(f"{where}: not a JSON object")
    if document.get("format") != CORPUS_FORMAT:
        raise CorpusError(f"{where}: format {document.get('format')!r}, expected "
                          f"{CORPUS_FORMAT!r}")
    stated = document.get("sha256")
    actual = hashlib.sha256(_canonical(document)).hexdigest()
    if stated != actual:
        raise CorpusError(f"{where}: checksum mismatch (file says {str(stated)[:16]}..., "
                          f"content is {actual[:16]}...): edited or corrupted")
    corpus = _parse(document, path, where)
    if seeds_checksum(corpus.seeds()) != document.get("seeds_sha256"):
        raise CorpusError(f"{where}: the derived seed list does not match seeds_sha256 "
                          "(derivation changed?)")
    for entry in corpus.reproducers:
        file = path.parent / entry["file"]
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{where}: reproducer {entry['file']}: "
                              f"{exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CorpusError(f"{where}: reproducer {entry['file']} does not match its sha256")
    return corpus


def _parse(document: dict[str, Any], path: Path, where: str) -> Corpus:
    derivation = document.get("derivation")
    tiers = document.get("tiers")
    if not isinstance(derivation, dict) or not isinstance(derivation.get("count"), int) \
            or not isinstance(derivation.get("key"), str) or derivation["count"] < 0:
        raise CorpusError(f"{where}: 'derivation' must be {{key: str, count: int}}")
    if not isinstance(tiers, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and 0 <= v <= derivation["count"]
            for k, v in tiers.items()):
        raise CorpusError(f"{where}: 'tiers' must map names to counts within the derivation")
    regression = document.get("regression", [])
    if not isinstance(regression, list) or not all(
            isinstance(r, dict) and isinstance(r.get("seed"), int)
            and 0 <= r["seed"] <= SEED_MAX for r in regression):
        raise CorpusError(f"{where}: 'regression' must be a list of {{seed: u64, ...}}")
    reproducers = document.get("reproducers", [])
    if not isinstance(reproducers, list) or not all(
            isinstance(r, dict) and isinstance(r.get("file"), str)
            and isinstance(r.get("sha256"), str) and not r["file"].startswith(("/", ".."))
            for r in reproducers):
        raise CorpusError(f"{where}: 'reproducers' must be a list of {{file, sha256, ...}}")
    return Corpus(path, derivation["count"], dict(tiers), derivation["key"], list(regression),
                  list(reproducers))


def new_corpus(path: Path) -> Corpus:
    return Corpus(path, TIERS["weekend"], dict(TIERS))
