"""HTTP/2 for the Markov slice and ``assay load`` (``--http2``): the I/O shell against a
scripted server (deadlines, a dying connection, a walker leaving) and a TLS server that
offers no h2, and ``assay run --http2 --slices markov`` (and ``assay load --http2``) against
hypercorn (h2c prior knowledge) and nginx (TLS, ALPN h2). The sans-IO client's own tests
are in ``test_h2_client``."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import pytest
import trio

from actors import h2_session, net, tls
from actors.walker import Target
from protocols.h2_client import request_fields
from protocols.tls_options import TlsOptions
from tests.servers import free_port, nginx, wait_for_port

# -- the I/O shell ---------------------------------------------------------------------------


def test_a_tls_server_without_h2_is_named(tmp_path: Path):
    """RFC 9113 §3.2: h2 over TLS is chosen by ALPN; a server that picks http/1.1 must
    produce the clear error, not a stream of protocol errors."""
    from tests.tls_certs import test_certs

    certs = test_certs()
    tls.install(TlsOptions(ca_file=str(certs.ca)))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certs.cert, certs.key)
    server_ctx.set_alpn_protocols(["http/1.1"])

    async def main() -> str | None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def handler(stream: trio.SocketStream) -> None:
            wrapped = trio.SSLStream(stream, server_ctx, server_side=True)
            try:
                await wrapped.do_handshake()
                await wrapped.receive_some(1024)
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            why = await h2_session.check(Target.from_url(f"https://127.0.0.1:{port}/"),
                                         "/", 5.0)
            nursery.cancel_scope.cancel()
        return why

    try:
        why = trio.run(main)
    finally:
        tls.install(TlsOptions())
    assert why is not None and "did not negotiate h2 (ALPN chose http/1.1)" in why


# -- assay run --http2 -----------------------------------------------------------------------

MODEL = textwrap.dedent("""\
    version: 1
    start: create
    states:
      create:
        request: POST /items
        body: {name: widget}
        expect: [201]
        capture: {id: id}
        write: item
        next: {read: 1}
      read:
        request: GET /items/{id}
        expect: [200]
        read: item
        next: {create: 1}
    """)

APP = textwrap.dedent("""\
    import itertools, json
    ITEMS, IDS = {}, itertools.count(1)
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path, status, out = scope["path"], 404, b"{}"
        if scope["method"] == "POST" and path == "/items":
            item = dict(json.loads(body), id=str(next(IDS)))
            ITEMS[item["id"]] = item
            status, out = 201, json.dumps(item).encode()
        elif path.startswith("/items/") and path[7:] in ITEMS:
            status, out = 200, json.dumps(ITEMS[path[7:]]).encode()
        elif path in ("/", "/healthz"):
            status, out = 200, b"{}"
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"date", b"Thu, 01 Jan 2026 00:00:00 GMT")]})
        await send({"type": "http.response.body", "body": out})
    """)


def _assay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True,
                          text=True, timeout=60)


def _results(results: Path) -> dict:
    (run_dir,) = results.iterdir()
    return json.loads((run_dir / "validate-results.json").read_text())


def _markov(document: dict) -> dict:
    return document["tier_1"]["slices"]["markov"]["counters"]


def test_run_http2_against_hypercorn_h2c(tmp_path: Path):
    """Prior knowledge on cleartext; POST then GET of the same item (I-DRV-1 judged)."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "model.yaml").write_text(MODEL)
    # Hypercorn 0.18 abandons the streams in flight when a connection reaches its
    # keep_alive_max_requests (1000): its GOAWAY closes its h2 state, the accepted streams
    # are never answered. assay counts that, rightly; this test is about the rest.
    (tmp_path / "hypercorn.toml").write_text("keep_alive_max_requests = 100000000\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "-c", "hypercorn.toml", "--bind",
         f"127.0.0.1:{port}", "app:app"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        done = _assay("run", "--target", f"http://127.0.0.1:{port}/", "--http2",
                      "--slices", "markov", "--markov", str(tmp_path / "model.yaml"),
                      "--duration", "2s", "--procs", "1", "--concurrency", "8",
                      "--leak-probes", "off", "--results", str(tmp_path / "results"))
        (tmp_path / "body.json").write_text('{"name": "w"}')
        loaded = _assay("load", "--target", f"http://127.0.0.1:{port}/items", "--http2",
                        "--vus", "4", "--duration", "1s", "--method", "POST", "--header",
                        "Content-Type: application/json", "--body-file",
                        str(tmp_path / "body.json"), "--procs", "1",
                        "--results", str(tmp_path / "load"))
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-3000:]
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    load = _results(tmp_path / "load")["tier_1"]["slices"]["load"]["counters"]
    assert load["load.default.requests"] == load["load.default.status.201"] > 20
    document = _results(tmp_path / "results")
    counters = _markov(document)
    assert counters["markov.requests"] > 50
    assert counters.get("markov.errors", 0) == 0
    assert counters["markov.status_2xx"] == counters["markov.requests"]
    assert 1 <= counters["markov.h2.connections"] <= 2  # 8 walkers, one connection
    assert "I-DRV-1" in {v["id"] for v in document["invariants"]["passed"]}


