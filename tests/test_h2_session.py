"""HTTP/2 for the Markov slice and ``assay load`` (``--http2``): the sans-IO client against an
in-memory ``h2`` server, the I/O shell against a scripted server (deadlines, a dying
connection) and a TLS server that offers no h2, and ``assay run --http2 --slices markov``
(and ``assay load --http2``) against hypercorn (h2c prior knowledge) and nginx (TLS, ALPN
h2)."""

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
import h2.settings
import hyperframe.frame
import pytest
import trio

from actors import h2_session, net, tls
from actors.markov_h2 import known_cause
from actors.walker import Target
from protocols.h2_client import (
    RECEIVE_WINDOW,
    H2Client,
    Response,
    StreamFailure,
    build_response,
    request_fields,
    split_http1_request,
)
from protocols.markov import TRANSPORT_CAUSES
from protocols.tls_options import TlsOptions
from tests.servers import free_port, nginx, wait_for_port

# -- an in-memory server ---------------------------------------------------------------------


class Server:
    """A validating ``h2`` server wired to an ``H2Client`` by hand: bytes both ways."""

    def __init__(self, client: H2Client, settings: dict[int, int] | None = None) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.client = client
        self.events: list[h2.events.Event] = []
        client.initiate()
        self.pump()

    def pump(self) -> list:
        """Move bytes both ways until quiet; the client's finished streams."""
        done = []
        for _ in range(20):
            to_server = self.client.data_to_send()
            if to_server:
                self.events += self.conn.receive_data(to_server)
            to_client = self.conn.data_to_send()
            if not to_client and not to_server:
                break
            if to_client:
                done += self.client.receive(to_client)
        return done

    def requests(self) -> dict[int, list[tuple[bytes, bytes]]]:
        return {e.stream_id: e.headers for e in self.events
                if isinstance(e, h2.events.RequestReceived)}

    def respond(self, stream_id: int, status: int = 200, body: bytes = b"ok",
                headers: tuple = ()) -> None:
        fields = [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode()),
                  *headers]
        self.conn.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)


def _get(client: H2Client, path: str = "/x") -> int:
    return client.start(request_fields("GET", path, "example.test", "https", (), None), None)


def test_request_fields_follow_rfc9113():
    fields = request_fields("POST", "/items?a=1", "h:8443", "https",
                            [("Cookie", "s=1"), ("Content-Type", "application/json"),
                             ("Connection", "keep-alive"), ("Host", "x"), ("TE", "gzip"),
                             ("Transfer-Encoding", "chunked")], b'{"a":1}')
    assert fields[:4] == [(b":method", b"POST"), (b":scheme", b"https"),
                          (b":authority", b"h:8443"), (b":path", b"/items?a=1")]
    assert fields[4:] == [(b"cookie", b"s=1"), (b"content-type", b"application/json"),
                          (b"content-length", b"7")]
    assert (b"content-length", b"0") in request_fields("POST", "/", "h", "http", (), None)
    assert all(n != b"content-length" for n, _ in request_fields("GET", "/", "h", "http", (),
                                                                  None))


def test_build_response_drops_pseudo_fields():
    response = build_response([(b":status", b"404"), (b"date", b"d")], b"no",
                              [(b"x-t", b"1")])
    assert (response.status, response.headers, response.body) == (404, ((b"date", b"d"),), b"no")
    assert response.keep_alive and response.http_version == b"2"
    assert response.trailers == ((b"x-t", b"1"),)


def test_many_streams_answered_out_of_order():
    client = H2Client()
    server = Server(client)
    ids = [_get(client, f"/p{i}") for i in range(5)]
    server.pump()
    assert [dict(h)[b":path"] for h in server.requests().values()] == [
        f"/p{i}".encode() for i in range(5)]
    for sid in reversed(ids):
        server.respond(sid, body=f"r{sid}".encode(), headers=((b"date", b"now"),))
    done = server.pump()
    assert [d.stream_id for d in done] == list(reversed(ids))
    for d in done:
        assert isinstance(d.outcome, Response)
        assert d.outcome.body == f"r{d.stream_id}".encode()
        assert d.outcome.header("date") == b"now"
    assert client.in_flight == 0 and client.usable


