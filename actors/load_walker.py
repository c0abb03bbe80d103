"""The load slice: this actor's share of every scenario of an ``assay load`` plan.

How this works: the coordinator plans one load walker per actor; it runs every scenario
of the plan (``protocols.load_model``) side by side, each started at its ``start_s``.
Actor ``rank`` of ``count`` takes every ``count``-th arrival of an open schedule
(``protocols.load_schedule.arrivals``) and every ``count``-th VU of a closed one, so the
fleet together runs exactly the plan.

* Open model (arrival-rate executors). A scheduler sleeps until each arrival is due and
  hands it to an idle VU (one keep-alive connection each); with none idle it opens a new
  one while fewer than this actor's share of the connection limit exist (``connections``,
  by default ``max_vus``). Past that, an arrival waits for a connection (wrk2's model)
  as long as fewer than ``max_vus`` requests are started and unfinished, and is otherwise
  dropped and counted (k6's ``dropped_iterations``): never queued without bound, so a
  slow server cannot slow the schedule. Latency runs from the arrival's *due* time (a
  stall shows, coordinated-omission correct, as wrk2 measures), service time from the
  moment the request was sent. A VU parks with ``wait_task_rescheduled`` between
  requests: the hand-off is one reschedule, no channel and no task spawn per request.
* Closed model (VU executors). Each VU sends its next request when the last one ended;
  latency and service time are then the same thing. A ramping-VUs VU above the current
  target waits (checked every ``RAMP_POLL_S``) and finishes its request first, as k6's
  graceful ramp-down does.

Every VU keeps one keep-alive connection (``actors.keepalive``: the Markov slice's hot
path). A response is fully parsed and framed; the scenario's checks
(``protocols.load_checks``) run on every response. Counters are
``load.<scenario>.<name>`` (see ``Names``) and histograms ``load.<scenario>.latency``,
``.service`` and ``.lag`` (how late the scheduler dispatched an arrival: the generator's
own delay, to tell apart from the server's). ``load.done`` counts actors whose walker
finished every scenario, so the coordinator can end the run without waiting out its
grace period.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import outcome
import trio

from actors import fd_limit, net
from actors.keepalive import (
    Connection,
    begin,
    complete,
    failure_cause,
    open_connection,
)
from actors.walker import WalkerContext
from protocols.http1 import ResponseProtocolError, ResponseTooLarge
from protocols.load_checks import evaluate_all, expected_statuses, is_failed_status
from protocols.load_model import RAMPING_VUS, LoadPlan, Scenario
from protocols.load_schedule import arrivals, split_vus, vus_at
from protocols.load_template import CompiledRequest, compile_request

DONE = "load.done"
RAMP_POLL_S = 0.05
#: A closed-model VU whose request failed at the transport waits this long before the
#: next one: a refused port answers at once, and a VU must not spin on it.
CLOSED_ERROR_PAUSE_S = 0.01
#: Time to let the requests in flight at the end of the schedule finish.
DRAIN_POLL_S = 0.01
#: How often the watchdog looks for requests past their timeout.
WATCHDOG_S = 0.1
#: Failures of a reused keep-alive connection that mean "closed while idle".
STALE_CAUSES = frozenset({"eof", "reset"})


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Parse the plan once per actor (the coordinator validated it), and raise the open-file
    limit to its hard limit: every VU holds a socket, and a closed model of thousands of
    VUs must not fail on the default soft limit of 1024."""
    settings["load_plan_parsed"] = LoadPlan.from_wire(settings["load_plan"])
    fd_limit.raise_to_hard()
    if settings.get("http2"):  # ``--http2``: the VUs share the actor's HTTP/2 connections
        from actors.h2_session import DEFAULT_STREAMS_PER_CONN, H2Pool

        settings["h2_pool"] = H2Pool(
            float(settings.get("request_timeout_s", 10.0)),
            int(settings.get("h2_streams_per_conn") or DEFAULT_STREAMS_PER_CONN))
    return settings


