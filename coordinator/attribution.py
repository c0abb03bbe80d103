"""Crash and hang attribution, the coordinator's I/O shell around ``protocols.attribution``.

How this works, in the order things happen when the target dies or hangs:

1. The health monitor trips ``coord.target_down`` / ``coord.target_hung``. ``Coordinator._trip``
   calls ``hold`` for every first trip: a death opens an ``Outage`` here (and goes on to
   its incident); a slice trip that a death produces by itself (``h2c.crashed``,
   ``ws.hang_no_close``, ``sse.*``) is *held*: a task probes the target and, while it does
   not answer, waits for the health monitor's verdict. If a death is (or gets) on record
   around the trip, the trip is recorded with ``consequence_of`` and no incident of its own;
   if the target answers, the trip goes on to the incident path unchanged.
2. The death's incident task calls ``attribute`` first (before forensics, while the rings
   are fresh): ``collect`` publishes ``InFlightRequest`` (a few times: PUB may drop a
   frame) and waits, bounded, for an ``InFlightReport`` from every live actor; the pure
   ranking turns them into ``candidates.json`` in the incident directory, a short list in
   ``incident.json``, and ``evidence["candidates"]`` for the reproducer.
3. ``shrink_death`` replaces the generic shrink for a death: with a way to start fresh
   targets (``--launch``, ``--shrink-launch``, the built-in refapp) it runs
   ``replay.crash_shrink.shrink_crash`` (single candidates first, then ddmin over the
   union, each kill confirmed) in a worker thread; without one the dossier says that
   shrinking a crash needs ``--launch`` and keeps an unverified replay of every candidate.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from actors.walker import Target
from coordinator.incident_shrink import fresh_target_launcher
from coordinator.invariants import HIGH_COUNTERS
from coordinator.target import pid_alive, probe
from protocols import attribution as attr
from protocols import wire

if TYPE_CHECKING:
    from coordinator.incidents import Incident, IncidentManager

#: How long ``collect`` waits for every live actor's report, and how often it re-asks.
COLLECT_TIMEOUT_S = 3.0
REASK_EVERY_S = 0.5
#: A held slice trip waits at most this long for the health monitor to confirm a death it
#: probed (3 refused probes a second apart; 3 timed-out probes of 3 s each).
CONFIRM_DEATH_S = 15.0
PROBE_TIMEOUT_S = 2.0
CANDIDATES_FILE = "candidates.json"


@dataclass
class Collected:
    """What the actors answered to one ``InFlightRequest``."""

    request_id: str
    asked: list[int]
    reports: dict[int, wire.InFlightReport] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def entries(self) -> list[attr.Sent]:
        out = []
        for actor, report in self.reports.items():
            for raw in report.entries:
                sent = attr.Sent.from_wire(actor, raw)
                if sent is not None:
                    out.append(sent)
        return out

    def survived(self) -> list[str]:
        return [key for report in self.reports.values() for key in report.survived
                if isinstance(key, str)]


class Attribution:
    """One run's attribution: outages, held slice trips, in-flight collection."""

    def __init__(self, *, run_id: str, target_url: str, health_path: str,
                 target_pid: int | None, publish: Callable[[bytes], object],
                 live_actors: Callable[[], Iterable[int]],
                 trips: dict[str, dict[str, Any]],
                 proceed: Callable[[str, dict[str, Any]], None], log: Any = None,
                 last_ok: Callable[[], float | None] = lambda: None) -> None:
        self.run_id = run_id
        self.target = Target.from_url(target_url)
        self.health_path = health_path
        self.target_pid = target_pid
        self._publish = publish
        self._live_actors = live_actors
        self._trips = trips
        self._proceed = proceed
        self.log = log
        self.outages: list[attr.Outage] = []
        #: When the health monitor last saw the target answer.
        self._last_ok = last_ok
        self._held: dict[str, dict[str, Any]] = {}
        self._collecting: dict[str, Collected] = {}
        self._nursery: trio.Nursery | None = None
        self._queued: list[tuple[str, dict[str, Any]]] = []

    # -- held trips -----------------------------------------------------------------------

    def hold(self, counter: str, detail: Mapping[str, Any]) -> bool:
        """Called for every first trip. True: the trip is held (or was a consequence
        already); the caller must not record it now."""
        invariant = attr.DEATH_COUNTERS.get(counter)
        if invariant is not None:
            at = _when(detail)
            self.outages.append(attr.Outage(invariant, at))
            return False
        if not attr.is_consequence_counter(counter) or detail.get("attribution") == "checked":
            return False
        if counter in self._held:
            return True
        cause = attr.consequence_of(counter, _when(detail), self.outages)
        if cause is not None:
            self._record_consequence(counter, dict(detail), cause)
            return True
        self._held[counter] = dict(detail)
        if self._nursery is None:
            self._queued.append((counter, dict(detail)))
        else:
            self._nursery.start_soon(self._decide, counter, dict(detail))
        return True

    def _record_consequence(self, counter: str, detail: dict[str, Any], cause: str) -> None:
        invariant = HIGH_COUNTERS[counter]
        self._trips[counter] = {"invariant": invariant.id, **detail, "consequence_of": cause,
                                "note": f"seen while the target was dead or hung: a "
                                        f"consequence of {cause}, not a cause (no incident)"}
        if self.log is not None:
            self.log.warning("slice trip is a consequence of the target's death",
                             invariant=invariant.id, consequence_of=cause)

    async def _decide(self, counter: str, detail: dict[str, Any]) -> None:
        """Probe; while the target does not answer, wait for the monitor's verdict."""
        at = _when(detail)
        give_up = time.monotonic() + CONFIRM_DEATH_S
        decided = False
        seen_down = False  # our own probe found the target dead or hung after this trip
        try:
            while True:
                cause = attr.consequence_of(counter, at, self.outages)
                if cause is None and seen_down:  # the monitor confirmed what we probed
                    cause = next((o.invariant for o in self.outages
                                  if o.noticed_at >= at - attr.COINCIDENCE_WINDOW_S), None)
                if cause is not None:
                    self._record_consequence(counter, detail, cause)
                    decided = True
                    return
                if time.monotonic() >= give_up:
                    break
                result = await probe(self.target, self.health_path, PROBE_TIMEOUT_S)
                dead = attr.death_from_probe(result.status.value)
                if self.target_pid is not None and not pid_alive(self.target_pid):
                    dead = "I-LIVENESS"
                if dead is None:
                    break  # the target answers: the slice saw something of its own
                seen_down = True
                await trio.sleep(0.25)
            decided = True
            self._proceed(counter, {**detail, "attribution": "checked"})
        finally:
            self._held.pop(counter, None)
            if not decided:  # the run ended first: keep the trip, say why it has no incident
                self._trips.setdefault(counter, {
                    "invariant": HIGH_COUNTERS[counter].id, **detail,
                    "note": "the run ended while assay was still telling whether this trip "
                            "was a consequence of the target's death"})

    async def serve(self) -> None:
        """Run held-trip decisions until cancelled; close outages the target recovers from."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for counter, detail in self._queued:
                nursery.start_soon(self._decide, counter, detail)
            self._queued.clear()
            while True:
                await trio.sleep(0.5)
                self._close_outages()

    def _close_outages(self) -> None:
        ok = self._last_ok()
        for number, outage in enumerate(self.outages):
            if outage.ended_at is None and ok is not None and ok > outage.noticed_at:
                self.outages[number] = attr.Outage(outage.invariant, outage.noticed_at, ok)

    # -- collection -----------------------------------------------------------------------

    def on_report(self, message: wire.InFlightReport) -> None:
        collected = self._collecting.get(message.request_id)
        if collected is not None:
            collected.reports.setdefault(message.actor_id, message)

    async def collect(self, since: float) -> Collected:
        """Ask every live actor for its flights since ``since``; bounded wait."""
        request = wire.InFlightRequest(self.run_id, uuid.uuid4().hex[:12], since)
        asked = sorted(self._live_actors())
        collected = Collected(request.request_id, asked)
        self._collecting[request.request_id] = collected
        frame = wire.encode(request)
        began = time.monotonic()
        next_ask = began
        try:
            while time.monotonic() - began < COLLECT_TIMEOUT_S:
                if set(asked) <= set(collected.reports):
                    break
                if time.monotonic() >= next_ask:
                    self._publish(frame)
                    next_ask = time.monotonic() + REASK_EVERY_S
                await trio.sleep(0.02)
        finally:
            self._collecting.pop(request.request_id, None)
        collected.elapsed_s = time.monotonic() - began
        return collected

    async def attribute(self, manager: IncidentManager, incident: Incident) -> None:
        """Stage ``attribution`` of a death's incident: collect, rank, write."""
        began = time.time()
        kind = attr.DEATH_KINDS[attr.DEATH_COUNTERS[incident.counter]]
        stage: dict[str, Any] = {"status": "collecting", "kind": kind}
        incident.stages["attribution"] = stage
        noticed = _when(incident.detail)
        collected = await self.collect(noticed - attr.LOOKBACK_S)
        entries = collected.entries()
        death_at = attr.estimate_death(entries, noticed, self._last_ok())
        survived = attr.survived_cases(entries, collected.survived(), self._last_ok())
        candidates = attr.rank(entries, death_at, survived)
        document = attr.candidates_document(death_at, kind, candidates)
        document["survived"] = sorted(survived)  # cases the target lived through: not suspects
        path = incident.root / CANDIDATES_FILE
        path.write_text(json.dumps(document, indent=2) + "\n")
        evidence = incident.detail.get("evidence")
        if isinstance(evidence, dict):  # what replay.evidence derives a reproducer from
            evidence["candidates"] = document["candidates"]
        missing = [a for a in collected.asked if a not in collected.reports]
        stage.update(
            status="ranked" if candidates else "no_candidates",
            death_at=death_at, noticed_at=noticed, candidates_file=str(path),
            actors_asked=len(collected.asked), actors_answered=len(collected.reports),
            actors_missing=missing, entries=len(entries),
            truncated=any(r.truncated for r in collected.reports.values()),
            top=attr.shown(candidates), collect_s=round(collected.elapsed_s, 3),
            # The measured figures (benchmarks/bench_attribution.py): death (estimated) to
            # noticed by the health monitor, and to candidates.json written.
            death_to_noticed_s=round(noticed - death_at, 3),
            death_to_candidates_s=round(time.time() - death_at, 3),
            elapsed_s=round(time.time() - began, 3))
        if not candidates:
            stage["reason"] = ("no walker had sent anything in the last "
                               f"{attr.LOOKBACK_S:.0f} s before the death was noticed"
                               if collected.reports else "no actor answered in time")
        manager._write_incident(incident)
        if self.log is not None:
            self.log.warning("death attributed", incident=incident.id, candidates=len(candidates),
                             top=candidates[0].sent.key if candidates else None)


