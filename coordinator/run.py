"""The coordinator's run: handshake, start at one instant, collect, judge, write results.

Lifecycle (the only place it is defined)::

    HANDSHAKE --all Ready--> RUNNING --deadline--> STOPPING --finals/timeout--> JUDGING
        |                       |  \\--signal / --fail-fast--/
        \\--actor died / no Ready in time (exit 3)---------------------------------^

Control is re-published as *state* every tick (Plan, then Start, then Stop), so an actor
that joined late or lost a frame converges within a tick; the same re-publication is the
heartbeat actors use to notice a dead coordinator. Incoming frames go through one table
from message type to handler. Whatever happens, the stopping phase runs: actors are asked
for their final tallies, then the fleet is terminated, then results are judged and
written, so no measured count is lost to an abort or a Ctrl-C.
"""

from __future__ import annotations

import enum
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import zmq

from actors import tls
from actors.walker import Target
from actors.zmq_io import ZmqReceiver, send_nowait
from coordinator import (
    extensions,
    invariants,
    longrun,
    remote_actors,
    results,
    run_document,
    tier3,
)
from coordinator.attribution import Attribution
from coordinator.config import RunConfig
from coordinator.incident_settings import load_settings
from coordinator.incidents import IncidentManager
from coordinator.leak_probe_runs import LeakProbes
from coordinator.logrotate import watch_actor_logs
from coordinator.logs import get_logger
from coordinator.progress import Progress
from coordinator.reports import write_reports
from coordinator.resources import TargetWatch
from coordinator.restarts import RestartPolicy
from coordinator.sse_leak_check import leak_verdict, subscriber_baseline
from coordinator.supervisor import Fleet, describe_exit
from coordinator.target import HealthMonitor
from coordinator.timeline import Timeline, follow
from protocols import wire
from protocols.outcome import Verdict
from protocols.tally import TallyMerger, sum_counters

CONTROL_TICK_S = 0.25
READY_TIMEOUT_S = 30.0
FINALS_TIMEOUT_S = 10.0
START_LEAD_S = 0.3
POST_RUN_CHECKS_S = 15.0
SSE_GRACE_S = 10.0
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    RUNNING = "running"
    STOPPING = "stopping"
    JUDGING = "judging"


TRANSITIONS = {
    Phase.HANDSHAKE: {Phase.RUNNING, Phase.STOPPING},
    Phase.RUNNING: {Phase.STOPPING},
    Phase.STOPPING: {Phase.JUDGING},
    Phase.JUDGING: set(),
}


@dataclass
class RunInputs:
    """Everything prepared before the fleet starts (validated; errors were exit 2)."""

    target_url: str
    label: str
    health_path: str
    target_pid: int | None
    builtin: bool
    settings: dict[str, Any]
    enabled_slices: list[str]
    not_run: dict[str, str]
    walker_plan: Any  # coordinator.planning.WalkerPlan
    seed: int
    notes: list[str] = field(default_factory=list)
    #: CURVE keys for the actors' sockets, loaded (and refused: exit 2) by execute_run.
    security: remote_actors.Security = field(
        default_factory=lambda: remote_actors.Security(None, ()))


@dataclass
class ActorRecord:
    actor_id: int
    pid: int | None = None
    incarnations: int = 1
    walkers: int = 0
    ready: bool = False
    final: bool = False
    bye: bool = False
    exit: str | None = None
    error: str | None = None
    restarts: int = 0  # --restart-actors: incarnations started after a death
    last_exit: str | None = None
    restart_history: list[dict[str, Any]] = field(default_factory=list)
    # Actors on other load hosts (coordinator.remote_actors): not spawned, not reaped.
    remote: bool = False
    host: str | None = None
    live_incarnation: int | None = None
    last_heard: float = 0.0


