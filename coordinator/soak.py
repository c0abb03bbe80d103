"""``assay soak``: the long run that calls a release production-ready, and its resume.

How this works: a soak is ``assay run`` with a preset - mode ``soak`` (results in
``<ts>-soak-<label>``), a 24 h budget, results and ``checkpoint.json`` rewritten every 60 s,
progress every 60 s, dead actors restarted as new incarnations (``--max-restarts-per-hour``
bounds it), and the coordinator's own log as rotated JSON lines in
``<run>/logs/coordinator.log`` - every one of which a flag, ``ASSAY_*`` variable or config
file can still override. Everything else (target, slices, invariants, resource oracles,
exit codes) is the run's.

``assay soak --resume DIR`` continues a soak whose coordinator died: it loads the
checkpoint (``coordinator.checkpoint``), rebuilds the stored configuration, refuses flags that
contradict it, and runs the remaining budget in the same directory with new actor
incarnations. A launcher that needs the run directory before the run ends (the
``systemd-free-launch`` scripts) sets ``ASSAY_RUN_DIR_FILE``: its path is written there as soon
as the directory exists.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from coordinator import checkpoint, logrotate, logs
from coordinator.checkpoint import ResumeError
from coordinator.cli import config_from_args
from coordinator.config import RunConfig
from coordinator.logs import get_logger

SOAK_PRESET = RunConfig(mode="soak", duration_s=24 * 3600.0, checkpoint_interval_s=60.0,
                        progress_interval_s=60.0, restart_actors=True)
RUN_DIR_FILE_ENV = "ASSAY_RUN_DIR_FILE"
COORDINATOR_LOG = "coordinator.log"


def soak_main(args: argparse.Namespace) -> int:
    """Start a fresh soak, or resume one; a ConfigError (exit 2) says why not."""
    from coordinator.execute import execute_run

    if args.resume is None:
        config = config_from_args(args, mode="soak", base=SOAK_PRESET)
        logs.configure(config.log_format)
        return execute_run(config, setup=_setup(config, None))
    run_dir = Path(args.resume).resolve()
    data = checkpoint.load(run_dir)
    _refuse_if_alive(run_dir, data)
    stored = checkpoint.config_from_json(data["config"])
    requested = config_from_args(args, mode="soak", base=stored)
    problems = checkpoint.conflicts(stored, requested)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResumeError(f"cannot resume {run_dir}: {problems[0]}{more}")
    config = replace(requested, results_dir=run_dir.parent,
                     extra={**requested.extra, **stored.extra})
    logs.configure(config.log_format)
    return execute_run(config, run_dir=run_dir, setup=_setup(config, data))


def _refuse_if_alive(run_dir: Path, data: dict[str, Any]) -> None:
    """Two coordinators writing one directory would corrupt it: the old one must be dead."""
    owner = data.get("owner") or {}
    pid = owner.get("pid")
    if not isinstance(pid, int) or owner.get("host") != os.uname().nodename:
        return
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        cmdline = " ".join(process.cmdline())
        if process.status() != psutil.STATUS_ZOMBIE and (
                "assay" in cmdline or "coordinator" in cmdline):
            raise ResumeError(f"cannot resume {run_dir}: its coordinator (pid {pid}) is still "
                              "running; stop it first")


def _setup(config: RunConfig, data: dict[str, Any] | None) -> Callable[[Any], None]:
    def setup(coord: Any) -> None:
        if data is not None:
            checkpoint.resume_into(coord, data, coord.run_dir)
        logrotate.log_to_file(coord.run_dir / "logs" / COORDINATOR_LOG, config.log_format)
        coord.log = get_logger("coordinator").bind(run_id=coord.run_id)
        if data is not None:
            last = coord.resumes[-1]
            coord.log.warning("soak resumed", run_dir=str(coord.run_dir),
                              elapsed_at_resume_s=last["elapsed_at_resume_s"],
                              remaining_s=last["remaining_s"],
                              from_checkpoint_at=last["from_checkpoint_at"])
        else:
            coord.log.info("soak started", run_dir=str(coord.run_dir),
                           duration_s=config.duration_s)
        announce(coord.run_dir)
    return setup


def announce(run_dir: Path, environ: dict[str, str] | None = None) -> None:
    """Write the run directory to ``$ASSAY_RUN_DIR_FILE`` (atomically), if it is set."""
    target = (environ if environ is not None else os.environ).get(RUN_DIR_FILE_ENV)
    if not target:
        return
    path = Path(target)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{run_dir}\n")
        os.replace(tmp, path)
