"""Running one matrix cell: an ordinary ``assay run`` in a child process, bounded in time.

Why a child process and not the fleet in-process: a cell is exactly the run a user could
have typed (its own coordinator, actors, target, results directory, incidents), so what a
matrix reports about a cell is what ``assay run`` reports, and one cell that crashes or
hangs cannot take the others with it. The child gets its own session (process group): a
Ctrl-C to the matrix, or a cell past its deadline, becomes SIGINT to that group -- the run
writes its results and exits 130 -- then SIGKILL if it is still there after
``STOP_GRACE_S``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from coordinator import logs
from protocols.divergence import cell_view
from protocols.matrix_file import CellSpec

ROOT = Path(__file__).resolve().parent.parent
#: How long a stopped cell has to write its results after SIGINT before SIGKILL.
STOP_GRACE_S = 30.0
#: ``assay run``'s exit codes (coordinator.cli) -> the cell's status.
STATUS_BY_EXIT = {0: "passed", 1: "failed", 130: "interrupted", 143: "interrupted"}


@dataclass
class CellResult:
    """What one cell left behind: its exit code and its run document reduced to a view."""

    spec: CellSpec
    exit_code: int | None = None
    run_dir: Path | None = None
    document: dict[str, Any] | None = None
    reason: str | None = None
    elapsed_s: float = 0.0
    view: dict[str, Any] = field(default_factory=dict)

    timed_out: bool = False

    @property
    def status(self) -> str:
        """passed/failed from the run's exit code; error when it could not be judged (exit
        2 or 3, no readable results, stopped at its deadline); interrupted by Ctrl-C."""
        if self.timed_out or self.document is None or self.exit_code is None:
            return "error"
        return STATUS_BY_EXIT.get(self.exit_code, "error")

    def entry(self, matrix_dir: Path) -> dict[str, Any]:
        """The cell's entry in the matrix document's ``cells[]``."""
        target = self.spec.target
        if target is None and self.document:
            target = (self.document.get("target") or {}).get("url")
        entry: dict[str, Any] = {
            "name": self.spec.name,
            "target": target,
            "launch": self.spec.launch,
            "run_dir": (os.path.relpath(self.run_dir, matrix_dir)
                        if self.run_dir is not None else None),
            "status": self.status,
            "exit_code": self.exit_code,
            "invariants": self.view.get("invariants", {"passed": [], "failed": [],
                                                       "not_judged": []}),
            "slices": self.view.get("slices", {}),
            "failing_cases": self.view.get("failing_cases", {}),
        }
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def cell_command(spec: CellSpec, results: Path, log_format: str) -> list[str]:
    """``python -m coordinator run ...`` for one cell, its results under ``results``."""
    return [sys.executable, "-m", "coordinator", "run", *spec.run_args(),
            "--results", str(results), "--label", spec.name, "--log-format", log_format]


async def run_cell(spec: CellSpec, cell_dir: Path, *, cwd: Path, deadline_s: float,
                   stop: trio.Event, log_format: str = "console") -> CellResult:
    """Run one cell to its end (or ``deadline_s``, or ``stop``) and read its results.

    The child's output goes to ``cell_dir/run.log``. ``stop`` (Ctrl-C on the matrix) ends
    the cell the same way as its deadline does: SIGINT, then what it wrote is read back.
    Stopping is a signal, not a trio cancellation, so the cell's result is always returned.
    """
    log = logs.get_logger("assay.matrix")
    result = CellResult(spec)
    cell_dir.mkdir(parents=True, exist_ok=True)
    command = cell_command(spec, cell_dir, log_format)
    started = time.monotonic()
    log.info("cell started", cell=spec.name, command=" ".join(command[2:]))
    with open(cell_dir / "run.log", "wb") as output:
        try:
            process = await trio.lowlevel.open_process(
                command, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=output,
                stderr=output, start_new_session=True, env=_child_env())
        except OSError as exc:
            result.reason = f"could not start assay run: {exc.strerror or exc}"
        else:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch, process, deadline_s, stop, result)
                    await process.wait()
                    nursery.cancel_scope.cancel()
            finally:
                if process.returncode is None:  # the matrix itself was cancelled
                    with trio.CancelScope(shield=True):
                        await _stop_group(process)
            result.exit_code = process.returncode
    result.elapsed_s = round(time.monotonic() - started, 3)
    _read_back(result, cell_dir)
    return result


def _child_env() -> dict[str, str]:
    """Our environment, with this checkout first on the path: the child runs in the matrix
    file's directory, where ``-m coordinator`` would not find a checkout that is not
    installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


async def _watch(process: trio.Process, deadline_s: float, stop: trio.Event,
                 result: CellResult) -> None:
    """Stops the cell at its deadline or when the matrix is told to stop."""
    with trio.move_on_after(deadline_s):
        await stop.wait()
    if not stop.is_set():
        result.timed_out = True
        result.reason = f"stopped: still running {deadline_s:.0f} s after it started"
    await _stop_group(process)


async def _stop_group(process: trio.Process) -> None:
    """SIGINT to the cell's process group (the run writes its results), SIGKILL if it
    is still there after ``STOP_GRACE_S``."""
    _signal_group(process, signal.SIGINT)
    with trio.move_on_after(STOP_GRACE_S):
        await process.wait()
        return
    _signal_group(process, signal.SIGKILL)
    await process.wait()


def _signal_group(process: trio.Process, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _read_back(result: CellResult, cell_dir: Path) -> None:
    """The run directory the child made under ``cell_dir`` and its document, if any."""
    runs = sorted(p for p in cell_dir.iterdir()
                  if p.is_dir() and (p / "validate-results.json").is_file())
    if runs:
        result.run_dir = runs[-1]
        try:
            result.document = json.loads((runs[-1] / "validate-results.json").read_text())
        except (OSError, ValueError) as exc:
            result.reason = f"unreadable validate-results.json: {exc}"
    if result.document is not None:
        result.view = cell_view(result.document)
    elif result.reason is None:
        result.reason = _last_line(cell_dir / "run.log") or "the run wrote no results"
    if result.exit_code in (2, 3) and result.reason is None:
        result.reason = _last_line(cell_dir / "run.log")


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    return lines[-1][:500] if lines else None
