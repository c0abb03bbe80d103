"""The coordinator's run: handshake, start at one instant, collect, judge, write results.

The lifecycle (HANDSHAKE -> RUNNING -> STOPPING -> JUDGING) is defined in
``coordinator.run_state``; this module is the spine that moves through it.

Control is re-published as *state* every tick (Plan, then Start, then Stop), so an actor
that joined late or lost a frame converges within a tick; the same re-publication is the
heartbeat actors use to notice a dead coordinator. Incoming frames go through one table
from message type to handler (``coordinator.actor_messages``). Whatever happens, the
stopping phase runs: actors are asked for their final tallies, then the fleet is
terminated, then results are judged and written (``coordinator.run_end``), so no measured
count is lost to an abort or a Ctrl-C.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import zmq

from actors import tls
from actors.walker import Target
from actors.zmq_io import ZmqReceiver, send_nowait
from coordinator import (
    actor_messages,
    extensions,
    invariants,
    longrun,
    remote_actors,
    results,
    run_document,
    run_end,
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
from coordinator.resources import TargetWatch
from coordinator.restarts import RestartPolicy
from coordinator.run_state import TRANSITIONS, ActorRecord, Phase, RunInputs
from coordinator.sse_leak_check import subscriber_baseline
from coordinator.supervisor import Fleet, describe_exit
from coordinator.target import HealthMonitor
from coordinator.timeline import Timeline, follow
from protocols import wire
from protocols.tally import TallyMerger, sum_counters

CONTROL_TICK_S = 0.25
READY_TIMEOUT_S = 30.0
START_LEAD_S = 0.3
POST_RUN_CHECKS_S = 15.0


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
        self._handlers: dict[type, Callable[[Any], None]] = actor_messages.handlers(self)

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
                remote_actors.announce(self, endpoints, security)
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
                    await run_end.collect_finals(self)
                    if self.interrupted is None and self.failure is None:
                        with trio.move_on_after(POST_RUN_CHECKS_S):
                            await run_end.post_run_checks(self)
                        # Black-box leak probes: after the walkers, before the judgement.
                        await self.leak_probes.end_of_run(lambda: self.interrupted is not None,
                                                          self.health.down_reason)
                        await run_end.tier2_shrink(self)
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
        return run_end.judge_and_write(self)

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
            self.sse_baseline = await subscriber_baseline(*run_end.stats_source(self), 5.0)
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
                    nursery.start_soon(tier3.stop_when_done, self, nursery.cancel_scope,
                                       CONTROL_TICK_S)
                await trio.sleep(max(0.0, deadline - time.time()))
                nursery.cancel_scope.cancel()
        finally:
            progress.close()

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

    # -- handlers (coordinator.actor_messages) --------------------------------------------
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
