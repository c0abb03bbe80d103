"""Target resource oracles and restart detection, end to end on loopback, time-compressed.

Each oracle is proven twice: a server that leaks (tests/leaky_server.py, on a clock) fires
it, and the correct refapp stays silent. Warm-up and buckets are compressed by flags
(``--resource-warmup 2s --resource-bucket 1s``) so a 14 s run has a dozen buckets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assay_cli import ROOT, assay, invariant_status, only_results

pytestmark = pytest.mark.integration

LEAKY = ROOT / "tests" / "leaky_server.py"
FAST = ("--resource-warmup", "2s", "--resource-bucket", "1s")


@contextmanager
def leaky_server(*flags: str, port: int = 0) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen([sys.executable, str(LEAKY), "--port", str(port), *flags],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield line.split()[-1] + "/", proc
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def run_against(url: str, pid: int, results: Path, *extra: str) -> subprocess.CompletedProcess:
    return assay("run", "--target", url, "--target-pid", str(pid), "--slices", "markov",
                 "--procs", "1", "--concurrency", "4", "--results", str(results), *FAST,
                 *extra)


def test_fd_and_thread_leaks_fire_and_memory_stays_silent(tmp_path: Path):
    with leaky_server("--leak-fds-per-s", "12", "--leak-threads-per-s", "3") as (url, proc):
        result = run_against(url, proc.pid, tmp_path, "--duration", "14s")
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert invariant_status(document, "I-FD-LEAK") == "failed"
    assert invariant_status(document, "I-THREADS") == "failed"
    assert invariant_status(document, "I-MEM-RSS") == "passed"
    assert "res.fds_growing" in document["trips"]  # HIGH: tripped while running
    fds = document["target_resources"]["metrics"]["fds"]
    assert fds["status"] == "growing" and fds["growth"] > 32
    assert "I-FD-LEAK" in result.stdout


def test_memory_leak_fires_and_fds_threads_stay_silent(tmp_path: Path):
    with leaky_server("--leak-mb-per-s", "5") as (url, proc):
        result = run_against(url, proc.pid, tmp_path, "--duration", "14s")
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert invariant_status(document, "I-MEM-RSS") == "failed"
    assert invariant_status(document, "I-FD-LEAK") == "passed"
    assert invariant_status(document, "I-THREADS") == "passed"
    rss = document["target_resources"]["metrics"]["rss"]
    assert rss["unit"] == "MiB" and rss["slope_per_h"] > 1000


def test_refapp_stays_silent_on_all_three(tmp_path: Path):
    result = assay("run", "--duration", "14s", "--procs", "2", "--concurrency", "8",
                   "--results", str(tmp_path), *FAST)
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path)
    for inv_id in ("I-MEM-RSS", "I-FD-LEAK", "I-THREADS"):
        assert invariant_status(document, inv_id) == "passed", document["target_resources"]
    assert document["target_resources"]["judged"] is True


def test_unknown_pid_or_short_run_is_not_judged_with_the_reason(tmp_path: Path):
    with leaky_server() as (url, _):
        result = assay("run", "--target", url, "--slices", "markov", "--procs", "1",
                       "--concurrency", "2", "--duration", "2s", "--results", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path)
    entry = next(e for e in document["invariants"]["not_judged"] if e["id"] == "I-MEM-RSS")
    assert "pid unknown" in entry["reason"]


def test_target_restart_is_detected_and_reported(tmp_path: Path):
    with leaky_server() as (url, first):
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        run = subprocess.Popen(
            [sys.executable, "-m", "coordinator", "run", "--target", url, "--target-pid",
             str(first.pid), "--slices", "markov", "--procs", "1", "--concurrency", "2",
             "--duration", "9s", "--checkpoint-interval", "1s", "--results", str(tmp_path),
             *FAST], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        try:
            deadline = time.monotonic() + 20
            while not list(tmp_path.glob("*/validate-results.json")):
                assert time.monotonic() < deadline and run.poll() is None
                time.sleep(0.2)
            time.sleep(1.0)
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=5)
            time.sleep(1.5)  # refused for a while, then a new process on the same port
            with leaky_server(port=port) as (_, second):
                output, _ = run.communicate(timeout=40)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 1, output  # I-LIVENESS still fails on the death
    document = only_results(tmp_path)
    assert invariant_status(document, "I-LIVENESS") == "failed"
    restarts = document["target_restarts"]
    assert restarts["restarts"] == 1, restarts
    episode = restarts["episodes"][0]
    assert episode["kind"] == "restart" and episode["old_pid"] == first.pid
    assert episode["new_pid"] == second.pid and episode["down_s"] > 0.5
    assert document["target_resources"]["pids"] == [first.pid, second.pid]
    assert document["tier_1"]["coordinator"]["coord.target_restarts"] == 1
