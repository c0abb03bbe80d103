"""One actor process: a trio loop that runs its share of walkers and reports tallies.

Lifecycle (the only place it is defined)::

    GREETING --Plan--> READY --Start--> RUNNING --deadline/Stop/SIGTERM--> STOPPING --> DONE
        \\______________________ coordinator silent too long ______________/

GREETING repeats Hello until the coordinator's Plan arrives (ZeroMQ's slow-joiner problem
makes a single Hello unreliable). While RUNNING, the coordinator re-publishes Start every
tick; if it goes silent for ``COORDINATOR_SILENCE_S`` the actor assumes it died and stops,
so no actor outlives its coordinator even across hosts. Stopping cancels the walkers, then
sends the final cumulative tally with a patient send, then Bye.
"""

from __future__ import annotations

import enum
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import trio
import zmq

from actors import curve, flight, slices, tls
from actors.walker import Target, WalkerContext, walker_rng
from actors.zmq_io import ZmqReceiver, send_nowait, send_patiently
from protocols import wire
from protocols.tally import Tally, UnrecordedTally
from protocols.tls_options import TlsOptions

GREETING_TIMEOUT_S = 20.0
COORDINATOR_SILENCE_S = 5.0
HELLO_EVERY_S = 0.25
FINAL_SEND_TIMEOUT_S = 5.0
WALKER_RESTART_PAUSE_S = 0.2
SILENT_COORDINATOR = "coordinator silent"
#: Exit status when the actor stopped without the coordinator's Stop - it went silent (died,
#: or the network failed) or came back in a new handshake (a resumed soak) - or with a Stop
#: that says the run may be resumed (``wire.RESUMABLE``). A launcher that
#: re-launches remote actors (systemd-free-launch/actor-host) tries again, so that a
#: resumed coordinator gets its actors back. 0 is a normal end.
EXIT_COORDINATOR_LOST = 4
#: Benchmarks only (benchmarks/bench_markov.py): "1" makes tally counters and latency
#: recording no-ops for this actor's whole life, to measure what recording costs.
NO_RECORDING_ENV = "ASSAY_BENCH_NO_RECORDING"


class Phase(enum.Enum):
    GREETING = "greeting"
    READY = "ready"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.GREETING: frozenset({Phase.READY, Phase.DONE}),
    Phase.READY: frozenset({Phase.RUNNING, Phase.STOPPING, Phase.DONE}),
    Phase.RUNNING: frozenset({Phase.STOPPING}),
    Phase.STOPPING: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


def exit_status(stop_reason: str | None) -> int:
    """0 for a run that ended; ``EXIT_COORDINATOR_LOST`` when the coordinator never said
    Stop (see ``Actor._await_coordinator_stop``), went silent, or said the run may be
    resumed (``wire.RESUMABLE``)."""
    if stop_reason in (None, SILENT_COORDINATOR) or (
            stop_reason is not None and stop_reason.endswith(wire.RESUMABLE)):
        return EXIT_COORDINATOR_LOST
    return 0


class ActorAbort(Exception):
    """The actor cannot go on (no plan in time, bad plan); exit non-zero."""


@dataclass
class ActorState:
    actor_id: int
    incarnation: int
    run_id: str | None = None
    phase: Phase = Phase.GREETING
    plan: dict[str, Any] | None = None
    start_at: float | None = None
    deadline: float | None = None
    stop_reason: str | None = None
    last_control: float = field(default_factory=time.monotonic)
    tally: Tally = field(default_factory=Tally)
    seq: int = 0

    def move(self, new: Phase) -> None:
        if new not in TRANSITIONS[self.phase]:
            raise AssertionError(f"actor phase {self.phase.value} -> {new.value} is not allowed")
        self.phase = new


