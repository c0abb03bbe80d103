"""``assay backend``: the pure echo/record module, then the server on a loopback port."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws

from actors.backend_server import Backend, bound_port, open_listeners
from protocols import backend_echo
from protocols.backend_echo import ReceivedRequest, ReceivedRing, Record, Route
from tests.assay_cli import ROOT


def _request(target: str = "/x") -> ReceivedRequest:
    return ReceivedRequest("GET", target, "1.1", (("Host", "p"), ("X-Assay-Seq", "3")), 0,
                           "127.0.0.1", 40000, 7, 2)


def test_echo_document_says_what_arrived() -> None:
    doc = json.loads(backend_echo.echo_body(5, _request()))
    assert doc["backend"] == 5 and doc["request_line"] == "GET /x HTTP/1.1"
    assert doc["headers"] == [["Host", "p"], ["X-Assay-Seq", "3"]]
    assert (doc["client_port"], doc["connection"], doc["connection_request"]) == (40000, 7, 2)


def test_routes_and_what_is_recorded() -> None:
    assert backend_echo.route_of("/healthz", False) is Route.HEALTH
    assert backend_echo.route_of("/__assay/received?since=3", False) is Route.RECEIVED
    assert backend_echo.route_of("/ws", True) is Route.WS
    assert backend_echo.route_of("/ws", False) is Route.ECHO
    assert backend_echo.route_of("/sse?x", False) is Route.SSE
    assert not backend_echo.recorded(Route.HEALTH) and backend_echo.recorded(Route.ECHO)
    assert backend_echo.parse_since("/r?since=12") == 12
    assert backend_echo.parse_since("/r?since=-1") == backend_echo.parse_since("/r") == 0


def test_ring_is_bounded_numbered_and_lossless() -> None:
    ring = ReceivedRing(capacity=3)
    every_byte = bytes(range(256))
    for i in range(5):
        ring.add(float(i), i, 1000 + i, every_byte + bytes([i]))
    assert [r.seq for r in ring.records] == [3, 4, 5] and ring.dropped == 2
    assert [r.seq for r in ring.since(3)] == [4, 5]
    page = json.loads(backend_echo.received_page(1, ring, 4))
    assert page["last_seq"] == 5 and page["dropped"] == 2
    back = Record.from_json(page["records"][0])
    assert back.raw == every_byte + bytes([4]) and back.seq == 5
    big = ring.add(0.0, 1, 1, b"x" * (backend_echo.MAX_RAW_BYTES + 10))
    assert big.to_json()["truncated"] and big.raw_length == backend_echo.MAX_RAW_BYTES + 10


async def _exchange(port: int, data: bytes, until: bytes, closes: bool = False) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    got = b""
    async with stream:
        await stream.send_all(data)
        with trio.fail_after(5):
            while (until not in got) or closes:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                got += chunk
    return got


def test_server_echoes_records_refuses_and_upgrades() -> None:
    trio.run(_server_echoes_records_refuses_and_upgrades)


async def _server_echoes_records_refuses_and_upgrades() -> None:
    backend = Backend(9, ReceivedRing(100))
    listeners = await open_listeners("127.0.0.1", [0])
    port = bound_port(listeners[0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.serve, listeners[0])
        two = (b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /b HTTP/1.1\r\nHost: h\r\nX-Assay-Client: 4\r\n\r\n")
        answer = await _exchange(port, two, b'"/b"')
        bodies = [json.loads(part[:part.index(b"}") + 1]) for part in
                  answer.split(b"\r\n\r\n")[1:]]
        assert [b["target"] for b in bodies] == ["/a", "/b"]
        assert bodies[0]["body_length"] == 3 and bodies[1]["connection_request"] == 2
        assert bodies[0]["backend"] == 9
        # A field line without a colon (RFC 9112 §5: field-line = field-name ":" ...).
        bad = b"POST /c HTTP/1.1\r\nHost: h\r\nNo colon here\r\n\r\n"
        refused = await _exchange(port, bad, b"", closes=True)
        assert refused.startswith(b"HTTP/1.1 400")
        await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", b"ok\n")
        page = await _exchange(port, b"GET /__assay/received?since=1 HTTP/1.1\r\nHost: h\r\n"
                               b"Connection: close\r\n\r\n", b"", closes=True)
        records = json.loads(page.split(b"\r\n\r\n", 1)[1])["records"]
        assert [r["raw"].encode("latin-1") for r in records] == [
            two[two.index(b"GET"):], bad]
        assert records[1]["error"].startswith("refused")
        assert [r.seq for r in backend.ring.records] == [1, 2, 3]  # healthz not recorded
        await _websocket(port)
        # A body larger than what is kept: counted in full, its start kept, and the
        # request pipelined behind it recorded whole.
        big = b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200000
        after = b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n"
        await _exchange(port, big + after, b'"/after"')
        *_, ws_record, big_record, after_record = backend.ring.records
        assert big_record.raw_length == len(big) and big_record.raw == big[:len(big_record.raw)]
        assert big_record.to_json()["truncated"] and after_record.raw == after
        assert ws_record.raw.startswith(b"GET /ws HTTP/1.1")
        nursery.cancel_scope.cancel()


async def _websocket(port: int) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(client.send(ws.Request(host="h", target="/ws")))
        texts: list[str] = []
        with trio.fail_after(5):
            while len(texts) < 2:
                client.receive_data(await stream.receive_some(65536))
                for event in client.events():
                    if isinstance(event, ws.AcceptConnection):
                        await stream.send_all(client.send(ws.TextMessage(data="hello")))
                    elif isinstance(event, ws.TextMessage):
                        texts.append(event.data)
    assert json.loads(texts[0])["target"] == "/ws" and texts[1] == "hello"


def test_cli_lines_port_in_use_and_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "coordinator", "backend", "--count", "2",
                             "--id-base", "10"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().split() for _ in range(2)]  # type: ignore[union-attr]
        assert [line[:2] for line in lines] == [["backend", "10"], ["backend", "11"]]
        port = lines[0][-1].rsplit(":", 1)[1]
        busy = subprocess.run([sys.executable, "-m", "coordinator", "backend", "--count", "1",
                               "--base-port", port], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
        assert busy.returncode == 3 and busy.stderr.count("\n") == 1
        assert "Address already in use" in busy.stderr
        bad = subprocess.run([sys.executable, "-m", "coordinator", "backend", "--count", "x"],
                             cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(timeout=10) == 0 and time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_malformed_websocket_upgrade_is_refused_and_the_backend_keeps_serving() -> None:
    trio.run(_malformed_upgrade)


async def _malformed_upgrade() -> None:
    backend = Backend(1, ReceivedRing(100))
    listeners = await open_listeners("127.0.0.1", [0])
    port = bound_port(listeners[0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.serve, listeners[0])
        # No Sec-WebSocket-Key/-Version. RFC 6455 §4.2.1: "the server MUST stop processing
        # the client's handshake and return an HTTP response with an appropriate error
        # code (such as 400 Bad Request)". It used to take every backend down.
        upgrade = (b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                   b"Upgrade: websocket\r\n\r\n")
        refused = await _exchange(port, upgrade, b"", closes=True)
        assert refused.startswith(b"HTTP/1.1 400")
        await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", b"ok\n")
        assert backend.ring.records[-1].raw.startswith(b"GET /ws HTTP/1.1")
        nursery.cancel_scope.cancel()
