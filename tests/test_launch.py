"""``--launch CMD``: the target's lifecycle (listening pid behind a shell, stop,
one-line failures) and ``assay run --launch`` both ways: a correct refapp passes with the
resource oracles tracking its pid; one with crash-on-long-header-line fails."""

from __future__ import annotations

import json
import sys
import time

import psutil
import pytest

from coordinator.launch import ManagedTarget, TargetLauncher, check_command, listener_pid, start
from refapp.long_line import line_run
from replay.launcher import LaunchError, accepts
from tests.assay_cli import assay, only_results

REFAPP = f"{sys.executable} -m refapp --port {{port}}"
MODELS = ["--markov", "refapp/markov.yaml", "--spec", "refapp/openapi.yaml"]


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_check_command_and_the_long_line_counter():
    assert check_command("srv --port {port}")
    for bad in ("", "srv --port 80"):
        with pytest.raises(ValueError, match="launch"):
            check_command(bad)
    assert line_run(0, b"a" * 10) == (10, False)
    assert line_run(16380, b"aaa\r\nb") == (1, False)  # 16384 with CR survives
    assert line_run(16380, b"aaaaa") == (16385, True)  # a line split over reads counts whole
    assert line_run(0, b"x\n" + b"a" * 16385 + b"\n") == (0, True)


@pytest.mark.integration
def test_a_shell_wrapper_reports_the_listening_child_and_stop_kills_the_group(tmp_path):
    log = tmp_path / "target.log"
    # "; true" keeps the shell alive, so the server is its child, not the shell itself.
    running = start(f"{REFAPP}; true", log_path=log)
    try:
        assert running.pid != running.process.pid
        assert listener_pid(running.process.pid, running.port) == running.pid
        assert accepts("127.0.0.1", running.port) and running.alive()
    finally:
        running.stop()
    assert gone(running.pid) and gone(running.process.pid)
    assert "listening on" in log.read_text()


@pytest.mark.integration
def test_managed_target_stops_and_a_dead_command_is_one_line(tmp_path):
    managed = ManagedTarget(REFAPP, log_path=tmp_path / "t.log")
    first = managed.start()
    try:
        assert managed.start() is first and accepts("127.0.0.1", first.port)
    finally:
        managed.stop()
    assert gone(first.pid)
    with pytest.raises(LaunchError, match="exited with status 4"):
        start("exit 4 # {port}")
    with pytest.raises(LaunchError, match="nothing accepted"):
        start("sleep 20 # {port}", ready_timeout=1.0)


def test_launch_conflicts_are_usage_errors(tmp_path):
    for extra in (["--target", "http://127.0.0.1:9/"], ["--target-pid", "1"],
                  ["--refapp-defect", "lost-write"]):
        done = assay("run", "--launch", REFAPP, *extra, "--results", str(tmp_path), timeout=30)
        assert done.returncode == 2 and "--launch" in done.stderr, done.stderr
    done = assay("run", "--launch", "srv --port 80", "--results", str(tmp_path), timeout=30)
    assert done.returncode == 2 and "{port}" in done.stderr
    done = assay("run", "--launch-path", "/x", "--results", str(tmp_path), timeout=30)
    assert done.returncode == 2 and "--launch-path needs --launch" in done.stderr


