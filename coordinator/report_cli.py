"""``assay report DIR``: rebuild ``report.html`` and ``junit.xml`` from a results directory.

Every run writes both at its end; this rebuilds them (after an upgrade of assay, for a run
killed before its end, for a directory copied from another machine) from
``validate-results.json`` and ``histograms.json`` alone, with no target and no network.
For a matrix directory the cells' own reports are rebuilt first, so the grid links to
pages that exist. Exit 0 when the reports were written, 2 when DIR holds no readable
results document (one line on stderr), 3 when they could not be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from coordinator.reports import (
    JUNIT_FILE,
    REPORT_FILE,
    ReportInputError,
    load_document,
    write_reports,
)

EXIT_OK, EXIT_USAGE, EXIT_WRITE = 0, 2, 3


def add_report_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="rebuild report.html and junit.xml from a results "
                            "directory (run, soak, load, hold, loris, stress step or matrix)")
    report.add_argument("directory", type=Path,
                        help="a results directory (holding validate-results.json)")


def run_report(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    try:
        document = load_document(directory)
    except ReportInputError as exc:
        sys.stderr.write(f"assay report: error: {exc}\n")
        return EXIT_USAGE
    if document.get("mode") == "matrix":
        for cell in document.get("cells") or []:
            run_dir = cell.get("run_dir") if isinstance(cell, dict) else None
            if isinstance(run_dir, str) and _inside(directory, directory / run_dir):
                write_reports(directory / run_dir)
    written = write_reports(directory)
    names = {path.name for path in written}
    for path in written:
        print(path)
    missing = [name for name in (REPORT_FILE, JUNIT_FILE) if name not in names]
    if missing:
        sys.stderr.write(f"assay report: error: could not write {', '.join(missing)} in "
                         f"{directory} (see the log above)\n")
        return EXIT_WRITE
    return EXIT_OK


def _inside(directory: Path, cell_dir: Path) -> bool:
    """A cell's run directory as the matrix wrote it: inside the matrix directory (a
    ``run_dir`` of ``../..`` in an edited document must not make this write elsewhere)."""
    try:
        return cell_dir.is_dir() and cell_dir.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False
