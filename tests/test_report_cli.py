"""``assay report DIR``, and the reports a real run writes at its end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import xmlschema

from tests.assay_cli import assay

FIXTURES = Path(__file__).parent / "fixtures" / "report"


def test_report_rebuilds_both_files_from_a_results_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "failing_run", run_dir)
    result = assay("report", str(run_dir), timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(run_dir / "report.html"), str(run_dir / "junit.xml")]
    assert "cl-te-smuggle" in (run_dir / "report.html").read_text()


def test_report_of_a_matrix_rebuilds_the_cells_first(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "matrix", tmp_path, dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "failing_run", tmp_path / "cells/refapp-broken/run")
    result = assay("report", str(tmp_path), timeout=30)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cells/refapp-broken/run/report.html").exists()
    assert 'href="cells/refapp-broken/run/report.html"' in (tmp_path / "report.html").read_text()


def test_report_of_a_matrix_writes_nothing_outside_its_directory(tmp_path: Path) -> None:
    matrix_dir, outside = tmp_path / "matrix", tmp_path / "outside"
    shutil.copytree(FIXTURES / "failing_run", outside)
    matrix_dir.mkdir()
    (matrix_dir / "validate-results.json").write_text(json.dumps(
        {"mode": "matrix", "status": "failed", "cells": [
            {"name": "x", "status": "failed", "run_dir": "../outside"}]}))
    result = assay("report", str(matrix_dir), timeout=30)
    assert result.returncode == 0, result.stderr
    assert (matrix_dir / "report.html").exists() and not (outside / "report.html").exists()


def test_a_directory_without_results_is_bad_input_in_one_line(tmp_path: Path) -> None:
    empty = assay("report", str(tmp_path), timeout=30)
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines() == [
        f"assay report: error: {tmp_path}: no validate-results.json (not a results directory)"]
    (tmp_path / "validate-results.json").write_text("{truncated")
    broken = assay("report", str(tmp_path), timeout=30)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "not JSON" in broken.stderr and len(broken.stderr.strip().splitlines()) == 1


def test_a_real_run_ends_with_a_timeline_a_report_and_valid_junit(tmp_path: Path) -> None:
    result = assay("run", "--duration", "3s", "--procs", "1", "--results", str(tmp_path),
                   timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    document = json.loads((run_dir / "validate-results.json").read_text())
    timeline = document["timeline"]
    assert len(timeline) >= 2
    assert [p["t"] for p in timeline] == sorted(p["t"] for p in timeline)
    assert timeline[-1]["exchanges"] > 0 and timeline[-1]["exchanges"] <= \
        document["tier_1"]["totals"]["exchanges"]
    assert any(p["p99_ms"] is not None for p in timeline)
    assert all("rss" in p for p in timeline)  # the built-in target's pid is known
    page = (run_dir / "report.html").read_text()
    assert "PASSED" in page and 'id="timeline"' in page and "<polyline" in page
    schema = xmlschema.XMLSchema(FIXTURES / "junit-10.xsd")
    schema.validate(str(run_dir / "junit.xml"))