@pytest.mark.integration
def test_run_launch_never_up_is_exit_3(tmp_path):
    done = assay("run", "--launch", "exit 3 # {port}", "--duration", "3s", "--results",
                 str(tmp_path), timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("assay: error: --launch target")


@pytest.mark.integration
def test_run_launch_passes_on_refapp_and_tracks_its_pid(tmp_path):
    done = assay("run", "--launch", REFAPP, *MODELS, "--duration", "8s", "--concurrency", "8",
                 "--procs", "1", "--results", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = only_results(tmp_path)
    pid = results["target"]["pid"]
    assert isinstance(pid, int) and results["config"]["launch"] == REFAPP
    resources = results["target_resources"]
    assert resources["pid"] == pid and resources["samples"] > 0
    assert "pid" not in str(resources.get("reason", ""))
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert "listening on" in (run_dir / "logs" / "target.log").read_text()
    assert gone(pid)  # stopped at the end


@pytest.mark.integration
def test_run_launch_fails_on_a_target_that_crashes_and_the_crash_shrinks(tmp_path):
    from replay.crash_shrink import shrink_crash

    command = REFAPP + " --defect crash-on-long-header-line"
    done = assay("run", "--launch", command, *MODELS, "--duration", "6s", "--concurrency", "8",
                 "--procs", "1", "--slices", "adv", "--incident-budget", "5", "--no-shrink",
                 "--results", str(tmp_path / "runs"), timeout=120)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    results = only_results(tmp_path / "runs")
    failed = {entry["id"] for entry in results["invariants"]["failed"]}
    assert "I-LIVENESS" in failed
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert "crash-on-long-header-line" in (run_dir / "logs" / "target.log").read_text()
    assert gone(results["target"]["pid"])
    # Candidates as the attribution step writes them (its own test proves the collection):
    # benign inputs around the killer, whose capture the flight recorder capped.
    doc = {"kind": "liveness", "candidates": [
        {"rank": 1, "slice": "adv", "case": "fields-too-many", "sent_at": 2.0,
         "writes": ["GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n\r\n"]},
        {"rank": 2, "slice": "adv", "case": "field-oversized", "sent_at": 1.0,
         "writes": ["GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Assay: aaaa"], "truncated": True},
        {"rank": 3, "slice": "adv", "case": "baseline", "sent_at": 3.0,
         "writes": ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]}]}
    repro = shrink_crash(doc, TargetLauncher(command), tmp_path / "shrink", budget_s=60,
                         probe_path="/healthz")
    assert repro is not None, (tmp_path / "shrink" / "crash_shrink.json").read_text()
    report = json.loads((tmp_path / "shrink" / "crash_shrink.json").read_text())
    assert report["found"] and all("field-oversized" in name for name in report["found"])


def test_a_soak_resume_restores_the_launch_command_and_refuses_another():
    from dataclasses import replace

    from coordinator.checkpoint import config_from_json, conflicts
    from coordinator.config import RunConfig

    stored = RunConfig(mode="soak", launch=REFAPP, seed=7)
    restored = config_from_json(stored.to_json())
    assert restored.launch == REFAPP and restored.target is None
    assert conflicts(stored, restored) == []
    other = conflicts(stored, replace(restored, launch="srv --port {port}"))
    assert other and other[0].startswith("--launch")


@pytest.mark.integration
def test_a_launched_target_dies_with_a_killed_assay(tmp_path):
    import os
    import signal
    import subprocess

    from tests.assay_cli import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # "cd / &&" makes the shell fork the server: PDEATHSIG alone would not reach it.
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "coordinator", "run", "--launch", f"cd / && {REFAPP}", *MODELS,
         "--duration", "60s", "--procs", "1", "--concurrency", "2", "--results",
         str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        server = None
        deadline = time.monotonic() + 60
        while server is None and time.monotonic() < deadline:
            for child in psutil.Process(coordinator.pid).children(recursive=True):
                try:
                    line = " ".join(child.cmdline())
                except psutil.Error:
                    continue
                if "-m refapp" in line and not line.startswith("/bin/sh"):
                    server = child.pid
            time.sleep(0.2)
        assert server is not None, "the launched refapp never showed up"
    finally:
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=10)
    assert gone(server, within=10)


def test_stop_sweeps_children_of_a_shell_that_already_exited(tmp_path):
    """The shell exits (and is reaped) while its child serves on: stop() still kills the
    group (its id is the shell's pid; os.getpgid of a reaped pid fails)."""
    import subprocess

    from replay.launcher import LaunchedProcess

    pidfile = tmp_path / "child.pid"
    shell = subprocess.Popen(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; exit 0"],
                             start_new_session=True)
    shell.wait(timeout=5)
    child = psutil.Process(int(pidfile.read_text()))
    assert child.is_running()
    LaunchedProcess(shell, "http://127.0.0.1:1/").stop(grace=0.5)
    child.wait(timeout=5)  # raises TimeoutExpired if it survived
    assert not child.is_running()


def test_stop_signals_the_listener_it_found_never_a_process_that_took_its_pid():
    """The listener found at start has exited and its pid now names another process (here a
    bystander given as ``listener``): stop() and alive() act on the process found, whose
    start time psutil checks, not on whatever holds the pid now."""
    import subprocess

    from coordinator.launch import LaunchedTarget
    from replay.launcher import LaunchedProcess

    shell = subprocess.Popen(["sh", "-c", "exit 0"], start_new_session=True)
    shell.wait(timeout=5)
    exited = subprocess.Popen(["sleep", "0"])
    found = psutil.Process(exited.pid)
    exited.wait(timeout=5)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        target = LaunchedTarget(LaunchedProcess(shell, "http://127.0.0.1:1/"), 1,
                                bystander.pid, listening=found)
        assert not target.alive()
        target.stop(grace=0.5)
        assert bystander.poll() is None, "stop() killed a process it never launched"
    finally:
        bystander.kill()
        bystander.wait(timeout=5)
