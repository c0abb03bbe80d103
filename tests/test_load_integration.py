"""``assay load`` and ``assay slo`` end to end, against servers the tests start."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assay_cli import ROOT, assay
from tests.servers import free_port, nginx, wait_for_port

pytestmark = pytest.mark.integration

COUNTED = """
        location = /load { access_log {prefix}/load.log; return 200 "$request_id"; }"""


@contextmanager
def delay_server(*args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "delay_server.py"),
                             "--port", str(port), *args])
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.kill()
        proc.wait()


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_constant_rate_is_met_and_nginx_counts_the_same(tmp_path: Path) -> None:
    with nginx(tmp_path, extra=COUNTED) as (url, _):
        summary_file = tmp_path / "summary.json"
        result = assay("load", "--target", url + "load", "--health-path", "/healthz",
                       "--rate", "300", "--duration", "3s", "--procs", "2",
                       "--results", str(tmp_path / "results"),
                       "--summary-json", str(summary_file))
        assert result.returncode == 0, result.stdout + result.stderr
        served = len((tmp_path / "nginx" / "load.log").read_text().splitlines())
    summary = _summary(summary_file)
    assert summary["requests"] == 900 and summary["dropped"] == 0 and summary["errors"] == 0
    assert abs(served - summary["requests"]) <= 0.01 * served
    assert summary["rate_asked"] == pytest.approx(300.0)
    assert summary["rate_achieved"] == pytest.approx(300.0, rel=0.02)
    assert summary["status_codes"] == {"200": 900}
    for block in ("latency_ms", "service_ms"):
        assert set(summary[block]) >= {"p50", "p90", "p95", "p99", "p99_9", "max"}
        assert 0 < summary[block]["p50"] <= summary[block]["p99"] <= summary[block]["max"]
    # The run directory holds the same summary, and the histograms behind it.
    run_dir = Path(summary["results_path"])
    assert _summary(run_dir / "summary.json")["requests"] == 900
    assert "load.default.latency" in json.loads((run_dir / "histograms.json").read_text())
    assert "requests 900 at" in result.stdout


def test_a_stall_shows_in_latency_and_not_in_service_time(tmp_path: Path) -> None:
    # Two connections at 100 req/s against 5 ms answers, and a 2 s stop-the-world pause
    # 1 s in: the requests due during the pause wait for a connection. Measured from
    # their due time (coordinated-omission correct) they took up to 2 s; from the moment
    # they were sent, a few milliseconds. Only the two requests caught in flight by the
    # pause have a long service time: under 1 % of the run.
    with delay_server("--delay-ms", "5", "--stall-at", "1", "--stall-for", "2") as url:
        summary_file = tmp_path / "summary.json"
        assay("load", "--target", url, "--rate", "100", "--duration", "5s",
              "--connections", "2", "--max-vus", "1000", "--procs", "1",
              "--results", str(tmp_path), "--summary-json", str(summary_file))
    summary = _summary(summary_file)
    assert summary["dropped"] == 0, summary
    assert summary["latency_ms"]["p99"] > 1500, summary["latency_ms"]
    assert summary["service_ms"]["p99"] < 300, summary["service_ms"]
    assert summary["latency_ms"]["p90"] > 10 * summary["service_ms"]["p90"]


def test_thresholds_decide_the_exit_code(tmp_path: Path) -> None:
    with nginx(tmp_path, extra=COUNTED) as (url, _):
        failing = assay("load", "--target", url + "load", "--vus", "4", "--duration", "2s",
                        "--procs", "1", "--results", str(tmp_path / "a"),
                        "--threshold", "p(99)<0.001", "--threshold",
                        "http_req_failed: rate<0.01", "--summary-json",
                        str(tmp_path / "a.json"))
        passing = assay("load", "--target", url + "load", "--vus", "4", "--duration", "2s",
                        "--procs", "1", "--results", str(tmp_path / "b"),
                        "--threshold", "p(99)<5000", "--threshold", "http_reqs: count>10",
                        "--summary-json", str(tmp_path / "b.json"))
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert passing.returncode == 0, passing.stdout + passing.stderr
    listed = {t["expr"]: t for t in _summary(tmp_path / "a.json")["thresholds"]}
    assert listed["p(99)<0.001"]["ok"] is False and listed["p(99)<0.001"]["value"] > 0.001
    assert listed["http_req_failed: rate<0.01"]["ok"] is True
    assert listed["http_req_failed: rate<0.01"]["value"] == 0
    assert "FAIL threshold http_req_duration: p(99)<0.001" in failing.stdout
    closed = _summary(tmp_path / "b.json")
    assert closed["rate_asked"] is None and closed["requests"] > 10
    assert all(t["ok"] for t in closed["thresholds"])


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (["--rate", "0"], ["--rate", "10", "--threshold", "p(99)<<5"],
                 ["--rate", "abc"], ["--ramp", "10:xs"]):
        result = assay("load", "--target", "http://127.0.0.1:9/", *args,
                       "--results", str(tmp_path))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    scenario = tmp_path / "s.toml"
    scenario.write_text('[scenarios.a]\nexecutor = "constant-vus"\nvus = 2\n'
                        'duration = "1s"\nbogus = 1\n')
    result = assay("load", "--target", "http://127.0.0.1:9/", "--scenario", str(scenario))
    assert result.returncode == 2
    assert f"{scenario}:5" in result.stderr and "bogus" in result.stderr


def test_slo_finds_the_capacity_of_a_serial_server(tmp_path: Path) -> None:
    # One request at a time, 10 ms each: capacity 100 req/s. Arrivals at a constant rate
    # below it never queue (p99 about 10 ms); above it the queue grows by (rate - 100)
    # requests a second, 10 ms each, so in a 2 s run a 50 ms p99 holds to ~102 req/s.
    with delay_server("--delay-ms", "10", "--serial") as url:
        result = assay("slo", "--target", url, "--slo", "50ms", "--warmup", "0.5s",
                       "--step-duration", "1.5s", "--runs", "1", "--start-rate", "40",
                       "--max-rate", "400", "--resolution", "0.3", "--max-steps", "6",
                       "--procs", "1", "--results", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (top,) = tmp_path.glob("*-slo-*")
    rows = {row["slo_ms"]: row for row in json.loads((top / "slo.json").read_text())["slos"]}
    assert rows[50.0]["status"] == "found", rows
    assert 70 <= rows[50.0]["max_rate"] <= 105, rows[50.0]
    assert rows[50.0]["bracket"][1] <= 160
    assert (top / "slo-table.txt").read_text().strip() in result.stdout


SCENARIOS = """
[thresholds]
"http_req_duration{scenario:beat}" = ["p(95)<2000"]

