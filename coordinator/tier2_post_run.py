"""After an ``assay run --spec`` fleet stops: confirm each Tier 2 bucket alone, shrink it,
write reproducers.

Why confirm: during the run the Tier 2 walkers share the target with the whole fleet. A
503 under that load is RFC 9110 §15.6.4's "temporary overload", not a defect, and on an
API whose store all clients share another walker's create between two lists looks like a
rejected request's side effect. So a bucket counts only if its kept sequence, replayed
alone on the quiet target once the walkers are done, shows the same finding again (up to
``CONFIRM_TRIES`` times); otherwise it is reported unconfirmed and its invariant does not
fail (``coordinator.tier2_slice.confirmed_counters``). ``--no-shrink`` still confirms.

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
from replay.shrink_records import CandidateError
from replay.tier2_shrink import minimize, still_shows

PREFIX = "tier2.bucket."
#: Replays alone of a bucket's kept sequence; one that shows the finding confirms it.
CONFIRM_TRIES = 2
#: Seconds for all buckets together (each also stops at 60 runs or 10 s).
SHRINK_TOTAL_S = 60.0
_FINDING_KEYS = ("invariant", "severity", "meaning", "basis", "operation", "status", "detail")


async def shrink_buckets(target_url: str, settings: dict[str, Any],
                         examples: dict[str, dict[str, Any]], run_dir: Path, seed: int,
                         target_info: dict[str, Any], timeout_s: float = 5.0,
                         shrink: bool = True,
                         out: dict[str, dict[str, Any]] | None = None
                         ) -> dict[str, dict[str, Any]]:
    """bucket -> {"confirmed", "confirm", and when shrunk "minimal_sequence",
    "minimal_length", "shrink", "repro"}, filled into ``out`` as each bucket is done so a
    caller's deadline that cuts the step short keeps what was already confirmed. Every
    bucket is confirmed before any is shrunk: the budget goes to verdicts first."""
    out = {} if out is None else out
    api = load_operations(settings["spec_text"], settings["spec_source"])
    graph = apply(infer(api), Overrides())
    setup_len = 1 if graph.setup is not None else 0
    runner = SequenceRunner(Target.from_url(target_url), api.by_id(), graph,
                            api.spec.base_path, timeout=timeout_s)
    started = time.monotonic()
    keys = sorted(k for k in examples if k.startswith(PREFIX))
    try:
        confirmed: list[tuple[str, tuple[Step, ...]]] = []
        for key in keys:
            bucket = key[len(PREFIX):]
            if time.monotonic() - started > SHRINK_TOTAL_S:
                out[bucket] = {"confirmed": False, "confirm": "not replayed: the post-run "
                               f"step ran past {SHRINK_TOTAL_S:.0f} s",
                               "shrink": {"skipped": f"past {SHRINK_TOTAL_S:.0f} s"}}
                continue
            steps, out[bucket] = await _check(runner, bucket, examples[key])
            if steps is not None:
                confirmed.append((bucket, steps))
        for bucket, steps in confirmed:
            if not shrink:
                out[bucket]["shrink"] = {"skipped": "--no-shrink"}
            elif time.monotonic() - started > SHRINK_TOTAL_S:
                out[bucket]["shrink"] = {"skipped": f"shrinking past {SHRINK_TOTAL_S:.0f} s"}
            else:
                out[bucket].update(await _shrink(runner, bucket, examples[PREFIX + bucket],
                                                 steps, setup_len, settings, run_dir, seed,
                                                 target_info))
    finally:
        runner.close()
    return out


async def _check(runner: SequenceRunner, bucket: str, example: dict[str, Any]
                 ) -> tuple[tuple[Step, ...] | None, dict[str, Any]]:
    """(the kept steps when confirmed, else None; the bucket's entry so far)."""
    try:
        steps = tuple(Step.from_json(s) for s in example.get("sequence", ()))
    except ValueError as exc:
        return None, {"confirmed": False, "confirm": f"the kept sequence is unreadable: {exc}",
                      "shrink": {"error": f"the kept sequence is unreadable: {exc}"}}
    confirmed, how = await _confirm(runner, steps, bucket)
    if not confirmed:
        return None, {"confirmed": False, "confirm": how, "shrink": {"skipped": "unconfirmed"}}
    return steps, {"confirmed": True, "confirm": how,
                   "shrink": {"status": "not shrunk (yet)"}}


async def _shrink(runner: SequenceRunner, bucket: str, example: dict[str, Any],
                  steps: tuple[Step, ...], setup_len: int, settings: dict[str, Any],
                  run_dir: Path, seed: int, target_info: dict[str, Any]) -> dict[str, Any]:
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


async def _confirm(runner: SequenceRunner, steps: tuple[Step, ...],
                   bucket: str) -> tuple[bool, str]:
    """Whether the kept sequence shows ``bucket`` again alone, and how that went."""
    causes = []
    for attempt in range(1, CONFIRM_TRIES + 1):
        try:
            if await still_shows(runner, steps, bucket):
                return True, f"shown again alone (replay {attempt} of {CONFIRM_TRIES})"
        except CandidateError as exc:
            causes.append(str(exc))
    detail = f"; transport: {', '.join(causes)}" if causes else ""
    return False, (f"not shown again in {CONFIRM_TRIES} replays alone after the run (a "
                   f"finding of the shared, loaded target){detail}")
