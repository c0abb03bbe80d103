"""The executor against small in-process servers: every action, every ending, the bounds."""

from __future__ import annotations

import contextlib
import functools
import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import psutil
import pytest
import trio

from actors.walker import Target
from protocols.program import Action, Check, Program, ReadUntil, Step
from protocols.websocket_frames import Opcode, build_frame, close_payload
from replay import executor_netns
from replay.executor import Transcript, execute

Handler = Callable[[trio.SocketStream], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[Target]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(
            trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield Target.from_url(f"http://127.0.0.1:{port}/")
        nursery.cancel_scope.cancel()


def run(handler: Handler, steps: list[Step], **kwargs: object) -> Transcript:
    async def main() -> Transcript:
        async with server(handler) as target:
            return await execute(Program(tuple(steps), Check("none")), target, **kwargs)

    return trio.run(main)


async def read_request(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_pipelined_responses_go_to_the_read_that_asks() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(OK + OK.replace(b"ok", b"OK"))

    t = run(handler, [Step(Action.SEND, 0, b"GET / HTTP/1.1\r\n\r\n"), Step(Action.READ, 0),
                      Step(Action.READ, 0)])
    assert [r.ending for r in t.results] == ["ok", "done", "done"]
    assert t.results[1].data == OK and t.results[2].data.endswith(b"OK")


def test_captured_values_fill_later_templates() -> None:
    seen: list[bytes] = []

    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc123; Path=/\r\n"
                              b"Content-Length: 0\r\n\r\n")
        seen.append(await read_request(stream))
        await stream.send_all(OK)

    steps = [Step(Action.SEND, 0, b"POST /login HTTP/1.1\r\nHost: {host}\r\n\r\n", template=True),
             Step(Action.READ, 0, capture=(("session", "cookie:session"),)),
             Step(Action.SEND, 0, b"GET / HTTP/1.1\r\nCookie: session={session}\r\n\r\n",
                  template=True),
             Step(Action.READ, 0)]
    t = run(handler, steps)
    assert t.results[-1].ending == "done"
    assert b"Cookie: session=abc123" in seen[0]


def test_read_endings_any_close_timeout_cap() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await stream.send_all(b"x" * 100)
        await trio.sleep(0.3)
        await stream.send_all(b"y" * 10)
        await stream.aclose()

    t = run(handler, [Step(Action.READ, 0, until=ReadUntil.ANY),
                      Step(Action.READ, 0, until=ReadUntil.CLOSE, timeout_s=0.05),
                      Step(Action.READ, 0, until=ReadUntil.CLOSE, timeout_s=2),
                      Step(Action.READ, 1, until=ReadUntil.CLOSE, cap=20, timeout_s=2)])
    endings = [r.ending for r in t.results]
    assert endings == ["done", "timeout", "eof", "cap"]
    assert len(t.results[0].data) == 100 and t.results[2].data == b"y" * 10
    assert len(t.results[3].data) == 20


def test_fin_keeps_reading_and_rst_resets() -> None:
    seen: dict[str, object] = {}

    async def handler(stream: trio.SocketStream) -> None:
        data = await stream.receive_some(100)
        if data.startswith(b"half"):
            seen["eof"] = await stream.receive_some(100)  # b"" after our FIN
            await stream.send_all(b"bye")
            await stream.aclose()
            return
        try:
            while await stream.receive_some(100):
                pass
            seen["rst"] = "eof"
        except trio.BrokenResourceError as exc:
            seen["rst"] = type(exc.__cause__).__name__

    t = run(handler, [Step(Action.SEND, 0, b"half"), Step(Action.FIN, 0),
                      Step(Action.READ, 0, until=ReadUntil.CLOSE, timeout_s=2),
                      Step(Action.SEND, 1, b"full"), Step(Action.SLEEP, interval_s=0.05),
                      Step(Action.RST, 1), Step(Action.SLEEP, interval_s=0.1)])
    assert t.results[2].data == b"bye" and t.results[2].ending == "eof"
    assert seen["eof"] == b"" and seen["rst"] == "ConnectionResetError"


def test_connect_refused_is_an_observation_not_an_error() -> None:
    async def main() -> Transcript:
        sock = trio.socket.socket()
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nobody listens there now
        target = Target.from_url(f"http://127.0.0.1:{port}/")
        steps = (Step(Action.SEND, 0, b"x"), Step(Action.PROBE))
        return await execute(Program(steps, Check("none")), target)

    t = trio.run(main)
    assert [r.ending for r in t.results] == ["reset", "reset"]
    assert t.results[0].error.startswith("connect_refused")


def test_burst_probe_and_slow_read() -> None:
    connections = 0
    paths: list[bytes] = []

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal connections
        connections += 1
        request = await read_request(stream)
        if request:
            paths.append(request.split(b" ")[1])
            await stream.send_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                  b"Content-Length: 20000\r\n\r\n" + b"z" * 20000)
            await stream.aclose()

    t = run(handler, [Step(Action.BURST, count=25),
                      Step(Action.PROBE, path="/healthz"),
                      Step(Action.SEND, 3, b"GET /slow HTTP/1.1\r\n\r\n"),
                      Step(Action.SLOW_READ, 3, until=ReadUntil.CLOSE, chunk=4096,
                           interval_s=0.01, timeout_s=5)])
    burst, probe, _, slow = t.results
    assert burst.data.startswith(b"opened=25 failed=0") and burst.ending == "ok"
    assert probe.ending in ("done", "eof") and probe.data.startswith(b"HTTP/1.1 200")
    assert slow.ending == "eof" and len(slow.data) > 20000 and slow.elapsed_s >= 0.04
    assert b"/healthz" in paths and connections >= 27


def test_drip_sends_in_pieces_with_pauses() -> None:
    received = bytearray()

    async def handler(stream: trio.SocketStream) -> None:
        while chunk := await stream.receive_some(100):
            received.extend(chunk)

    t = run(handler, [Step(Action.DRIP, 0, b"abcdefghij", chunk=2, interval_s=0.02),
                      Step(Action.CLOSE, 0), Step(Action.SLEEP, interval_s=0.05)])
    assert t.results[0].ending == "ok" and t.results[0].elapsed_s >= 0.08
    assert bytes(received) == b"abcdefghij"


def test_ws_close_ends_the_read() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await stream.send_all(build_frame(Opcode.TEXT, b"hello")
                              + build_frame(Opcode.CLOSE, close_payload(1002)))
        await trio.sleep(5)

    t = run(handler, [Step(Action.READ, 0, until=ReadUntil.WS_CLOSE, timeout_s=3)])
    assert t.results[0].ending == "done" and t.results[0].elapsed_s < 2


def test_time_limit_cuts_the_program() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await trio.sleep(10)

    t = run(handler, [Step(Action.READ, 0, timeout_s=5), Step(Action.PROBE)], time_limit_s=0.3)
    assert len(t.results) == 1 and t.results[0].ending == "timeout"
    assert "time limit" in t.results[0].error and t.of_step(1) is None
    assert t.elapsed_s < 2


def test_target_faults_without_a_pid_are_not_run() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await trio.sleep(0)

    t = run(handler, [Step(Action.PAUSE_TARGET, interval_s=0.1),
                      Step(Action.LIMIT_TARGET_FILES, count=2, interval_s=0.1)])
    assert [r.ending for r in t.results] == ["error", "error"]
    assert all("pid" in r.error for r in t.results)


@pytest.fixture
def child() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait()


def _observe_during(child: subprocess.Popen[bytes], steps: list[Step],
                    probe: Callable[[psutil.Process], object]) -> tuple[Transcript, object]:
    seen: list[object] = []

    async def handler(stream: trio.SocketStream) -> None:
        await trio.sleep(0)

    async def main() -> Transcript:
        async with server(handler) as target, trio.open_nursery() as nursery:
            async def look() -> None:
                await trio.sleep(0.15)
                seen.append(probe(psutil.Process(child.pid)))
            nursery.start_soon(look)
            return await execute(Program(tuple(steps), Check("none")), target,
                                 pid=child.pid)

    transcript = trio.run(main)
    return transcript, seen[0]


def test_pause_is_undone_when_the_program_ends_early(child: subprocess.Popen[bytes]) -> None:
    t, during = _observe_during(child, [Step(Action.PAUSE_TARGET, interval_s=5),
                                        Step(Action.SLEEP, interval_s=0.3)],
                                lambda p: p.status())
    assert t.results[0].ending == "ok"
    assert during == psutil.STATUS_STOPPED
    assert psutil.Process(child.pid).status() != psutil.STATUS_STOPPED


def test_files_limit_is_lowered_then_restored(child: subprocess.Popen[bytes]) -> None:
    process = psutil.Process(child.pid)
    before = process.rlimit(resource.RLIMIT_NOFILE)
    t, during = _observe_during(child, [Step(Action.LIMIT_TARGET_FILES, count=3, interval_s=0.5),
                                        Step(Action.SLEEP, interval_s=0.3)],
                                lambda p: (p.rlimit(resource.RLIMIT_NOFILE)[0], p.num_fds()))
    assert t.results[0].ending == "ok"
    soft, fds = during
    assert soft == fds + 3 < before[0]
    assert process.rlimit(resource.RLIMIT_NOFILE) == before


def test_network_fault_runs_or_says_why_not() -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await stream.send_all(OK)

    reason = executor_netns.unavailable()
    t = run(handler, [Step(Action.NETEM, data=b"delay 20ms", interval_s=1.0),
                      Step(Action.SEND, 0, b"GET / HTTP/1.1\r\n\r\n"), Step(Action.READ, 0)])
    if reason:
        assert t.results[0].ending == "error" and t.results[0].error == reason
    else:
        assert t.results[0].ending == "ok" and t.results[2].elapsed_s >= 0.02
    assert t.results[2].data == OK


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0
                    or executor_netns.shutil.which("ip") is None, reason="needs root and ip")
def test_namespace_relay_carries_bytes_both_ways() -> None:
    """The namespace + relay machinery, without a qdisc (some kernels lack netem)."""
    async def handler(stream: trio.SocketStream) -> None:
        data = await stream.receive_some(100)
        await stream.send_all(b"echo:" + data)

    async def main() -> bytes:
        async with server(handler) as target, trio.open_nursery() as nursery:
            path = executor_netns.ImpairedPath((target.host, target.port), "")
            await path.start(nursery)
            try:
                stream = await path.connect(3)
                await stream.send_all(b"hi")
                reply = await stream.receive_some(100)
                await stream.aclose()
            finally:
                await path.close()
            nursery.cancel_scope.cancel()
            return reply

    assert trio.run(main) == b"echo:hi"