[scenarios.beat]
executor = "constant-arrival-rate"
rate = 50
duration = "2s"
tags = { kind = "agent" }
[scenarios.beat.request]
method = "POST"
path = "/agents/{rand:1..5000}/heartbeat"
body = '{"seq": {seq}}'
[scenarios.beat.checks]
status = [200]

[scenarios.browse]
executor = "constant-vus"
vus = 2
duration = "1s"
start_time = "1s"
[scenarios.browse.request]
path = "/list"
[scenarios.browse.checks]
header_equals = { "content-type" = "application/json" }
[scenarios.browse.thresholds]
checks = ["rate>0.99"]
"""


def test_a_scenario_file_runs_its_scenarios_with_checks_and_per_scenario_thresholds(
        tmp_path: Path) -> None:
    scenario = tmp_path / "storm.toml"
    scenario.write_text(SCENARIOS)
    with delay_server("--delay-ms", "2") as url:
        result = assay("load", "--target", url, "--scenario", str(scenario), "--procs", "2",
                       "--results", str(tmp_path), "--summary-json",
                       str(tmp_path / "s.json"))
    # The list answers text/plain: its check fails, so its threshold does: exit 1.
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary(tmp_path / "s.json")
    beat, browse = summary["scenarios"]["beat"], summary["scenarios"]["browse"]
    assert beat["requests"] == 100 and beat["errors"] == 0
    assert beat["checks"] == {"status == 200": {"pass": 100, "fail": 0}}
    assert browse["requests"] > 10 and browse["rate_asked"] is None
    assert browse["checks"]["header content-type == 'application/json'"]["pass"] == 0
    results = {t["expr"]: t["ok"] for t in summary["thresholds"]}
    assert results == {"p(95)<2000": True, "rate>0.99": False}, summary["thresholds"]


def test_an_abort_on_fail_threshold_stops_the_run_early(tmp_path: Path) -> None:
    with delay_server("--delay-ms", "20") as url:
        result = assay("load", "--target", url, "--rate", "50", "--duration", "20s",
                       "--procs", "1", "--threshold", "p(99)<1; abort_on_fail",
                       "--results", str(tmp_path), "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary(tmp_path / "s.json")
    assert summary["aborted_by"] == ["p(99)<1; abort_on_fail"]
    assert 0 < summary["requests"] < 400  # stopped within a few seconds, not after 20
    assert "stopped early" in result.stdout


def test_requests_beyond_max_vus_are_dropped_not_delayed(tmp_path: Path) -> None:
    # 100 req/s against 200 ms answers needs ~20 in flight; with 2 allowed, about 90 % of
    # the arrivals find both busy and are dropped (counted, never queued), and those sent
    # are not late: their latency is the server's 200 ms.
    with delay_server("--delay-ms", "200") as url:
        result = assay("load", "--target", url, "--rate", "100", "--duration", "2s",
                       "--vus", "2", "--max-vus", "2", "--procs", "1",
                       "--threshold", "dropped_iterations: count==0",
                       "--results", str(tmp_path), "--summary-json", str(tmp_path / "s.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    summary = _summary(tmp_path / "s.json")
    assert summary["scheduled"] == 200
    assert summary["requests"] + summary["dropped"] == 200
    assert 150 <= summary["dropped"] <= 190, summary
    assert summary["latency_ms"]["p99"] < 400, summary["latency_ms"]
    (threshold,) = summary["thresholds"]
    assert threshold["ok"] is False and threshold["value"] == summary["dropped"]
