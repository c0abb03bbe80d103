"""The grown adversarial catalogue against real servers: defects caught, correct ones silent.

Each test runs the walker's own ``probe`` (baseline, case, canary, oracle) with short
deadlines and several probes at once (``tests.conformance_sweep``). The claims:

* refapp without defects, and nginx as the test target is configured, break no MUST that
  fails a run on any case of the catalogue (nginx's 400 to valid HTAB whitespace is a LOW
  MUST miss, reported, not failed);
* the refapp defects ``lenient-chunk-size`` and ``drop-pipelined`` are caught (desync,
  dropped pipelined requests);
* real defects of real servers show, each next to a server without it: stock nginx takes
  ``Host: user@...``; uvicorn with httptools sends 100 Continue to HTTP/1.0; aiohttp takes
  an empty Transfer-Encoding with a Content-Length; daphne takes ``identity`` with one;
  tornado answers 400 to a valid chunked body with a trailer section.
A server that is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocols import cases_chunked, cases_valid
from protocols.adversarial_cases import BY_NAME, CASES
from refapp.launch import start_refapp
from tests.conformance_sweep import failing, sweep
from tests.servers import free_port, nginx, wait_for_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
HIGH = ("adv.wrong_accepted", "adv.desync")
LENIENT_SIZES = [c for c in cases_chunked.LENIENT_SIZES if c.name.endswith("-smuggle")]
PIPELINES = [c for c in cases_valid.PIPELINING]
#: Python module each server needs.
MODULES = {"uvicorn-h11": "uvicorn", "uvicorn-httptools": "httptools", "daphne": "daphne",
           "aiohttp": "aiohttp", "tornado": "tornado", "waitress": "waitress",
           "gunicorn": "gunicorn", "hypercorn": "hypercorn"}


@contextmanager
def python_server(server: str) -> Iterator[str]:
    """One of ``tests.conformance_apps``' servers on a free port (skipped if not installed)."""
    if importlib.util.find_spec(MODULES[server]) is None:
        pytest.skip(f"{server} is not installed")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.conformance_apps", server, str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 20)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_correct_refapp_breaks_no_must_on_the_whole_catalogue() -> None:
    with start_refapp(stderr=subprocess.DEVNULL) as app:
        result = sweep(app.url, CASES, concurrency=8)
    assert len(result.verdicts) == len(CASES)
    assert result.with_verdict("violation") == [], failing(result)
    assert result.high() == {} and not result.tally.counters.get("adv.must_violation")


def test_configured_nginx_fails_nothing_on_the_whole_catalogue(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _proc):
        result = sweep(url, CASES, concurrency=8)
    assert result.high() == {}, failing(result)
    assert not result.tally.counters.get("adv.must_violation"), failing(result)
    # RFC 9110 §5.5 lets HTAB be OWS; nginx answers 400/501: a MUST missed, LOW, not failed.
    assert set(result.with_verdict("violation")) <= {"cl-tab-ows", "te-chunked-ows"}


def test_stock_nginx_takes_a_host_with_userinfo(tmp_path: Path) -> None:
    cases = [BY_NAME[n] for n in ("host-userinfo", "host-path", "host-duplicate-identical")]
    with nginx(tmp_path, stock=True) as (url, _proc):
        result = sweep(url, cases)
    assert result.verdicts["host-userinfo"] == "violation"  # RFC 9112 §3.2: MUST be 400
    assert result.verdicts["host-path"] == "pass"
    assert result.verdicts["host-duplicate-identical"] == "pass"


def test_lenient_chunk_size_defect_is_a_desync() -> None:
    with start_refapp(defects=["lenient-chunk-size"], stderr=subprocess.DEVNULL) as app:
        result = sweep(app.url, LENIENT_SIZES, concurrency=4)
    desynced = result.high().get("adv.desync", set())
    assert desynced == {case.name for case in LENIENT_SIZES
                        if "overflow" not in case.name}, failing(result)


def test_drop_pipelined_defect_is_a_must_violation() -> None:
    with start_refapp(defects=["drop-pipelined"], stderr=subprocess.DEVNULL) as app:
        result = sweep(app.url, PIPELINES, concurrency=4)
    assert set(result.with_verdict("violation")) == {case.name for case in PIPELINES}
    assert result.tally.counters["adv.pipeline_dropped"] == len(PIPELINES)
    assert result.high() == {}  # MED: counted toward I-ADV-MUST, not the HIGH path


#: (server, case, verdict): the issue's defects, each also shown passing elsewhere.
REAL = [
    ("uvicorn-httptools", "expect-100-http10", "violation"),  # RFC 9110 §15.2
    ("uvicorn-h11", "expect-100-http10", "pass"),
    ("aiohttp", "te-empty-cl", "violation"),  # RFC 9112 §6.3 (4): 400 and close
    ("daphne", "te-identity-cl", "violation"),
    ("daphne", "te-empty-cl", "pass"),
    ("gunicorn", "te-identity-cl", "pass"),
    ("uvicorn-httptools", "upgrade-ws-http10", "violation"),  # RFC 9110 §7.8
    ("hypercorn", "chunked-trailer", "pass"),
    ("tornado", "chunked-trailer", "violation"),  # RFC 9112 §7.1: MUST parse; 400 to it
    ("tornado", "chunked-empty-body", "pass"),
]


@pytest.mark.parametrize("server", sorted({server for server, _, _ in REAL}))
def test_real_servers(server: str) -> None:
    expected = {name: verdict for s, name, verdict in REAL if s == server}
    with python_server(server) as url:
        result = sweep(url, [BY_NAME[name] for name in expected])
    seen = {name: result.verdicts[name] for name in expected}
    assert seen == expected, failing(result)