class Coordinator:
    def __init__(self, config: RunConfig, inputs: RunInputs, run_dir: Path) -> None:
        self.config = config
        self.inputs = inputs
        self.run_dir = run_dir
        self.run_id = uuid.uuid4().hex[:12]
        self.log = get_logger("coordinator").bind(run_id=self.run_id)
        self.phase = Phase.HANDSHAKE
        self.merger = TallyMerger()
        self.target = Target.from_url(inputs.target_url)
        self.health = HealthMonitor(self.target, inputs.health_path, inputs.target_pid)
        # Long runs (coordinator.longrun): target resources/restarts, actor restarts, resume.
        self.watch = TargetWatch(self.health, inputs.target_pid, self.target.port,
                                 config.resource_warmup_s, config.resource_bucket_s)
        self.restart_policy = RestartPolicy(config.max_restarts_per_hour)
        self.timeline = Timeline()  # the document's rate/errors/latency over time
        self.elapsed_before = 0.0  # set by a soak resume: run time before this coordinator
        self.resumes: list[dict[str, Any]] = []
        self._plan_message: wire.Plan | None = None
        self.actors = {a: ActorRecord(a, remote=a in inputs.walker_plan.remote)
                       for a in inputs.walker_plan.per_actor}
        self.control: wire.Message | None = None
        self.started_at = time.time()
        self.run_started: float | None = None
        self.run_ended: float | None = None
        self.deadline: float | None = None
        self.failure: str | None = None
        self.interrupted: int | None = None
        self.fail_fast_tripped: str | None = None
        self.trips: dict[str, dict[str, Any]] = {}
        self.incidents = IncidentManager(
            run_dir, load_settings(config.extra), run_id=self.run_id,
            target_url=inputs.target_url, target_pid=inputs.target_pid,
            builtin=inputs.builtin, refapp_defects=tuple(config.refapp_defects),
            run_settings=inputs.settings, seed=inputs.seed, counters=self.counters,
            log=self.log, run_duration_s=config.duration_s)
        # Crash/hang attribution (coordinator.attribution): in-flight collection for a
        # death's incident, and slice trips that are only a death's consequence.
        self.attribution = Attribution(
            run_id=self.run_id, target_url=inputs.target_url, health_path=inputs.health_path,
            target_pid=inputs.target_pid, publish=lambda frame: send_nowait(self._pub, frame),
            live_actors=lambda: [a for a, r in self.actors.items() if r.exit is None],
            trips=self.trips, proceed=self._trip, log=self.log,
            last_ok=lambda: self.health.last_ok_at)
        self.incidents.attribution = self.attribution
        self.coord_counters: dict[str, int] = {}
        self.coord_examples: dict[str, dict[str, Any]] = {}
        self.post_run: dict[str, Any] = {}
        #: Tier 2 bucket -> its shrunk sequence and reproducer (coordinator.tier2_post_run).
        self.tier2_shrunk: dict[str, dict[str, Any]] = {}
        self.sse_baseline: int | None = None
        # assay load / hold / loris (coordinator.extensions): what such a run adds.
        self.extension = extensions.of(inputs.settings)
        self.leak_probes = LeakProbes(config, inputs, self.coord_counters, self.coord_examples,
                                      self._trip)
        self.dropped_frames = 0
        self._main_scope = trio.CancelScope()
        self._all_ready = trio.Event()
        self._all_final = trio.Event()
        self._handlers: dict[type, Callable[[Any], None]] = {
            wire.Hello: self._on_hello,
            wire.Ready: self._on_ready,
            wire.TallyReport: self._on_tally,
            wire.Violation: self._on_violation,
            wire.ActorFailed: self._on_failed,
            wire.Bye: self._on_bye,
            wire.InFlightReport: self.attribution.on_report,
        }

    # -- lifecycle ------------------------------------------------------------------------
    def _move(self, new: Phase) -> None:
        if new not in TRANSITIONS[self.phase]:
            raise AssertionError(f"coordinator phase {self.phase.value} -> {new.value}")
        self.phase = new

    def abort(self, message: str) -> None:
        """Infrastructure failure: stop the run, keep what was measured, exit 3."""
        if self.failure is None:
            self.failure = message
            self.log.error("run aborted", reason=message)
        self._main_scope.cancel()

    async def run(self) -> int:
        zctx = zmq.Context.instance()
        pull = zctx.socket(zmq.PULL)
        pub = zctx.socket(zmq.PUB)
        for sock in (pull, pub):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IPV6, 1)  # a --bind to an IPv6 address (IPv4 still works)
        pull.setsockopt(zmq.RCVHWM, 100_000)
        security = self.inputs.security
        try:
            endpoints, authenticator, local_secret = remote_actors.bind_sockets(
                zctx, pull, pub, self.config, security)
        except BaseException:
            pull.close()
            pub.close()
            raise
        self._pub = pub
        self.fleet = Fleet(endpoints.pull_url, endpoints.pub_url, self.run_dir / "logs",
                           curve_keys=(security.public, local_secret))
        try:
            (self.run_dir / "logs").mkdir(exist_ok=True)
            if self.inputs.walker_plan.remote:
                self._announce_remote(endpoints, security)
            for actor_id, record in self.actors.items():
                if not record.remote:
                    record.pid = self.fleet.spawn(actor_id, record.incarnations - 1).pid
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._receive_loop, ZmqReceiver(pull))
                    nursery.start_soon(self._broadcast_loop)
                    nursery.start_soon(self._watch_signals, signals, nursery.cancel_scope)
                    nursery.start_soon(self._watch_fleet)
                    nursery.start_soon(self.incidents.serve)
                    nursery.start_soon(self.attribution.serve)
                    with self._main_scope:
                        await self._handshake_and_run()
                    await self._collect_finals()
                    if self.interrupted is None and self.failure is None:
                        with trio.move_on_after(POST_RUN_CHECKS_S):
                            await self._post_run_checks()
                        # Black-box leak probes: after the walkers, before the judgement.
                        await self.leak_probes.end_of_run(lambda: self.interrupted is not None,
                                                          self.health.down_reason)
                        await self._tier2_shrink()
                    await self.incidents.drain(stop=lambda: self.interrupted is not None)
                    nursery.cancel_scope.cancel()
        finally:
            self.fleet.stop()
            for process in self.fleet.actors.values():
                record = self.actors[process.actor_id]
                if record.exit is None and process.returncode is not None:
                    record.exit = describe_exit(process.returncode)
            pull.close()
            pub.close()
            if authenticator is not None:
                authenticator.stop()
        return self._judge_and_write()

    def _announce_remote(self, endpoints: remote_actors.Endpoints,
                         security: remote_actors.Security) -> None:
        remote = self.inputs.walker_plan.remote
        path = remote_actors.write_fleet_file(self.run_dir, endpoints, remote, security,
                                              self.run_id)
        if self.config.mode == "soak" and self.config.bind.endswith(":0"):
            self.log.warning("remote actors and --bind port 0: a resumed soak will listen on "
                             "other ports, so its remote actors cannot find it; give --bind "
                             "tcp://HOST:PORT")
        if remote_actors.advertises_loopback(self.config, endpoints):
            self.log.warning("fleet.json tells load hosts to dial a loopback address; give "
                             "--bind tcp://ADDRESS:PORT with this host's address",
                             advertised=endpoints.advertised_pull)
        self.log.warning("waiting for remote actors: start them on the load hosts",
                         actors=list(remote), fleet_file=str(path),
                         timeout_s=self.config.remote_ready_timeout_s,
                         example=" ".join(remote_actors.actor_command(endpoints, remote[0],
                                                                      security)))

    async def _handshake_and_run(self) -> None:
        plan = {
            "target": self.inputs.target_url,
            "seed": self.inputs.seed,
            "walkers": self.inputs.walker_plan.walkers_wire(),
            "settings": self.inputs.settings,
            "tally_interval_s": self.config.tally_interval_s,
            # The TLS options this process installed (coordinator.tls_flags): every actor
            # verifies the target as the coordinator's own probes do.
            "tls": tls.installed().to_wire(),
        }
        self.control = self._plan_message = wire.Plan(self.run_id, plan)
        ready_timeout = (self.config.remote_ready_timeout_s
                         if self.inputs.walker_plan.remote else READY_TIMEOUT_S)
        with trio.move_on_after(ready_timeout):
            await self._all_ready.wait()
        if not self._all_ready.is_set():
            ready = sum(r.ready for r in self.actors.values())
            self.abort(f"actors not ready within {ready_timeout:.0f} s "
                       f"({ready} of {len(self.actors)} reported ready)"
                       + remote_actors.describe_missing(self))
            return
        if "sse" in self.inputs.walker_plan.per_slice:
            self.sse_baseline = await subscriber_baseline(*self._stats_source(), 5.0)
        start_at = time.time() + START_LEAD_S
        # A resumed soak runs only what is left of its budget (at least a second, so that
        # even a run killed while stopping gets judged by this same path).
        deadline = start_at + max(1.0, self.config.duration_s - self.elapsed_before)
        self.deadline = deadline
        self.control = wire.Start(self.run_id, start_at, deadline)
        self._move(Phase.RUNNING)
        remote_actors.on_start(self, start_at)
        self.log.info("run started", actors=len(self.actors),
                      walkers=self.inputs.walker_plan.total, target=self.inputs.target_url)
        self.run_started = start_at - self.elapsed_before
        progress = Progress(self.config.duration_s, self.config.progress_interval_s)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.health.run, self._on_coordinator_trip)
                if self.extension is not None:
                    nursery.start_soon(self.extension.watch, self, nursery.cancel_scope)
                else:
                    nursery.start_soon(self._progress_loop, progress)
                nursery.start_soon(self._checkpoint_loop)
                nursery.start_soon(follow, self.timeline, self)
                nursery.start_soon(self.watch.run, lambda counter, detail: self._trip(
                    counter, {"evidence": detail, "received_at": time.time(),
                              "via": "resources"}))
                nursery.start_soon(watch_actor_logs, self.run_dir / "logs")
                nursery.start_soon(self.leak_probes.periodic)
                if self.inputs.settings.get("tier3"):
                    nursery.start_soon(self._tier3_until_done, nursery.cancel_scope)
                await trio.sleep(max(0.0, deadline - time.time()))
                nursery.cancel_scope.cancel()
        finally:
            progress.close()

    async def _tier3_until_done(self, running: trio.CancelScope) -> None:
        """--tier3: end the run early once every seed of the tier has a verdict."""
        while not tier3.done(self.counters(), self.inputs.settings.get("tier3")):
            await trio.sleep(CONTROL_TICK_S)
        self.log.info("tier 3 complete: stopping the run", after_s=round(
            time.time() - (self.run_started or time.time()), 1))
        running.cancel()

    async def _collect_finals(self) -> None:
        if self.phase is not Phase.STOPPING:
            self._move(Phase.STOPPING)
        self.run_ended = time.time()
        reason = "interrupted" if self.interrupted else ("aborted" if self.failure else "deadline")
        if self.config.mode == "soak" and reason != "deadline":
            reason += f" {wire.RESUMABLE}"  # remote actors wait for the resume (exit 4)
        self.control = wire.Stop(self.run_id, reason)
        self._publish()
        self._check_all_final()
        with trio.move_on_after(FINALS_TIMEOUT_S):
            await self._all_final.wait()
        remote_actors.judge_missing_finals(self)
        missing = [a for a, r in self.actors.items() if not r.final and r.exit is None]
        if missing:
            self.log.warning("no final tally", actors=missing)

    def _stats_source(self) -> tuple[str, str | None, str | None, str | None]:
        settings = self.inputs.settings
        return (self.inputs.target_url, settings.get("stats_url"), settings.get("stats_field"),
                settings.get("stats_metric"))

    async def _tier2_shrink(self) -> None:
        """--spec: each Tier 2 bucket replayed alone on the live target to confirm it, then
        (unless --no-shrink) shrunk and written as a reproducer."""
        from coordinator.tier2_post_run import SHRINK_TOTAL_S, shrink_buckets

        settings = self.inputs.settings.get("tier2")
        if not settings or self.health.down_reason():
            return
        info = {"url": self.inputs.target_url, "builtin": self.inputs.builtin,
                "defects": sorted(self.config.refapp_defects)}
        with trio.move_on_after(SHRINK_TOTAL_S + 15):
            try:
                # Filled in place: a deadline here keeps the buckets already confirmed.
                await shrink_buckets(
                    self.inputs.target_url, settings, self.merger.examples(), self.run_dir,
                    self.inputs.seed, info, self.config.request_timeout_s,
                    shrink=self.incidents.settings.shrink, out=self.tier2_shrunk)
            except Exception as exc:  # a harness bug here must not lose the run's results
                self.log.error("tier2 shrink failed", error=f"{type(exc).__name__}: {exc}")
                # ... nor pass it: the findings it did not replay are unconfirmed, so the
                # run ends as a harness error (exit 3) rather than a pass.
                self.coord_counters["harness.walker_errors"] = \
                    self.coord_counters.get("harness.walker_errors", 0) + 1
                self.coord_examples.setdefault("harness.walker_errors", {
                    "where": "tier2 post-run confirmation",
                    "error": f"{type(exc).__name__}: {exc}"})

    async def _post_run_checks(self) -> None:
        """Checks that need the walkers gone: SSE subscriber slots back to baseline."""
        if "sse" not in self.inputs.walker_plan.per_slice:
            return
        down = self.health.down_reason()
        if down is not None:  # its stats cannot be read; the death has its own verdict
            self.post_run["sse_subscribers"] = {
                "verdict": Verdict.UNJUDGED.value, "baseline": self.sse_baseline,
                "reason": f"not judged: the target is down ({down})"}
            return
        verdict, reason = await leak_verdict(*self._stats_source(), self.sse_baseline,
                                             SSE_GRACE_S)
        self.post_run["sse_subscribers"] = {"verdict": verdict.value, "reason": reason,
                                            "baseline": self.sse_baseline}
        if verdict is Verdict.VIOLATION:
            self.coord_counters["sse.leak"] = self.coord_counters.get("sse.leak", 0) + 1
            detail = {"check": "subscriber count after the run", "reason": reason}
            self.coord_examples.setdefault("sse.leak", detail)
            self._trip("sse.leak", {"evidence": detail, "received_at": time.time(),
                                    "via": "post-run check"})

    # -- tasks ----------------------------------------------------------------------------
    def _publish(self) -> None:
        if self.control is not None:
            send_nowait(self._pub, wire.encode(self.control))

    async def _broadcast_loop(self) -> None:
        while True:
            self._publish()
            await trio.sleep(CONTROL_TICK_S)

    async def _receive_loop(self, receiver: ZmqReceiver) -> None:
        while True:
            frame = await receiver.receive()
            try:
                message = wire.decode(frame)
            except wire.WireError as exc:
                self.dropped_frames += 1
                self.log.warning("dropped malformed frame", error=str(exc))
                continue
            handler = self._handlers.get(type(message))
            if handler is None:
                self.dropped_frames += 1
                self.log.warning("dropped unexpected message", type=message.TYPE)
                continue
            handler(message)

    async def _watch_signals(self, signals: Any, everything: trio.CancelScope) -> None:
        async for signum in signals:
            if self.interrupted is None:
                self.interrupted = signum
                self.log.warning("stopping on signal; collecting final tallies",
                                 signal=signal.Signals(signum).name)
                self._main_scope.cancel()
            else:
                self.log.warning("second signal: stopping now")
                everything.cancel()

    async def _watch_fleet(self) -> None:
        while True:
            for process in self.fleet.reap():
                record = self.actors[process.actor_id]
                record.exit = describe_exit(process.returncode or 0)
                # Actors stop by themselves at the deadline and exit 0 after their final
                # tally; the exit can be reaped before their Bye is read.
                at_end = self.phase is Phase.STOPPING or (
                    self.deadline is not None and time.time() >= self.deadline - 1.0)
                clean_stop = process.returncode == 0 and at_end
                if longrun.restart_actor(self, process):
                    continue
                if not record.bye and not process.expected_exit and not clean_stop:
                    why = f": {record.error}" if record.error else ""
                    self.abort(f"actor {process.actor_id} (pid {process.pid}) died, "
                               f"{record.exit}{why}")
            remote_actors.check_silence(self, time.time())
            self._check_all_final()
            await trio.sleep(0.1)

    async def _progress_loop(self, progress: Progress) -> None:
        while True:
            await trio.sleep(progress.interval_s)
            elapsed = time.time() - (self.run_started or time.time())
            progress.show(elapsed, self.counters(), self._verdict_line())

    async def _checkpoint_loop(self) -> None:
        while True:
            await trio.sleep(self.config.checkpoint_interval_s)
            self._write(run_document.build(self, final=False))

    # -- handlers -------------------------------------------------------------------------
    def _record(self, actor_id: int, incarnation: int) -> ActorRecord | None:
        record = self.actors.get(actor_id)
        if record is None:
            self.dropped_frames += 1
            self.log.warning("message from unknown actor", actor=actor_id)
        elif record.remote and incarnation == record.live_incarnation:
            record.last_heard = time.time()
            if record.exit is not None and record.exit.startswith("went silent"):
                record.exit = None  # it was only slow: it counts as alive again
        return record

    def _on_hello(self, message: wire.Hello) -> None:
        record = self._record(message.actor_id, message.incarnation)
        if record is not None:
            if record.remote:
                now = time.time()
                if not remote_actors.accept_hello(self, record, message.incarnation,
                                                  message.host, now):
                    return
                record.last_heard = now
            record.pid = message.pid
            if self.phase is Phase.RUNNING and self._plan_message is not None:
                # A restarted actor greets mid-run: control state is Start by now, so hand
                # it the Plan (once per Hello; it stops greeting when the Plan arrives).
                send_nowait(self._pub, wire.encode(self._plan_message))

    def _on_ready(self, message: wire.Ready) -> None:
        record = self._record(message.actor_id, message.incarnation)
        if record is None or message.run_id != self.run_id:
            return
        if record.remote and message.incarnation != record.live_incarnation and \
                not remote_actors.accept_hello(self, record, message.incarnation,
                                               record.host or "?", time.time()):
            return
        record.ready = True
        record.walkers = message.walkers
        if all(r.ready for r in self.actors.values()):
            self._all_ready.set()

    def _on_tally(self, message: wire.TallyReport) -> None:
        record = self._record(message.actor_id, message.incarnation)
        if record is None:
            return
        if record.remote and not remote_actors.known_incarnation(self, record,
                                                                 message.incarnation):
            self.dropped_frames += 1  # a process no Hello admitted (stale, or a duplicate id)
            return
        fresh = self.merger.accept(message.actor_id, message.incarnation, message.seq,
                                   message.counters, message.histograms, message.examples)
        if message.final and message.incarnation == remote_actors.live_incarnation(record):
            record.final = True  # (a dead incarnation's late final says nothing of the live one)
            self._check_all_final()
        if fresh:
            self._check_high_counters()

    def _on_violation(self, message: wire.Violation) -> None:
        self._trip(message.counter, {
            "actor": message.actor_id, "incarnation": message.incarnation,
            "walker": message.walker, "seen_at": message.seen_at,
            "received_at": time.time(), "evidence": message.evidence,
        })

    def _on_failed(self, message: wire.ActorFailed) -> None:
        record = self._record(message.actor_id, message.incarnation)
        if record is not None:
            record.error = message.error
            self.log.error("actor failed", actor=message.actor_id, error=message.error)
            if record.remote and message.incarnation == record.live_incarnation:
                remote_actors.lost(self, record, f"failed: {message.error}")

    def _on_bye(self, message: wire.Bye) -> None:
        record = self._record(message.actor_id, message.incarnation)
        if record is not None:
            record.bye = True
            self._check_all_final()

    def _check_all_final(self) -> None:
        if self.phase is Phase.STOPPING and all(
            r.final or r.exit is not None for r in self.actors.values()
        ):
            self._all_final.set()

    # -- invariant trips ------------------------------------------------------------------
    def _check_high_counters(self) -> None:
        counters = self.merger.counters()
        for counter in invariants.HIGH_COUNTERS:
            if counters.get(counter, 0) > 0 and counter not in self.trips:
                examples = self.merger.examples()
                self._trip(counter, {"evidence": examples.get(counter, {}),
                                     "received_at": time.time(), "via": "tally"})

    def _on_coordinator_trip(self, counter: str, detail: dict[str, Any]) -> None:
        self._trip(counter, {"evidence": detail, "received_at": time.time(), "via": "health"})

    def _trip(self, counter: str, detail: dict[str, Any]) -> None:
        """First HIGH trip of a counter: record it (the incident path hooks in here)."""
        invariant = invariants.HIGH_COUNTERS.get(counter)
        if invariant is None:
            return
        if counter in self.trips:
            self.incidents.repeat(counter)  # later trips are counted, not re-captured
            return
        if self.attribution.hold(counter, detail):
            return  # a slice trip a death may explain: recorded once that is decided
        self.trips[counter] = {"invariant": invariant.id, **detail}
        self.log.warning("HIGH invariant tripped", invariant=invariant.id, counter=counter)
        self.incidents.trip(counter, invariant, self.trips[counter])
        if self.config.fail_fast and self.phase is Phase.RUNNING:
            self.fail_fast_tripped = invariant.id
            self._main_scope.cancel()

    # -- results --------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        return sum_counters([self.merger.counters(), self.health.counters,
                             self.coord_counters, self.watch.counters])

    def _verdict_line(self) -> str:
        tripped = sorted(t["invariant"] for t in self.trips.values())
        return "invariants: " + (", ".join(f"{t} FAILED" for t in tripped) if tripped else "ok")

    def _write(self, document: dict[str, Any]) -> None:
        histograms = document.pop("_histograms", {})
        longrun.on_results_write(self, document)
        try:
            results.write_json_atomic(self.run_dir / results.HISTOGRAMS_FILE, histograms)
            results.write_json_atomic(self.run_dir / results.RESULTS_FILE, document)
        except OSError as exc:
            self.log.error("could not write results", error=str(exc))

    def _judge_and_write(self) -> int:
        self._move(Phase.JUDGING)
        document = run_document.build(self, final=True)
        counters = self.counters()
        failed = invariants.run_failed(document["invariants"])
        harness_errors = counters.get("harness.walker_errors", 0)
        if self.failure is not None:
            status, code, error = "error", 3, self.failure
        elif failed or (self.extension is not None and self.extension.failed(document)):
            status, code, error = "failed", 1, None
        elif self.interrupted is not None:
            status, code = "interrupted", EXIT_INTERRUPTED.get(self.interrupted, 130)
            error = f"interrupted by {signal.Signals(self.interrupted).name}"
        elif harness_errors:
            status, code = "error", 3
            error = f"{harness_errors} walker crash(es) inside assay (a harness bug; see " \
                    "tier_1.examples['harness.walker_errors'])"
        else:
            status, code, error = "passed", 0, None
        if self.fail_fast_tripped:
            document["notes"].append(f"stopped early by --fail-fast on {self.fail_fast_tripped}")
        document.update(status=status, exit_code=code, error=error)
        self._write(dict(document))
        write_reports(self.run_dir)  # report.html + junit.xml; never raises
        if self.extension is not None:
            self.extension.write_summary(self, document)
            if not self.extension.quiet:
                print(self.extension.render(document), flush=True)
        else:
            print(results.render_summary(document), flush=True)
        return code

