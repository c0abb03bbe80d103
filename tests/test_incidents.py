"""The incident path: a dossier starts in the trip call itself, the slow work runs beside the
run, later trips are counted, and a real ``assay run`` leaves a complete dossier whose repro
fails the defective refapp and passes the correct one."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import trio

from coordinator.incident_capture import render_bytes
from coordinator.incident_settings import IncidentSettings
from coordinator.incidents import IncidentManager
from coordinator.invariants import BY_ID
from protocols.adversarial_cases import BY_NAME
from replay.repro import load_repro, replay
from tests.assay_cli import assay, only_results
from tests.incident_support import refapp, url_of

DEAD_URL = "http://127.0.0.1:9/"


def _manager(tmp_path: Path, **settings) -> IncidentManager:
    return IncidentManager(tmp_path, IncidentSettings(**settings), run_id="r1",
                           target_url=DEAD_URL, target_pid=None, builtin=False, seed=42,
                           run_settings={"health_path": "/healthz"},
                           counters=lambda: {"adv.sent": 10, "adv.desync": 1, "markov.x": 3})


def _detail(seen_at: float) -> dict:
    sent = BY_NAME["cl-te-smuggle"].build("127.0.0.1:9", "/")
    return {"actor": 1, "incarnation": 0, "walker": 4, "seen_at": seen_at,
            "received_at": time.time(),
            "evidence": {"case": "cl-te-smuggle", "sent": sent, "received": b"HTTP/1.1 4",
                         "walker": 4, "slice": "adv", "seed": 42, "step": 7,
                         "recent": [{"step": 6, "sent": b"GET / HTTP/1.1\r\n\r\n"}]}}


def test_trip_starts_the_dossier_synchronously_and_counts_later_trips(tmp_path: Path):
    async def main() -> IncidentManager:
        manager = _manager(tmp_path, budget_s=20)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.serve)
            await trio.sleep(0)
            manager.trip("adv.desync", BY_ID["I-ADV-DESYNC"], _detail(time.time() - 0.002))
            incident = manager.incidents["adv.desync"]
            # Before any checkpoint: the directory and a first incident.json exist.
            started = json.loads((incident.root / "incident.json").read_text())
            assert started["status"] == "capturing" and started["predicate"] == "I-ADV-DESYNC"
            manager.trip("adv.desync", BY_ID["I-ADV-DESYNC"], _detail(time.time()))
            manager.repeat("adv.desync")
            assert await manager.drain(budget_s=20)
            nursery.cancel_scope.cancel()
        return manager

    manager = trio.run(main)
    incident = manager.incidents["adv.desync"]
    assert incident.later_trips == 2 and len(list((tmp_path / "incidents").iterdir())) == 1
    document = json.loads((incident.root / "incident.json").read_text())
    assert document["severity"] == "HIGH" and document["meaning"]
    assert document["counters_at_trip"] == {"adv.sent": 10, "adv.desync": 1}
    assert document["source"] == {"via": "violation", "actor": 1, "incarnation": 0,
                                  "walker": 4, "slice": "adv", "run_seed": 42,
                                  "walker_step": 7,
                                  "walker_prng": "walker_rng(run_seed, actor, walker)"}
    latency = document["trip_latency_ms"]
    assert 0 < latency["seen_to_dossier"] < 1000 and latency["received_to_dossier"] >= 0
    assert document["host"]["arch"] and document["target"]["url"] == DEAD_URL
    rendered = json.loads((incident.root / "evidence.json").read_text())["evidence"]
    sent = rendered["sent"]
    assert base64.b64decode(sent["base64"]) == _detail(0)["evidence"]["sent"]
    assert "Transfer-Encoding: chunked\\r\\n" in sent["text"]
    assert (incident.root / "evidence/sent.bin").read_bytes() == base64.b64decode(sent["base64"])
    status = (incident.root / "forensics_status.txt").read_text()
    assert "target pid unknown" in status and "connect_refused" in status
    # The dead target cannot confirm the evidence: the repro is saved unshrunk, as flaky.
    assert document["stages"]["shrink"]["flaky"] is True
    assert load_repro(incident.root / "shrink/repro.json").program.check.oracle == "adv_case"
    summary = manager.summary()[0]
    assert summary["status"] == "complete" and summary["later_trips"] == 2


def test_an_incident_cut_short_by_the_budget_says_so(tmp_path: Path):
    async def main() -> IncidentManager:
        manager = _manager(tmp_path, budget_s=0)
        manager.trip("adv.desync", BY_ID["I-ADV-DESYNC"], _detail(time.time()))  # queued
        async with trio.open_nursery() as nursery:
            nursery.start_soon(manager.serve)
            assert not await manager.drain()
            nursery.cancel_scope.cancel()
        return manager

    incident = trio.run(main).incidents["adv.desync"]
    assert incident.status == "cut_short"
    assert json.loads((incident.root / "incident.json").read_text())["status"] == "cut_short"


def test_render_bytes_is_base64_plus_escaped_text():
    rendered = render_bytes(b"GET / HTTP/1.1\r\nX: \x00\xff\r\n\r\n")
    assert base64.b64decode(rendered["base64"]).endswith(b"\x00\xff\r\n\r\n")
    assert "\\x00\\xff" in rendered["text"] and rendered["length"] == 25


@pytest.mark.integration
def test_a_run_captures_shrinks_and_the_repro_replays(tmp_path: Path):
    result = assay("run", "--duration", "5s", "--procs", "2", "--concurrency", "12",
                   "--seed", "1", "--slices", "adv", "--refapp-defect", "cl-te-desync",
                   "--results", str(tmp_path), "--incident-budget", "40", timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    incidents = {i["invariant"]: i for i in document["incidents"]}
    # "Content-Length wins" also accepts an invalid Transfer-Encoding next to a length
    # (te-empty-cl, te-identity-cl...): I-ADV-ACCEPTED may trip too, rightly.
    assert "I-ADV-DESYNC" in incidents, document["incidents"]
    assert set(incidents) <= {"I-ADV-DESYNC", "I-ADV-ACCEPTED"}, document["incidents"]
    entry = incidents["I-ADV-DESYNC"]
    assert entry["status"] == "complete" and entry["trip_latency_ms"] < 1000
    root = Path(entry["dossier"])
    incident = json.loads((root / "incident.json").read_text())
    assert incident["target"]["pid"] and incident["target"]["commit"]
    assert incident["source"]["slice"] == "adv" and isinstance(incident["source"]["actor"], int)
    for name in ("evidence.json", "recent.json", "evidence/sent.bin", "forensics_status.txt",
                 "process/status", "process/maps", "process/limits", "process/fds.txt",
                 "process/threads.txt", "process/sockets.txt", "target/health.http",
                 "shrink/original.json", "shrink/repro.json", "shrink/shrink_log.json"):
        assert (root / name).exists(), name
    shrink = incident["stages"]["shrink"]
    assert shrink["status"] == "shrunk" and shrink["final_steps"] < shrink["original_steps"]
    log = json.loads((root / "shrink/shrink_log.json").read_text())
    assert len(log["attempts"]) == shrink["attempts"]
    repro = load_repro(root / "shrink/repro.json")
    assert repro.predicate["id"] == "I-ADV-DESYNC" and repro.seed == document["seed"]
    assert repro.host["arch"] and repro.target["commit"] == incident["target"]["commit"]
    with refapp("cl-te-desync") as bad:
        assert replay(repro, url_of(bad)).violated
    with refapp() as good:
        assert not replay(repro, url_of(good)).violated
