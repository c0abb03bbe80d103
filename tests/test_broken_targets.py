"""Broken-but-reachable targets are judged (exit 1, a HIGH I-PREFLIGHT-* invariant, results
with the evidence), while a port where nothing listens stays "unreachable" (exit 3).

The hostile servers are plain sockets in threads, each doing one wrong thing to every
connection; the real ``assay run`` command is run against them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from actors.walker import Target
from coordinator.preflight import preflight
from tests.assay_cli import assay, invariant_status
from tests.servers import free_port

pytestmark = pytest.mark.integration

Behave = Callable[[socket.socket, threading.Event], None]


def _read_request(conn: socket.socket) -> None:
    conn.settimeout(5)
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"\x00\x17\x03garbage, not HTTP\xff\xfe\r\n\r\n")


def silent(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    stop.wait(30)


def endless_headers(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"f" * 80 + b"\r\n"
    sent = 0
    while not stop.is_set() and sent < 64 * 1024 * 1024:  # bounded even if never read
        conn.sendall(line * 64)
        sent += len(line) * 64


def never_ending_body(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial body")
    stop.wait(30)


def not_found(conn: socket.socket, stop: threading.Event) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                 b"not found")


@contextlib.contextmanager
def hostile(behave: Behave) -> Iterator[int]:
    """A loopback server doing ``behave`` to every connection; yields its port."""
    stop = threading.Event()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)

    def handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            behave(conn, stop)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _run(port: int, tmp_path: Path):
    started = time.monotonic()
    # Each pre-flight probe lasts the request timeout: 3 s keeps a silent target's two
    # confirming probes short (the default 10 s would take 20 s).
    result = assay("run", "--target", f"http://127.0.0.1:{port}/", "--duration", "30s",
                   "--request-timeout", "3s", "--results", str(tmp_path), timeout=60)
    return result, time.monotonic() - started


@pytest.mark.parametrize("behave, invariant, fragment", [
    (garbage, "I-PREFLIGHT-GARBAGE", "not an HTTP/1.x response"),
    (silent, "I-PREFLIGHT-SILENT", "sent nothing"),
    (endless_headers, "I-PREFLIGHT-ENDLESS", "endless header lines"),
    (never_ending_body, "I-PREFLIGHT-ENDLESS", "body unfinished"),
], ids=["garbage", "silent", "endless-headers", "never-ending-body"])
def test_broken_target_is_a_verdict(behave: Behave, invariant: str, fragment: str,
                                    tmp_path: Path) -> None:
    with hostile(behave) as port:
        result, took = _run(port, tmp_path)
    assert result.returncode == 1, result.stderr
    assert took < 15, took
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("assay:")]
    assert len(lines) == 1 and "target broken" in lines[0] and invariant in lines[0], \
        result.stderr
    assert fragment in lines[0] and "cannot be load-tested" in lines[0]
    runs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(runs) == 1
    document = json.loads((runs[0] / "validate-results.json").read_text())
    assert document["status"] == "failed" and document["exit_code"] == 1
    assert invariant_status(document, invariant) == "failed"
    assert invariant_status(document, "I-LIVENESS") == "not_judged"
    attempts = document["preflight"]["attempts"]
    assert len(attempts) >= 2 and all(a["outcome"] != "answered" for a in attempts)
    evidence = attempts[0]["evidence"]["text"]
    if behave is silent:
        assert attempts[0]["received_bytes"] == 0 and attempts[0]["elapsed_s"] >= 1
    else:
        assert evidence and len(evidence) <= 4 * 4096  # capped (escaped text)
    assert attempts[0]["connect_s"] is not None
    assert document["tier_1"]["examples"], "the evidence travels in the examples too"


def test_refused_port_stays_unreachable_exit_3(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result, took = _run(port, tmp_path)
    assert result.returncode == 3, result.stderr
    assert took < 12
    assert "unreachable" in result.stderr and "connect_refused" in result.stderr
    assert not list(tmp_path.iterdir())


def test_one_early_garbage_answer_is_forgiven() -> None:
    """A target still starting may botch one connection: two broken probes in a row count."""
    seen = []

    def flaky(conn: socket.socket, stop: threading.Event) -> None:
        seen.append(1)
        if len(seen) == 1:
            garbage(conn, stop)
        else:
            not_found(conn, stop)

    with hostile(flaky) as port:
        result = trio.run(preflight, Target.from_url(f"http://127.0.0.1:{port}/"), "/", 5.0)
    assert [a.answered for a in result.attempts] == [False, True]


def test_refused_is_unreachable_not_broken() -> None:
    port = free_port()
    result = trio.run(preflight, Target.from_url(f"http://127.0.0.1:{port}/"), "/", 1.0)
    assert result.broken_run == () and not result.last.answered
    assert result.last.finding is None and "connect_refused" in result.last.cause


def test_well_formed_error_status_is_an_answer() -> None:
    """A 404 on the health path is not broken: the run goes on exactly as before."""
    with hostile(not_found) as port:
        result = trio.run(preflight, Target.from_url(f"http://127.0.0.1:{port}/"), "/", 5.0)
    assert result.last.answered and len(result.attempts) == 1
    assert result.last.finding is not None and result.last.finding.status == 404
