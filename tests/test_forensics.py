"""Forensics never crash: vanished pids, missing tools, silent targets, and the remote agent."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio
import zmq

from coordinator import agent, forensics
from coordinator.forensics import Dossier, capture_process, snapshot_urls
from protocols import wire

#: Real processes (a ``sleep`` target, the agent, tools) and loopback sockets throughout.
pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "30"])
    comm = Path(f"/proc/{process.pid}/comm")
    for _ in range(200):  # until the fork has become "sleep" (exec done)
        if comm.read_text().strip() == "sleep":
            break
        time.sleep(0.005)
    yield process
    process.kill()
    process.wait()


def lines(dossier: Dossier) -> dict[str, str]:
    return {c.name: ("ok" if c.ok else c.reason) for c in dossier.captures}


def test_a_live_process_is_captured_and_every_capture_is_in_the_ledger(tmp_path, sleeper):
    dossier = Dossier(tmp_path)
    capture_process(sleeper.pid, None, dossier)
    got = lines(dossier)
    for name in ("status", "limits", "maps", "smaps_rollup", "fds.txt", "threads.txt",
                 "psutil.json"):
        assert got[f"process/{name}"] == "ok", got
        assert (tmp_path / "process" / name).stat().st_size > 0
    assert got["process/sockets.txt"] == "no target port known"
    assert got["process/py-spy.txt"] == "target is not a Python process"
    assert "Name:\tsleep" in (tmp_path / "process/status").read_text()
    dossier.write_status()
    status = (tmp_path / "forensics_status.txt").read_text()
    assert status.startswith("# forensics:") and "missing  process/sockets.txt" in status


def test_a_vanished_pid_is_recorded_missing_not_raised(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    dossier = Dossier(tmp_path)
    capture_process(gone.pid, 8080, dossier)
    assert dossier.captures and not any(c.ok for c in dossier.captures)
    assert all("does not exist" in c.reason for c in dossier.captures)


def test_a_zombie_is_recorded_as_exited(tmp_path):
    child = subprocess.Popen(["true"])
    for _ in range(200):  # exited but not reaped: a zombie
        if Path(f"/proc/{child.pid}/status").read_text().find("State:\tZ") >= 0:
            break
        time.sleep(0.005)
    dossier = Dossier(tmp_path)
    capture_process(child.pid, None, dossier)
    child.wait()
    got = lines(dossier)
    assert got["process/status"] == "ok"
    assert "zombie" in got["process/maps"] and "zombie" in got["process/py-spy.txt"]


def test_a_pid_that_vanishes_mid_capture(tmp_path, sleeper, monkeypatch):
    original = forensics._fds

    def killing_fds(proc_dir: Path) -> str:
        sleeper.kill()
        sleeper.wait()
        return original(proc_dir)

    monkeypatch.setattr(forensics, "_fds", killing_fds)
    dossier = Dossier(tmp_path)
    capture_process(sleeper.pid, None, dossier)
    got = lines(dossier)
    assert got["process/status"] == "ok"
    assert "vanished" in got["process/fds.txt"] or "does not exist" in got["process/fds.txt"]
    assert "vanished" in got["process/psutil.json"]


def test_missing_tools_are_named(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    dossier = Dossier(tmp_path / "d")
    capture_process(os.getpid(), 9, dossier, environ={"PATH": str(empty)})
    got = lines(dossier)
    assert got["process/sockets.txt"] == "ss not found on PATH"
    assert got["process/py-spy.txt"] == "py-spy not found on PATH"  # this is a Python pid


def test_tool_failure_and_timeout_are_missing_with_the_reason(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "ss").write_text("#!/bin/sh\necho 'Cannot open netlink socket' >&2\nexit 1\n")
    (tools / "py-spy").write_text("#!/bin/sh\n/bin/sleep 5\n")
    for tool in ("ss", "py-spy"):
        (tools / tool).chmod(0o755)
    monkeypatch.setattr(forensics, "TOOL_TIMEOUT_S", 0.3)
    dossier = Dossier(tmp_path / "d")
    capture_process(os.getpid(), 9, dossier, environ={"PATH": str(tools)})
    got = lines(dossier)
    assert got["process/sockets.txt"] == "ss exited 1: Cannot open netlink socket"
    assert "did not finish within 0.3 s" in got["process/py-spy.txt"]


def test_write_caps_size_and_says_so(tmp_path):
    dossier = Dossier(tmp_path)
    capture = dossier.write("big.bin", b"x" * 100, cap=10)
    assert capture.ok and capture.size == 10 and "truncated from 100" in capture.reason
    assert (tmp_path / "big.bin").read_bytes() == b"x" * 10


async def _server(behaviour: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        if behaviour == "partial":
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
            await trio.sleep(10)  # then stops answering mid-capture
        elif behaviour == "silent":
            await trio.sleep(10)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def test_a_target_that_stops_answering_mid_capture(tmp_path):
    async def main() -> Dossier:
        dossier = Dossier(tmp_path)
        async with trio.open_nursery() as nursery:
            silent = await nursery.start(_server, "silent")
            partial = await nursery.start(_server, "partial")
            await snapshot_urls(dossier, {
                "health": f"http://127.0.0.1:{silent}/healthz",
                "stats": f"http://127.0.0.1:{partial}/stats",
                "metrics": "http://127.0.0.1:9/metrics",
            }, timeout=0.3)
            nursery.cancel_scope.cancel()
        return dossier

    got = lines(trio.run(main))
    assert "no complete answer within 0.3 s (0 bytes read)" in got["target/health.http"]
    assert "(43 bytes read)" in got["target/stats.http"]
    assert "connect failed: connect_refused" in got["target/metrics.http"]


# -- the forensics agent ---------------------------------------------------------------------


def _agent_thread(args: argparse.Namespace) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(agent.run_agent(args)), daemon=True)
    thread.start()
    _wait_listening(args.bind)
    return thread, codes


def _wait_listening(endpoint: str, timeout: float = 10.0) -> None:
    """The agent binds in its thread; ask only once it listens (a loaded CI host is slow)."""
    import socket
    import time

    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)


def _args(endpoint: str, **extra) -> argparse.Namespace:
    return argparse.Namespace(bind=endpoint, pid=None, secret_key=None, authorized_keys=None,
                              max_requests=1, **extra)


def _port() -> int:
    from replay.launcher import free_port

    return free_port()


def test_agent_answers_over_loopback(tmp_path, sleeper, monkeypatch):
    monkeypatch.setattr(agent.signal, "signal", lambda *a: None)  # not the main thread
    endpoint = f"tcp://127.0.0.1:{_port()}"
    thread, codes = _agent_thread(_args(endpoint))
    dossier = Dossier(tmp_path)
    agent.request_forensics(endpoint, dossier, pid=sleeper.pid, port=0, budget_s=20)
    thread.join(25)
    assert codes == [0]
    got = lines(dossier)
    assert got.get("agent/process/status") == "ok", got
    assert "Name:\tsleep" in (tmp_path / "agent/process/status").read_text()
    assert got["agent/process/sockets.txt"] == "no target port known"


def test_agent_with_curve_keys_and_a_stranger_is_refused(tmp_path, sleeper, monkeypatch):
    monkeypatch.setattr(agent.signal, "signal", lambda *a: None)
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    monkeypatch.setenv("ASSAY_AGENT_SECRET_KEY", server_secret.decode())
    monkeypatch.setenv("ASSAY_AGENT_CLIENT_KEYS", client_public.decode())
    endpoint = f"tcp://127.0.0.1:{_port()}"
    thread, codes = _agent_thread(_args(endpoint))
    stranger = Dossier(tmp_path / "stranger")
    _, other_secret = zmq.curve_keypair()
    agent.request_forensics(endpoint, stranger, pid=sleeper.pid, port=0, budget_s=0.5,
                            server_key=server_public.decode(),
                            client_key=other_secret.decode())
    assert "did not answer" in lines(stranger)["agent/*"]
    dossier = Dossier(tmp_path / "ok")
    agent.request_forensics(endpoint, dossier, pid=sleeper.pid, port=0, budget_s=5,
                            server_key=server_public.decode(), client_key=client_secret.decode())
    thread.join(10)
    assert codes == [0] and lines(dossier)["agent/process/status"] == "ok"


def test_agent_refuses_a_non_loopback_bind_without_keys(capsys, monkeypatch):
    monkeypatch.delenv("ASSAY_AGENT_SECRET_KEY", raising=False)
    monkeypatch.delenv("ASSAY_AGENT_CLIENT_KEYS", raising=False)
    assert agent.run_agent(_args("tcp://0.0.0.0:7999")) == 2
    assert "refusing to bind" in capsys.readouterr().err
    dossier = Dossier(Path(os.environ.get("TMPDIR", "/tmp")) / f"assay-test-{os.getpid()}")
    agent.request_forensics("tcp://192.0.2.1:7999", dossier, pid=1, port=0, budget_s=0.1)
    assert "CURVE keys are required" in lines(dossier)["agent/*"]


def test_agent_answers_garbage_with_a_reason():
    reply = agent.answer(b"\x00not msgpack", None)
    assert reply.files == {} and "malformed request" in reply.status["request"]
    request = wire.encode(wire.ForensicsRequest("r1", 0, 1, 1.0))
    reply = wire.decode(wire.encode(agent.answer(request, None)))
    assert isinstance(reply, wire.ForensicsReply) and "nothing listens" in reply.status[
        "process/*"]


def test_agent_cli_parses(tmp_path):
    done = subprocess.run([sys.executable, "-m", "coordinator", "agent", "--bind", "nonsense"],
                          capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 2 and "tcp://HOST:PORT" in done.stderr
