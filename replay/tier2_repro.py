"""Tier 2 reproducer files (``assay-tier2-repro/1``) and their replay.

Format (JSON, one object)::

    {"format": "assay-tier2-repro/1", "digest": "<sha256 of steps + bucket>",
     "bucket": "I-API-USE-AFTER-DELETE:readItem:2xx",
     "finding": {"invariant": ..., "severity": ..., "basis": ..., "detail": ...},
     "spec": {"source": "refapp/openapi.yaml", "text": "<the whole spec>"},
     "overrides": {"source": "...", "text": "..."} | null,
     "steps": [{"op": "login", "payload": "valid", "body": {...}, "binds": []}, ...],
     "seed": 1, "target": {"url": ..., "builtin": true, "defects": [...]}}

The spec (and override file) travel inside, so a repro replays where the spec file is not.
``replay_file`` runs the steps ``attempts`` times in fresh sessions and judges each run with
the same checkers: exit 1 while the bucket still shows, 0 once it does not, 2 for a bad
file, 3 for an unreachable target. ``assay replay FILE`` sends such files here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

REPRO_FORMAT = "assay-tier2-repro/1"
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


class Tier2ReproError(ValueError):
    """A repro file that cannot be used; one line saying why."""


def digest(steps: list[dict[str, Any]], bucket: str) -> str:
    canon = json.dumps({"steps": steps, "bucket": bucket}, sort_keys=True,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def is_tier2(path: Path) -> bool:
    """Whether ``path`` looks like a Tier 2 repro (cheap: the format key near the start)."""
    try:
        with path.open("rb") as handle:
            return REPRO_FORMAT.encode() in handle.read(4096)
    except OSError:
        return False


def build(bucket: str, finding: dict[str, Any], spec: tuple[str, str],
          overrides: tuple[str, str] | None, steps: list[dict[str, Any]], seed: int,
          target: dict[str, Any]) -> dict[str, Any]:
    return {"format": REPRO_FORMAT, "digest": digest(steps, bucket), "bucket": bucket,
            "finding": finding, "spec": {"source": spec[0], "text": spec[1]},
            "overrides": ({"source": overrides[0], "text": overrides[1]} if overrides
                          else None),
            "steps": steps, "seed": seed, "target": target}


def parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Tier2ReproError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})"
                              ) from None
    if not isinstance(data, dict) or data.get("format") != REPRO_FORMAT:
        raise Tier2ReproError(f"{source}: not an {REPRO_FORMAT} document")
    for key, kind in (("bucket", str), ("steps", list), ("spec", dict), ("digest", str)):
        if not isinstance(data.get(key), kind):
            raise Tier2ReproError(f"{source}: {key!r} missing or not a {kind.__name__}")
    if not isinstance(data["spec"].get("text"), str):
        raise Tier2ReproError(f"{source}: spec.text missing")
    extra = data.get("overrides")
    if extra is not None and not (isinstance(extra, dict) and isinstance(
            extra.get("source"), str) and isinstance(extra.get("text"), str)):
        raise Tier2ReproError(f"{source}: 'overrides' must be null or "
                              "{\"source\": str, \"text\": str}")
    if digest(data["steps"], data["bucket"]) != data["digest"]:
        raise Tier2ReproError(f"{source}: digest mismatch (steps edited or corrupted)")
    return data


def replay_file(path: Path, url: str, attempts: int = 1) -> int:
    """``assay replay FILE --target URL`` for a Tier 2 repro; returns the exit status."""
    import sys

    import trio

    from actors.tier2_exec import ExchangeFailed, SequenceRunner, reachable
    from actors.walker import Target
    from coordinator.tier2_run import load_graph
    from protocols.errors import SourceError
    from protocols.load_errors import LoadInputError
    from protocols.tier2_sequences import Step
    from replay.shrink_records import CandidateError
    from replay.tier2_shrink import still_shows

    def fail(message: str, code: int) -> int:
        sys.stderr.write(f"assay: error: {message}\n")
        return code

    try:
        data = parse(path.read_text("utf-8"), str(path))
        spec = data["spec"]
        extra = data.get("overrides")
        api, graph, _ = load_graph(spec["text"], str(spec.get("source", "spec")),
                                   (extra["source"], extra["text"]) if extra else None)
        steps = tuple(Step.from_json(s) for s in data["steps"])
        ops = api.by_id()
        unknown = [s.op_id for s in steps if s.op_id not in ops]
        if unknown:
            raise Tier2ReproError(f"{path}: step operation {unknown[0]!r} not in its spec")
        target = Target.from_url(url)
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"{path}: cannot read ({exc})", EXIT_USAGE)
    except (Tier2ReproError, SourceError, LoadInputError, ValueError) as exc:
        return fail(str(exc), EXIT_USAGE)

    async def main() -> int:
        why = await reachable(target)
        if why is not None:
            return fail(f"target unreachable: {url}: {why}", EXIT_INFRA)
        runner = SequenceRunner(target, ops, graph, api.spec.base_path)
        try:
            for _ in range(max(1, attempts)):
                if await still_shows(runner, steps, data["bucket"]):
                    print(f"FAIL (still reproduces): {data['bucket']}")
                    return EXIT_FAIL
        except (CandidateError, ExchangeFailed) as exc:  # no response mid-sequence
            return fail(f"target stopped answering: {exc}", EXIT_INFRA)
        finally:
            runner.close()
        print(f"PASS (gone): {data['bucket']}")
        return EXIT_PASS

    return trio.run(main)
