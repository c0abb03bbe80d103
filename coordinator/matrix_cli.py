"""``assay matrix FILE``: run every cell of a matrix file, then diff the cells.

Each cell is an ordinary ``assay run`` (``coordinator.matrix_run``) with its results under
``<matrix dir>/cells/<name>/``; cells run one after another, or ``--parallel N`` at a time.
The matrix directory ``<results>/<stamp>-matrix-<label>/`` holds one
``validate-results.json`` (``mode: matrix``, ``cells[]``: name, target, launch, run_dir,
status, exit_code, the run's invariants, per-slice counters and failing cases), rewritten
as each cell ends so a crash or Ctrl-C never loses a finished cell, plus ``diff.txt`` and
``diff.json`` of the cells against each other (``coordinator.diff_cli``) and the reports.

Launch commands run in the matrix file's directory, so ``python3 server.py`` finds a
server kept beside the file. Exit 0 when every cell passed, 1 when any failed or could not
run (a target unreachable is a cell in error, not a matrix crash), 2 for a bad matrix file
or flag, 130 after Ctrl-C (143 after SIGTERM): the running cells get SIGINT and keep
what they measured, and no new cell starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import trio

from coordinator import logs
from coordinator.cli import _add_run_options
from coordinator.config import _CONVERTERS, DEFAULT_DURATION_S
from coordinator.config_values import ConfigError, parse_duration, parse_positive_int
from coordinator.diff_cli import write_diff
from coordinator.matrix_run import CellResult, run_cell
from coordinator.reports import write_reports
from coordinator.results import ResultsError, create_run_dir, iso, write_json_atomic
from protocols.divergence import diverge_cells, judged_cells
from protocols.matrix_file import CELL_KEYS, CellSpec, MatrixFileError, parse_matrix

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: ``assay run`` flags a cell may not pass in ``run_args``: cell keys or the matrix's own.
MATRIX_OWNED = frozenset({"--results", "--label", "--log-format", "--target", "--launch",
                          "--refapp-defect", "--duration", "--slices", "--procs",
                          "--concurrency", "--seed", "--health-path", "--ws-path",
                          "--sse-path", "--launch-path", "--body-path"})
#: Matrix settings checked by the same converters ``assay run`` applies to its flags.
_RUN_CHECKED = ("target", "launch", "duration", "concurrency", "procs", "seed",
                "health_path", "ws_path", "sse_path", "launch_path", "body_path")


def add_matrix_parser(sub: Any) -> None:
    matrix = sub.add_parser("matrix", help="run every cell of a matrix file (TOML) as an "
                            "assay run, one results document with cells[], and a diff")
    add = matrix.add_argument
    add("file", type=Path, help="matrix file: [[cell]] tables (name, target|launch|neither "
        "= built-in refapp, duration, slices, ...)")
    add("--results", type=Path, default=Path("results"),
        help="parent directory of the matrix directory (default ./results)")
    add("--label", help="label in the matrix directory name (default: the file's name)")
    add("--parallel", default="1", help="cells running at the same time (default 1); "
        "each cell without procs gets cores/N actor processes")
    add("--cell-grace", default="5m", help="how long past its duration a cell may run "
        "(leak probes, incidents) before it is stopped as an error (default 5m)")
    add("--log-format", default="console", choices=("console", "json"),
        help="log format of the matrix and of each cell's run.log")


def validators() -> dict[str, Any]:
    """The checks of ``assay run`` itself, for the values a matrix file may carry."""
    checks: dict[str, Any] = {key: _CONVERTERS[key] for key in _RUN_CHECKED}
    checks["slices"] = _known_slice
    checks["refapp_defect"] = _known_defect
    return checks


def _known_slice(name: str) -> None:
    from actors.slices import SLICES

    if name not in SLICES:
        raise ConfigError(f"unknown slice {name!r} (known: {', '.join(SLICES)})")


def _known_defect(name: str) -> None:
    from refapp.defects import BY_NAME

    if name not in BY_NAME:
        raise ConfigError(f"unknown refapp defect {name!r} (python -m refapp --list-defects)")


def load_cells(path: Path) -> tuple[CellSpec, ...]:
    """The matrix file's cells, each one's flags accepted by ``assay run``'s parser."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"matrix file {path}: {getattr(exc, 'strerror', None) or exc}"
                          ) from None
    try:
        cells = parse_matrix(text, str(path), validators())
    except MatrixFileError as exc:
        raise ConfigError(str(exc)) from None
    parser = _RunFlags(prog="assay run", add_help=False)
    _add_run_options(parser)
    for index, cell in enumerate(cells):
        passed = cell.setting("run_args") or ()
        owned = [flag for flag in passed if flag.split("=", 1)[0] in MATRIX_OWNED]
        if owned:
            key = owned[0].lstrip("-").split("=", 1)[0].replace("-", "_")
            hint = "a cell key" if key in CELL_KEYS else "the matrix's own"
            raise ConfigError(f"{path}:{cell.line}: cell[{index}].run_args: {owned[0]} is "
                              f"{hint}, not a run_args flag")
        try:
            parser.parse_args(cell.run_args())
        except ConfigError as exc:
            raise ConfigError(f"{path}:{cell.line}: cell[{index}].run_args: {exc}") from None
    return cells


