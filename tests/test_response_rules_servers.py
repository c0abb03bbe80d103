"""Response rules end to end: `assay run` against correct servers (refapp, nginx) finds no
MUST violation; servers with a known response defect are caught, with route, RFC and bytes.

daphne sends no Date (RFC 9110 §6.6.1), tornado's 405 has no Allow (RFC 9110 §15.5.6),
waitress sends a WSGI app's body after the head of a HEAD response (RFC 9110 §9.3.2), and a
server whose Content-Length is shorter than its body on a kept-alive connection is a HIGH
framing hazard (I-RESP-FRAMING).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assay_cli import ROOT, assay, invariant_status, only_results
from tests.servers import free_port, nginx, wait_for_port

pytestmark = pytest.mark.integration

# Leak probes are another feature's business: off, to keep each run short.
SHORT = ("--duration", "2s", "--procs", "1", "--concurrency", "4", "--leak-probes", "off")


def _rules(document: dict) -> dict[str, dict]:
    return {rule["rule"]: rule for rule in document["response_rules"]["rules"]}


def _violations(document: dict) -> dict[str, dict]:
    return {name: r for name, r in _rules(document).items() if r["status"] == "violation"}


@contextmanager
def _serving(argv: list[str], port: int, cwd: Path = ROOT) -> Iterator[str]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=20.0)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_refapp_has_no_response_violation(tmp_path: Path) -> None:
    result = assay("run", *SHORT, "--concurrency", "8", "--results", str(tmp_path),
                   "--seed", "11")
    document = only_results(tmp_path)
    assert document["response_rules"]["checked"] > 0, result.stderr
    assert _violations(document) == {}
    assert invariant_status(document, "I-RESP-MUST") == "passed"
    assert invariant_status(document, "I-RESP-FRAMING") == "passed"
    judged = {name for name, r in _rules(document).items() if r["status"] == "pass"}
    assert {"date", "content_length_matches_body", "no_obs_fold"} <= judged
    assert "response rules:" in result.stdout


def test_nginx_has_no_response_violation(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _proc):
        assay("run", "--target", url, *SHORT, "--results", str(tmp_path / "r"))
    document = only_results(tmp_path / "r")
    assert document["response_rules"]["checked"] > 0
    assert _violations(document) == {}
    assert invariant_status(document, "I-RESP-MUST") == "passed"
    assert invariant_status(document, "I-RESP-FRAMING") == "passed"


def test_stock_nginx_405_without_allow_is_its_only_finding(tmp_path: Path) -> None:
    """A real one: stock nginx answers POST to a static file with a 405 and no Allow."""
    with nginx(tmp_path, stock=True) as (url, _proc):
        # 6 s, not SHORT's 2 s: on a loaded machine (two test workers) 2 s of four adv
        # walkers did not deal a case that POSTs to the static file.
        assay("run", "--target", url, *SHORT, "--duration", "6s", "--slices", "adv",
              "--results", str(tmp_path / "r"))
    document = only_results(tmp_path / "r")
    violations = _violations(document)
    assert set(violations) == {"allow_on_405"}, violations
    rule = violations["allow_on_405"]
    assert rule["routes"] == ["POST /"] and rule["rfc"] == "RFC 9110 §15.5.6"
    assert "MUST generate an Allow" in rule["quote"]
    assert invariant_status(document, "I-RESP-FRAMING") == "passed"


def test_daphne_without_date_is_caught_unless_no_clock(tmp_path: Path) -> None:
    pytest.importorskip("daphne")
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "response_servers:asgi_app"]
    with _serving(argv, port, cwd=ROOT / "tests") as url:
        result = assay("run", "--target", url, *SHORT, "--slices", "markov",
                       "--results", str(tmp_path / "clock"))
        no_clock = assay("run", "--target", url, *SHORT, "--slices", "markov", "--no-clock",
                         "--results", str(tmp_path / "no-clock"))
    document = only_results(tmp_path / "clock")
    assert result.returncode == 1, result.stdout + result.stderr
    date = _violations(document)["date"]
    assert "GET /" in date["routes"] and date["rfc"] == "RFC 9110 §6.6.1"
    assert "received" in date["example"] and "sent" in date["example"]
    assert invariant_status(document, "I-RESP-MUST") == "failed"
    assert invariant_status(document, "I-RESP-FRAMING") == "passed"
    assert "resp date" in result.stdout
    # The same server, declared clockless: nothing else is wrong with it.
    document = only_results(tmp_path / "no-clock")
    assert no_clock.returncode == 0, no_clock.stdout + no_clock.stderr
    assert _rules(document)["date"]["status"] == "not_judged"
    assert _violations(document) == {}
    assert document["config"]["no_clock"] is True


def test_tornado_405_without_allow_is_caught(tmp_path: Path) -> None:
    pytest.importorskip("tornado")
    model = tmp_path / "model.yaml"
    model.write_text("version: 1\nstart: get_root\nstates:\n"
                     "  get_root:\n    request: GET /\n    next: {post_root: 1}\n"
                     "  post_root:\n    request: POST /\n    body: {a: 1}\n"
                     "    expect: [405]\n    next: {get_root: 1}\n")
    port = free_port()
    argv = [sys.executable, str(ROOT / "tests" / "response_servers.py"), "tornado", str(port)]
    with _serving(argv, port) as url:
        result = assay("run", "--target", url, *SHORT, "--slices", "markov",
                       "--markov", str(model), "--results", str(tmp_path / "r"))
    document = only_results(tmp_path / "r")
    assert result.returncode == 1, result.stdout + result.stderr
    violations = _violations(document)
    assert set(violations) == {"allow_on_405"}, violations
    # HEAD / too: tornado answers HEAD to a GET-only handler with the same 405.
    assert "POST /" in violations["allow_on_405"]["routes"]
    assert invariant_status(document, "I-RESP-MUST") == "failed"


def test_content_length_shorter_than_body_is_a_framing_hazard(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, str(ROOT / "tests" / "response_servers.py"), "overlong", str(port)]
    with _serving(argv, port) as url:
        result = assay("run", "--target", url, *SHORT, "--slices", "markov",
                       "--results", str(tmp_path), "--no-shrink")
    document = only_results(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rule = _violations(document)["content_length_matches_body"]
    assert rule["example"]["severity"] == "HIGH"
    assert invariant_status(document, "I-RESP-FRAMING") == "failed"


def test_waitress_body_after_head_is_a_framing_hazard(tmp_path: Path) -> None:
    pytest.importorskip("waitress")
    port = free_port()
    argv = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}",
            "response_servers:wsgi_app"]
    with _serving(argv, port, cwd=ROOT / "tests") as url:
        result = assay("run", "--target", url, *SHORT, "--slices", "markov",
                       "--results", str(tmp_path))
        # The incident's reproducer is the one HEAD request; it still fails on waitress.
        repros = list(tmp_path.glob("*/incidents/*-I-RESP-FRAMING/shrink/repro.json"))
        assert repros, result.stdout
        replayed = assay("replay", str(repros[0]), "--target", url)
        assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    document = only_results(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rule = _violations(document)["no_content_after_head"]
    assert rule["routes"] == ["HEAD /"] and rule["rfc"] == "RFC 9110 §9.3.2"
    assert rule["example"]["severity"] == "HIGH"
    assert base64.b64decode(rule["example"]["received"]["base64"]).endswith(b"\r\n\r\nok\n")
    assert invariant_status(document, "I-RESP-FRAMING") == "failed"