def test_run_http2_against_nginx_over_tls(tmp_path: Path):
    """ALPN h2; nginx's access log shows HTTP/2.0 request lines, on one or two TCP
    connections for the whole run."""
    from tests.tls_certs import test_certs

    # The default log format's request line names the protocol ("GET / HTTP/2.0").
    with nginx(tmp_path, tls=True, extra="access_log {prefix}/access.log;") as (url, _):
        done = _assay("run", "--target", url, "--ca-file", str(test_certs().ca), "--http2",
                      "--slices", "markov", "--duration", "2s", "--procs", "1",
                      "--concurrency", "16", "--leak-probes", "off",
                      "--results", str(tmp_path / "results"))
        log = (tmp_path / "nginx" / "access.log").read_text()
    assert done.returncode == 0, done.stderr[-3000:]
    counters = _markov(_results(tmp_path / "results"))
    assert counters["markov.requests"] > 100
    assert counters.get("markov.errors", 0) == 0
    assert counters["markov.h2.connections"] <= 2
    over_h2 = log.count('HTTP/2.0"')
    assert over_h2 >= counters["markov.requests"]


def test_run_http2_against_an_http1_only_server_says_why(tmp_path: Path):
    with nginx(tmp_path) as (url, _):
        done = _assay("run", "--target", url, "--http2", "--slices", "markov",
                      "--duration", "2s", "--procs", "1",
                      "--results", str(tmp_path / "results"))
    assert done.returncode == 3
    assert "did not answer HTTP/2" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(autouse=True)
def _no_leftover_tls() -> None:
    yield
    tls.install(TlsOptions())



# -- the shell against a scripted h2 server: deadlines, dead connections -------------------


