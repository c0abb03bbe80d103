"""refapp without defects: every route and every limit, checked on the wire."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)

from refapp.launch import RefappProcess, start_refapp
from refapp.testing import (
    HttpClient,
    WsClient,
    exchange,
    frame,
    parse_server_frames,
    read_until_close,
    reset,
    statuses,
    ws_handshake,
)

pytestmark = pytest.mark.integration

ITEM = {"name": "widget", "quantity": 3, "tags": ["a", "b"]}


@pytest.fixture(scope="module")
def app() -> Iterator[RefappProcess]:
    with start_refapp() as process:
        yield process


@pytest.fixture(scope="module")
def tight() -> Iterator[RefappProcess]:
    """Small limits so that rate limiting and timeouts show within a test's time budget."""
    args = ["--rate-limit", "5", "--header-timeout", "0.5", "--idle-timeout", "0.5"]
    with start_refapp(extra_args=args) as process:
        yield process


def stats(app: RefappProcess) -> dict:
    with HttpClient(app.port) as client:
        return client.request("GET", "/stats").json()


def wait_for(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- process contract ------------------------------------------------------------------------


def test_launch_reports_url_and_port(app: RefappProcess) -> None:
    assert app.url == f"http://127.0.0.1:{app.port}"
    assert app.port > 0 and app.pid == app.popen.pid and app.returncode is None


def test_sigterm_exits_zero_promptly_with_open_connections() -> None:
    with start_refapp() as process:
        ws = WsClient(process.port)
        sse = socket.create_connection(("127.0.0.1", process.port))
        sse.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sse.recv(4096).startswith(b"HTTP/1.1 200")
        idle = socket.create_connection(("127.0.0.1", process.port))
        started = time.monotonic()
        process.popen.send_signal(signal.SIGTERM)
        assert process.popen.wait(timeout=2.0) == 0
        assert time.monotonic() - started < 2.0
        for sock in (ws.sock, sse, idle):
            sock.close()


def test_sigint_exits_zero() -> None:
    with start_refapp() as process:
        process.popen.send_signal(signal.SIGINT)
        assert process.popen.wait(timeout=2.0) == 0


def test_unknown_defect_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "refapp", "--port", "0", "--defect", "nope"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "lost-write" in result.stderr


# -- plain routes ----------------------------------------------------------------------------


def test_healthz(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        reply = client.request("GET", "/healthz")
        assert reply.status == 200 and reply.json() == {"status": "ok"}
        head = client.request("HEAD", "/healthz")
        assert head.status == 200 and head.body == b""


def test_login_sets_session_cookie(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        reply = client.login("alice")
        assert reply.status == 200 and reply.json() == {"user": "alice"}
        cookie = reply.headers["set-cookie"]
        assert cookie.startswith("session=") and "Path=/" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "a", "password": "wrong"}, 401),
        ({"username": "a"}, 401),
        (b"{not json", 400),
        ([1, 2], 400),
    ],
)
def test_login_refusals(app: RefappProcess, body: object, status: int) -> None:
    with HttpClient(app.port) as client:
        reply = client.request("POST", "/login", body)
        assert reply.status == status and "set-cookie" not in reply.headers


def test_items_need_a_session(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        assert client.request("GET", "/items").status == 401
        assert client.request("POST", "/items", ITEM).status == 401
        client.cookie = "forged"
        assert client.request("GET", "/items/abc").status == 401


def test_crud_round_trip(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        client.login()
        created = client.request("POST", "/items", ITEM)
        assert created.status == 201
        item = created.json()
        assert item == {"id": item["id"], **ITEM}
        path = f"/items/{item['id']}"
        assert client.request("GET", path).json() == item
        assert client.request("GET", "/items").json() == {"items": [item]}
        replaced = client.request("PUT", path, {"name": "gadget", "quantity": 0})
        assert replaced.status == 200
        assert client.request("GET", path).json() == {
            "id": item["id"],
            "name": "gadget",
            "quantity": 0,
            "tags": [],
        }
        assert client.request("DELETE", path).status == 204
        assert client.request("GET", path).status == 404
        assert client.request("PUT", path, ITEM).status == 404
        assert client.request("DELETE", path).status == 404


def test_items_are_per_session(app: RefappProcess) -> None:
    with HttpClient(app.port) as one, HttpClient(app.port) as two:
        one.login()
        two.login()
        item = one.request("POST", "/items", ITEM).json()
        assert two.request("GET", "/items").json() == {"items": []}
        assert two.request("GET", f"/items/{item['id']}").status == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"nope", 400),
        ({"quantity": 1}, 422),
        ({"name": "", "quantity": 1}, 422),
        ({"name": "x" * 65, "quantity": 1}, 422),
        ({"name": "x", "quantity": -1}, 422),
        ({"name": "x", "quantity": 1_000_001}, 422),
        ({"name": "x", "quantity": True}, 422),
        ({"name": "x", "quantity": 1, "tags": "a"}, 422),
        ({"name": "x", "quantity": 1, "extra": 1}, 422),
    ],
)
def test_invalid_item_bodies(app: RefappProcess, body: object, status: int) -> None:
    with HttpClient(app.port) as client:
        client.login()
        reply = client.request("POST", "/items", body)
        assert reply.status == status and "error" in reply.json()


