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
(the undo runs shielded); see ``replay.executor_faults``.

Memory is bounded by each step's ``cap`` (and ``MAX_CAP``); time by the per-step
``timeout_s`` (``DEFAULT_TIMEOUT_S`` when 0) and the overall limit. Steps that the overall
limit prevents from starting are not in the transcript (``of_step`` returns None).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from actors import tls
from actors.net import TransportError, arm_reset_socket, cause_of, tcp_of
from actors.walker import Target
from protocols.http1 import ResponseError, ResponseParser
from protocols.program import Action, Bindings, Program, ReadUntil, Step
from protocols.tls_options import ALPN_HTTP1
from protocols.websocket_frames import FrameError, Opcode, ServerFrameParser
from replay import executor_faults, executor_netns

#: Deadline of a step whose ``timeout_s`` is 0 (connects, sends, reads).
DEFAULT_TIMEOUT_S = 5.0
#: No read keeps more than this, whatever its ``cap`` says.
MAX_CAP = 8 * 1024 * 1024
#: Most connections one BURST opens.
MAX_BURST = 1024
#: Receive buffer of a connection that a SLOW_READ step reads: small, so the server's
#: writes back up into its own socket instead of our kernel's buffer.
SLOW_READ_RCVBUF = 4096
READ_CHUNK = 65536

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


class _StepFailed(Exception):
    """A step ended early with a transport outcome (``ending`` plus the cause)."""

    def __init__(self, ending: str, error: str) -> None:
        super().__init__(error)
        self.ending = ending
        self.error = error


class _Conn:
    """One logical connection: its socket, what arrived but no step has taken, its state."""

    def __init__(self, slow: bool) -> None:
        #: TCP, or TLS over TCP for an https target (``_secure``).
        self.stream: trio.SocketStream | trio.SSLStream | None = None
        self.pending = bytearray()
        #: "new", "open", "eof" (peer FIN seen), "reset", "closed" (by us: reopen on use)
        self.state = "new"
        self.slow = slow
        #: Method of the last request sent (HEAD responses have no body).
        self.method = "GET"


async def _connect(target: Target, timeout: float, rcvbuf: int | None = None) -> trio.SocketStream:
    try:
        with trio.fail_after(timeout):
            infos = await trio.socket.getaddrinfo(target.host, target.port,
                                                  type=socket.SOCK_STREAM)
            family, type_, proto, _, address = infos[0]
            sock = trio.socket.socket(family, type_, proto)
            try:
                if rcvbuf is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                await sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except BaseException:
                sock.close()
                raise
    except trio.TooSlowError:
        raise _StepFailed("timeout", "connect_timeout") from None
    except OSError as exc:
        cause = cause_of(exc)
        raise _StepFailed("reset", f"{cause}: {exc.strerror or exc}") from None
    return await _secure(trio.SocketStream(sock), target, timeout)


async def _secure(stream: trio.SocketStream, target: Target, timeout: float
                  ) -> trio.SocketStream | trio.SSLStream:
    """TLS over ``stream`` for an https target (the run's ``--ca-file``/``--insecure``,
    ALPN http/1.1: a reproducer's bytes are HTTP/1.1 or WebSocket), else ``stream``. A
    certificate we do not trust is our side's problem (``error``); a handshake the target
    broke off or let time out is its answer, like a refused or timed-out connect."""
    if target.scheme != "https":
        return stream
    try:
        return await tls.handshake(stream, target, ALPN_HTTP1, timeout)
    except TransportError as exc:
        if exc.cause == "tls_verify":
            raise _StepFailed("error", str(exc)) from None
        raise _StepFailed("timeout" if exc.cause == "tls_timeout" else "reset",
                          str(exc)) from None


def _method_of(data: bytes) -> str:
    token = data.split(b" ", 1)[0]
    return token.decode("latin-1") if token.isalpha() and token.isupper() else "GET"


