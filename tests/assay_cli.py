"""Run the real ``assay`` command in a subprocess and read back what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def assay(*args: str, timeout: float = 90.0, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT),
                                                          full_env.get("PYTHONPATH")]))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "coordinator", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT)


def only_results(parent: Path) -> dict:
    runs = sorted(p for p in parent.iterdir() if p.is_dir())
    assert len(runs) == 1, runs
    return json.loads((runs[0] / "validate-results.json").read_text())


def invariant_status(document: dict, inv_id: str) -> str:
    for status, entries in document["invariants"].items():
        if any(entry["id"] == inv_id for entry in entries):
            return status
    raise AssertionError(f"{inv_id} not in results")


def actor_processes(coordinator_pid: int | None = None) -> list[int]:
    """pids of live `python -m actors` processes (optionally of one coordinator)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if "actors" in cmd and "--pull" in cmd:
            if coordinator_pid is None or str(coordinator_pid) in cmd:
                found.append(proc.info["pid"])
    return found


def leftover_actors(document: dict) -> list[int]:
    """pids of this run's actors (from its results) that are still alive."""
    import psutil

    alive = []
    for actor in document.get("actors", []):
        pid = actor.get("pid")
        if pid and psutil.pid_exists(pid):
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
    return alive