def _when(detail: Mapping[str, Any]) -> float:
    """When a trip was seen: the walker's or probe's clock, else when it was received."""
    for value in (detail.get("seen_at"),
                  (detail.get("evidence") or {}).get("at")
                  if isinstance(detail.get("evidence"), Mapping) else None,
                  detail.get("received_at")):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return time.time()


# -- shrinking a death ------------------------------------------------------------------------

def is_death(counter: str) -> bool:
    return counter in attr.DEATH_COUNTERS


async def shrink_death(manager: IncidentManager, incident: Incident) -> Path | None:
    """The shrink stage of a death: ``shrink_crash`` against fresh targets, or why not."""
    stage: dict[str, Any] = {"status": "deriving", "mode": "crash"}
    incident.stages["shrink"] = stage
    shrink_dir = incident.root / "shrink"
    shrink_dir.mkdir(exist_ok=True)
    path = incident.root / CANDIDATES_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        stage.update(status="not_derivable", reason="no candidates.json (attribution did "
                                                    "not run or failed)")
        return None
    try:
        from replay import crash_shrink
    except ImportError as exc:
        stage.update(status="not_available", reason=f"crash shrink not available: {exc}")
        return None
    launcher = fresh_target_launcher(manager)
    settings = manager.settings
    if not settings.shrink or launcher is None:
        reason = ("shrinking disabled (--no-shrink)" if not settings.shrink else
                  crash_shrink.NEEDS_LAUNCH)
        unshrunk = crash_shrink.not_shrunk(document, shrink_dir, reason)
        stage.update(status="not_shrunk", reason=reason,
                     unshrunk=str(unshrunk) if unshrunk else None)
        return None
    predicate = {"id": incident.invariant.id, "counter": incident.counter,
                 "meaning": incident.invariant.meaning,
                 "severity": incident.invariant.severity.value}
    target = {"url": manager.target_url, "builtin": manager.builtin,
              "defects": list(manager.refapp_defects)}
    stage.update(status="queued", launcher=launcher.describe())
    manager._write_incident(incident)
    async with manager._heavy:
        stage["status"] = "shrinking"
        manager._write_incident(incident)
        began = time.time()
        halt = threading.Event()  # an abandoned worker thread stops at its next attempt
        try:
            repro = await trio.to_thread.run_sync(
                lambda: crash_shrink.shrink_crash(
                    document, launcher, shrink_dir, settings.max_shrink_s,
                    max_attempts=min(settings.max_attempts, 30),
                    probe_path=str(manager.run_settings.get("health_path") or "/"),
                    predicate=predicate, target=target, cancelled=halt.is_set),
                abandon_on_cancel=True)
        except crash_shrink.CandidateFormatError as exc:
            stage.update(status="not_derivable", reason=str(exc))
            return None
        finally:
            halt.set()
    stage.update(status="shrunk" if repro else "not_reproduced",
                 elapsed_s=round(time.time() - began, 3),
                 report=str(shrink_dir / "crash_shrink.json"))
    death_at = (incident.stages.get("attribution") or {}).get("death_at")
    if repro is not None:
        stage["repro"] = str(repro)
        stage["verified"] = True
        if isinstance(death_at, (int, float)):
            stage["death_to_reproducer_s"] = round(time.time() - death_at, 3)
    else:
        stage["reason"] = "no candidate killed a fresh target (see crash_shrink.json)"
    return repro
