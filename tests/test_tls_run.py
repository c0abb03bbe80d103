"""https targets end to end: a run over TLS against nginx, and every way TLS set-up fails
(an untrusted certificate is exit 3 naming OpenSSL's reason, a bad flag is exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.assay_cli import assay, invariant_status, only_results
from tests.servers import nginx
from tests.tls_certs import test_certs

pytestmark = pytest.mark.integration

CLIENT_CERT_REQUIRED = """
        ssl_verify_client on;
        ssl_client_certificate {ca};
        location = /mtls {{ return 200 "client $ssl_client_s_dn\\n"; }}"""


def _load(url: str, results: Path, *tls: str, path: str = "/healthz") -> tuple[int, dict, str]:
    """One second of ``assay load`` at 50 req/s: the quickest full fleet run."""
    results.mkdir(parents=True, exist_ok=True)
    summary = results / "summary.json"
    done = assay("load", "--target", url.rstrip("/") + path, "--rate", "50", "--duration", "1s",
                 "--procs", "1", "--results", str(results), "--summary-json", str(summary),
                 *tls, timeout=60)
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return done.returncode, data, done.stderr


def test_a_run_over_tls_passes_against_nginx(tmp_path: Path) -> None:
    certs = test_certs()
    with nginx(tmp_path, tls=True) as (url, _):
        done = assay("run", "--target", url, "--ca-file", str(certs.ca), "--duration", "6s",
                     "--procs", "1", "--concurrency", "12", "--results", str(tmp_path / "r"),
                     timeout=120)
    document = only_results(tmp_path / "r")
    # nginx 1.22 misses RFC 9113 MUSTs that the h2 slice checks (each one tabled with its
    # RFC sentence in tests/test_h2_torture.py); nothing else may fail.
    failed = {entry["id"] for entry in document["invariants"]["failed"]}
    assert failed <= {"I-H2-ACCEPTED", "I-H2-MUST"}, done.stdout[-3000:]
    assert done.returncode == (1 if failed else 0), done.stdout[-3000:] + done.stderr[-2000:]
    assert document["target"]["tls"] == f"verified, ca-file={certs.ca}"
    slices = document["tier_1"]["slices"]
    # h2c is cleartext only: never planned against https, and said so.
    assert slices["h2c"]["walkers"] == 0
    assert slices["h2c"]["not_run"] == "not applicable: h2c needs an http:// target"
    assert slices["markov"]["counters"].get("markov.requests", 0) > 50
    assert slices["markov"]["counters"].get("markov.errors", 0) == 0
    assert slices["adv"]["counters"].get("adv.sent", 0) > 0
    assert invariant_status(document, "I-LIVENESS") == "passed"
    assert invariant_status(document, "I-ADV-DESYNC") == "passed"


def test_an_untrusted_certificate_is_exit_3_naming_the_reason(tmp_path: Path) -> None:
    certs = test_certs()
    with nginx(tmp_path, tls=True) as (url, _):
        plain = _load(url, tmp_path / "a")
        other = _load(url, tmp_path / "b", "--ca-file", str(certs.other_ca))
        wrong_name = _load(url, tmp_path / "c", "--ca-file", str(certs.ca),
                           "--sni", "wrong.example")
        insecure = _load(url, tmp_path / "d", "--insecure")
        by_name = _load(url, tmp_path / "e", "--ca-file", str(certs.ca), "--sni", "localhost")
    for code, _, err in (plain, other):
        assert code == 3, err
        assert len(err.strip().splitlines()) == 1, err
        assert "certificate verify failed: unable to get local issuer certificate" in err
        assert "--ca-file" in err and "Traceback" not in err
    assert wrong_name[0] == 3 and "Hostname mismatch" in wrong_name[2], wrong_name[2]
    for code, summary, err in (insecure, by_name):
        assert code == 0, err
        assert summary["requests"] >= 40 and summary["errors"] == 0, summary


def test_a_client_certificate_is_presented(tmp_path: Path) -> None:
    certs = test_certs()
    extra = CLIENT_CERT_REQUIRED.format(ca=certs.ca)
    with nginx(tmp_path, tls=True, extra=extra) as (url, _):
        without = _load(url, tmp_path / "a", "--ca-file", str(certs.ca), path="/mtls")
        with_cert = _load(url, tmp_path / "b", "--ca-file", str(certs.ca), "--cert",
                          str(certs.client_cert), "--key", str(certs.client_key), path="/mtls")
    # Without a certificate nginx still completes the handshake and answers 400 ("No
    # required SSL certificate was sent"): every request is an error status.
    assert without[1]["errors"] == without[1]["requests"] > 0, without
    assert with_cert[0] == 0 and with_cert[1]["errors"] == 0, with_cert
    assert with_cert[1]["requests"] >= 40


@pytest.mark.parametrize("flags, message", [
    (["--ca-file", "/nonexistent/ca.pem"], "--ca-file /nonexistent/ca.pem: no such file"),
    (["--ca-file", __file__], "not a PEM CA bundle"),
    (["--key", __file__], "--key needs --cert"),
    (["--cert", __file__], "cannot load the certificate and key"),
    (["--sni", "a b"], "is not a host name"),
])
def test_bad_tls_flags_are_exit_2(flags: list[str], message: str, tmp_path: Path) -> None:
    done = assay("load", "--target", "https://127.0.0.1:9/", "--rate", "1", "--duration", "1s",
                 "--results", str(tmp_path), *flags, timeout=30)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
