"""``report.html`` and ``junit.xml`` beside a run's results: the one entry point.

How this works: ``write_reports(run_dir)`` reads what the run already wrote
(``validate-results.json``, and ``histograms.json`` when present), renders the page
(``report_html`` / ``report_matrix``) and the JUnit XML (``junit``), and writes each
atomically (temp file, fsync, rename) so a reader never sees half a page. It is called at
the end of every fleet run, by ``assay stress`` for its top directory, for the
unreachable-target document, and by ``assay report DIR``.

It never raises: a report is a view of results that are already safe on disk, and a bug
or a malformed document here must not turn a finished run into a traceback. What cannot be
rendered is logged and skipped; the renderers themselves skip a malformed part of a
document and render the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coordinator.logs import get_logger
from coordinator.results import HISTOGRAMS_FILE, RESULTS_FILE, write_text_atomic

REPORT_FILE = "report.html"
JUNIT_FILE = "junit.xml"


class ReportInputError(ValueError):
    """The directory holds no readable results document (``assay report`` exits 2)."""


def load_document(run_dir: Path) -> dict[str, Any]:
    """The run's results document, or ReportInputError saying in one line what is wrong."""
    path = run_dir / RESULTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportInputError(f"{run_dir}: no {RESULTS_FILE} (not a results directory)"
                               ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise ReportInputError(f"{path}: not a results document (top level is not an object)")
    return document


def load_histograms(run_dir: Path) -> dict[str, Any]:
    """``histograms.json`` (name -> encoded HdrHistogram); empty when absent or unreadable."""
    try:
        loaded = json.loads((run_dir / HISTOGRAMS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def render_all(run_dir: Path, document: dict[str, Any],
               encoded_histograms: dict[str, Any]) -> dict[str, str]:
    """File name -> contents for every report of ``document`` (a part that fails to render
    is logged and left out)."""
    log = get_logger("reports")
    rendered: dict[str, str] = {}
    try:
        if document.get("mode") == "matrix":
            from coordinator.report_matrix import render_matrix

            rendered[REPORT_FILE] = render_matrix(run_dir, document)
        else:
            from coordinator.report_html import render_page

            rendered[REPORT_FILE] = render_page(run_dir, document, encoded_histograms)
    except Exception as exc:  # a report bug must not fail a finished run
        log.error("could not render report.html", run_dir=str(run_dir),
                  error=f"{type(exc).__name__}: {exc}")
    try:
        from coordinator.junit import render_junit

        rendered[JUNIT_FILE] = render_junit(document)
    except Exception as exc:  # same: log and keep what did render
        log.error("could not render junit.xml", run_dir=str(run_dir),
                  error=f"{type(exc).__name__}: {exc}")
    return rendered


def write_reports(run_dir: Path) -> list[Path]:
    """Write ``report.html`` and ``junit.xml`` into ``run_dir``; the paths written.

    Never raises: a missing or malformed document, or a render or write failure, is logged
    and yields fewer (or no) paths.
    """
    log = get_logger("reports")
    run_dir = Path(run_dir)
    try:
        document = load_document(run_dir)
    except ReportInputError as exc:
        log.warning("no reports written", reason=str(exc))
        return []
    written: list[Path] = []
    for name, text in render_all(run_dir, document, load_histograms(run_dir)).items():
        path = run_dir / name
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            log.error("could not write a report", path=str(path), error=str(exc))
            continue
        written.append(path)
    return written