class _RunFlags(argparse.ArgumentParser):
    """``assay run``'s options; a flag it refuses is a ``ConfigError``, not an exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def run_matrix(args: argparse.Namespace) -> int:
    logs.configure(args.log_format)
    try:
        cells = load_cells(args.file)
        parallel = parse_positive_int(args.parallel, "--parallel")
        grace_s = parse_duration(args.cell_grace, "--cell-grace")
        label = _CONVERTERS["label"](args.label)[1] if args.label else args.file.stem
        matrix_dir = create_run_dir(args.results, "matrix", label or "matrix")
    except ConfigError as exc:
        sys.stderr.write(f"assay matrix: error: {exc}\n")
        return EXIT_USAGE
    except ResultsError as exc:
        sys.stderr.write(f"assay matrix: error: {exc}\n")
        return EXIT_USAGE
    parallel = min(parallel, len(cells))
    cells = tuple(_with_procs(cell, parallel) for cell in cells)
    matrix = _Matrix(matrix_dir, args.file, cells, grace_s, args.log_format)
    trio.run(matrix.run, parallel)
    # Outside trio no receiver holds the signals: a late Ctrl-C must not cut the final
    # document, the diff or the reports short (they take well under a second).
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return matrix.finish()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _with_procs(cell: CellSpec, parallel: int) -> CellSpec:
    """Cells running side by side share the cores: procs = cores / N unless given."""
    if parallel <= 1 or cell.setting("procs") is not None:
        return cell
    procs = max(1, (os.cpu_count() or 1) // parallel)
    return CellSpec(cell.name, cell.target, cell.launch, (*cell.settings, ("procs", procs)),
                    cell.line)


class _Matrix:
    """The matrix run's state: finished cells and the document written after each."""

    def __init__(self, matrix_dir: Path, file: Path, cells: tuple[CellSpec, ...],
                 grace_s: float, log_format: str) -> None:
        self.dir, self.file, self.cells = matrix_dir, file, cells
        self.grace_s, self.log_format = grace_s, log_format
        self.results: dict[str, CellResult] = {}
        self.stop = trio.Event()
        self.signal: int | None = None
        self.started = time.time()
        self.log = logs.get_logger("assay.matrix")
        self.write("running")

    async def run(self, parallel: int) -> None:
        """Cells start in file order, at most ``parallel`` at a time, none after a stop."""
        slots = trio.Semaphore(parallel)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch_signals)
            async with trio.open_nursery() as cells:
                for cell in self.cells:
                    await slots.acquire()
                    if self.stop.is_set():
                        slots.release()
                        break
                    cells.start_soon(self.one, cell, slots)
            nursery.cancel_scope.cancel()

    async def watch_signals(self) -> None:
        """The first SIGINT/SIGTERM stops the matrix; later ones (an impatient second
        Ctrl-C) are only logged, so the cells still write what they measured and the
        matrix document still records them (a KeyboardInterrupt would lose both)."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.stop.is_set():
                    self.log.warning("already stopping: the running cells are writing "
                                     "their results", signal=signal.Signals(signum).name)
                    continue
                self.log.warning("stopping the matrix", signal=signal.Signals(signum).name)
                self.signal = signum
                self.stop.set()

    async def one(self, cell: CellSpec, slots: trio.Semaphore) -> None:
        try:
            duration = parse_duration(cell.setting("duration") or DEFAULT_DURATION_S)
            result = await run_cell(cell, self.dir / "cells" / cell.name,
                                    cwd=self.file.resolve().parent,
                                    deadline_s=duration + self.grace_s, stop=self.stop,
                                    log_format=self.log_format)
        finally:
            slots.release()
        self.results[cell.name] = result
        print(f"cell {cell.name:<20} {result.status:<11} exit {result.exit_code}  "
              f"{result.elapsed_s:6.1f} s  {result.reason or ''}".rstrip(), flush=True)
        self.write("running")

    def entries(self) -> list[dict[str, Any]]:
        """Finished cells in file order."""
        return [self.results[c.name].entry(self.dir) for c in self.cells
                if c.name in self.results]

    def write(self, status: str, exit_code: int | None = None) -> None:
        now = time.time()
        write_json_atomic(self.dir / "validate-results.json", {
            "schema_version": "1.0", "mode": "matrix", "status": status,
            "exit_code": exit_code, "started_at": iso(self.started),
            "finished_at": iso(now) if exit_code is not None else None,
            "elapsed_s": round(now - self.started, 3), "matrix_file": str(self.file),
            "cells": self.entries(),
        })

    def finish(self) -> int:
        entries = self.entries()
        if self.stop.is_set():
            status, code = "interrupted", 128 + (self.signal or signal.SIGINT)
        elif any(e["status"] != "passed" for e in entries):
            status, code = "failed", EXIT_FAIL
        else:
            status, code = "passed", EXIT_PASS
        self.write(status, code)
        found = diverge_cells(judged_cells({"cells": entries}))
        text = write_diff(self.dir, found, {"matrix": str(self.dir)})
        sys.stdout.write(text)
        write_reports(self.dir)  # never raises: the results are already on disk
        print(f"matrix   {status} ({sum(e['status'] == 'passed' for e in entries)}/"
              f"{len(self.cells)} cells passed)\nresults  {self.dir}")
        return code
