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

Everything is bounded: forensics by a deadline, shrinking by attempts/seconds/stall, and
the whole path by ``drain``'s budget after the run (the coordinator waits for open
incidents, then cancels what is left; a cut-short incident says so in its status).
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio

from actors.walker import Target
from coordinator import forensics
from coordinator.invariants import HIGH_COUNTERS, Invariant
from replay import evidence as evidence_mod
from replay.launcher import Launcher, RefappLauncher
from replay.repro import Repro, host_info, save_repro, tool_info

INCIDENT_FORMAT = "assay-incident/1"
#: Evidence fields rendered beside the JSON as raw files.
RAW_FIELDS = ("sent", "received", "canary_sent", "canary_received", "login_sent")


@dataclass(frozen=True)
class IncidentSettings:
    """What ``assay run`` was told about incidents (plain data: it travels in config.extra)."""

    enabled: bool = True
    shrink: bool = True
    max_attempts: int = 60
    max_shrink_s: float = 60.0
    stall_limit: int = 30
    #: How long the run waits for open incidents after its deadline; None: as long as the
    #: run itself lasted, between 5 s and 180 s (a 5 s check stays a quick check, a soak
    #: gets its repro; the work started at the trip, so long runs rarely wait at all).
    budget_s: float | None = None
    forensics_deadline_s: float = 15.0
    agent: str | None = None
    agent_server_key: str | None = None
    agent_client_key: str | None = None
    metrics_urls: tuple[str, ...] = ()
    shrink_launch: str | None = None
    target_commit: str | None = None
    bisect_repo: str | None = None
    bisect_good: str | None = None
    bisect_bad: str = "HEAD"
    bisect_launch: str | None = None
    bisect_build: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics_urls"] = list(self.metrics_urls)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> IncidentSettings:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "metrics_urls" in known:
            known["metrics_urls"] = tuple(known["metrics_urls"])
        return cls(**known)

    @property
    def bisects(self) -> bool:
        return bool(self.bisect_repo and self.bisect_good and self.bisect_launch)


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


def render_bytes(value: bytes) -> dict[str, Any]:
    """Raw bytes as base64 plus an escaped printable rendering (CR/LF kept readable)."""
    text = value.decode("latin-1").encode("unicode_escape").decode("ascii")
    text = text.replace("\\r\\n", "\\r\\n\n")
    return {"base64": base64.b64encode(value).decode("ascii"), "text": text,
            "length": len(value)}


def render(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return render_bytes(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): render(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(v) for v in value]
    return value


def is_local_host(host: str) -> bool:
    """Whether ``host`` is this machine (a pid only means something for a local target)."""
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return False
    if address.is_loopback or address.is_unspecified:
        return True
    try:
        mine = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values()
                for a in addrs}
    except (OSError, psutil.Error):
        return False
    return str(address) in mine