def test_request_body_waits_for_the_window():
    client = H2Client()
    server = Server(client)
    body = b"x" * 100_000  # past the default 65 535-octet window
    sid = client.start(request_fields("POST", "/", "h", "http", (), body), body)
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert len(got) == 65535  # the rest waits for a WINDOW_UPDATE
    server.conn.acknowledge_received_data(len(got), sid)
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert got == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in server.events)


def test_request_body_goes_on_when_the_server_raises_the_initial_window():
    """RFC 9113 §6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE adjusts every stream window,
    with no WINDOW_UPDATE frame: the rest of a waiting body must go then."""
    client = H2Client()
    server = Server(client)
    server.conn.increment_flow_control_window(1 << 20)  # the connection has room
    server.pump()
    body = b"x" * 100_000
    client.start(request_fields("POST", "/", "h", "http", (), body), body)
    server.pump()
    server.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert got == body


def test_large_response_is_credited_back_and_capped():
    client = H2Client(max_body_bytes=200_000)
    server = Server(client)
    sid = _get(client)
    server.pump()
    server.conn.send_headers(sid, [(b":status", b"200")])
    # More than one window's worth arrives only if the client gives credit back.
    for _ in range(4):
        server.conn.send_data(sid, b"y" * 16384)
    server.pump()
    assert server.conn.local_flow_control_window(sid) >= 0
    for _ in range(12):
        if server.conn.local_flow_control_window(sid) < 16384:
            break
        server.conn.send_data(sid, b"y" * 16384)
    done = server.pump()
    assert done and isinstance(done[0].outcome, StreamFailure)
    assert done[0].outcome.cause == "too_large"
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == h2.errors.ErrorCodes.CANCEL
               for e in server.events)
    assert client.usable  # the connection carries on
    assert RECEIVE_WINDOW > 65535


def test_refused_stream_is_retried_other_resets_are_not():
    client = H2Client()
    server = Server(client)
    first, second = _get(client), _get(client)
    server.pump()
    server.conn.reset_stream(first, h2.errors.ErrorCodes.REFUSED_STREAM)
    server.conn.reset_stream(second, h2.errors.ErrorCodes.INTERNAL_ERROR)
    outcomes = {d.stream_id: d.outcome for d in server.pump()}
    assert outcomes[first] == StreamFailure("reset", "RST_STREAM REFUSED_STREAM", retry=True)
    assert outcomes[second].retry is False and outcomes[second].cause == "reset"


def test_graceful_goaway_lets_earlier_streams_finish():
    """RFC 9113 §6.8: streams up to the last stream identifier may still complete; those
    above it were not processed (retry); no new stream starts."""
    client = H2Client()
    server = Server(client)
    low, high = _get(client), _get(client)
    server.pump()
    server.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=low)
    done = server.pump()
    assert [(d.stream_id, d.outcome.retry) for d in done] == [(high, True)]
    assert not client.usable and client.ended.startswith("GOAWAY NO_ERROR")
    # The server may still answer ``low``; h2 itself would have refused it.
    server.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
    server.respond(low, body=b"late")
    done = server.pump()
    assert done[0].stream_id == low and done[0].outcome.body == b"late"


def test_goaway_with_an_error_fails_every_stream():
    client = H2Client()
    server = Server(client)
    sid = _get(client)
    server.pump()
    server.conn.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=sid)
    done = server.pump()
    assert done[0].outcome == StreamFailure(
        "reset", f"GOAWAY ENHANCE_YOUR_CALM, last stream {sid}", retry=False)


def test_garbage_is_a_protocol_error_and_lost_fails_the_rest():
    client = H2Client()
    client.initiate()
    sid = _get(client)
    assert client.receive(b"HTTP/1.1") == []  # not yet a frame header
    done = client.receive(b" 400 Bad Request\r\n\r\n")
    assert done[0].stream_id == sid and done[0].outcome.cause == "protocol_error"
    assert "did not answer HTTP/2" in done[0].outcome.detail
    assert "HTTP/1.1 400" in done[0].outcome.detail
    assert not client.usable and client.end_cause == "protocol_error"
    assert client.lost("eof", "gone") == []
    assert client.end_cause == "protocol_error"  # the first reason stays