class _Run:
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
        self.conns: dict[int, _Conn] = {}
        self.results: list[StepResult] = []
        #: NETEM: new connections cross this impaired path while ``impairing`` is set.
        self.paths: list[executor_netns.ImpairedPath] = []
        self.impairing: executor_netns.ImpairedPath | None = None

    # -- connections -----------------------------------------------------------------------

    def conn(self, number: int) -> _Conn:
        conn = self.conns.get(number)
        if conn is None or conn.state == "closed":
            conn = self.conns[number] = _Conn(number in self._slow)
        return conn

    async def opened(self, number: int, timeout: float) -> _Conn:
        conn = self.conn(number)
        if conn.state == "new":
            if self.impairing is not None:
                try:
                    stream = await self.impairing.connect(timeout)
                except trio.TooSlowError:
                    raise _StepFailed("timeout", "connect_timeout (impaired path)") from None
                except OSError as exc:
                    raise _StepFailed("reset", f"{cause_of(exc)} (impaired path)") from None
                conn.stream = await _secure(stream, self.target, timeout)
            else:
                conn.stream = await _connect(self.target, timeout,
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
        except _StepFailed as exc:
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
            conn.method = _method_of(payload)
        if step.action is Action.DRIP:
            return await self._drip(conn, payload, step)
        await _send_all(conn, payload, timeout)
        return b"", "ok", ""

    async def _drip(self, conn: _Conn, payload: bytes, step: Step) -> tuple[bytes, str, str]:
        chunk = max(1, step.chunk)
        deadline = trio.current_time() + (step.timeout_s or float("inf"))
        for offset in range(0, len(payload), chunk):
            if trio.current_time() >= deadline:
                return b"", "timeout", f"dripped {offset} of {len(payload)} bytes"
            if offset:
                await trio.sleep(step.interval_s)
            await _send_all(conn, payload[offset : offset + chunk], DEFAULT_TIMEOUT_S)
        return b"", "ok", ""

    async def read(self, step: Step) -> tuple[bytes, str, str]:
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = await self.opened(step.conn, timeout)
        slow = step.action is Action.SLOW_READ
        data, ending = await _read(conn, step, timeout, slow)
        if step.capture:
            self.bindings.incoming(step, data)
        return data, ending, ""

    async def probe(self, step: Step) -> tuple[bytes, str, str]:
        timeout = step.timeout_s or DEFAULT_TIMEOUT_S
        conn = _Conn(slow=False)
        conn.stream = await _connect(self.target, timeout)
        conn.state = "open"
        try:
            if step.data:
                request = self.bindings.outgoing(step)
            else:
                path = step.path or self.target.base_path or "/"
                request = (f"GET {path} HTTP/1.1\r\nHost: {self.target.host_header}\r\n"
                           "Connection: close\r\nUser-Agent: assay-replay-probe\r\n\r\n"
                           ).encode("latin-1")
            conn.method = _method_of(request)
            await _send_all(conn, request, timeout)
            data, ending = await _read(conn, step, timeout, slow=False)
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
                stream = await _connect(self.target, timeout)
            except _StepFailed as exc:
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

    async def target_fault(self, step: Step) -> tuple[bytes, str, str]:
        pid = self.pid
        if pid is None:
            return b"", "error", "no local target pid: target-side faults need --target-pid " \
                "or the built-in refapp"
        if step.action is Action.PAUSE_TARGET:
            manager = functools.partial(executor_faults.paused, pid)
            detail = f"paused pid {pid} for {step.interval_s:.3f} s"
        else:
            manager = functools.partial(executor_faults.files_limited, pid, step.count)
            detail = f"RLIMIT_NOFILE of pid {pid} lowered for {step.interval_s:.3f} s"
        applied = trio.Event()
        failure: list[str] = []
        self.nursery.start_soon(_hold_fault, manager, step.interval_s, applied, failure)
        await applied.wait()
        if failure:
            return b"", "error", failure[0]
        return detail.encode("ascii"), "ok", ""


    async def network(self, step: Step) -> tuple[bytes, str, str]:
        reason = await trio.to_thread.run_sync(executor_netns.unavailable)
        if reason:
            return b"", "error", reason
        args = step.data.decode("ascii", "replace")
        path = executor_netns.ImpairedPath((self.target.host, self.target.port), args)
        try:
            await path.start(self.nursery)
        except (OSError, RuntimeError) as exc:
            return b"", "error", f"network fault not applied: {exc}"
        self.paths.append(path)
        self.impairing = path
        self.nursery.start_soon(self._lift_after, path, step.interval_s)
        return f"netem {args} for {step.interval_s:.3f} s".encode("ascii", "replace"), "ok", ""

    async def _lift_after(self, path: executor_netns.ImpairedPath, seconds: float) -> None:
        await trio.sleep(seconds)
        if self.impairing is path:
            self.impairing = None
        await path.lift()


async def _hold_fault(manager: Callable[[], contextlib.AbstractContextManager[object]],
                      seconds: float, applied: trio.Event, failure: list[str]) -> None:
    """Apply a target fault, keep it ``seconds`` (or until cancelled), always undo it.

    Entering and leaving are synchronous (a signal, a prlimit, a locked file), so the undo
    cannot be interrupted by the cancellation that ends the program.
    """
    try:
        context = manager()
        context.__enter__()
    except Exception as exc:  # not applied: the step is "not judged" with this reason
        failure.append(str(exc) or type(exc).__name__)
        applied.set()
        return
    applied.set()
    try:
        await trio.sleep(seconds)
    finally:
        context.__exit__(None, None, None)


async def _send_all(conn: _Conn, payload: bytes, timeout: float) -> None:
    assert conn.stream is not None
    try:
        with trio.fail_after(timeout):
            await conn.stream.send_all(payload)
    except trio.TooSlowError:
        raise _StepFailed("timeout", "send timed out") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise _StepFailed("reset", cause_of(exc)) from None


class _Until:
    """Decides when a read has enough, and how many of the bytes read belong to it."""

    def __init__(self, until: ReadUntil, method: str, cap: int) -> None:
        self.until = until
        self._parser: ResponseParser | None = None
        self._frames: ServerFrameParser | None = None
        if until is ReadUntil.RESPONSE:
            self._parser = ResponseParser(max_body_bytes=cap)
            self._parser.expect(method)
        elif until is ReadUntil.WS_CLOSE:
            self._frames = ServerFrameParser(max_payload=cap)

    def take(self, new: bytes, total: int) -> int | None:
        """Feed the ``new`` bytes (the read now holds ``total``); the length of the read's
        bytes that completes it, or None. Only new bytes are looked at: no quadratic cost."""
        if self.until is ReadUntil.ANY:
            return total if total else None
        if self.until is ReadUntil.CLOSE:
            return None
        if self._frames is not None:
            for item in self._frames.feed(new):
                if isinstance(item, FrameError) or item.opcode == Opcode.CLOSE:
                    return total
            return None
        assert self._parser is not None
        self._parser.feed(new)
        try:
            response = self._parser.next_response()
        except ResponseError:
            return total  # these bytes will never become a response: decided
        if response is None:
            return None
        if self._parser.switched:
            return total - len(self._parser.trailing_data)
        return total - self._parser.buffered_bytes


async def _read(conn: _Conn, step: Step, timeout: float, slow: bool) -> tuple[bytes, str]:
    """Read on ``conn`` until ``step.until``, EOF, reset, ``timeout`` or the cap."""
    cap = max(1, min(step.cap, MAX_CAP))
    until = _Until(step.until, conn.method, cap)
    data = bytearray(conn.pending)
    conn.pending.clear()
    ending = ""
    if data:
        taken = until.take(bytes(data), len(data))
        if taken is not None:
            conn.pending += data[taken:]
            return bytes(data[:taken]), "done"
    if conn.state in ("eof", "reset"):
        return bytes(data[:cap]), conn.state
    assert conn.stream is not None
    size = max(1, step.chunk) if slow else READ_CHUNK
    with trio.move_on_after(timeout):
        while True:
            if slow and data:
                await trio.sleep(step.interval_s)
            try:
                chunk = await conn.stream.receive_some(size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                conn.state = ending = "reset"
                break
            if not chunk:
                conn.state = ending = "eof"
                break
            data += chunk
            taken = until.take(chunk, len(data))
            if taken is not None:
                conn.pending += data[taken:]
                del data[taken:]
                ending = "done"
                break
            if len(data) >= cap:
                ending = "cap"
                break
    if not ending:
        ending = "timeout"
    if len(data) > cap:
        del data[cap:]
        ending = "cap" if ending == "done" else ending
    return bytes(data), ending


#: Action -> the ``_Run`` method that performs it (every Action must be here).
_HANDLERS: dict[Action, Callable[..., Any]] = {
    Action.SEND: _Run.send,
    Action.DRIP: _Run.send,
    Action.READ: _Run.read,
    Action.SLOW_READ: _Run.read,
    Action.FIN: _Run.hang_up,
    Action.RST: _Run.hang_up,
    Action.CLOSE: _Run.hang_up,
    Action.SLEEP: _Run.sleep,
    Action.BURST: _Run.burst,
    Action.PROBE: _Run.probe,
    Action.PAUSE_TARGET: _Run.target_fault,
    Action.LIMIT_TARGET_FILES: _Run.target_fault,
    Action.NETEM: _Run.network,
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
        run = _Run(program, target, pid, nursery)
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
