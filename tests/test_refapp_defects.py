"""Each injectable defect does what the registry says, and is absent without its flag."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from wsproto.events import TextMessage

from refapp.defects import BODY_POOL_SIZE, BY_NAME, DEFECTS, SSE_LEAK_LIMIT, parse_defects
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
)

pytestmark = pytest.mark.integration

ITEM = {"name": "widget", "quantity": 1, "tags": ["t"]}


@pytest.fixture(scope="module")
def plain() -> Iterator[RefappProcess]:
    with start_refapp() as process:
        yield process


@pytest.fixture
def defective(request: pytest.FixtureRequest) -> Iterator[RefappProcess]:
    """A refapp with the defect (and extra arguments) that ``with_defect`` names."""
    name, extra = request.param
    with start_refapp(defects=[name], extra_args=extra) as process:
        yield process


def with_defect(name: str, *extra: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("defective", [(name, list(extra))], indirect=True, ids=[name])


def stats(app: RefappProcess) -> dict:
    with HttpClient(app.port) as client:
        return client.request("GET", "/stats").json()


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_registry_is_complete_and_validated() -> None:
    assert len(BY_NAME) == len(DEFECTS) >= 10
    # An invariant, or the lenient counter of a defect that breaks no MUST (ws-drop-empty).
    assert all(d.description and d.invariant.startswith(("I-", "ws.", "loris.")) for d in DEFECTS)
    assert parse_defects(["lost-write", "lost-write"]) == {"lost-write"}
    with pytest.raises(ValueError, match="valid: lost-write"):
        parse_defects(["bogus"])


# -- lost-write ------------------------------------------------------------------------------


def lost_writes(app: RefappProcess) -> tuple[list[int], bool]:
    """(PUT numbers whose write did not stick, whether a created item lost its tags)."""
    with HttpClient(app.port) as client:
        client.login()
        item = client.request("POST", "/items", ITEM).json()
        path = f"/items/{item['id']}"
        lost = []
        for n in range(1, 7):
            sent = {"name": f"v{n}", "quantity": n, "tags": []}
            acked = client.request("PUT", path, sent)
            assert acked.status == 200 and acked.json() == {"id": item["id"], **sent}
            if client.request("GET", path).json()["name"] != sent["name"]:
                lost.append(n)
        created = [client.request("POST", "/items", ITEM).json() for _ in range(4)]
        tags = [client.request("GET", f"/items/{c['id']}").json()["tags"] for c in created]
        return lost, any(t != ITEM["tags"] for t in tags)


@with_defect("lost-write")
def test_lost_write(defective: RefappProcess, plain: RefappProcess) -> None:
    assert lost_writes(defective) == ([3, 6], True)
    assert lost_writes(plain) == ([], False)


# -- parser front-end defects ----------------------------------------------------------------

LOGIN = b'{"username": "u", "password": "secret"}'
CONFLICTING_LENGTHS = (
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: 999\r\n"
    b"Connection: close\r\n\r\n%s" % (len(LOGIN), LOGIN)
)


@with_defect("accept-conflicting-content-length")
def test_accept_conflicting_content_length(defective: RefappProcess, plain: RefappProcess) -> None:
    assert statuses(exchange(defective.port, CONFLICTING_LENGTHS)) == [200]
    assert statuses(exchange(plain.port, CONFLICTING_LENGTHS)) == [400]


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CL_TE = (
    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
)


@with_defect("cl-te-desync")
def test_cl_te_desync(defective: RefappProcess, plain: RefappProcess) -> None:
    # Content-Length wins: the chunk data is parsed as a second request (404 for /smuggled).
    assert 404 in statuses(exchange(defective.port, CL_TE))
    assert statuses(exchange(plain.port, CL_TE)) == [400]


# -- h2c-crash -------------------------------------------------------------------------------

H2C = (
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
    b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
)


def vanish_after_h2c(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(H2C)
    reset(sock)


def accepts(port: int) -> bool:
    try:
        with HttpClient(port, timeout=1.0) as client:
            return client.request("GET", "/healthz").status == 200
    except OSError:
        return False


@with_defect("h2c-crash")
def test_h2c_crash(defective: RefappProcess, plain: RefappProcess) -> None:
    with HttpClient(defective.port) as kept:  # an existing connection survives the crash
        assert accepts(defective.port)
        vanish_after_h2c(defective.port)
        assert wait_for(lambda: not accepts(defective.port))
        assert defective.returncode is None
        assert kept.request("GET", "/healthz").status == 200
    vanish_after_h2c(plain.port)
    time.sleep(0.2)
    assert accepts(plain.port)


# -- WebSocket defects -----------------------------------------------------------------------


def unmasked_reply(port: int) -> list[tuple[int, bytes]]:
    client = WsClient(port)
    client.sock.sendall(frame(0x1, b"naked", masked=False))
    client.sock.settimeout(1.0)
    frames = parse_server_frames(client.sock.recv(65536))
    client.close()
    return frames


@with_defect("ws-accept-unmasked")
def test_ws_accept_unmasked(defective: RefappProcess, plain: RefappProcess) -> None:
    assert unmasked_reply(defective.port) == [(0x1, b"naked")]
    client = WsClient(defective.port)  # masked traffic still works
    client.send(TextMessage(data="masked"))
    assert [e.data for e in client.events()] == ["masked"]
    client.close()
    opcode, payload = unmasked_reply(plain.port)[0]
    assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1002


def bad_frame_reaction(port: int) -> bytes | None:
    """What the server sends after a bad-UTF-8 frame; None if nothing within 1 s."""
    client = WsClient(port)
    client.sock.sendall(frame(0x1, b"\xff"))
    try:
        return read_until_close(client.sock, timeout=1.0)
    except TimeoutError:
        return None
    finally:
        client.close()


@with_defect("ws-hang-on-bad-frame")
def test_ws_hang_on_bad_frame(defective: RefappProcess, plain: RefappProcess) -> None:
    assert bad_frame_reaction(defective.port) is None
    frames = parse_server_frames(bad_frame_reaction(plain.port) or b"")
    assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1007


# -- sse-leak-on-reset -----------------------------------------------------------------------


def subscribe_and_vanish(port: int) -> int:
    """Open /events, wait for the head, reset; returns the status code."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    status = statuses(sock.recv(4096))[0]
    reset(sock)
    return status


