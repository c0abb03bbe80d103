"""`assay run` end to end on loopback: refapp, injected defect, nginx, lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.assay_cli import (
    ROOT,
    actor_processes,
    assay,
    invariant_status,
    leftover_actors,
    only_results,
)
from tests.servers import nginx

pytestmark = pytest.mark.integration


def test_refapp_run_passes_with_markov_traffic(tmp_path: Path):
    result = assay("run", "--duration", "5s", "--procs", "2", "--concurrency", "10",
                   "--results", str(tmp_path), "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path)
    markov = document["tier_1"]["slices"]["markov"]["counters"]
    assert markov["markov.requests"] > 100
    assert markov.get("markov.status_2xx", 0) > 0
    assert markov["markov.read_after_write_checks"] > 0
    assert document["status"] == "passed" and document["exit_code"] == 0
    assert invariant_status(document, "I-DRV-1") == "passed"
    assert document["tier_1"]["slices"]["markov"]["latency"]["markov.latency"]["count"] > 0
    assert len(document["actors"]) == 2
    assert "PASSED" in result.stdout and "p99" in result.stdout
    assert leftover_actors(document) == []


def test_lost_write_defect_fails_drv1(tmp_path: Path):
    result = assay("run", "--duration", "5s", "--procs", "2", "--concurrency", "6",
                   "--slices", "markov", "--refapp-defect", "lost-write",
                   "--results", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert invariant_status(document, "I-DRV-1") == "failed"
    failed = {e["id"] for e in document["invariants"]["failed"]}
    assert failed == {"I-DRV-1"}, document["invariants"]["failed"]
    example = document["tier_1"]["examples"]["markov.read_after_write_mismatch"]
    assert example  # the exchange that showed the lost write is kept
    assert "I-DRV-1" in result.stdout


def test_nginx_with_a_model_over_root(tmp_path: Path):
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\nstart: home\nstates:\n"
        "  home:\n    request: GET /\n    expect: [2xx]\n    next: {index: 1, home: 2}\n"
        "  index:\n    request: GET /index.html\n    expect: [200]\n    next: {home: 1}\n")
    with nginx(tmp_path) as (url, _):
        result = assay("run", "--target", url, "--markov", str(model), "--duration", "4s",
                       "--procs", "2", "--concurrency", "10", "--results",
                       str(tmp_path / "results"))
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path / "results")
    assert document["tier_1"]["slices"]["markov"]["counters"]["markov.requests"] > 100
    assert document["invariants"]["failed"] == []


def test_foreign_target_needs_no_flags_but_the_url(tmp_path: Path):
    with nginx(tmp_path) as (url, _):
        result = assay("run", "--target", url, "--duration", "3s", "--procs", "1",
                       "--results", str(tmp_path / "results"))
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path / "results")
    assert document["tier_1"]["slices"]["markov"]["counters"]["markov.requests"] > 0


def _background_run(tmp_path: Path, *extra: str, quiet: bool = False) -> subprocess.Popen:
    """A 60 s markov-only run in the background, with its actors up when this returns."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "coordinator", "run", "--duration", "60s",
                             "--procs", "2", "--concurrency", "4", "--slices", "markov",
                             "--results", str(tmp_path), "--checkpoint-interval", "0.5s",
                             *extra],
                            stdout=output, stderr=output, text=True, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _checkpointed_requests(tmp_path) == 0:
        time.sleep(0.2)
    assert len(actor_processes(proc.pid)) == 2
    return proc


def _checkpointed_requests(parent: Path) -> int:
    """Session requests in the latest checkpoint (0 before the first one)."""
    for path in parent.glob("*/validate-results.json"):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            return 0
        markov = document["tier_1"]["slices"].get("markov", {})
        return markov.get("counters", {}).get("markov.requests", 0)
    return 0


def test_sigterm_mid_run_keeps_results_and_leaves_no_orphans(tmp_path: Path):
    proc = _background_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out + err
    document = only_results(tmp_path)
    assert document["status"] == "interrupted"
    assert document["tier_1"]["slices"]["markov"]["counters"]["markov.requests"] > 0
    assert actor_processes(proc.pid) == []


def test_actor_killed_mid_run_is_reported_and_exit_3(tmp_path: Path):
    proc = _background_run(tmp_path)
    try:
        os.kill(actor_processes(proc.pid)[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out + err
    assert "died" in out + err and "SIGKILL" in out + err
    document = only_results(tmp_path)
    assert document["status"] == "error"
    assert document["tier_1"]["slices"]["markov"]["counters"]["markov.requests"] > 0
    assert actor_processes(proc.pid) == []


def test_coordinator_sigkill_takes_actors_down(tmp_path: Path):
    proc = _background_run(tmp_path, quiet=True)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and actor_processes(proc.pid):
        time.sleep(0.2)
    assert actor_processes(proc.pid) == []
