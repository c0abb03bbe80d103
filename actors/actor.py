"""One actor process: a trio loop that runs its share of walkers and reports tallies.

The I/O shell around the lifecycle in ``actors.actor_lifecycle`` (phases, transitions, exit
status): it greets the coordinator over ZeroMQ until a Plan arrives, builds its walkers
from it (``actors.walker_plan``), runs them from Start to the deadline, listens for
control frames (Stop, a moved deadline, crash attribution's InFlightRequest) and watches
the coordinator's silence, then sends the final tally and Bye.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from typing import Any

import trio
import zmq

from actors import curve, flight
from actors.actor_lifecycle import (
    SILENT_COORDINATOR,
    ActorAbort,
    ActorState,
    Phase,
    exit_status,
)
from actors.walker import WalkerContext
from actors.walker_plan import build_walkers
from actors.zmq_io import ZmqReceiver, send_nowait, send_patiently
from protocols import wire
from protocols.tally import UnrecordedTally

GREETING_TIMEOUT_S = 20.0
COORDINATOR_SILENCE_S = 5.0
HELLO_EVERY_S = 0.25
FINAL_SEND_TIMEOUT_S = 5.0
WALKER_RESTART_PAUSE_S = 0.2
#: Benchmarks only (benchmarks/bench_markov.py): "1" makes tally counters and latency
#: recording no-ops for this actor's whole life, to measure what recording costs.
NO_RECORDING_ENV = "ASSAY_BENCH_NO_RECORDING"


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
        self._contexts = build_walkers(state.plan, state, self._violation)
        state.move(Phase.READY)
        self._send(self._ready())

    def _ready(self) -> wire.Ready:
        state = self.state
        return wire.Ready(state.actor_id, state.incarnation, state.run_id or "",
                          len(self._contexts))

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
