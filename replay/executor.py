"""The one executor of Programs against a live target: steps in, a transcript out.

How this works: ``execute`` walks the program's steps in order inside one nursery and one
overall deadline (``time_limit_s``). Logical connections (``Step.conn``) open on first use
and stay open until a CLOSE or RST step (a later step on the same number opens a fresh
one) or the end of the program. Every received byte lands in the connection's pending
buffer first; a READ takes from it what its ``until`` asks for, so bytes that arrive early
(pipelined responses, frames after a 101) belong to the step that asks for them.

Endings say how a step stopped, and only one of them means "our side could not do it":

* ``done``    a READ's ``until`` was satisfied (a whole response, any bytes, a Close frame;
              also bytes that can never become a response: the parser gave up on them),
* ``eof`` / ``reset``  the peer closed / reset (a refused connect is recorded as ``reset``
              with ``error="connect_refused"``: the target is down, which is an answer),
* ``timeout`` the step's deadline passed (a connect deadline says ``connect_timeout``),
* ``cap``     the read cap was reached,
* ``ok``      a send, close or fault went through,
* ``error``   the step could not run at all (no local pid to pause, no permission, network
              faults without a private namespace...). ``error`` holds the reason and the
              caller records the step "not judged" with it, never as the target's fault.

For an ``https://`` target every connection (steps, probes, bursts, the impaired path)
completes a TLS handshake first (``actors.tls``, the run's ``--ca-file``/``--insecure``);
FIN and RST then act on the TCP stream under it, as a client that drops its socket does.

NETEM routes the connections opened during its ``interval_s`` through a private network
namespace with ``tc netem`` on its loopback (root only; see ``replay.executor_netns``).

Target faults (PAUSE_TARGET, LIMIT_TARGET_FILES) are started by their step and run in the
background for ``interval_s`` while the following steps go on, because what matters is how
the target treats the clients that arrive while it is stopped or out of descriptors. They
are undone when their time is up, when the program ends, and on any error or cancellation
(the undo runs shielded); see ``replay.executor_fault_steps`` and ``replay.executor_faults``.

Opening, securing and writing a connection is ``replay.executor_conn``; reading a step's
bytes until its ``until`` is ``replay.executor_read``.

Memory is bounded by each step's ``cap`` (and ``executor_read.MAX_CAP``); time by the per-step
``timeout_s`` (``DEFAULT_TIMEOUT_S`` when 0) and the overall limit. Steps that the overall
limit prevents from starting are not in the transcript (``of_step`` returns None).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from actors.net import arm_reset_socket, cause_of, tcp_of
from actors.walker import Target
from protocols.program import Action, Bindings, Program, Step
from replay import executor_fault_steps, executor_faults, executor_netns
from replay.executor_conn import Conn, StepFailed, connect, method_of, secure, send_all
from replay.executor_read import read_until

#: Deadline of a step whose ``timeout_s`` is 0 (connects, sends, reads).
DEFAULT_TIMEOUT_S = 5.0
#: Most connections one BURST opens.
MAX_BURST = 1024
#: Receive buffer of a connection that a SLOW_READ step reads: small, so the server's
#: writes back up into its own socket instead of our kernel's buffer.
SLOW_READ_RCVBUF = 4096

ENDINGS = ("eof", "reset", "timeout", "cap", "done", "error", "ok")


@dataclass(frozen=True)
class StepResult:
    """What one step did: the bytes it received (reads) or a short summary (bursts)."""

    index: int
    action: str
    data: bytes
    ending: str
    elapsed_s: float
    error: str = ""


@dataclass(frozen=True)
class Transcript:
    results: tuple[StepResult, ...]
    elapsed_s: float

    def of_step(self, index: int) -> StepResult | None:
        for result in self.results:
            if result.index == index:
                return result
        return None


class Run:
    """The state of one ``execute`` call."""

    def __init__(self, program: Program, target: Target, pid: int | None,
                 nursery: trio.Nursery) -> None:
        self.program = program
        self.target = target
        self.pid = pid
        self.nursery = nursery
        self.bindings = Bindings({"host": target.host_header})
        slow = {s.conn for s in program.steps if s.action is Action.SLOW_READ}
        self._slow = slow
        self.conns: dict[int, Conn] = {}
        self.results: list[StepResult] = []
        #: NETEM: new connections cross this impaired path while ``impairing`` is set.
        self.paths: list[executor_netns.ImpairedPath] = []
        self.impairing: executor_netns.ImpairedPath | None = None

    # -- connections -----------------------------------------------------------------------

    def conn(self, number: int) -> Conn:
        conn = self.conns.get(number)
        if conn is None or conn.state == "closed":
            conn = self.conns[number] = Conn(number in self._slow)
        return conn

    async def opened(self, number: int, timeout: float) -> Conn:
        conn = self.conn(number)
        if conn.state == "new":
            if self.impairing is not None:
                try:
                    stream = await self.impairing.connect(timeout)
                except trio.TooSlowError:
                    raise StepFailed("timeout", "connect_timeout (impaired path)") from None
                except OSError as exc:
                    raise StepFailed("reset", f"{cause_of(exc)} (impaired path)") from None
                conn.stream = await secure(stream, self.target, timeout)
            else:
                conn.stream = await connect(self.target, timeout,
                                             SLOW_READ_RCVBUF if conn.slow else None)
            conn.state = "open"
        return conn

    async def close_all(self) -> None:
        for conn in self.conns.values():
            if conn.stream is not None and conn.state != "closed":
                conn.state = "closed"
                await trio.aclose_forcefully(conn.stream)
        for path in self.paths:
            await path.close()

    # -- steps -----------------------------------------------------------------------------

    async def run_step(self, index: int, step: Step) -> StepResult:
        started = trio.current_time()
        handler = _HANDLERS[step.action]
        try:
            data, ending, error = await handler(self, step)
        except StepFailed as exc:
            data, ending, error = b"", exc.ending, exc.error
        except executor_faults.TargetFaultError as exc:
            data, ending, error = b"", "error", str(exc)
        return StepResult(index, step.action.value, data, ending,
                          trio.current_time() - started, error)

    async def send(self, step: Step) -> tuple[bytes, str, str]:
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = await self.opened(step.conn, timeout)
        payload = self.bindings.outgoing(step)
        if payload:
            conn.method = method_of(payload)
        if step.action is Action.DRIP:
            return await self._drip(conn, payload, step)
        await send_all(conn, payload, timeout)
        return b"", "ok", ""

    async def _drip(self, conn: Conn, payload: bytes, step: Step) -> tuple[bytes, str, str]:
        chunk = max(1, step.chunk)
        deadline = trio.current_time() + (step.timeout_s or float("inf"))
        for offset in range(0, len(payload), chunk):
            if trio.current_time() >= deadline:
                return b"", "timeout", f"dripped {offset} of {len(payload)} bytes"
            if offset:
                await trio.sleep(step.interval_s)
            await send_all(conn, payload[offset : offset + chunk], DEFAULT_TIMEOUT_S)
        return b"", "ok", ""

    async def read(self, step: Step) -> tuple[bytes, str, str]:
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = await self.opened(step.conn, timeout)
        slow = step.action is Action.SLOW_READ
        data, ending = await read_until(conn, step, timeout, slow)
        if step.capture:
            self.bindings.incoming(step, data)
        return data, ending, ""

    async def probe(self, step: Step) -> tuple[bytes, str, str]:
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = Conn(slow=False)
        conn.stream = await connect(self.target, timeout)
        conn.state = "open"
        try:
            if step.data:
                request = self.bindings.outgoing(step)
            else:
                path = step.path or self.target.base_path or "/"
                request = (f"GET {path} HTTP/1.1\r\nHost: {self.target.host_header}\r\n"
                           "Connection: close\r\nUser-Agent: assay-replay-probe\r\n\r\n"
                           ).encode("latin-1")
            conn.method = method_of(request)
            await send_all(conn, request, timeout)
            data, ending = await read_until(conn, step, timeout, slow=False)
        finally:
            await trio.aclose_forcefully(conn.stream)
        if step.capture:
            self.bindings.incoming(step, data)
        return data, ending, ""

    async def hang_up(self, step: Step) -> tuple[bytes, str, str]:
        if step.action is Action.CLOSE and self.conn(step.conn).state == "new":
            return b"", "ok", ""  # nothing to close (FIN/RST still connect: connect-and-abort)
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = await self.opened(step.conn, timeout)
        assert conn.stream is not None
        if step.action is Action.FIN:
            try:
                await tcp_of(conn.stream).send_eof()  # over TLS: a TCP FIN, no close_notify
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                return b"", "reset", cause_of(exc)
            return b"", "ok", ""
        if step.action is Action.RST:
            arm_reset_socket(tcp_of(conn.stream).socket)
        conn.state = "closed"
        await trio.aclose_forcefully(conn.stream)
        return b"", "ok", ""

    async def sleep(self, step: Step) -> tuple[bytes, str, str]:
        await trio.sleep(step.interval_s)
        return b"", "ok", ""

    async def burst(self, step: Step) -> tuple[bytes, str, str]:
        count = min(step.count, MAX_BURST)
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        payload = self.bindings.outgoing(step)
        streams: list[trio.SocketStream | trio.SSLStream] = []
        failures: dict[str, int] = {}

        async def one() -> None:
            try:
                stream = await connect(self.target, timeout)
            except StepFailed as exc:
                cause = exc.error.split(":", 1)[0]
                failures[cause] = failures.get(cause, 0) + 1
                return
            streams.append(stream)
            if payload:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError,
                                         OSError), trio.move_on_after(timeout):
                    await stream.send_all(payload)

        try:
            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(one)
            if step.interval_s:
                await trio.sleep(step.interval_s)
        finally:
            for stream in streams:
                await trio.aclose_forcefully(stream)
        summary = f"opened={len(streams)} failed={sum(failures.values())}"
        summary += "".join(f" {cause}={n}" for cause, n in sorted(failures.items()))
        return summary.encode("ascii"), "ok", ""


#: Action -> the ``Run`` method (or fault-step function) that performs it (every Action
#: must be here).
_HANDLERS: dict[Action, Callable[..., Any]] = {
    Action.SEND: Run.send,
    Action.DRIP: Run.send,
    Action.READ: Run.read,
    Action.SLOW_READ: Run.read,
    Action.FIN: Run.hang_up,
    Action.RST: Run.hang_up,
    Action.CLOSE: Run.hang_up,
    Action.SLEEP: Run.sleep,
    Action.BURST: Run.burst,
    Action.PROBE: Run.probe,
    Action.PAUSE_TARGET: executor_fault_steps.target_fault,
    Action.LIMIT_TARGET_FILES: executor_fault_steps.target_fault,
    Action.NETEM: executor_fault_steps.network,
}


async def execute(
    program: Program, target: Target, *, pid: int | None = None, time_limit_s: float = 30.0
) -> Transcript:
    """Run ``program`` against ``target``; never raises for anything the target does.

    Args:
        program: the steps to run (its check is not looked at here).
        target: where to connect; ``{host}`` in template steps is its Host header value.
        pid: the target's local pid, needed by PAUSE_TARGET and LIMIT_TARGET_FILES.
        time_limit_s: the whole program's budget; steps it prevents are not in the result.

    Returns:
        A ``Transcript`` with one ``StepResult`` per step that ran, in order.
    """
    started = time.monotonic()
    results: list[StepResult] = []
    async with trio.open_nursery() as nursery:
        run = Run(program, target, pid, nursery)
        try:
            with trio.move_on_after(time_limit_s):
                for index, step in enumerate(program.steps):
                    step_started = trio.current_time()
                    try:
                        if step.delay_s:
                            await trio.sleep(step.delay_s)
                        results.append(await run.run_step(index, step))
                    except trio.Cancelled:
                        results.append(StepResult(
                            index, step.action.value, b"", "timeout",
                            trio.current_time() - step_started,
                            f"the program's time limit ({time_limit_s:g} s) ran out"))
                        raise
        finally:
            with trio.CancelScope(shield=True):
                await run.close_all()
            nursery.cancel_scope.cancel()  # ends background target faults (they undo)
    return Transcript(tuple(results), time.monotonic() - started)