async def _scripted_server(stream: trio.SocketStream) -> None:
    """Answers each request by its path: /hang never, /die closes the connection, anything
    else 200 with the path as the body."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.initiate_connection()
    await stream.send_all(conn.data_to_send())
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if path == b"/die":
                    await stream.aclose()
                    return
                if path != b"/hang":
                    conn.send_headers(event.stream_id, [(b":status", b"200")])
                    conn.send_data(event.stream_id, path, end_stream=True)
        await stream.send_all(conn.data_to_send())


def test_deadlines_and_dead_connections_stay_with_their_streams():
    async def main() -> dict:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        target = Target.from_url(f"http://127.0.0.1:{port}/")
        pool = h2_session.H2Pool(5.0)
        seen: dict = {}

        def fields(path: str) -> list:
            return request_fields("GET", path, target.host_header, "http", (), None)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _scripted_server, listeners)
            async with pool.member(target) as member:
                with trio.move_on_after(0.3) as waited:
                    await member.request(fields("/hang"), None)
                seen["hang timed out"] = waited.cancelled_caught
                seen["same connection after"] = (await member.request(fields("/a"), None)).body
                seen["opened"] = pool.opened
                hanging = trio.Event()

                async def hang_then_fail() -> None:
                    try:
                        hanging.set()
                        await member.request(fields("/hang"), None)
                    except net.TransportError as exc:
                        seen["other stream"] = exc

                async with trio.open_nursery() as walkers:
                    walkers.start_soon(hang_then_fail)
                    await hanging.wait()
                    await trio.sleep(0.05)
                    try:
                        await member.request(fields("/die"), None)
                    except net.TransportError as exc:
                        seen["died"] = exc
                seen["next opens another"] = (await member.request(fields("/b"), None)).body
                seen["opened after"] = pool.opened
            nursery.cancel_scope.cancel()
        return seen

    async def bounded() -> dict:
        with trio.fail_after(10):
            return await main()

    seen = trio.run(bounded)
    assert seen["hang timed out"] is True
    assert seen["same connection after"] == b"/a" and seen["opened"] == 1
    assert getattr(seen["died"], "cause", None) == "eof"
    assert getattr(seen["other stream"], "cause", None) == "eof"  # failed, did not hang
    assert seen["next opens another"] == b"/b" and seen["opened after"] == 2


def test_a_refused_connect_is_marked_as_connecting():
    """A connection that never opened reached nothing: the walker records no ``sent_at``
    for it (crash attribution keeps refused connects apart, as over HTTP/1.1)."""
    async def main() -> tuple[str, bool]:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        for listener in listeners:
            await listener.aclose()
        target = Target.from_url(f"http://127.0.0.1:{port}/")
        async with h2_session.H2Pool(5.0).member(target) as member:
            with pytest.raises(net.TransportError) as raised:
                await member.request(
                    request_fields("GET", "/", target.host_header, "http", (), None), None)
            return raised.value.cause, member.connecting

    assert trio.run(main) == ("connect_refused", True)


async def _late_server(stream: trio.SocketStream) -> None:
    """Answers each request 0.3 s after it came, with its path as the body."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.initiate_connection()
    lock = trio.Lock()

    async def send() -> None:
        async with lock:
            await stream.send_all(conn.data_to_send())

    async def answer(stream_id: int, path: bytes) -> None:
        await trio.sleep(0.3)
        conn.send_headers(stream_id, [(b":status", b"200")])
        conn.send_data(stream_id, path, end_stream=True)
        await send()

    async with trio.open_nursery() as nursery:
        await send()
        while data := await stream.receive_some(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    nursery.start_soon(answer, event.stream_id, dict(event.headers)[b":path"])
            await send()
        nursery.cancel_scope.cancel()


def test_a_walker_leaving_keeps_the_requests_others_placed_on_its_connections(monkeypatch):
    """The walker that opened a connection leaves while another walker's request is on
    it, in flight or waiting for the connection to open: that request is answered (it
    was counted 'eof: the connection closed while opening'), and the leaving walker waits
    for it, no longer."""
    real_connect = net.connect

    async def slow_connect(*args: object, **kwargs: object) -> object:
        await trio.sleep(0.2)
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(h2_session.net, "connect", slow_connect)

    async def main() -> dict:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        target = Target.from_url(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")
        pool = h2_session.H2Pool(5.0)
        seen: dict = {}

        def fields(path: str) -> list:
            return request_fields("GET", path, target.host_header, "http", (), None)

        async def other(name: str, placed: trio.Event) -> None:
            await placed.wait()
            async with pool.member(target) as member:
                try:
                    seen[name] = (await member.request(fields(f"/{name}"), None)).body
                except net.TransportError as exc:
                    seen[name] = str(exc)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _late_server, listeners)
            opening, in_flight = trio.Event(), trio.Event()
            async with trio.open_nursery() as walkers:
                walkers.start_soon(other, "opening", opening)
                async with pool.member(target) as host:
                    with trio.move_on_after(0.1):  # the host gives up while it opens
                        opening.set()
                        await host.request(fields("/host"), None)
                seen["host left (opening)"] = trio.current_time()
            async with trio.open_nursery() as walkers:
                walkers.start_soon(other, "in flight", in_flight)
                async with pool.member(target) as host:
                    seen["host"] = (await host.request(fields("/host"), None)).body
                    in_flight.set()
                    await trio.sleep(0.1)
                    left_at = trio.current_time()
                seen["host waited"] = trio.current_time() - left_at
            seen["opened"] = pool.opened
            nursery.cancel_scope.cancel()
        return seen

    async def bounded() -> dict:
        with trio.fail_after(10):
            return await main()

    seen = trio.run(bounded)
    assert seen["opening"] == b"/opening"
    assert seen["host"] == b"/host" and seen["in flight"] == b"/in flight"
    assert 0.1 < seen["host waited"] < 1.0  # until the other's answer (0.3 s), not forever
    assert seen["opened"] == 2  # one connection per host; nobody opened a spare


async def _two_streams_server(stream: trio.SocketStream) -> None:
    """An h2 server that allows 2 concurrent streams and announces it late (its SETTINGS
    0.1 s after the connection opened); h2 ends the connection on a third (RFC 9113 §5.1.2
    allows a PROTOCOL_ERROR for it). Answers each request 0.4 s after it came."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    conn.initiate_connection()
    lock = trio.Lock()

    async def send() -> None:
        async with lock:
            await stream.send_all(conn.data_to_send())

    async def answer(stream_id: int) -> None:
        await trio.sleep(0.4)  # the connections stay full while the others open
        conn.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        await send()

    async with trio.open_nursery() as nursery:
        await trio.sleep(0.1)
        await send()
        while data := await stream.receive_some(65536):
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                await send()  # its GOAWAY
                break
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    nursery.start_soon(answer, event.stream_id)
            await send()
        nursery.cancel_scope.cancel()


def test_requests_wait_for_the_servers_settings():
    """A new connection takes requests once the server's SETTINGS arrived: sent before,
    more than its SETTINGS_MAX_CONCURRENT_STREAMS would be refused. Those that waited on
    it and found it full go to another connection without counting a failed attempt."""
    async def main() -> list:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        target = Target.from_url(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")
        fields = request_fields("GET", "/", target.host_header, "http", (), None)
        statuses: list = []

        async def one(member: h2_session.H2Member) -> None:
            try:
                statuses.append((await member.request(fields, None)).status)
            except net.TransportError as exc:
                statuses.append(str(exc))

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _two_streams_server, listeners)
            pool = h2_session.H2Pool(5.0)
            async with pool.member(target) as member, trio.open_nursery() as walkers:
                for _ in range(8):  # 4 rounds of 2: more than h2_session.ATTEMPTS
                    walkers.start_soon(one, member)
            nursery.cancel_scope.cancel()
        return statuses

    async def bounded() -> list:
        with trio.fail_after(10):
            return await main()

    assert trio.run(bounded) == [200] * 8
