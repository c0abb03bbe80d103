"""The incident path: on the first trip of each HIGH predicate, capture, shrink, bisect.

How this works: ``Coordinator._trip`` calls ``IncidentManager.trip`` synchronously, in the
receive loop, for the first trip of a predicate. ``trip`` creates the dossier directory
and writes a first ``incident.json`` *right there* (a mkdir and one small write: the
measured "trip to dossier" latency is seen_at -> that write), then starts the slow work as
its own trio task in the manager's nursery, so the run goes on. Later trips of the same
predicate only bump a counter (``repeat``).

The task, in order, each stage recorded in ``incident.json`` as it completes:

1. evidence: exact bytes (``evidence/*.bin``) and a JSON rendering where every byte string
   is base64 plus an escaped printable form; the walker's recent exchanges likewise;
2. forensics (``coordinator.forensics``): /proc, fds, threads, sockets, py-spy for a local
   pid (in a worker thread), the forensics agent for a remote one, the target's own
   health/stats/metrics pages; ``forensics_status.txt`` lists every capture ok/missing;
3. shrink (``replay.evidence`` -> ``replay.reduce``): against the live target, or fresh
   instances when the failure destroyed the target's state and the run can launch one;
   writes ``shrink/repro.json`` and ``shrink/shrink_log.json``. One shrink at a time (the
   host is busy running the load);
4. bisect (``replay.bisect``) when the run was given a repo, a good revision and a launch
   command: results under ``bisect/``.

This module owns the trip, the task's order and ``incident.json``; stages 1-2 live in
``coordinator.incident_capture``, stages 3-4 in ``coordinator.incident_shrink``, and the
settings and ``assay run`` options in ``coordinator.incident_settings``.

Everything is bounded: forensics by a deadline, shrinking by attempts/seconds/stall, and
the whole path by ``drain``'s budget after the run (the coordinator waits for open
incidents, then cancels what is left; a cut-short incident says so in its status).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors.walker import Target
from coordinator import forensics
from coordinator.incident_capture import capture
from coordinator.incident_settings import IncidentSettings
from coordinator.incident_shrink import bisect_repro, shrink_evidence
from coordinator.invariants import HIGH_COUNTERS, Invariant
from replay.repro import host_info, tool_info

INCIDENT_FORMAT = "assay-incident/1"


@dataclass
class Incident:
    """One predicate's incident: where its dossier is and how far it got."""

    id: str
    counter: str
    invariant: Invariant
    root: Path
    detail: dict[str, Any]
    seen_at: float | None
    received_at: float
    dossier_started_at: float = 0.0
    counters_at_trip: dict[str, int] = field(default_factory=dict)
    status: str = "capturing"
    later_trips: int = 0
    stages: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    finished_at: float | None = None

    @property
    def latency_ms(self) -> float | None:
        if self.seen_at is None:
            return None
        return round((self.dossier_started_at - self.seen_at) * 1000, 3)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    millis = int(epoch % 1 * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"



class IncidentManager:
    """Owns every incident of one run; see the module docstring."""

    def __init__(
        self,
        run_dir: Path,
        settings: IncidentSettings,
        *,
        run_id: str,
        target_url: str,
        target_pid: int | None,
        builtin: bool,
        refapp_defects: tuple[str, ...] = (),
        run_settings: Mapping[str, Any] | None = None,
        seed: int | None = None,
        counters: Callable[[], dict[str, int]] = dict,
        log: Any = None,
        run_duration_s: float = 30.0,
    ) -> None:
        self.run_dir = run_dir
        self.settings = settings
        self.run_id = run_id
        self.target_url = target_url
        self.target_pid = target_pid
        self.builtin = builtin
        self.refapp_defects = tuple(refapp_defects)
        self.run_settings = dict(run_settings or {})
        self.seed = seed
        self._counters = counters
        self.log = log
        self.run_duration_s = run_duration_s
        self.incidents: dict[str, Incident] = {}
        self.target_started_at = time.time()
        self._nursery: trio.Nursery | None = None
        self._queued: list[Incident] = []
        self._active = 0
        self._heavy = trio.Semaphore(1)
        self._commit: str | None = settings.target_commit
        self._commit_known = settings.target_commit is not None
        #: ``coordinator.attribution.Attribution`` (set by the run): a death's incident
        #: first collects and ranks what every actor had in flight.
        self.attribution: Any = None

    # -- called from the coordinator's receive loop (synchronous, must stay cheap) ----------

    def trip(self, counter: str, invariant: Invariant, detail: Mapping[str, Any]) -> None:
        """First trip of ``counter``: start its dossier now, the rest in a task."""
        if counter in self.incidents:
            self.repeat(counter)
            return
        if not self.settings.enabled:
            return
        received = float(detail.get("received_at") or time.time())
        seen = detail.get("seen_at")
        if not isinstance(seen, (int, float)):
            ev = detail.get("evidence")
            at = ev.get("at") if isinstance(ev, Mapping) else None
            seen = at if isinstance(at, (int, float)) and detail.get("via") == "health" else None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(received)) + \
            f".{int(received % 1 * 1000):03d}Z"
        incident_id = f"{stamp}-{invariant.id}"
        root = self.run_dir / "incidents" / incident_id
        incident = Incident(incident_id, counter, invariant, root, dict(detail),
                            float(seen) if seen is not None else None, received)
        self.incidents[counter] = incident
        try:
            root.mkdir(parents=True, exist_ok=True)
            incident.dossier_started_at = time.time()
            family = (counter.split(".", 1)[0], "coord")
            incident.counters_at_trip = {k: v for k, v in self._counters().items()
                                         if k.split(".", 1)[0] in family or k in HIGH_COUNTERS}
            self._write_incident(incident)
        except OSError as exc:
            incident.status, incident.error = "error", f"cannot create dossier: {exc}"
            return
        self._active += 1
        if self._nursery is None:
            self._queued.append(incident)
        else:
            self._nursery.start_soon(self._run, incident)

    def repeat(self, counter: str) -> None:
        incident = self.incidents.get(counter)
        if incident is not None:
            incident.later_trips += 1

    # -- lifecycle -------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run incident tasks until cancelled (the coordinator cancels after ``drain``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for incident in self._queued:
                nursery.start_soon(self._run, incident)
            self._queued.clear()
            await trio.sleep_forever()

    async def drain(self, budget_s: float | None = None,
                    stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait for open incidents, at most ``budget_s`` and only while ``stop()`` is false
        (an interrupt); True when all finished. What is left is cancelled by the caller."""
        budget = budget_s if budget_s is not None else self.settings.budget_s
        if budget is None:
            budget = min(180.0, max(5.0, self.run_duration_s))
        if self.log is not None and self._active:
            self.log.info("waiting for incidents", open=self._active, budget_s=budget)
        with trio.move_on_after(budget):
            while self._active and not stop():
                await trio.sleep(0.1)
        for incident in self.incidents.values():  # later trips kept counting meanwhile
            if incident.finished_at is not None:
                self._write_incident(incident)
        return self._active == 0

    def summary(self) -> list[dict[str, Any]]:
        """The results document's ``incidents`` list."""
        out = []
        for incident in self.incidents.values():
            entry: dict[str, Any] = {
                "id": incident.id, "invariant": incident.invariant.id,
                "counter": incident.counter, "severity": incident.invariant.severity.value,
                "status": incident.status, "dossier": str(incident.root),
                "path": str(incident.root),
                "started_at": _iso(incident.dossier_started_at or None),
                "trip_latency_ms": incident.latency_ms, "later_trips": incident.later_trips,
            }
            forensics_stage = incident.stages.get("forensics")
            if forensics_stage:
                entry["forensics"] = {"captured": forensics_stage.get("captured"),
                                      "missing": forensics_stage.get("missing")}
            shrink_stage = incident.stages.get("shrink")
            if shrink_stage:
                entry["repro"] = shrink_stage.get("repro")
                entry["shrink"] = {k: shrink_stage.get(k) for k in
                                   ("status", "mode", "original_steps", "final_steps", "flaky",
                                    "verified", "reason") if k in shrink_stage}
            attribution_stage = incident.stages.get("attribution")
            if attribution_stage:
                entry["attribution"] = {k: attribution_stage.get(k) for k in
                                        ("status", "kind", "death_at", "candidates_file",
                                         "actors_answered", "actors_asked", "top", "reason",
                                         "death_to_candidates_s")
                                        if k in attribution_stage}
            bisect_stage = incident.stages.get("bisect")
            if bisect_stage:
                entry["bisect"] = {k: bisect_stage.get(k) for k in
                                   ("status", "first_bad", "reason") if k in bisect_stage}
            if incident.error:
                entry["error"] = incident.error
            out.append(entry)
        return out

    # -- the task --------------------------------------------------------------------------

    async def _run(self, incident: Incident) -> None:
        from coordinator import attribution

        death = attribution.is_death(incident.counter)
        try:
            if death and self.attribution is not None:
                incident.status = "attributing"
                await self.attribution.attribute(self, incident)
            await capture(self, incident)
            incident.status = "shrinking"
            self._write_incident(incident)
            if death and self.attribution is not None:
                repro = await attribution.shrink_death(self, incident)
            else:
                repro = await shrink_evidence(self, incident)
            if repro is not None and self.settings.bisects:
                incident.status = "bisecting"
                self._write_incident(incident)
                await bisect_repro(self, incident, repro)
            incident.status = "complete"
        except Exception as exc:  # a bug here must not take the run down: record it
            incident.status = "error"
            incident.error = f"{type(exc).__name__}: {exc}"
            if self.log is not None:
                self.log.error("incident failed", incident=incident.id, error=incident.error)
        except BaseException:  # Cancelled, possibly grouped by a nursery on the way out
            incident.status = "cut_short"
            incident.error = "stopped by the run's incident budget or an interrupt"
            raise
        finally:
            incident.finished_at = time.time()
            self._write_incident(incident)
            self._active -= 1

    def _write_incident(self, incident: Incident) -> None:
        try:
            forensics.Dossier(incident.root).write_json("incident.json",
                                                        self._incident_doc(incident),
                                                        ledger=False)
        except OSError:
            pass

    def _incident_doc(self, incident: Incident) -> dict[str, Any]:
        detail = incident.detail
        ev = detail.get("evidence") if isinstance(detail.get("evidence"), Mapping) else {}
        target = Target.from_url(self.target_url)
        return {
            "format": INCIDENT_FORMAT,
            "id": incident.id,
            "run_id": self.run_id,
            "status": incident.status,
            "error": incident.error,
            "predicate": incident.invariant.id,
            "counter": incident.counter,
            "meaning": incident.invariant.meaning,
            "severity": incident.invariant.severity.value,
            "counters_at_trip": incident.counters_at_trip,
            "later_trips": incident.later_trips,
            "source": {
                "via": detail.get("via", "violation"),
                "actor": detail.get("actor"), "incarnation": detail.get("incarnation"),
                "walker": detail.get("walker", ev.get("walker")),
                "slice": ev.get("slice"), "run_seed": ev.get("seed", self.seed),
                "walker_step": ev.get("step"),
                "walker_prng": "walker_rng(run_seed, actor, walker)",
            },
            "target": {"url": self.target_url, "host": target.host, "port": target.port,
                       "pid": self.target_pid, "builtin": self.builtin,
                       "defects": list(self.refapp_defects), "commit": self._commit},
            "host": {**host_info(), "hostname": socket.gethostname()},
            "tool": tool_info(),
            "timestamps": {
                "seen_at": _iso(incident.seen_at), "received_at": _iso(incident.received_at),
                "dossier_started_at": _iso(incident.dossier_started_at),
                "finished_at": _iso(incident.finished_at),
                "epoch": {"seen_at": incident.seen_at, "received_at": incident.received_at,
                          "dossier_started_at": incident.dossier_started_at},
            },
            "trip_latency_ms": {
                "seen_to_dossier": incident.latency_ms,
                "seen_to_received": None if incident.seen_at is None else
                round((incident.received_at - incident.seen_at) * 1000, 3),
                "received_to_dossier": round(
                    (incident.dossier_started_at - incident.received_at) * 1000, 3),
            },
            "stages": incident.stages,
        }
