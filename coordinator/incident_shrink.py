"""Stages 3 and 4 of an incident: shrink the evidence to a reproducer, then bisect it.

Separate from ``coordinator.incidents`` because these are the slow, heavy stages (one at a
time, under the manager's ``_heavy`` semaphore, since the host is busy running the load):
``replay.evidence`` derives a program, ``replay.reduce`` shrinks it against the live target
or fresh instances, and ``replay.bisect`` walks the target's history. Each function takes
the ``IncidentManager`` whose run it serves; ``coordinator.attribution`` reuses
``fresh_target_launcher`` for a death's shrink.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from coordinator import forensics
from replay import evidence as evidence_mod
from replay.launcher import Launcher, RefappLauncher
from replay.repro import Repro, save_repro

if TYPE_CHECKING:
    from coordinator.incidents import Incident, IncidentManager


def fresh_target_launcher(manager: IncidentManager) -> Launcher | None:
    """How this run starts fresh targets for a shrink, or None when it cannot."""
    if manager.settings.shrink_launch:
        from coordinator.launch import TargetLauncher  # watchdog: dies with assay

        return TargetLauncher(manager.settings.shrink_launch)
    if manager.builtin:
        return RefappLauncher(manager.refapp_defects)
    return None


async def shrink_evidence(manager: IncidentManager, incident: Incident) -> Path | None:
    """Stage 3: derive a program from the evidence and shrink it to ``shrink/repro.json``."""
    from replay.reduce import Judge, shrink_derived

    stage: dict[str, Any] = {"status": "deriving"}
    incident.stages["shrink"] = stage
    shrink_dir = incident.root / "shrink"
    shrink_dir.mkdir(exist_ok=True)
    if incident.counter.startswith("tier2."):  # a sequence, not a byte program
        reason = ("a Tier 2 finding is a request sequence, which replay.reduce cannot "
                  "shrink: it is shrunk after the run instead (coordinator.tier2_post_run: "
                  "tier_2.findings[].minimal_sequence and tier2-repro-*.json)")
        stage.update(status="not_shrunk", reason=reason)
        (shrink_dir / "NOT_SHRUNK.txt").write_text(f"{reason}\n")
        return None
    ev = incident.detail.get("evidence")
    ctx = evidence_mod.TripContext(
        incident.counter, incident.invariant.id, ev if isinstance(ev, Mapping) else {},
        manager.target_url, settings=manager.run_settings, counters=manager._counters(),
        target_started_at=manager.target_started_at,
        tripped_at=incident.seen_at or incident.received_at)
    try:
        derived = evidence_mod.derive(ctx)
    except evidence_mod.EvidenceError as exc:
        stage.update(status="not_derivable", reason=str(exc))
        (shrink_dir / "NOT_SHRUNK.txt").write_text(f"{exc}\n")
        return None
    original = derived.program
    forensics.Dossier(shrink_dir).write_json("original.json", original.to_json(),
                                             ledger=False)
    stage.update(original_steps=len(original.steps), original_digest=original.digest())
    launcher = fresh_target_launcher(manager)
    reason = ""
    if not manager.settings.shrink:
        reason = "shrinking disabled (--no-shrink)"
    elif derived.needs_fresh and launcher is None:
        reason = ("the failure took the live target's state with it and the run cannot "
                  "launch a fresh instance (give --shrink-launch 'CMD {port}')")
    if reason:
        stage.update(status="not_shrunk", reason=reason)
        return _save(manager, incident, derived, original, shrink_dir, stage, None, [reason])
    # An unshrunk repro first: if the shrink is cut short, the dossier still has one.
    _save(manager, incident, derived, original, shrink_dir, stage, None,
          ["unshrunk: the evidence as derived (the shrink did not finish)"])
    use_fresh = launcher is not None and (derived.needs_fresh or derived.stateful)
    judge = Judge(derived.check, dict(derived.meta),
                  live_url=None if use_fresh else manager.target_url,
                  launcher=launcher if use_fresh else None,
                  repeats=2 if derived.stateful and not use_fresh else 1,
                  pid=None if use_fresh else manager.target_pid)
    stage.update(status="queued", mode=judge.mode)
    manager._write_incident(incident)
    async with manager._heavy:
        stage["status"] = "shrinking"
        manager._write_incident(incident)
        run = await shrink_derived(derived, judge, max_attempts=manager.settings.max_attempts,
                                   max_seconds=manager.settings.max_shrink_s,
                                   stall_limit=manager.settings.stall_limit)
    forensics.Dossier(shrink_dir).write_json("shrink_log.json", run.log_document(),
                                             ledger=False)
    stage.update(status="flaky" if run.result.flaky else "shrunk", **run.stats())
    return _save(manager, incident, derived, run.program, shrink_dir, stage, run.stats(),
                 run.notes)


def _save(manager: IncidentManager, incident: Incident, derived: evidence_mod.Derived,
          program: Any, shrink_dir: Path, stage: dict[str, Any], stats: dict[str, Any] | None,
          notes: list[str]) -> Path:
    repro = Repro(
        program,
        predicate={"id": incident.invariant.id, "counter": incident.counter,
                   "meaning": incident.invariant.meaning,
                   "severity": incident.invariant.severity.value},
        target={"url": manager.target_url, "commit": manager._commit,
                "builtin": manager.builtin,
                "defects": list(manager.refapp_defects),
                "needs_fresh_target": derived.needs_fresh},
        seed=manager.seed if isinstance(manager.seed, int) else None,
        shrink=stats or {"status": stage.get("status"), "reason": stage.get("reason")},
        notes=(*derived.notes, *notes),
    )
    path = shrink_dir / "repro.json"
    save_repro(repro, path)
    stage["repro"] = str(path)
    stage["final_digest"] = program.digest()
    return path


async def bisect_repro(manager: IncidentManager, incident: Incident, repro: Path) -> None:
    """Stage 4: bisect the reproducer between the good and bad revisions."""
    from replay.bisect import BisectConfig, bisect

    settings = manager.settings
    stage: dict[str, Any] = {"status": "queued"}
    incident.stages["bisect"] = stage
    out_dir = incident.root / "bisect"
    config = BisectConfig(repo=Path(settings.bisect_repo or "."),
                          good=settings.bisect_good or "", bad=settings.bisect_bad,
                          launch=settings.bisect_launch or "", build=settings.bisect_build,
                          repro=repro, out_dir=out_dir)
    async with manager._heavy:
        stage["status"] = "running"
        manager._write_incident(incident)
        report = await trio.to_thread.run_sync(bisect, config, abandon_on_cancel=True)
    stage.update(status=report.get("status"), first_bad=report.get("first_bad"),
                 reason=report.get("reason"), report=str(out_dir / "bisect.json"))