class Names:
    """Counter and histogram names of one scenario, built once (not per request)."""

    def __init__(self, scenario: str) -> None:
        prefix = f"load.{scenario}."
        self.prefix = prefix
        self.scheduled = prefix + "scheduled"
        self.dropped = prefix + "dropped"
        self.queued = prefix + "queued"
        self.reconnected = prefix + "reconnected"
        self.cut = prefix + "error.cut"
        self.requests = prefix + "requests"
        self.failed = prefix + "failed"
        self.warmup = prefix + "warmup_requests"
        self.vus = prefix + "vus"
        self.latency = prefix + "latency"
        self.service = prefix + "service"
        self.lag = prefix + "lag"
        self._status: dict[int, str] = {}
        self._error: dict[str, str] = {}

    def status(self, code: int) -> str:
        name = self._status.get(code)
        if name is None:
            name = self._status[code] = f"{self.prefix}status.{code}"
        return name

    def error(self, cause: str) -> str:
        name = self._error.get(cause)
        if name is None:
            name = self._error[cause] = f"{self.prefix}error.{cause}"
        return name

    def check(self, index: int, passed: bool) -> str:
        return f"{self.prefix}check.{index}.{'pass' if passed else 'fail'}"


class _Vu:
    """One virtual user: its number, its connection, and its task while parked."""

    __slots__ = ("conn", "connecting", "deadline", "number", "pending", "scope", "task")

    def __init__(self, number: int) -> None:
        self.number = number
        self.conn: Connection | None = None
        self.task: Any = None
        #: The scope the VU's requests run in; the scenario's watchdog cancels it when
        #: ``deadline`` (trio clock) passes with a request in flight.
        self.scope: trio.CancelScope | None = None
        self.deadline = math.inf
        #: The request in flight: (due, sent, bytes), and whether it is still connecting.
        self.pending: tuple[float, float, bytes] | None = None
        self.connecting = False

    def drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _ScenarioRun:
    """What one scenario's VUs share in this actor: the request, the names, the clock."""

    def __init__(self, ctx: WalkerContext, scenario: Scenario, t0: float,
                 h2: Any = None) -> None:
        self.ctx = ctx
        #: ``actors.load_h2.H2Sender`` under ``--http2``, else None (HTTP/1.1 per VU).
        self.h2 = h2
        self.scenario = scenario
        self.names = Names(scenario.name)
        self.request: CompiledRequest = compile_request(scenario.request,
                                                        ctx.target.host_header)
        self.method = scenario.request.method
        self.start = t0 + scenario.start_s
        self.end = self.start + scenario.executor.total_s
        self.measure_from = self.start + scenario.measure_after_s
        self.timeout = float(ctx.settings.get("request_timeout_s", 10.0))
        self.checks = scenario.checks
        self.expected = expected_statuses(scenario.checks)
        tally = ctx.tally
        self.record_latency: Callable[[float], None] = tally.latency_recorder(
            (self.names.latency,))
        self.record_service: Callable[[float], None] = tally.latency_recorder(
            (self.names.service,))
        self.record_lag: Callable[[float], None] = tally.latency_recorder((self.names.lag,))
        #: Requests started and not finished (open model), and those due that wait for a
        #: connection: (due, seq), oldest first.
        self.busy = 0
        self.waiting: deque[tuple[float, int]] = deque()

    async def exchange(self, vu: _Vu, due: float, seq: int) -> bool:
        """One request on ``vu``'s connection; counts everything; False when it failed at
        the transport (no response)."""
        ctx = self.ctx
        names = self.names
        tally = ctx.tally
        static = self.request.static
        data = static if static is not None else self.request.render(seq, ctx.rng, vu.number)
        sent = trio.current_time()
        cause = None
        response = None
        # The timeout: no cancel scope per request (entering and leaving one was a tenth
        # of the actor's time), but a deadline the scenario's watchdog checks.
        vu.pending = (due, sent, data)
        vu.deadline = sent + self.timeout
        for attempt in (0, 1):
            reused = vu.conn is not None
            try:
                if self.h2 is not None:
                    response = await self.h2.send(data)
                    break
                if vu.conn is None:
                    vu.connecting = True
                    vu.conn = await open_connection(ctx.target)
                    vu.connecting = False
                begin(vu.conn, data, self.method)
                response = await complete(vu.conn)
                break
            except (net.TransportError, OSError, ResponseProtocolError,
                    ResponseTooLarge) as exc:
                cause = failure_cause(exc)
                # A kept-alive connection the server closed while idle fails at once
                # with nothing read: send again on a new one, as every HTTP client does
                # (RFC 9112 §9.3.1), instead of counting the server's idle timeout as a
                # failed request. Once only.
                if not (reused and attempt == 0 and cause in STALE_CAUSES
                        and not vu.conn.parser.buffered_bytes):  # type: ignore[union-attr]
                    break
                vu.drop_connection()
                tally.incr(names.reconnected)
                cause = None
        vu.deadline = math.inf
        vu.pending = None
        done = trio.current_time()
        measured = due >= self.measure_from
        if not measured:
            tally.incr(names.warmup)
        if response is None:
            self.failed(vu, due, data, cause or "eof", measured)
            vu.connecting = False
            return False
        if measured:
            status = response.status
            tally.incr_each((names.requests, names.status(status)))
            if is_failed_status(status, self.expected):
                tally.incr_each((names.failed, names.error(f"http_{status // 100}xx")))
            self.record_latency((done - due) * 1e6)
            self.record_service((done - sent) * 1e6)
            if self.checks:
                for index, passed in enumerate(evaluate_all(self.checks, response)):
                    tally.incr(names.check(index, passed))
        if vu.conn is not None and (not response.keep_alive or vu.conn.parser.buffered_bytes):
            vu.drop_connection()  # closing, or bytes past the response: out of step
        return True

    def failed(self, vu: _Vu, due: float, data: bytes, cause: str, measured: bool) -> None:
        """A request with no response: count it, drop its connection."""
        vu.drop_connection()
        names = self.names
        if measured:
            self.ctx.tally.incr_each((names.requests, names.failed, names.error(cause)))
        if not vu.connecting:
            self.ctx.record_exchange(scenario=self.scenario.name, sent=data, error=cause)

    def timed_out(self, vu: _Vu) -> None:
        """The watchdog cancelled ``vu``'s request in flight: count it as a timeout."""
        if vu.pending is not None:
            due, _, data = vu.pending
            cause = "connect_timeout" if vu.connecting else "timeout"
            self.failed(vu, due, data, cause, due >= self.measure_from)
        vu.pending = None
        vu.connecting = False
        vu.deadline = math.inf

    async def watchdog(self, vus: list[_Vu]) -> None:
        """Cancel each request past its timeout (checked every ``WATCHDOG_S``: a timeout
        fires up to that much late)."""
        while True:
            await trio.sleep(WATCHDOG_S)
            now = trio.current_time()
            for vu in vus:
                if vu.deadline < now and vu.scope is not None:
                    vu.deadline = math.inf
                    vu.scope.cancel()

    # -- open model -----------------------------------------------------------------------
    async def run_open(self, rank: int, count: int) -> None:
        executor = self.scenario.executor
        in_flight_limit = max(1, split_vus(max(executor.max_vus, executor.vus), rank, count))
        conn_limit = in_flight_limit
        if executor.connections:
            conn_limit = min(in_flight_limit,
                             max(1, split_vus(executor.connections, rank, count)))
        idle: list[_Vu] = []
        waiting = self.waiting
        tally = self.ctx.tally
        names = self.names
        current_time = trio.current_time
        reschedule = trio.lowlevel.reschedule
        vus = 0
        every: list[_Vu] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watchdog, every)
            for _ in range(min(conn_limit, split_vus(executor.vus, rank, count))):
                vus += 1
                every.append(_Vu(vus))
                nursery.start_soon(self._open_vu, every[-1], idle, None)
            await trio.sleep_until(self.start)
            seq = rank
            for offset in arrivals(executor, rank, count):
                due = self.start + offset
                now = current_time()
                if due > now:
                    await trio.sleep_until(due)
                    now = current_time()
                else:  # behind schedule: let the VUs just handed work send it
                    await trio.lowlevel.checkpoint()
                measured = due >= self.measure_from
                if measured:
                    tally.incr(names.scheduled)
                    self.record_lag((now - due) * 1e6)
                if idle:
                    vu = idle.pop()
                    self.busy += 1
                    reschedule(vu.task, outcome.Value((due, seq)))
                elif vus < conn_limit:
                    vus += 1
                    self.busy += 1
                    every.append(_Vu(vus))
                    nursery.start_soon(self._open_vu, every[-1], idle, (due, seq))
                elif self.busy + len(waiting) < in_flight_limit:
                    waiting.append((due, seq))  # wrk2: waits for a connection
                    if measured:
                        tally.incr(names.queued)
                elif measured:
                    tally.incr(names.dropped)
                seq += count
            tally.incr(names.vus, vus)
            try:
                while self.busy or waiting:
                    await trio.sleep(DRAIN_POLL_S)
            finally:
                # Cut off by the run's end (deadline, Ctrl-C): what still waits or is in
                # flight failed, and says so, rather than vanishing from every count.
                cut = sum(1 for due, _ in waiting if due >= self.measure_from) + self.busy
                if cut:
                    tally.incr(names.requests, cut)
                    tally.incr(names.failed, cut)
                    tally.incr(names.cut, cut)
                waiting.clear()
                self.busy = 0
            nursery.cancel_scope.cancel()

    async def _open_vu(self, vu: _Vu, idle: list[_Vu],
                       first: tuple[float, int] | None) -> None:
        vu.task = trio.lowlevel.current_task()
        waiting = self.waiting
        job = first
        try:
            while True:
                with trio.CancelScope() as scope:  # the watchdog's handle on this VU
                    vu.scope = scope
                    # A cancel the last request did not see (its answer was already
                    # buffered) must not land while parked in ``idle``: check first.
                    while not scope.cancel_called:
                        if job is None:
                            if waiting:  # a request that waited for a connection first
                                self.busy += 1
                                job = waiting.popleft()
                                if trio.current_time() - job[0] > self.timeout:
                                    self._queue_timeout(job[0])
                                    job = None
                                    continue
                            else:
                                idle.append(vu)
                                job = await trio.lowlevel.wait_task_rescheduled(_abort_park)
                        due, seq = job
                        job = None
                        try:
                            await self.exchange(vu, due, seq)
                        finally:
                            self.busy -= 1
                self.timed_out(vu)
        finally:
            vu.drop_connection()

    def _queue_timeout(self, due: float) -> None:
        """A request that waited its whole timeout for a connection: a timeout, unsent."""
        if due >= self.measure_from:
            names = self.names
            self.ctx.tally.incr_each((names.requests, names.failed,
                                      names.error("queue_timeout")))
        self.busy -= 1

    # -- closed model ---------------------------------------------------------------------
    async def run_closed(self, rank: int, count: int) -> None:
        executor = self.scenario.executor
        most = executor.vus
        if executor.kind == RAMPING_VUS:
            most = max([executor.vus, *(int(s.target) for s in executor.stages)])
        numbers = range(rank, most, count)
        self.ctx.tally.incr(self.names.vus, len(numbers))
        await trio.sleep_until(self.start)
        every = [_Vu(number) for number in numbers]
        async with trio.open_nursery() as nursery:
            watchdog = trio.CancelScope()

            async def watch() -> None:
                with watchdog:
                    await self.watchdog(every)

            nursery.start_soon(watch)
            async with trio.open_nursery() as vus:
                for vu in every:
                    vus.start_soon(self._closed_vu, vu, max(1, most))
            watchdog.cancel()

    async def _closed_vu(self, vu: _Vu, stride: int) -> None:
        """VU ``n`` of ``stride`` numbers its requests n, n + stride, ...: unique across
        the fleet's VUs, whichever actor runs them."""
        executor = self.scenario.executor
        ramping = executor.kind == RAMPING_VUS
        current_time = trio.current_time
        seq = vu.number
        try:
            while current_time() < self.end:
                with trio.CancelScope() as scope:  # the watchdog's handle on this VU
                    vu.scope = scope
                    while True:
                        now = current_time()
                        if now >= self.end:
                            return
                        if ramping and vus_at(executor, now - self.start) <= vu.number:
                            await trio.sleep(min(RAMP_POLL_S, self.end - now))
                            continue
                        sent_seq = seq
                        seq += stride
                        if not await self.exchange(vu, now, sent_seq):
                            await trio.sleep(CLOSED_ERROR_PAUSE_S)
                self.timed_out(vu)
        finally:
            vu.drop_connection()


def _abort_park(_: Any) -> Any:
    return trio.lowlevel.Abort.SUCCEEDED



async def run(ctx: WalkerContext) -> None:
    plan: LoadPlan = ctx.settings["load_plan_parsed"]
    rank, count, _ = ctx.settings.get("slice_share", (0, 1, 0))
    t0 = trio.current_time()
    async with contextlib.AsyncExitStack() as stack:
        h2 = None
        pool = ctx.settings.get("h2_pool")
        if pool is not None:
            from actors.load_h2 import H2Sender

            h2 = H2Sender(await stack.enter_async_context(pool.member(ctx.target)), ctx.target)
        async with trio.open_nursery() as nursery:
            for scenario in plan.scenarios:
                scenario_run = _ScenarioRun(ctx, scenario, t0, h2)
                if scenario.executor.is_open:
                    nursery.start_soon(scenario_run.run_open, rank, count)
                else:
                    nursery.start_soon(scenario_run.run_closed, rank, count)
    ctx.tally.incr(DONE)