def test_logout_invalidates_session(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        client.login()
        token = client.cookie
        assert client.request("GET", "/items").status == 200
        assert client.request("POST", "/logout").status == 204
        client.cookie = token
        assert client.request("GET", "/items").status == 401


def test_unknown_route_and_wrong_method(app: RefappProcess) -> None:
    with HttpClient(app.port) as client:
        assert client.request("GET", "/nope").status == 404
        reply = client.request("DELETE", "/items")
        assert reply.status == 405 and reply.headers["allow"] == "GET, POST, HEAD, OPTIONS"
        assert client.request("POST", "/ws").status == 405
        assert client.request("GET", "/healthz?x=1").status == 200


def test_rate_limit_answers_429(tight: RefappProcess) -> None:
    with HttpClient(tight.port) as client:
        client.login()
        codes = [client.request("GET", "/items") for _ in range(8)]
        limited = [r for r in codes if r.status == 429]
        assert [r.status for r in codes[:5]] == [200] * 5 and limited
        assert limited[0].headers["retry-after"] == "1"
        assert client.request("GET", "/healthz").status == 200  # not session-limited


def test_stats_shape(app: RefappProcess) -> None:
    doc = stats(app)
    for key in ("sse_subscribers", "ws_sessions", "connections", "requests"):
        assert isinstance(doc[key], int)
    assert set(doc["faults"]) == {"resets", "half_closes", "aborted_bodies", "pauses",
                                  "accept_exhausted"}


# -- HTTP/1.1 framing and limits -------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(app: RefappProcess) -> None:
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert statuses(exchange(app.port, req * 3 + last)) == [200, 200, 200, 404]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET /healthz HTTP/1.1\r\nHost: in valid\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
        (
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
        ),
        (
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
    ],
)
def test_malformed_requests_are_rejected_and_closed(
    app: RefappProcess, raw: bytes, status: int
) -> None:
    canary = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    out = exchange(app.port, raw + canary)
    assert statuses(out) == [status]
    assert b"connection: close" in out.lower()


def test_asterisk_form_is_only_for_options(app: RefappProcess) -> None:
    options = b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
    out = exchange(app.port, options + b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [204, 400]
    assert b"allow: get, head, post, put, delete, options" in out.lower()


def test_chunked_body_over_the_cap_gets_413(app: RefappProcess) -> None:
    chunk = b"%x\r\n" % 65536 + b"a" * 65536 + b"\r\n"
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", app.port), timeout=3) as sock:
        sock.sendall(head)
        try:
            for _ in range(20):
                sock.sendall(chunk)
        except OSError:
            pass
        assert statuses(read_until_close(sock)) == [413]


def test_h2c_upgrade_is_declined_in_http11(app: RefappProcess) -> None:
    headers = [
        ("upgrade", "h2c"),
        ("connection", "Upgrade, HTTP2-Settings"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ]
    with HttpClient(app.port) as client:
        reply = client.request("GET", "/healthz", headers=headers)
        assert reply.status == 200 and reply.json() == {"status": "ok"}
        assert client.request("GET", "/healthz").status == 200  # connection still usable


def test_slow_loris_is_dropped(tight: RefappProcess) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        out = read_until_close(sock, timeout=3)
        assert statuses(out) == [408] and time.monotonic() - started < 2


def test_idle_keepalive_is_closed(tight: RefappProcess) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=3) as sock:
        assert read_until_close(sock, timeout=3) == b""


def test_expect_100_continue(app: RefappProcess) -> None:
    with socket.create_connection(("127.0.0.1", app.port), timeout=3) as sock:
        body = b'{"username": "a", "password": "secret"}'
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        assert statuses(read_until_close(sock)) == [200]


def test_aborted_body_is_counted(app: RefappProcess) -> None:
    before = stats(app)["faults"]
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=3)
    sock.sendall(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    )
    assert statuses(sock.recv(4096)) == [100]  # the head has been read
    sock.sendall(b"{")
    reset(sock)
    with socket.create_connection(("127.0.0.1", app.port), timeout=3) as half:
        half.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        half.shutdown(socket.SHUT_WR)
        assert statuses(read_until_close(half)) == [400]

    def counted() -> bool:
        after = stats(app)["faults"]
        return (
            after["aborted_bodies"] == before["aborted_bodies"] + 1
            and after["resets"] >= before["resets"] + 1
            and after["half_closes"] == before["half_closes"] + 1
        )

    assert wait_for(counted)


