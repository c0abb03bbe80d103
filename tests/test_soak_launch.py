"""The soak, time-compressed: launched detached with systemd-free-launch/start, an actor
killed -9 (restarted, counts kept), the coordinator killed -9 (resumed, counts continuous),
stop, a restart storm, and every way a resume must refuse (exit 2, one line)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from coordinator.config import RunConfig
from tests.assay_cli import ROOT, actor_processes, assay

pytestmark = pytest.mark.integration

LAUNCH = ROOT / "systemd-free-launch"


def launcher_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, ASSAY_HOME=str(home), ASSAY_CMD=f"{sys.executable} -m coordinator",
               ASSAY_PYTHON=sys.executable)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("ASSAY_RUN_DIR", None)
    return env


def launch(script: str, *args: str, env: dict[str, str], timeout: float = 60) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAUNCH / script), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "validate-results.json").read_text())


def requests(document: dict[str, Any]) -> int:
    return document["tier_1"]["slices"]["markov"]["counters"].get("markov.requests", 0)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError, KeyError):  # a file being replaced, not yet written
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_gone(pid: int, timeout: float = 30) -> None:
    wait_for(lambda: not psutil.pid_exists(pid) or
             psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout, f"pid {pid} to exit")


def actor_pid(coordinator_pid: int, actor_id: int) -> int:
    for proc in psutil.Process(coordinator_pid).children():
        cmd = proc.cmdline()
        if "actors" in cmd and cmd[cmd.index("--actor-id") + 1] == str(actor_id):
            return proc.pid
    raise AssertionError(f"no actor {actor_id} under {coordinator_pid}")


def test_soak_restarts_a_killed_actor_and_resumes_a_killed_coordinator(tmp_path: Path):
    home = tmp_path / "home"
    env = launcher_env(home)
    started = launch("start", "--duration", "30s", "--procs", "2", "--concurrency", "6",
                     "--checkpoint-interval", "1s", "--progress-interval", "5s",
                     "--resource-warmup", "2s", "--resource-bucket", "2s", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    run_dir = Path((home / "run-dir").read_text().strip())
    assert run_dir.name.split("-", 1)[1].startswith("soak-refapp")
    coordinator = int((home / "assay.pid").read_text())
    try:
        wait_for(lambda: requests(results(run_dir)) > 0, 30, "traffic in a checkpoint")

        # kill -9 an actor: it comes back as incarnation 1, nothing it reported is lost
        before_actor_kill = requests(results(run_dir))
        os.kill(actor_pid(coordinator, 0), signal.SIGKILL)
        restarted = wait_for(
            lambda: (d := results(run_dir))["actors"][0]["restarts"] == 1
            and d["actors"][0]["ready"] and d, 30, "the actor restart in a checkpoint")
        assert requests(restarted) >= before_actor_kill
        assert restarted["actors"][0]["incarnations"] == 2
        assert restarted["actors"][0]["restart_history"][0]["previous"] == "killed by SIGKILL"
        assert restarted["supervision"]["actor_restarts"] == 1
        status = launch("status", env=env)
        assert status.returncode == 0 and "running" in status.stdout, status.stdout

        # kill -9 the coordinator: its actors and refapp follow it (no orphans)
        wait_for(lambda: requests(results(run_dir)) > requests(restarted), 20,
                 "a checkpoint with the restarted actor's traffic")
        os.kill(coordinator, signal.SIGKILL)
        wait_gone(coordinator)
        checkpointed = json.loads((run_dir / "checkpoint.json").read_text())
        at_kill = results(run_dir)
        wait_for(lambda: actor_processes(coordinator) == [], 15, "actors to die")
        status = launch("status", env=env)
        assert status.returncode == 3 and "--resume" in status.stdout, status.stdout
    finally:
        with_pid = psutil.pid_exists(coordinator)
        if with_pid and psutil.Process(coordinator).status() != psutil.STATUS_ZOMBIE:
            os.kill(coordinator, signal.SIGKILL)

    # resume through the launcher; it finishes the remaining budget in the same directory
    resumed = launch("start", "--resume", str(run_dir), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    second = int((home / "assay.pid").read_text())
    assert second != coordinator
    try:
        wait_gone(second, timeout=90)
    finally:
        if psutil.pid_exists(second):
            os.kill(second, signal.SIGKILL)
    final = results(run_dir)
    assert final["status"] == "passed", final.get("error")
    assert requests(final) > requests(at_kill) >= requests(restarted)
    resume = final["resume"]
    assert resume["resumed"] and resume["count"] == 1
    entry = resume["history"][0]
    assert entry["elapsed_at_resume_s"] == pytest.approx(checkpointed["elapsed_s"])
    assert entry["from_checkpoint_at"] == pytest.approx(checkpointed["written_at"])
    assert entry["remaining_s"] == pytest.approx(30 - checkpointed["elapsed_s"], abs=0.01)
    assert final["elapsed_s"] >= 30
    assert final["run_id"] == checkpointed["run_id"]
    # actor 0: incarnation 0, restarted as 1, resumed as 2; its restart is still reported
    assert [a["incarnations"] for a in final["actors"]] == [3, 2]
    assert final["actors"][0]["restarts"] == 1
    assert (run_dir / "logs" / "coordinator.log").read_text().count("soak resumed") == 1
    stopped = launch("stop", env=env)
    assert stopped.returncode == 0 and "not running" in stopped.stdout


def test_stop_ends_a_soak_with_final_results(tmp_path: Path):
    home = tmp_path / "home"
    env = launcher_env(home)
    started = launch("start", "--duration", "1h", "--procs", "1", "--concurrency", "3",
                     "--slices", "markov", "--checkpoint-interval", "1s", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    run_dir = Path((home / "run-dir").read_text().strip())
    wait_for(lambda: requests(results(run_dir)) > 0, 30, "traffic in a checkpoint")
    again = launch("start", "--duration", "1h", env=env)
    assert again.returncode == 1 and "already running" in again.stderr
    stopped = launch("stop", "--grace", "40", env=env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "interrupted" in stopped.stdout  # status printed after the stop
    document = results(run_dir)
    assert document["status"] == "interrupted" and document["exit_code"] == 143
    assert document["finished_at"] is not None and requests(document) > 0
    assert json.loads((run_dir / "checkpoint.json").read_text())["status"] == "interrupted"
    logs = launch("logs", "--coordinator", "-n", "5", env=env)
    assert logs.returncode == 0 and '"event"' in logs.stdout


def test_start_reports_a_soak_that_cannot_start(tmp_path: Path):
    env = launcher_env(tmp_path / "home")
    started = launch("start", "--duration", "bogus", env=env)
    assert started.returncode == 1
    assert "exit status 2" in started.stderr and "is not a duration" in started.stderr
    assert not (tmp_path / "home" / "assay.pid").exists()


def test_restart_storm_ends_the_run_with_exit_3(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator", "run", "--duration", "60s", "--procs", "2",
         "--concurrency", "4", "--slices", "markov", "--restart-actors",
         "--max-restarts-per-hour", "1", "--checkpoint-interval", "1s",
         "--results", str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: list(tmp_path.glob("*/validate-results.json")), 30, "a checkpoint")
        os.kill(actor_pid(proc.pid, 1), signal.SIGKILL)
        wait_for(lambda: results(next(tmp_path.iterdir()))["actors"][1]["ready"] and
                 results(next(tmp_path.iterdir()))["actors"][1]["restarts"] == 1, 30,
                 "the first restart")
        os.kill(actor_pid(proc.pid, 1), signal.SIGKILL)
        output, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, output
    document = results(next(tmp_path.iterdir()))
    assert "restart storm" in document["error"] and document["status"] == "error"
    assert actor_processes(proc.pid) == []


def test_plain_run_without_restarts_still_exits_3_on_actor_death(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator", "run", "--duration", "60s", "--procs", "1",
         "--concurrency", "2", "--slices", "markov", "--checkpoint-interval", "1s",
         "--results", str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: list(tmp_path.glob("*/validate-results.json")), 30, "a checkpoint")
        os.kill(actor_pid(proc.pid, 0), signal.SIGKILL)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3 and "died" in output, output


# -- resume refusals: exit 2, one line, nothing started ---------------------------------------
def write_checkpoint(run_dir: Path, **overrides: Any) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    config = RunConfig(mode="soak", duration_s=600, seed=5, procs=1, concurrency=2,
                       restart_actors=True)
    data = {"checkpoint_version": 1, "status": "running", "run_id": "abc", "mode": "soak",
            "config": config.to_json(), "tally": {}, "elapsed_s": 12.0, "written_at": 1.0}
    data.update(overrides)
    (run_dir / "checkpoint.json").write_text(json.dumps(data))
    return run_dir


@pytest.mark.parametrize("case, flags, message", [
    ("missing", [], "not a directory"),
    ("empty", [], "not an assay run directory"),
    ("plain-run", [], "plain run"),
    ("corrupt", [], "unreadable"),
    ("finished", [], "already finished"),
    ("conflict", ["--duration", "2h"], "--duration 7200.0 conflicts with the stored config"),
    ("conflict", ["--concurrency", "9", "--seed", "6"], "and 1 more"),
    ("alive", [], "is still running"),
])
def test_resume_refuses_what_it_cannot_continue(tmp_path: Path, case: str, flags: list[str],
                                                 message: str):
    run_dir = tmp_path / "20260101T000000Z-soak-x"
    keeper = None
    if case == "empty":
        run_dir.mkdir()
    elif case == "plain-run":
        run_dir.mkdir()
        (run_dir / "validate-results.json").write_text("{}")
    elif case == "corrupt":
        run_dir.mkdir()
        (run_dir / "checkpoint.json").write_text("{not json")
    elif case == "finished":
        write_checkpoint(run_dir, status="passed")
    elif case == "conflict":
        write_checkpoint(run_dir)
    elif case == "alive":
        keeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                   "coordinator"])
        write_checkpoint(run_dir, owner={"pid": keeper.pid, "host": os.uname().nodename})
    try:
        result = assay("soak", "--resume", str(run_dir), *flags, timeout=30)
    finally:
        if keeper is not None:
            keeper.kill()
            keeper.wait()
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
