"""The tls walker against real TLS servers: nginx and hypercorn keep answering through every
case; a server that handshakes in its accept loop without a deadline is caught by the cases
that hold a handshake open (I-TLS-LIVE), and only by them."""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from assay_cli import assay, invariant_status, only_results
from servers import free_port, nginx, stop, wait_for_port
from torture_servers import walker_ctx

from actors import tls_abuse
from actors.walker import Target
from protocols.tls_cases import BY_NAME, CASES
from tests.tls_certs import test_certs, trusting_test_ca

FAST = {"tls_timeout": 1.0, "tls_drip_s": 0.6, "tls_pause_s": 0.05}
ROOT = Path(__file__).resolve().parent.parent


def _ctx(url: str, settings: dict[str, Any]) -> Any:
    ctx = walker_ctx(0, "tls", settings, seconds=60)
    ctx.target = Target.from_url(url)
    return ctx


def _every_case_passes(url: str) -> dict[str, int]:
    """Each case once through ``run_case``: no violation, every verdict pass or lenient."""
    async def main() -> Any:
        ctx = _ctx(url, FAST)
        for case in CASES:
            assert await tls_abuse.run_case(ctx, case), case.name
        return ctx

    with trusting_test_ca():
        ctx = trio.run(main)
    counters = ctx.tally.counters
    assert ctx.violations == [], ctx.violations[:1]
    for case in CASES:
        verdicts = {v for v in ("pass", "lenient", "violation")
                    if counters.get(f"tls.case.{case.name}.{v}")}
        assert verdicts <= {"pass", "lenient"} and verdicts, (case.name, verdicts)
    assert counters["tls.sent"] == len(CASES) and not counters.get("tls.unjudged")
    assert not counters.get("tls.control_rechecks")
    return counters


def test_nginx_keeps_answering_through_every_case(tmp_path: Path) -> None:
    with nginx(tmp_path, tls=True) as (url, _):
        counters = _every_case_passes(url)
        # nginx (OpenSSL) names the alert RFC 8446 asks for, and answers HTTP to plaintext
        assert counters["tls.case.record_overflow.pass"] == 1
        assert counters["tls.alert.record_overflow"] == 1
        assert counters["tls.case.huge_session_id.pass"] == 1
        assert counters["tls.case.plaintext_http.lenient"] == 1
        assert counters["tls.reaction.server_hello"] >= 4
        # the fleet path: the slice planned on https, invariants judged, exit 0
        ca = str(test_certs().ca)
        done = assay("run", "--target", url, "--ca-file", ca, "--slices", "tls", "--duration",
                     "2s", "--procs", "1", "--concurrency", "4", "--leak-probes", "off",
                     "--results", str(tmp_path / "results"), timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        document = only_results(tmp_path / "results")
        assert invariant_status(document, "I-TLS-LIVE") == "passed"
        assert invariant_status(document, "I-TLS-MUST") == "passed"
        tally = document["tier_1"]["slices"]["tls"]["counters"]
        assert tally["tls.sent"] >= 4 and tally["tls.control"] >= tally["tls.sent"]


def test_hypercorn_keeps_answering_through_every_case() -> None:
    pytest.importorskip("hypercorn")
    certs = test_certs()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--certfile", str(certs.cert), "--keyfile",
         str(certs.key), "--bind", f"127.0.0.1:{port}", "--log-level", "ERROR",
         "tests.conformance_apps:asgi_app"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        _every_case_passes(f"https://127.0.0.1:{port}/")
    finally:
        stop(proc)


@contextlib.asynccontextmanager
async def fragile_tls_server(busy_s: float = 0.0) -> AsyncIterator[int]:
    """One accept loop that completes each handshake before the next accept, with no
    handshake deadline: a client that trickles or stalls its ClientHello blocks everyone.
    ``busy_s``: each connection first waits that long (a saturated server)."""
    certs = test_certs()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def serve_serially() -> None:
        while True:
            stream = trio.SSLStream(await listener.accept(), context, server_side=True)
            await trio.sleep(busy_s)
            try:
                await stream.do_handshake()
                data = b""
                with trio.move_on_after(2):
                    while b"\r\n\r\n" not in data:
                        chunk = await stream.receive_some(4096)
                        if not chunk:
                            break
                        data += chunk
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                      b"Connection: close\r\n\r\nok")
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_serially)
        yield listener.socket.getsockname()[1]
        nursery.cancel_scope.cancel()


def test_a_handshake_without_deadline_fails_the_holding_cases_only() -> None:
    async def main() -> Any:
        async with fragile_tls_server() as port:
            ctx = _ctx(f"https://127.0.0.1:{port}/", FAST)
            results = {name: await tls_abuse.run_case(ctx, BY_NAME[name])
                       for name in ("abandon_fin_after_hello", "dripped_hello",
                                    "record_overflow", "stalled_hello")}
        return ctx, results

    with trusting_test_ca():
        ctx, results = trio.run(main)
    assert results == {"abandon_fin_after_hello": True, "dripped_hello": False,
                       "record_overflow": True, "stalled_hello": False}
    counters = ctx.tally.counters
    assert counters["tls.control_failed"] == 2
    assert counters["tls.case.dripped_hello.violation"] == 1
    assert counters["tls.case.stalled_hello.violation"] == 1
    assert not counters.get("tls.must_violation")
    (counter, evidence), _ = ctx.violations
    assert counter == "tls.control_failed" and evidence["case"] == "dripped_hello"
    assert "while the case held its connection" in evidence["reason"]
    during, rerun, baseline = evidence["controls"]  # beside the case twice, then alone
    assert not during["ok"] and not rerun["ok"] and during["hang"] and rerun["hang"]
    assert baseline["ok"] and baseline["role"] == "baseline"
    assert evidence["sent_bytes"] > 100 and evidence["rfc"] == "RFC 8446 §4.1.2"


def test_a_saturated_server_is_not_blamed_on_the_case() -> None:
    """Every client waits its turn: the control beside the dripped case times out, and so
    does the baseline without the case: saturation, counted unconfirmed, no HIGH."""
    async def main() -> Any:
        async with fragile_tls_server(busy_s=1.2) as port:
            ctx = _ctx(f"https://127.0.0.1:{port}/", FAST)
            survived = await tls_abuse.run_case(ctx, BY_NAME["dripped_hello"])
        return ctx, survived

    with trusting_test_ca():
        ctx, survived = trio.run(main)
    counters = ctx.tally.counters
    assert survived and ctx.violations == [] and not counters.get("tls.control_failed")
    assert counters["tls.unconfirmed"] == counters["tls.case.dripped_hello.unconfirmed"] == 1