def test_a_malformed_response_fails_its_own_stream_only():
    """RFC 9113 §8.1.1: "Malformed requests or responses that are detected MUST be treated
    as a stream error (Section 5.4.2) of type PROTOCOL_ERROR" -- not a connection error
    that fails every other request in flight (h2's own reaction), and no crash on a
    :status that is not three digits (RFC 9110 §15)."""
    client = H2Client()
    server = Server(client)
    short, bad_status, priority, fine = (_get(client) for _ in range(4))
    server.pump()
    server.conn.config.validate_outbound_headers = False
    server.conn.send_headers(short, [(b":status", b"200"), (b"content-length", b"5")])
    server.conn.send_data(short, b"abc", end_stream=True)  # shorter than announced
    server.conn.send_headers(bad_status, [(b":status", b"2x0")], end_stream=True)
    # A bad field name (§8.2.1: uppercase is malformed) in HEADERS with the PRIORITY flag,
    # which h2 (as a server) will not send: built by hand.
    with_priority = hyperframe.frame.HeadersFrame(
        priority, flags=["END_HEADERS", "PRIORITY"])
    with_priority.data = server.conn.encoder.encode([(b":status", b"200"), (b"Upper", b"x")])
    sent = server.conn.data_to_send() + with_priority.serialize()
    done = {d.stream_id: d.outcome for d in client.receive(sent)}
    to_server = client.data_to_send()
    server.events += server.conn.receive_data(to_server)
    resets = {}
    while to_server:  # the streams are closed at the server: read the client's frames
        frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(to_server[:9]))
        frame.parse_body(memoryview(to_server[9:9 + length]))
        to_server = to_server[9 + length:]
        if isinstance(frame, hyperframe.frame.RstStreamFrame):
            resets[frame.stream_id] = frame.error_code
    # RST_STREAM PROTOCOL_ERROR stops the streams still open; ``bad_status`` had ended.
    assert resets == dict.fromkeys((short, priority), h2.errors.ErrorCodes.PROTOCOL_ERROR)
    server.respond(fine, body=b"still here")
    done.update((d.stream_id, d.outcome) for d in server.pump())
    for sid in (short, bad_status, priority):
        assert done[sid].cause == "protocol_error", done[sid]
        assert done[sid].detail.startswith("malformed response"), done[sid]
    assert "Expected 5 bytes, received 3" in done[short].detail
    assert "2x0" in done[bad_status].detail
    assert done[fine].body == b"still here"
    assert client.usable and not client.ended
    later = _get(client)
    server.pump()
    server.respond(later)
    assert [d.outcome.status for d in server.pump()] == [200]


def test_server_limit_on_concurrent_streams_is_honoured():
    client = H2Client()
    Server(client, {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    assert client.max_concurrent == 2
    _get(client), _get(client)
    assert not client.usable


def test_cancel_resets_the_stream_and_frees_its_slot():
    client = H2Client()
    server = Server(client)
    sid = _get(client)
    server.pump()
    client.cancel(sid)
    assert client.in_flight == 0
    assert server.pump() == []
    assert any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid
               and e.error_code == h2.errors.ErrorCodes.CANCEL for e in server.events)
    late = _get(client)
    server.pump()
    server.respond(late)  # on its way when the client gives up: dropped quietly
    client.cancel(late)
    assert server.pump() == []
    assert client.usable


def test_http1_requests_split_for_http2():
    method, target, fields, body = split_http1_request(
        b"POST /items?x=1 HTTP/1.1\r\nHost: h:81\r\nX-A:  v \r\nContent-Length: 2\r\n\r\n{}")
    assert (method, target, body) == ("POST", "/items?x=1", b"{}")
    assert fields == [("Host", "h:81"), ("X-A", "v"), ("Content-Length", "2")]
    assert split_http1_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")[3] is None
    for bad in (b"GET / HTTP/1.1\r\nHost: h\r\n",
                b"GET /\r\n\r\n",
                b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
        with pytest.raises(ValueError):
            split_http1_request(bad)


def test_every_cause_is_one_the_session_counts():
    for cause in ("tls_verify", "tls_handshake", "tls_timeout", "io_error", "tls_error",
                  *TRANSPORT_CAUSES):
        assert known_cause(cause) in TRANSPORT_CAUSES


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