class Actor:
    def __init__(self, actor_id: int, incarnation: int, pull_url: str, pub_url: str,
                 curve_keys: tuple[bytes, bytes] | None = None,
                 greeting_timeout_s: float = GREETING_TIMEOUT_S) -> None:
        """``curve_keys``: (the coordinator's public key, this actor's secret key) when the
        coordinator's sockets speak CURVE (``actors.curve``)."""
        self.state = ActorState(actor_id, incarnation)
        self.greeting_timeout_s = greeting_timeout_s
        if os.environ.get(NO_RECORDING_ENV) == "1":  # read once, at actor start
            self.state.tally = UnrecordedTally()
        self._ctx = zmq.Context.instance()
        self._push = self._ctx.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, int(FINAL_SEND_TIMEOUT_S * 1000))
        self._push.setsockopt(zmq.SNDHWM, 10_000)
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        for sock in (self._push, self._sub):
            sock.setsockopt(zmq.IPV6, 1)  # a coordinator on an IPv6 address
            if curve_keys is not None:
                curve.make_client(sock, *curve_keys)
        self._push.connect(pull_url)
        self._sub.connect(pub_url)
        self._control = ZmqReceiver(self._sub)
        self._walkers_scope: trio.CancelScope | None = None
        self._in_flight_answered: set[str] = set()
        self._started = trio.Event()
        self._finished = trio.Event()

    # -- outgoing -------------------------------------------------------------------------
    def _send(self, message: wire.Message) -> bool:
        return send_nowait(self._push, wire.encode(message))

    def _tally_message(self, final: bool) -> wire.TallyReport:
        state = self.state
        state.seq += 1
        counters, histograms, examples = state.tally.snapshot(all_examples=final)
        return wire.TallyReport(
            state.actor_id, state.incarnation, state.seq, final, counters, histograms, examples
        )

    def _violation(self, walker: int, counter: str, evidence: dict[str, Any]) -> None:
        state = self.state
        message = wire.Violation(state.actor_id, state.incarnation, walker, counter,
                                 time.time(), evidence)
        try:
            frame = wire.encode(message)
        except (TypeError, ValueError):  # evidence a slice could not serialise: harness bug
            state.tally.incr("harness.unsendable_evidence")
            return
        if not send_nowait(self._push, frame):
            state.tally.incr("actor.violation_refused")

    # -- main -----------------------------------------------------------------------------
    async def main(self) -> int:
        abort: ActorAbort | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._listen_control, nursery.cancel_scope)
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
                try:  # caught here, not around the nursery, which would wrap it in a group
                    await self._greet()
                    await self._run_walkers()
                    await self._finish()
                    if self.state.stop_reason is None:
                        await self._await_coordinator_stop()
                except ActorAbort as exc:
                    abort = exc
                nursery.cancel_scope.cancel()
            if abort is not None:
                state = self.state
                sys.stderr.write(f"actor {state.actor_id}: {abort}\n")
                await send_patiently(self._push, wire.encode(
                    wire.ActorFailed(state.actor_id, state.incarnation, str(abort))), 2.0)
                return 3
        finally:
            self._push.close()
            self._sub.close()
        return exit_status(self.state.stop_reason)

    async def _greet(self) -> None:
        state = self.state
        hello = wire.Hello(state.actor_id, state.incarnation, os.getpid(), socket.gethostname())
        with trio.move_on_after(self.greeting_timeout_s):
            while state.plan is None and state.stop_reason is None:
                self._send(hello)
                with trio.move_on_after(HELLO_EVERY_S):
                    await self._plan_arrived.wait()
        if state.stop_reason is not None:
            return
        if state.plan is None:
            raise ActorAbort(f"no plan from the coordinator within "
                             f"{self.greeting_timeout_s:.0f} s")
        self._contexts = self._build_walkers(state.plan)
        state.move(Phase.READY)
        self._send(self._ready())

    def _ready(self) -> wire.Ready:
        state = self.state
        return wire.Ready(state.actor_id, state.incarnation, state.run_id or "",
                          len(self._contexts))

    def _build_walkers(self, plan: dict[str, Any]) -> list[tuple[Any, WalkerContext]]:
        state = self.state
        planned = plan.get("walkers")
        if isinstance(planned, dict) and str(state.actor_id) not in planned:
            raise ActorAbort(f"actor id {state.actor_id} is not in the coordinator's plan "
                             f"(planned ids: {', '.join(sorted(planned))})")
        try:
            target = Target.from_url(plan["target"])
            tls.install(TlsOptions.from_wire(plan.get("tls")))
            assignment = plan["walkers"][str(state.actor_id)]
            seed = int(plan["seed"])
            base_settings = dict(plan.get("settings", {}))
            prepared: dict[str, dict[str, Any]] = {}
            walkers = []
            for walker_id, slice_name in assignment:
                module = slices.load(slice_name)
                if slice_name not in prepared:
                    prepare = getattr(module, "prepare", None)
                    settings = dict(base_settings)
                    settings["slice_share"] = _share(planned, slice_name, state.actor_id, seed)
                    prepared[slice_name] = prepare(settings) if prepare else settings
                ctx = WalkerContext(
                    actor_id=state.actor_id,
                    walker_id=int(walker_id),
                    slice_name=slice_name,
                    seed=seed,
                    rng=walker_rng(seed, state.actor_id, int(walker_id)),
                    target=target,
                    tally=state.tally,
                    settings=prepared[slice_name],
                    deadline=float("inf"),
                    violation_sink=self._violation,
                )
                walkers.append((module, ctx))
        except Exception as exc:
            raise ActorAbort(f"cannot build walkers from the plan: {exc!r}") from None
        return walkers

    async def _run_walkers(self) -> None:
        state = self.state
        while state.phase is Phase.READY and state.start_at is None:
            await self._start_or_stop.wait()
            self._start_or_stop = trio.Event()
        if state.phase is not Phase.READY or state.start_at is None:
            return
        assert state.deadline is not None
        wall_to_trio = trio.current_time() - time.time()
        deadline = state.deadline + wall_to_trio
        await trio.sleep_until(max(trio.current_time(), state.start_at + wall_to_trio))
        state.move(Phase.RUNNING)
        for _, ctx in self._contexts:
            ctx.deadline = deadline
        with trio.CancelScope(deadline=deadline + 1.0) as scope:
            self._walkers_scope = scope
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._flush_tallies)
                async with trio.open_nursery() as walkers:
                    for module, ctx in self._contexts:
                        walkers.start_soon(self._supervise_walker, module, ctx)
                nursery.cancel_scope.cancel()

    async def _supervise_walker(self, module: Any, ctx: WalkerContext) -> None:
        """A walker exception is a harness bug: count it loudly, keep the run's data."""
        while not ctx.expired():
            try:
                await module.run(ctx)
                return
            except Exception:
                ctx.tally.incr("harness.walker_errors")
                ctx.tally.keep_example(
                    "harness.walker_errors",
                    {"slice": ctx.slice_name, "walker": ctx.walker_id,
                     "traceback": traceback.format_exc(limit=12)},
                )
                await trio.sleep(WALKER_RESTART_PAUSE_S)

    async def _flush_tallies(self) -> None:
        interval = float((self.state.plan or {}).get("tally_interval_s", 0.25))
        while True:
            await trio.sleep(interval)
            if not self._send(self._tally_message(final=False)):
                self.state.tally.incr("actor.tally_refused")

    async def _await_coordinator_stop(self) -> None:
        """We stopped on our own deadline. A live coordinator says Stop at that moment; one
        that died shortly before never will, and the control watch notices its silence.
        Either way the exit status then tells a launcher whether to start us again
        (``EXIT_COORDINATOR_LOST``), so that a resumed soak gets its remote actors back."""
        with trio.move_on_after(COORDINATOR_SILENCE_S + 2.0):
            await self._stopped.wait()

    async def _finish(self) -> None:
        state = self.state
        if state.phase in (Phase.READY, Phase.RUNNING):
            state.move(Phase.STOPPING)
        final = wire.encode(self._tally_message(final=True))
        await send_patiently(self._push, final, FINAL_SEND_TIMEOUT_S)
        await send_patiently(
            self._push, wire.encode(wire.Bye(state.actor_id, state.incarnation)), 1.0)
        state.move(Phase.DONE)

    # -- incoming -------------------------------------------------------------------------
    _plan_arrived: trio.Event
    _start_or_stop: trio.Event
    _stopped: trio.Event

    def _stop(self, reason: str) -> None:
        state = self.state
        if state.stop_reason is None:
            state.stop_reason = reason
            self._stopped.set()
        if self._walkers_scope is not None:
            self._walkers_scope.cancel()
        if state.phase is Phase.READY:
            state.move(Phase.STOPPING)
        self._start_or_stop.set()

    async def _listen_control(self, scope: trio.CancelScope) -> None:
        state = self.state
        while True:
            with trio.move_on_after(1.0):
                frame = await self._control.receive()
                self._on_control(frame)
                continue
            silent = time.monotonic() - state.last_control
            if state.phase is not Phase.GREETING and silent > COORDINATOR_SILENCE_S:
                self._stop(SILENT_COORDINATOR)
                if state.phase is Phase.GREETING:
                    scope.cancel()

    def _on_control(self, frame: bytes) -> None:
        state = self.state
        try:
            message = wire.decode(frame)
        except wire.WireError:
            state.tally.incr("actor.bad_control_frames")
            return
        run_id = getattr(message, "run_id", None)
        if state.run_id is not None and run_id != state.run_id:
            return
        state.last_control = time.monotonic()
        if isinstance(message, wire.Plan) and state.plan is None:
            state.run_id = message.run_id
            state.plan = message.plan
            self._plan_arrived.set()
        elif isinstance(message, wire.Plan) and state.phase is Phase.RUNNING:
            # The same run's coordinator is handshaking again: a soak resumed while we
            # (on another host) kept running. Our Ready lets it start; our tallies go on.
            self._send(self._ready())
        elif isinstance(message, wire.Start) and state.start_at is None and state.plan:
            state.start_at = message.start_at
            state.deadline = message.deadline
            self._start_or_stop.set()
        elif (isinstance(message, wire.Start) and state.phase is Phase.RUNNING
              and message.deadline != state.deadline):
            self._move_deadline(message.deadline)
        elif isinstance(message, wire.Stop):
            self._stop(message.reason)
        elif isinstance(message, wire.InFlightRequest):
            self._report_in_flight(message)

    def _report_in_flight(self, request: wire.InFlightRequest) -> None:
        """Crash attribution: every walker's recent sends (``actors.flight``), once per
        request id."""
        if request.request_id in self._in_flight_answered:
            return
        self._in_flight_answered.add(request.request_id)
        contexts = [ctx for _, ctx in getattr(self, "_contexts", [])]
        entries, truncated = flight.report(contexts, request.since)
        state = self.state
        report = wire.InFlightReport(state.actor_id, state.incarnation, request.request_id,
                                     entries, flight.survived(contexts, state.tally), truncated)
        try:
            sent = self._send(report)
        except (TypeError, ValueError):  # an entry msgpack cannot carry: a harness bug
            state.tally.incr("harness.unsendable_inflight_report")
            return
        if not sent:
            state.tally.incr("actor.inflight_report_refused")

    def _move_deadline(self, deadline: float) -> None:
        """A resumed coordinator runs the rest of the budget from its own start: adopt its
        deadline (wall clock) for every walker and the walkers' scope."""
        self.state.deadline = deadline
        trio_deadline = deadline + (trio.current_time() - time.time())
        for _, ctx in self._contexts:
            ctx.deadline = trio_deadline
        if self._walkers_scope is not None:
            self._walkers_scope.deadline = trio_deadline + 1.0

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if signum == signal.SIGTERM:
                    self._stop("SIGTERM")
                # SIGINT reaches us with the terminal's process group; the coordinator
                # decides how the run ends and tells us with Stop.

    async def run(self) -> int:
        self._plan_arrived = trio.Event()
        self._start_or_stop = trio.Event()
        self._stopped = trio.Event()
        return await self.main()


def _share(planned: dict[str, Any], slice_name: str, actor_id: int,
           seed: int) -> tuple[int, int, int]:
    """(this actor's rank among the actors running ``slice_name``, their count, run seed):
    lets a slice split a catalogue between actors (``adversarial.CaseDeck``) so that a short
    run covers it without two actors dealing the same stretch."""
    holders = sorted(int(actor) for actor, assigned in planned.items()
                     if any(name == slice_name for _, name in assigned))
    rank = holders.index(actor_id) if actor_id in holders else 0
    return rank, max(1, len(holders)), seed
