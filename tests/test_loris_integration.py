"""``assay loris`` end to end: slow headers against nginx (event-driven: the control
traffic gets through) and against the refapp with the ``worker-pool-starvation`` defect
(32 workers held by slow heads: the control traffic times out), with the same flags."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from refapp.launch import start_refapp
from tests.assay_cli import assay
from tests.servers import nginx

pytestmark = pytest.mark.integration

FLAGS = ("--connections", "64", "--rate", "200/s", "--interval", "1s", "--duration", "6s",
         "--control-rate", "20/s", "--procs", "2")


def _loris(tmp_path: Path, url: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    summary = tmp_path / "loris-summary.json"
    result = assay("loris", "--target", url, *FLAGS, "--results", str(tmp_path / "results"),
                   "--summary-json", str(summary), timeout=60)
    assert summary.exists(), result.stdout + result.stderr
    return result, json.loads(summary.read_text())


def _rows(summary: dict) -> list[dict[str, str]]:
    with open(summary["intervals_csv"], newline="") as file:
        return list(csv.DictReader(file))


def test_nginx_serves_the_control_traffic_under_slow_headers(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _):
        result, summary = _loris(tmp_path, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (summary["opened"], summary["connected"], summary["still_open"]) == (64, 64, 64)
    assert summary["control_due"] == 120 and summary["control_success_pct"] >= 95
    assert summary["ok"] and summary["refusing_at_s"] is None
    assert summary["control"]["latency_ms"]["p99"] is not None
    rows = _rows(summary)
    assert list(rows[0]) == ["seconds", "closed", "pending", "connected", "error",
                             "service_available", "control_ok", "control_failed"]
    assert [int(r["seconds"]) for r in rows] == list(range(1, len(rows) + 1))
    assert 6 <= len(rows) <= 8 and rows[-1]["connected"] == "64"
    assert all(r["service_available"] == "yes" for r in rows)
    assert "verdict        ok: control success" in result.stdout
    assert Path(summary["control_latency_hgrm"]).read_text().startswith("       Value")


def test_a_starved_worker_pool_fails_the_control_traffic(tmp_path: Path) -> None:
    with start_refapp(defects=["worker-pool-starvation"], stderr=subprocess.DEVNULL) as app:
        result, summary = _loris(tmp_path, app.url.rstrip("/") + "/stats")
    assert result.returncode == 1, result.stdout + result.stderr
    assert summary["control_success_pct"] < 50 and not summary["ok"]
    assert summary["control"]["errors_by_cause"].get("timeout", 0) > 0
    assert summary["control_unavailable_at_s"] is not None
    rows = _rows(summary)
    assert [int(r["seconds"]) for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1]["service_available"] == "no"
    assert "verdict        FAILED: control success" in result.stdout


def test_the_refapp_without_the_defect_passes_the_same_test(tmp_path: Path) -> None:
    with start_refapp(stderr=subprocess.DEVNULL) as app:
        result, summary = _loris(tmp_path, app.url.rstrip("/") + "/stats")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["control_success_pct"] >= 95 and summary["still_open"] == 64


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = assay("loris", "--target", "http://127.0.0.1:1/", "--mode", "slower",
                   "--results", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "assay: error: --mode 'slower' is not one of headers, body, read, range"]