# -- WebSocket -------------------------------------------------------------------------------


def test_ws_echo_ping_and_close_handshake(app: RefappProcess) -> None:
    client = WsClient(app.port)
    assert wait_for(lambda: stats(app)["ws_sessions"] == 1)
    client.send(TextMessage(data="héllo"))
    assert [e.data for e in client.events()] == ["héllo"]
    client.send(BytesMessage(data=b"\x00\xff" * 1000))
    received = b""
    while len(received) < 2000:
        received += b"".join(e.data for e in client.events() if isinstance(e, BytesMessage))
    assert received == b"\x00\xff" * 1000
    client.send(Ping(payload=b"p"))
    assert [(type(e), e.payload) for e in client.events()] == [(Pong, b"p")]
    client.send(CloseConnection(code=1000, reason="bye"))
    closing = client.events()
    assert isinstance(closing[0], CloseConnection) and closing[0].code == 1000
    assert read_until_close(client.sock) == b""
    client.close()
    assert wait_for(lambda: stats(app)["ws_sessions"] == 0)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(0x1, b"hi", masked=False), 1002),  # unmasked client frame
        (frame(0x1, b"\xff\xfe"), 1007),  # invalid UTF-8
        (frame(0x9, b"x" * 126), 1002),  # oversized control frame
        (frame(0x9, b"x", fin=False), 1002),  # fragmented control frame
        (frame(0x3, b"x"), 1002),  # reserved opcode
    ],
)
def test_ws_protocol_violations_fail_the_connection(
    app: RefappProcess, bad: bytes, code: int
) -> None:
    client = WsClient(app.port)
    client.sock.sendall(bad)
    frames = parse_server_frames(read_until_close(client.sock))
    client.close()
    assert frames and frames[-1][0] == 0x8
    assert int.from_bytes(frames[-1][1][:2], "big") == code


def test_ws_message_over_1mib_gets_1009(app: RefappProcess) -> None:
    client = WsClient(app.port)
    piece = frame(0x2, b"x" * 65536, fin=False)
    try:
        client.sock.sendall(
            piece + b"".join(frame(0x0, b"x" * 65536, fin=False) for _ in range(17))
        )
    except OSError:
        pass
    frames = parse_server_frames(read_until_close(client.sock))
    client.close()
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1009


def test_ws_frame_declaring_too_much_gets_1009_at_once(app: RefappProcess) -> None:
    client = WsClient(app.port)
    header = bytes([0x82, 0x80 | 127]) + (1 << 53).to_bytes(8, "big") + b"\x01\x02\x03\x04"
    client.sock.sendall(header + b"abc")
    frames = parse_server_frames(read_until_close(client.sock, timeout=1.0))
    client.close()
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1009


@pytest.mark.parametrize(
    ("raw", "status", "header"),
    [
        (ws_handshake(key=""), 400, None),
        (ws_handshake(key="short"), 400, None),
        (ws_handshake(version="8"), 426, b"sec-websocket-version: 13"),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426, b"upgrade: websocket"),
    ],
)
def test_ws_bad_handshakes(app: RefappProcess, raw: bytes, status: int, header: bytes) -> None:
    out = exchange(app.port, raw)
    assert statuses(out) == [status]
    if header:
        assert header in out.lower()


# -- SSE -------------------------------------------------------------------------------------


def open_events(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while data.count(b"event: tick") < 2:
        data += sock.recv(65536)
    return sock, data


def test_sse_streams_ticks(app: RefappProcess) -> None:
    sock, data = open_events(app.port)
    sock.close()
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200")
    assert b"content-type: text/event-stream" in head and b"content-length" not in head
    assert b"id: " in data and b"data: {" in data


@pytest.mark.parametrize("disconnect", ["fin", "rst"])
def test_sse_slot_released_on_disconnect(app: RefappProcess, disconnect: str) -> None:
    sock, _ = open_events(app.port)
    assert wait_for(lambda: stats(app)["sse_subscribers"] == 1)
    if disconnect == "fin":
        sock.shutdown(socket.SHUT_WR)
    else:
        reset(sock)
    assert wait_for(lambda: stats(app)["sse_subscribers"] == 0, timeout=1.0)
    sock.close()