def _git_head(path: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


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
            await self._capture(incident)
            incident.status = "shrinking"
            self._write_incident(incident)
            if death and self.attribution is not None:
                repro = await attribution.shrink_death(self, incident)
            else:
                repro = await self._shrink(incident)
            if repro is not None and self.settings.bisects:
                incident.status = "bisecting"
                self._write_incident(incident)
                await self._bisect(incident, repro)
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

    # -- 1 + 2: evidence and forensics -----------------------------------------------------

    async def _capture(self, incident: Incident) -> None:
        began = time.time()
        dossier = forensics.Dossier(incident.root)
        ev = incident.detail.get("evidence")
        ev = dict(ev) if isinstance(ev, Mapping) else {}
        recent = ev.pop("recent", None)
        dossier.write_json("evidence.json", {"counter": incident.counter,
                                             "via": incident.detail.get("via", "violation"),
                                             "evidence": render(ev)})
        for name in RAW_FIELDS:
            raw = ev.get(name)
            if isinstance(raw, (bytes, bytearray)) and raw:
                dossier.write(f"evidence/{name}.bin", bytes(raw))
        if recent:
            dossier.write_json("recent.json", render(recent))
        else:
            dossier.missing("recent.json", "no recent exchanges in this evidence (a tally or "
                                           "health-probe trip carries none)")
        await self._forensics(dossier)
        dossier.write_status()
        missing = [c.name for c in dossier.captures if not c.ok]
        incident.stages["forensics"] = {
            "captured": sum(c.ok for c in dossier.captures), "missing": len(missing),
            "missing_files": missing[:50], "elapsed_s": round(time.time() - began, 3)}
        if not self._commit_known:
            self._commit_known = True
            self._commit = await trio.to_thread.run_sync(self._find_commit)
        self._write_incident(incident)

    def _find_commit(self) -> str | None:
        if self.settings.bisect_repo:
            return _git_head(Path(self.settings.bisect_repo))
        if self.builtin:
            return _git_head(Path(__file__).resolve().parent.parent)
        return None

    async def _forensics(self, dossier: forensics.Dossier) -> None:
        settings = self.settings
        target = Target.from_url(self.target_url)
        urls: dict[str, str] = {}
        health = self.run_settings.get("health_path")
        if isinstance(health, str):
            urls["health"] = forensics.absolute(self.target_url, health)
        stats = self.run_settings.get("stats_url")
        if isinstance(stats, str) and stats:
            urls["stats"] = forensics.absolute(self.target_url, stats)
        for number, url in enumerate(settings.metrics_urls):
            urls[f"metrics-{number}"] = forensics.absolute(self.target_url, url)
        pid = self.target_pid
        local = pid is not None and is_local_host(target.host) and psutil.pid_exists(pid)

        async def process() -> None:
            if local:
                assert pid is not None
                await trio.to_thread.run_sync(
                    lambda: forensics.capture_process(
                        pid, target.port, dossier, deadline_s=settings.forensics_deadline_s),
                    abandon_on_cancel=True)
            elif settings.agent:
                from coordinator.agent import request_forensics

                await trio.to_thread.run_sync(
                    lambda: request_forensics(settings.agent or "", dossier, pid=pid,
                                              port=target.port,
                                              budget_s=settings.forensics_deadline_s,
                                              server_key=settings.agent_server_key,
                                              client_key=settings.agent_client_key),
                    abandon_on_cancel=True)
            else:
                if pid is not None and is_local_host(target.host):
                    # Most often the trip is the death itself: nothing is left to read.
                    dossier.missing("process/*", f"target pid {pid} has exited (no process "
                                                 "left to capture)")
                else:
                    why = "target pid unknown" if pid is None else \
                        f"target pid {pid} is not a local process"
                    dossier.missing("process/*", f"{why}: pass --target-pid for a local "
                                                 "target, or run `assay agent` beside a "
                                                 "remote one and give --forensics-agent")

        with trio.move_on_after(settings.forensics_deadline_s + 5) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(process)
                if urls:
                    nursery.start_soon(forensics.snapshot_urls, dossier, urls)
        if scope.cancelled_caught:
            dossier.missing("forensics", "overall forensics deadline passed; later captures "
                                         "were abandoned")

    # -- 3: shrink -------------------------------------------------------------------------

    def _launcher(self) -> Launcher | None:
        if self.settings.shrink_launch:
            from coordinator.launch import TargetLauncher  # watchdog: dies with assay

            return TargetLauncher(self.settings.shrink_launch)
        if self.builtin:
            return RefappLauncher(self.refapp_defects)
        return None

    async def _shrink(self, incident: Incident) -> Path | None:
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
            self.target_url, settings=self.run_settings, counters=self._counters(),
            target_started_at=self.target_started_at,
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
        launcher = self._launcher()
        reason = ""
        if not self.settings.shrink:
            reason = "shrinking disabled (--no-shrink)"
        elif derived.needs_fresh and launcher is None:
            reason = ("the failure took the live target's state with it and the run cannot "
                      "launch a fresh instance (give --shrink-launch 'CMD {port}')")
        if reason:
            stage.update(status="not_shrunk", reason=reason)
            return self._save(incident, derived, original, shrink_dir, stage, None, [reason])
        # An unshrunk repro first: if the shrink is cut short, the dossier still has one.
        self._save(incident, derived, original, shrink_dir, stage, None,
                   ["unshrunk: the evidence as derived (the shrink did not finish)"])
        use_fresh = launcher is not None and (derived.needs_fresh or derived.stateful)
        judge = Judge(derived.check, dict(derived.meta),
                      live_url=None if use_fresh else self.target_url,
                      launcher=launcher if use_fresh else None,
                      repeats=2 if derived.stateful and not use_fresh else 1,
                      pid=None if use_fresh else self.target_pid)
        stage.update(status="queued", mode=judge.mode)
        self._write_incident(incident)
        async with self._heavy:
            stage["status"] = "shrinking"
            self._write_incident(incident)
            run = await shrink_derived(derived, judge, max_attempts=self.settings.max_attempts,
                                       max_seconds=self.settings.max_shrink_s,
                                       stall_limit=self.settings.stall_limit)
        forensics.Dossier(shrink_dir).write_json("shrink_log.json", run.log_document(),
                                                 ledger=False)
        stage.update(status="flaky" if run.result.flaky else "shrunk", **run.stats())
        return self._save(incident, derived, run.program, shrink_dir, stage, run.stats(),
                          run.notes)

    def _save(self, incident: Incident, derived: evidence_mod.Derived, program: Any,
              shrink_dir: Path, stage: dict[str, Any], stats: dict[str, Any] | None,
              notes: list[str]) -> Path:
        repro = Repro(
            program,
            predicate={"id": incident.invariant.id, "counter": incident.counter,
                       "meaning": incident.invariant.meaning,
                       "severity": incident.invariant.severity.value},
            target={"url": self.target_url, "commit": self._commit, "builtin": self.builtin,
                    "defects": list(self.refapp_defects),
                    "needs_fresh_target": derived.needs_fresh},
            seed=self.seed if isinstance(self.seed, int) else None,
            shrink=stats or {"status": stage.get("status"), "reason": stage.get("reason")},
            notes=(*derived.notes, *notes),
        )
        path = shrink_dir / "repro.json"
        save_repro(repro, path)
        stage["repro"] = str(path)
        stage["final_digest"] = program.digest()
        return path

    # -- 4: bisect -------------------------------------------------------------------------

    async def _bisect(self, incident: Incident, repro: Path) -> None:
        from replay.bisect import BisectConfig, bisect

        settings = self.settings
        stage: dict[str, Any] = {"status": "queued"}
        incident.stages["bisect"] = stage
        out_dir = incident.root / "bisect"
        config = BisectConfig(repo=Path(settings.bisect_repo or "."),
                              good=settings.bisect_good or "", bad=settings.bisect_bad,
                              launch=settings.bisect_launch or "", build=settings.bisect_build,
                              repro=repro, out_dir=out_dir)
        async with self._heavy:
            stage["status"] = "running"
            self._write_incident(incident)
            report = await trio.to_thread.run_sync(bisect, config, abandon_on_cancel=True)
        stage.update(status=report.get("status"), first_bad=report.get("first_bad"),
                     reason=report.get("reason"), report=str(out_dir / "bisect.json"))


def load_settings(extra: Mapping[str, Any]) -> IncidentSettings:
    """The incident settings the CLI put in ``RunConfig.extra`` (defaults when absent)."""
    raw = extra.get("incidents") if isinstance(extra, Mapping) else None
    return IncidentSettings.from_json(raw if isinstance(raw, Mapping) else None)



def add_incident_options(parser: Any) -> None:
    """``assay run`` options of the incident path (forensics, shrink, bisect)."""
    add = parser.add_argument
    add("--no-shrink", action="store_true",
        help="capture dossiers but do not shrink the evidence to a reproducer")
    add("--incident-budget", type=float, metavar="SECONDS",
        help="how long the run waits for open incidents after its deadline (default: the "
        "run's duration, between 5 and 180 s)")
    add("--shrink-attempts", type=int, metavar="N",
        help="most candidate runs per shrink (default 60)")
    add("--shrink-launch", metavar="CMD",
        help="shell command serving a fresh copy of the target on 127.0.0.1:{port}; lets "
        "failures that kill the target be shrunk against fresh instances")
    add("--metrics-url", action="append", default=[], metavar="URL",
        help="target page to snapshot into each dossier (repeatable; path or URL)")
    add("--forensics-agent", metavar="tcp://HOST:PORT",
        help="`assay agent` beside a remote target, asked for process forensics")
    add("--agent-server-key", metavar="FILE|Z85", help="the agent's public CURVE key")
    add("--agent-client-key", metavar="FILE", help="this coordinator's CURVE secret certificate")
    add("--target-commit", metavar="SHA", help="commit of the target, recorded in incidents")
    add("--bisect-repo", metavar="PATH", help="git repository of the target: an incident "
        "bisects its reproducer between --bisect-good and --bisect-bad")
    add("--bisect-good", metavar="REV", help="a revision without the failure")
    add("--bisect-bad", metavar="REV", help="a revision with it (default HEAD)")
    add("--bisect-launch", metavar="CMD", help="shell command serving a checkout on {port}")
    add("--bisect-build", metavar="CMD", help="shell command building a checkout")


def incident_settings_from_args(args: Any) -> IncidentSettings:
    """Validate the incident options; ``ValueError`` (one line) when they do not fit."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    bisect = [get("bisect_repo"), get("bisect_good"), get("bisect_launch")]
    if any(bisect) and not all(bisect):
        raise ValueError("--bisect-repo, --bisect-good and --bisect-launch go together")
    for name in ("bisect_launch", "shrink_launch"):
        value = get(name)
        if value and "{port}" not in value:
            raise ValueError(f"--{name.replace('_', '-')} must contain {{port}}")
    budget = get("incident_budget")
    if budget is not None and budget < 0:
        raise ValueError("--incident-budget must not be negative")
    attempts = get("shrink_attempts")
    if attempts is not None and attempts < 1:
        raise ValueError("--shrink-attempts must be at least 1")
    agent = get("forensics_agent")
    if agent and not str(agent).startswith("tcp://"):
        raise ValueError("--forensics-agent must look like tcp://HOST:PORT")
    defaults = IncidentSettings()
    return IncidentSettings(
        shrink=not get("no_shrink"),
        max_attempts=attempts or defaults.max_attempts,
        budget_s=None if budget is None else float(budget),
        agent=agent, agent_server_key=get("agent_server_key"),
        agent_client_key=get("agent_client_key"),
        metrics_urls=tuple(get("metrics_url") or ()), shrink_launch=get("shrink_launch"),
        target_commit=get("target_commit"), bisect_repo=get("bisect_repo"),
        bisect_good=get("bisect_good"), bisect_bad=get("bisect_bad") or "HEAD",
        bisect_launch=get("bisect_launch"), bisect_build=get("bisect_build"))
