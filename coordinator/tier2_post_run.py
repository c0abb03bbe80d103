"""After an ``assay run --spec`` fleet stops: shrink each Tier 2 bucket, write reproducers.

How this works: a Tier 2 finding is a request sequence, which the incident path's byte
shrinker (``replay.reduce``) cannot take apart, so the incident records "not shrunk" with
that reason and the shrink happens here instead, as ``assay tier2`` does it: once the
walkers are done and the target is still up, each bucket's first sequence (the example the
walker kept) is shrunk on the live target with ``replay.tier2_shrink.minimize`` and written
as ``tier2-repro-<bucket>.json`` in the run directory (replay with ``assay replay FILE
--target URL``). Bounded: ``minimize`` stops each bucket at 60 runs or 10 s, and the caller
gives the whole step a deadline; a bucket not reached says so. A target that stops
answering ends a bucket's shrink with the cause recorded, never the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from actors.tier2_exec import ExchangeFailed, SequenceRunner
from actors.walker import Target
from protocols.openapi_operations import load_operations
from protocols.tier2_graph import infer
from protocols.tier2_overrides import Overrides, apply
from protocols.tier2_sequences import Step
from replay import tier2_repro
from replay.tier2_shrink import minimize

PREFIX = "tier2.bucket."
#: Seconds for all buckets together (each also stops at 60 runs or 10 s).
SHRINK_TOTAL_S = 60.0
_FINDING_KEYS = ("invariant", "severity", "meaning", "basis", "operation", "status", "detail")


async def shrink_buckets(target_url: str, settings: dict[str, Any],
                         examples: dict[str, dict[str, Any]], run_dir: Path, seed: int,
                         target_info: dict[str, Any], timeout_s: float = 5.0
                         ) -> dict[str, dict[str, Any]]:
    """bucket -> {"minimal_sequence", "minimal_length", "shrink", "repro"}."""
    api = load_operations(settings["spec_text"], settings["spec_source"])
    graph = apply(infer(api), Overrides())
    setup_len = 1 if graph.setup is not None else 0
    runner = SequenceRunner(Target.from_url(target_url), api.by_id(), graph,
                            api.spec.base_path, timeout=timeout_s)
    out: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    try:
        for key in sorted(k for k in examples if k.startswith(PREFIX)):
            bucket = key[len(PREFIX):]
            if time.monotonic() - started > SHRINK_TOTAL_S:
                out[bucket] = {"shrink": {"skipped": f"shrinking past {SHRINK_TOTAL_S:.0f} s"}}
                continue
            out[bucket] = await _one(runner, bucket, examples[key], setup_len, settings,
                                     run_dir, seed, target_info)
    finally:
        runner.close()
    return out


async def _one(runner: SequenceRunner, bucket: str, example: dict[str, Any], setup_len: int,
               settings: dict[str, Any], run_dir: Path, seed: int,
               target_info: dict[str, Any]) -> dict[str, Any]:
    try:
        steps = tuple(Step.from_json(s) for s in example.get("sequence", ()))
    except ValueError as exc:
        return {"shrink": {"error": f"the kept sequence is unreadable: {exc}"}}
    try:
        minimal, stats = await minimize(runner, steps, setup_len, bucket)
    except ExchangeFailed as exc:
        return {"shrink": {"error": exc.cause}}
    as_json = [s.to_json() for s in minimal]
    finding = {k: example[k] for k in _FINDING_KEYS if k in example}
    doc = tier2_repro.build(bucket, finding, (settings["spec_source"], settings["spec_text"]),
                            None, as_json, seed, target_info)
    name = bucket.replace(":", "-").replace(" ", "_").replace("/", "_")
    path = run_dir / f"tier2-repro-{name}.json"
    try:
        path.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    except OSError as exc:
        return {"minimal_sequence": as_json, "minimal_length": len(minimal), "shrink": stats,
                "repro": None, "repro_error": str(exc)}
    return {"minimal_sequence": as_json, "minimal_length": len(minimal), "shrink": stats,
            "repro": str(path)}