@with_defect("sse-leak-on-reset")
def test_sse_leak_on_reset(defective: RefappProcess, plain: RefappProcess) -> None:
    for _ in range(SSE_LEAK_LIMIT):
        assert subscribe_and_vanish(defective.port) == 200
    assert wait_for(lambda: stats(defective)["sse_subscribers"] == SSE_LEAK_LIMIT)
    assert subscribe_and_vanish(defective.port) == 503
    for _ in range(5):
        assert subscribe_and_vanish(plain.port) == 200
    assert wait_for(lambda: stats(plain)["sse_subscribers"] == 0)


# -- time bombs ------------------------------------------------------------------------------


def healthz_answers(port: int) -> bool:
    """True on a 200 within 0.5 s; False if connected but unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return sock.recv(4096).startswith(b"HTTP/1.1 200")
        except TimeoutError:
            return False


@with_defect("hang-after", "--defect-after", "1.5")
def test_hang_after(defective: RefappProcess, plain: RefappProcess) -> None:
    assert healthz_answers(defective.port)
    time.sleep(1.6)
    assert not healthz_answers(defective.port)
    assert defective.returncode is None
    assert healthz_answers(plain.port)


@with_defect("crash-after", "--defect-after", "0.5")
def test_crash_after(defective: RefappProcess, plain: RefappProcess) -> None:
    assert defective.popen.wait(timeout=5) == 70
    assert plain.returncode is None and healthz_answers(plain.port)


# -- leak-on-reset-mid-body ------------------------------------------------------------------


def abort_bodies(port: int, count: int) -> None:
    """Start request bodies and reset them; ``100 Continue`` proves the head was read."""
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        sock.sendall(
            b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        if statuses(sock.recv(4096)) == [100]:
            sock.sendall(b"{")
        reset(sock)


@with_defect("leak-on-reset-mid-body")
def test_leak_on_reset_mid_body(defective: RefappProcess, plain: RefappProcess) -> None:
    abort_bodies(defective.port, BODY_POOL_SIZE - 1)
    assert wait_for(lambda: stats(defective)["faults"]["aborted_bodies"] == BODY_POOL_SIZE - 1)
    abort_bodies(defective.port, 1)
    assert wait_for(
        lambda: (
            statuses(exchange(defective.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == [503]
        )
    )
    abort_bodies(plain.port, BODY_POOL_SIZE + 1)
    assert healthz_answers(plain.port)
