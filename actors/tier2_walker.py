"""The tier2 slice: stateful OpenAPI sequences beside the other slices of ``assay run``.

How this works: the coordinator puts the spec text in ``settings["tier2"]`` only when the
run has ``--spec`` and the spec yields a producer/consumer chain
(``coordinator.tier2_slice``). ``prepare`` infers the dependency graph once per actor. Each
walker runs its own breadth-first ``Planner`` seeded from the walker's PRNG (run seed,
actor, walker), so walkers send different bodies; when a planner is exhausted the walker
starts a new one with the next seed of its PRNG, at most ``MAX_ROUNDS`` times. Each
sequence runs with ``actors.tier2_exec.SequenceRunner`` (a deadline on every exchange) and
is judged by ``protocols.tier2_checkers.check``; the run's deadline cancels the walker.

Nothing is judged here; the tally carries it to the coordinator, cumulatively:
``tier2.sequences|requests|aborted``, coverage ``tier2.cov.<op>.<status>``, findings
``tier2.finding.<invariant>`` (what the invariants read) and ``tier2.bucket.<bucket>``
(the same bug counted once per bucket), and per bucket the first sequence that showed it
as the example ``tier2.bucket.<bucket>``: its steps and each request/response exchanged.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from actors.tier2_exec import ExchangeFailed, SequenceRunner
from actors.walker import WalkerContext
from protocols.openapi_operations import load_operations
from protocols.tier2_checkers import Finding, check
from protocols.tier2_graph import infer
from protocols.tier2_overrides import Overrides, apply
from protocols.tier2_planner import Planner
from protocols.tier2_sequences import Exchange, SequenceRun, Step

SLICE = "tier2"
#: Fresh planners (new seeds) a walker starts after the previous one was exhausted.
MAX_ROUNDS = 50
#: Sequences in a row without any response before the walker backs off for a second
#: (the target is down or refusing: the health probes judge that, not this slice).
BACKOFF_AFTER = 5
BACKOFF_S = 1.0
#: Characters of a body kept per exchange in an example.
BODY_CHARS = 400


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Infer the graph once per actor (the coordinator already checked it has a chain)."""
    config = settings.get("tier2")
    if not config:
        return settings
    api = load_operations(config["spec_text"], config["spec_source"])
    return {**settings, "_tier2": (api, apply(infer(api), Overrides()))}


async def run(ctx: WalkerContext) -> None:
    config = ctx.settings["tier2"]
    api, graph = ctx.settings["_tier2"]
    ops = api.by_id()
    timeout = float(ctx.settings.get("request_timeout_s") or 5.0)
    runner = SequenceRunner(ctx.target, ops, graph, api.spec.base_path, timeout=timeout)
    seen: set[str] = set()
    failed_in_a_row = 0
    try:
        with trio.move_on_at(ctx.deadline):
            for _ in range(MAX_ROUNDS):
                planner = Planner(api, graph, ctx.rng.getrandbits(64),
                                  max_length=int(config.get("max_length", 4)))
                ctx.tally.incr("tier2.planners")
                while (proposal := planner.next_sequence()) is not None:
                    steps, is_variant = proposal
                    ctx.begin_case(f"tier2:{'>'.join(s.op_id for s in steps)}")
                    try:
                        seq = await runner.run(steps)
                        failed_in_a_row = 0
                    except ExchangeFailed as exc:
                        seq = exc.run
                        failed_in_a_row += 1
                        ctx.tally.incr("tier2.aborted")
                        ctx.tally.incr(f"tier2.aborted_by.{exc.cause}")
                    _tally(ctx, seq, steps, seen)
                    planner.record(steps, seq.exchanges, is_variant)
                    if failed_in_a_row >= BACKOFF_AFTER:
                        failed_in_a_row = 0
                        await trio.sleep(BACKOFF_S)
    finally:
        runner.close()


def _tally(ctx: WalkerContext, seq: SequenceRun, steps: tuple[Step, ...],
           seen: set[str]) -> None:
    tally = ctx.tally
    tally.incr("tier2.sequences")
    tally.incr("tier2.requests", len(seq.exchanges))
    for ex in seq.exchanges:
        tally.incr(f"tier2.cov.{ex.step.op_id}.{ex.status}")
        ctx.record_exchange(slice=SLICE, request=f"{ex.method} {ex.target}",
                            status=ex.status)
    for finding in check(seq.exchanges, seq.ops, seq.graph):
        tally.incr(f"tier2.finding.{finding.invariant.id}")
        tally.incr(f"tier2.bucket.{finding.bucket}")
        evidence = {**finding_json(finding), "bucket": finding.bucket,
                    "actor": ctx.actor_id, "walker": ctx.walker_id,
                    "sequence": [s.to_json() for s in steps],
                    "exchanges": [exchange_json(ex) for ex in seq.exchanges]}
        tally.keep_example(f"tier2.finding.{finding.invariant.id}", evidence)
        if finding.bucket not in seen:
            seen.add(finding.bucket)
            tally.keep_example(f"tier2.bucket.{finding.bucket}", evidence)


def finding_json(finding: Finding) -> dict[str, Any]:
    """The finding as ``assay tier2`` reports it (``coordinator.tier2_run.finding_json``)."""
    inv = finding.invariant
    return {"invariant": inv.id, "severity": inv.severity.value, "meaning": inv.meaning,
            "basis": inv.basis, "operation": finding.op_id, "status": finding.status,
            "detail": finding.detail}


def exchange_json(ex: Exchange) -> dict[str, Any]:
    """One request and its response as evidence: the request line, the JSON body sent,
    the status and the body received (both escaped text, cut at ``BODY_CHARS``)."""
    sent = None if ex.step.payload == "none" else _text(ex.step.body)
    received = _text(ex.body) if ex.is_json else None
    return {"step": ex.index, "op": ex.step.op_id, "payload": ex.step.payload,
            "request": f"{ex.method} {ex.target} HTTP/1.1", "request_body": sent,
            "status": ex.status, "response_body": received}


def _text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=repr)
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + "..."
