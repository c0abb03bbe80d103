"""HTTP/2 for the Markov slice and ``assay load`` (``--http2``): a TLS server that offers no
h2, and ``assay run --http2 --slices markov`` (and ``assay load --http2``) against hypercorn
(h2c prior knowledge) and nginx (TLS, ALPN h2). The sans-IO client's tests are in
``test_h2_client``, the connection pool's against scripted servers in ``test_h2_pool``."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from actors import h2_session, tls
from actors.walker import Target
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
