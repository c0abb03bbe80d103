"""``assay hold`` end to end against servers the tests start: nginx holds every connection;
a server capped at fewer connections closes (or resets) the rest, and the counts say so."""

from __future__ import annotations

import json
import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assay_cli import ROOT, assay
from tests.servers import free_port, nginx

pytestmark = pytest.mark.integration

CLOSING = """
        location = /close { keepalive_timeout 0; return 200 "bye\\n"; }"""


@contextmanager
def capped_server(cap: int, reset: bool = False) -> Iterator[str]:
    """A TCP server (in a thread) that keeps at most ``cap`` connections open and closes
    any further one at once (FIN, or RST with ``reset``). A client's close frees its slot,
    so assay's pre-flight connect does not use one up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    held: set[socket.socket] = set()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for key, _ in selector.select(0.05):
                sock = key.fileobj
                if sock is listener:
                    while True:
                        try:
                            conn, _ = listener.accept()
                        except BlockingIOError:
                            break
                        if len(held) < cap:
                            held.add(conn)
                            selector.register(conn, selectors.EVENT_READ)
                            continue
                        if reset:
                            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                        conn.close()
                    continue
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    held.discard(sock)
                    sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for sock in held:
            sock.close()
        listener.close()
        selector.close()


def _hold(tmp_path: Path, target: str, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                           dict]:
    summary = tmp_path / "hold-summary.json"
    result = assay("hold", "--target", target, "--procs", "2", "--interval", "500ms",
                   "--results", str(tmp_path / "results"), "--summary-json", str(summary),
                   *args, timeout=60)
    assert summary.exists(), result.stdout + result.stderr
    return result, json.loads(summary.read_text())


def test_nginx_holds_500_connections(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _):
        target = url.removeprefix("http://").rstrip("/")
        result, summary = _hold(tmp_path, target, "--connections", "500", "--delay", "1ms",
                                "--hold", "2s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (summary["dialed"], summary["established"], summary["still_open"]) == \
        (500, 500, 500)
    assert summary["connect_failed"] == summary["closed_by_peer"] == summary["reset"] == 0
    assert summary["ok"] and summary["shortfalls"] == []
    assert summary["connect_ms"]["count"] == 500
    assert "still open     500 of 500 at the end" in result.stdout
    assert "[    end] dialed 500/500  established 500" in result.stdout
    # One row per interval, then the end, in the run directory.
    rows = Path(summary["intervals_csv"]).read_text().splitlines()
    assert rows[0].startswith("elapsed_s,dialed,established,closed_by_peer,reset")
    assert len(rows) >= 5 and rows[-1].endswith(",500")
    document = json.loads((Path(summary["results_path"]) / "validate-results.json")
                          .read_text())
    assert document["hold"]["still_open"] == 500 and document["exit_code"] == 0


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_a_server_capped_at_100_fails_with_the_counts(tmp_path: Path, reset: bool) -> None:
    with capped_server(100, reset=reset) as target:
        result, summary = _hold(tmp_path, target, "--connections", "300", "--delay", "1ms",
                                "--hold", "1s")
    assert result.returncode == 1, result.stdout + result.stderr
    lost = "reset" if reset else "closed_by_peer"
    kept = "closed_by_peer" if reset else "reset"
    assert (summary["dialed"], summary["established"], summary[lost], summary[kept],
            summary["still_open"]) == (300, 300, 200, 0, 100), summary
    assert summary["connect_failed"] == 0 and not summary["ok"]
    assert "still open     100 of 300 at the end" in result.stdout
    assert "verdict        FAILED" in result.stdout


def test_send_http_against_nginx(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _):
        result, summary = _hold(tmp_path, url + "healthz", "--connections", "200",
                                "--delay", "1ms", "--hold", "1s", "--send-http")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["still_open"] == 200
    assert summary["http"] == {"sent": 200, "responses": 200, "status_codes": {"200": 200},
                               "malformed": 0, "too_large": 0}


def test_a_connection_close_answer_counts_as_closed_by_peer(tmp_path: Path) -> None:
    with nginx(tmp_path, extra=CLOSING) as (url, _):
        result, summary = _hold(tmp_path, url + "close", "--connections", "50",
                                "--delay", "1ms", "--hold", "1s", "--send-http")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (summary["established"], summary["closed_by_peer"], summary["still_open"]) == \
        (50, 50, 0)
    assert summary["http"]["responses"] == 50


def test_a_low_open_file_limit_says_how_many_it_can_hold(tmp_path: Path) -> None:
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    summary_file = tmp_path / "summary.json"
    with capped_server(10_000) as target:
        result = subprocess.run(
            [sys.executable, "-m", "coordinator", "hold", "--target", target,
             "--connections", "600", "--delay", "0", "--hold", "1s", "--procs", "2",
             "--results", str(tmp_path / "results"), "--summary-json", str(summary_file)],
            capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=low_limit)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads(summary_file.read_text())
    capacity = summary["fd_capacity"]
    assert 0 < capacity < 600
    assert summary["never_dialed_fd_limit"] == 600 - capacity
    assert summary["dialed"] == summary["established"] == summary["still_open"] == capacity
    assert f"can hold at most {capacity}" in result.stdout
    assert f"the actors can hold at most {capacity} connections" in result.stderr


def test_a_closed_port_is_one_line_and_exit_3(tmp_path: Path) -> None:
    port = free_port()
    result = assay("hold", "--target", f"127.0.0.1:{port}", "--results", str(tmp_path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"assay: error: target 127.0.0.1:{port} accepts no connection: Connection refused"]
