"""https:// targets for assay replay, hold and loris, against nginx over TLS."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from assay_cli import assay
from servers import nginx

from actors.walker import Target
from protocols.program import Action, Check, Program, ReadUntil, Step
from replay.evidence import Derived
from replay.executor import execute
from replay.oracle_registry import CheckResult, labelled, register
from replay.reduce import Judge, shrink_derived
from replay.repro import Repro, save_repro
from tests.tls_certs import test_certs, trusting_test_ca

GET = b"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"


@register("test_tls_index_served")
def index_served(params: dict, transcript: object) -> CheckResult:
    """Test oracle: the read labelled ``index`` got nginx's index page (only over TLS)."""
    hits = labelled(params, transcript, "index")  # type: ignore[arg-type]
    served = any(b"assay nginx target" in result.data for _, result in hits)
    return CheckResult(served, "index served" if served else "index not served")


def test_replay_speaks_tls_to_an_https_target(tmp_path: Path) -> None:
    """Sends, reads, a FIN (a TCP half-close under TLS), an RST and a probe, each over TLS
    (plaintext would get nginx's 400 "plain HTTP request was sent to HTTPS port"); then the
    same through ``assay replay FILE --target https://... --ca-file``, and a shrink whose
    candidates run over TLS."""
    program = Program((
        Step(Action.SEND, conn=1, data=GET, template=True),
        Step(Action.READ, conn=1),
        Step(Action.FIN, conn=1),
        Step(Action.READ, conn=1, until=ReadUntil.CLOSE, timeout_s=3.0),
        Step(Action.SEND, conn=2, data=GET, template=True),
        Step(Action.RST, conn=2),
        Step(Action.PROBE, path="/", label="probe"),
    ), Check("probes_fail", {"how": "down"}), {"source": "test"})
    ca = str(test_certs().ca)
    with nginx(tmp_path, tls=True) as (url, _):
        with trusting_test_ca():
            transcript = trio.run(execute, program, Target.from_url(url))
        endings = [r.ending for r in transcript.results]
        assert endings == ["ok", "done", "ok", "eof", "ok", "ok", "done"], transcript
        first, probe = transcript.results[1].data, transcript.results[6].data
        assert first.startswith(b"HTTP/1.1 200") and b"assay nginx target" in first
        assert probe.startswith(b"HTTP/1.1 200")
        path = tmp_path / "repro.json"
        save_repro(Repro(program, predicate={"id": "I-LIVENESS"}), path)
        done = assay("replay", str(path), "--target", url, "--ca-file", ca, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "PASS (gone)" in done.stdout and "answered (200)" in done.stdout
        untrusted = assay("replay", str(path), "--target", url, timeout=60)
        assert untrusted.returncode == 3 and "Traceback" not in untrusted.stderr
        assert "tls_verify" in untrusted.stderr, untrusted.stderr
        assert "certificate verify failed: unable to get local issuer" in untrusted.stderr
        assert len(untrusted.stderr.strip().splitlines()) == 1, untrusted.stderr
        # a Tier 3 seed replays over TLS too (the same executor); untrusted: exit 3
        seed = assay("replay", "--seed", "2", "--target", url, "--ca-file", ca, timeout=60)
        assert seed.returncode == 0, seed.stdout + seed.stderr
        assert "verdict: PASS" in seed.stdout and "segment(s) judged" in seed.stdout
        seed = assay("replay", "--seed", "2", "--target", url, timeout=60)
        assert seed.returncode == 3 and "certificate verify failed" in seed.stderr, seed.stderr
        # the shrinker runs its candidates through the same executor: over TLS too
        units = tuple((Step(Action.SEND, conn=n, data=request, template=True),
                       Step(Action.READ, conn=n, label=label))
                      for n, (request, label) in enumerate((
                          (b"GET /a HTTP/1.1\r\nHost: {host}\r\n\r\n", ""),
                          (GET, "index"),
                          (b"GET /b HTTP/1.1\r\nHost: {host}\r\n\r\n", ""))))
        derived = Derived(units, Check("test_tls_index_served"), {"source": "test"})
        judge = Judge(derived.check, dict(derived.meta), live_url=url, launcher=None)
        with trusting_test_ca():
            shrunk = trio.run(lambda: shrink_derived(derived, judge, max_attempts=20,
                                                     max_seconds=15, stall_limit=10))
        assert shrunk.verified and not shrunk.result.flaky
        assert [s.label for s in shrunk.program.steps] == ["", "index"]


def test_hold_and_loris_complete_tls_first(tmp_path: Path) -> None:
    """Every held connection is a TLS session (its GET is answered 200: plaintext would get
    400 and a close); loris drips its headers inside TLS (plaintext would be answered 400
    and closed at once), and its control traffic stays served."""
    ca = str(test_certs().ca)
    with nginx(tmp_path, tls=True) as (url, _):
        hold = assay("hold", "--target", url, "--ca-file", ca, "--connections", "30",
                     "--delay", "0", "--hold", "1s", "--send-http", "--procs", "1",
                     "--results", str(tmp_path / "results"),
                     "--summary-json", str(tmp_path / "hold.json"), timeout=60)
        assert hold.returncode == 0, hold.stdout + hold.stderr
        held = json.loads((tmp_path / "hold.json").read_text())
        assert held["established"] == 30 and held["still_open"] == 30, held
        assert held["http"]["status_codes"] == {"200": 30}, held["http"]
        loris = assay("loris", "--target", url, "--ca-file", ca, "--connections", "30",
                      "--rate", "300", "--interval", "300ms", "--duration", "2s",
                      "--control-rate", "20", "--procs", "1",
                      "--results", str(tmp_path / "results"),
                      "--summary-json", str(tmp_path / "loris.json"), timeout=60)
        assert loris.returncode == 0, loris.stdout + loris.stderr
        slow = json.loads((tmp_path / "loris.json").read_text())
        assert slow["connected"] == 30 and slow["still_open"] == 30, slow
        assert slow["closed_by_server"] == 0 and slow["answers"] == {}
        assert slow["control_ok"] == slow["control_due"] > 0
        untrusted = assay("hold", "--target", url, "--connections", "5", "--hold", "1s",
                          "--procs", "1", "--results", str(tmp_path / "results"), timeout=60)
        assert untrusted.returncode == 3 and "certificate verify failed" in untrusted.stderr
        assert "Traceback" not in untrusted.stderr


def test_hold_target_shorthand_stays_plain_tcp() -> None:
    from coordinator.hold_cli import parse_target

    assert parse_target("127.0.0.1:8443") == ("http://127.0.0.1:8443/", "/")
    assert parse_target("https://127.0.0.1:8443/x") == ("https://127.0.0.1:8443/x", "/x")
