"""report.html from saved results: every section, escaping, links, modes, malformed input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from coordinator.reports import REPORT_FILE, write_reports
from protocols.rfc_quotes import Q_CL_TE
from protocols.svg_charts import (
    Chart,
    Marker,
    Series,
    line_chart,
    nice_ticks,
    percentile_chart,
    percentile_position,
)

FIXTURES = Path(__file__).parent / "fixtures" / "report"


def failing_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "failing_run", run_dir)
    return run_dir


def page_of(run_dir: Path) -> str:
    written = write_reports(run_dir)
    assert run_dir / REPORT_FILE in written
    return (run_dir / REPORT_FILE).read_text()


def test_a_failing_run_page_has_every_section_and_the_failing_case(tmp_path: Path) -> None:
    page = page_of(failing_run(tmp_path))
    for section in ("verdict", "timeline", "latency", "invariants", "failures", "resources",
                    "counters"):
        assert f'id="{section}"' in page, section
    assert "assay run fixture-refapp: FAILED" in page and "exit code 1" in page
    assert "I-ADV-DESYNC" in page and "cl-te-smuggle" in page
    assert "RFC 9112 §6.1" in page
    assert Q_CL_TE.split("...")[0][:60] in page  # the sentence the case rests on
    # the bytes sent, escaped as text
    assert "Transfer-Encoding: chunked\\r\\n" in page
    # links relative to the run directory: the dossier and the shrunk reproducer
    assert re.search(r'href="incidents/[^"]+-I-ADV-DESYNC/"', page)
    assert re.search(r'href="incidents/[^"]+/shrink/repro.json"', page)
    # charts: rate and latency over time with the trip marked, the percentile curve
    assert page.count("<polyline") >= 5
    assert "I-ADV-DESYNC (adv.desync) tripped" in page
    assert "Latency by percentile" in page and "99.9%" in page


def test_bytes_from_the_target_are_escaped_never_markup(tmp_path: Path) -> None:
    page = page_of(failing_run(tmp_path))
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;console.error(&#x27;injected&#x27;)&lt;/script&gt;" in page
    assert "&amp;amp;" in page  # an entity in the bytes stays text too
    # nothing the browser would fetch: no external reference of any kind
    assert not re.search(r"<[a-z]+[^>]*\ssrc=", page)
    assert not re.search(r'<[a-z]+[^>]*\shref="(https?:)?//', page)
    for needle in ("<link", "@import", "url(", "<iframe", "<object"):
        assert needle not in page, needle


def test_absolute_paths_inside_the_run_become_relative_links(tmp_path: Path) -> None:
    run_dir = failing_run(tmp_path)
    path = run_dir / "validate-results.json"
    document = json.loads(path.read_text())
    for incident in document["incidents"]:
        for key in ("dossier", "repro"):
            incident[key] = str(run_dir / incident[key])
    document["incidents"].append({"counter": "adv.desync", "id": "elsewhere",
                                  "dossier": "/etc", "repro": "/etc/passwd"})
    path.write_text(json.dumps(document))
    page = page_of(run_dir)
    assert re.search(r'href="incidents/[^"]+/shrink/repro.json"', page)
    assert str(run_dir) + "/incidents" not in page
    assert 'href="/etc' not in page  # outside the run directory: no link


def test_links_survive_a_run_directory_moved_since_the_run(tmp_path: Path) -> None:
    """assay report on a copied archive: the document's absolute paths name where the
    run directory was; the part below the directory's own name is linked here."""
    run_dir = failing_run(tmp_path)
    path = run_dir / "validate-results.json"
    document = json.loads(path.read_text())
    for incident in document["incidents"]:
        (run_dir / incident["repro"]).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / incident["repro"]).write_text("{}")
        for key in ("dossier", "repro"):
            incident[key] = f"/elsewhere/{run_dir.name}/{incident[key]}"
    document["incidents"].append({"counter": "adv.desync", "id": "gone",
                                  "repro": f"/elsewhere/{run_dir.name}/not-here.bin",
                                  "dossier": f"/elsewhere/{run_dir.name}/../../etc"})
    path.write_text(json.dumps(document))
    page = page_of(run_dir)
    assert re.search(r'href="incidents/[^"]+/shrink/repro.json"', page)
    assert "not-here.bin" not in page and "etc" not in re.findall(r'href="([^"]*)"', page)


def test_a_malformed_document_still_gets_a_page_and_junit(tmp_path: Path) -> None:
    (tmp_path / "validate-results.json").write_text(json.dumps({
        "mode": "run", "status": "failed", "exit_code": 1, "invariants": "broken",
        "tier_1": [1, 2], "timeline": [{"t": "x"}, 5, {"t": 1, "exchanges": "many"}],
        "trips": {"adv.desync": "not a dict"}, "incidents": {"no": "list"},
        "target_resources": {"metrics": {"rss": "?"}}, "elapsed_s": "long"}))
    (tmp_path / "histograms.json").write_text('{"a.latency": "not-an-hdr-blob"}')
    written = write_reports(tmp_path)
    assert {p.name for p in written} == {"report.html", "junit.xml"}
    page = (tmp_path / REPORT_FILE).read_text()
    assert 'id="verdict"' in page and "no data" in page


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", None])
def test_no_readable_document_writes_nothing_and_does_not_raise(tmp_path: Path,
                                                                content: str | None) -> None:
    if content is not None:
        (tmp_path / "validate-results.json").write_text(content)
    assert write_reports(tmp_path) == []
    assert not (tmp_path / REPORT_FILE).exists()


def test_a_load_run_shows_its_thresholds_and_latency_summary(tmp_path: Path) -> None:
    (tmp_path / "validate-results.json").write_text(json.dumps({
        "mode": "load", "label": "api", "status": "failed", "exit_code": 1,
        "load": {"requests": 1200, "rate_achieved": 99.5, "errors": 3,
                 "latency_ms": {"p50": 1.5, "p99": 7.25},
                 "thresholds": [{"expr": "p(99)<5", "metric": "http_req_duration",
                                 "value": 7.25, "ok": False},
                                {"expr": "rate<0.01", "metric": "http_req_failed",
                                 "value": 0.0025, "ok": True}],
                 "thresholds_failed": ["p(99)<5"]}}))
    page = page_of(tmp_path)
    assert 'id="command"' in page
    assert "http_req_duration: p(99)&lt;5" in page and "status-FAIL" in page
    assert "7.25" in page and "latency_ms" in page


def test_a_soak_shows_resource_trends_with_the_fitted_slope(tmp_path: Path) -> None:
    timeline = [{"t": float(t), "exchanges": t * 100, "errors": 0, "p50_ms": 1.0,
                 "p99_ms": 2.0, "rss": 50.0 + t / 60, "fds": 40.0, "threads": 4.0}
                for t in range(0, 3600, 60)]
    metric = {"unit": "MiB", "status": "growing", "slope_per_h": 60.0, "buckets": 50,
              "first_bucket_min": 55.0, "last_bucket_min": 109.0}
    (tmp_path / "validate-results.json").write_text(json.dumps({
        "mode": "soak", "status": "failed", "exit_code": 1, "timeline": timeline,
        "target_resources": {"metrics": {"rss": metric,
                                         "fds": {**metric, "unit": "fds", "slope_per_h": 0.0,
                                                 "status": "steady"}}}}))
    page = page_of(tmp_path)
    assert 'id="resources"' in page
    assert "fitted +60 MiB/h" in page and "fitted +0 fds/h" in page
    assert 'stroke-dasharray="6 4"' in page  # the fitted line, dashed
    assert "growing" in page and "steady" in page


def test_the_matrix_page_is_a_grid_linking_the_cells_own_reports(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "matrix", tmp_path, dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "failing_run", tmp_path / "cells/refapp-broken/run")
    write_reports(tmp_path / "cells/refapp-broken/run")
    page = page_of(tmp_path)
    assert 'id="matrix"' in page and 'id="cells"' in page
    assert 'href="cells/refapp-broken/run/report.html"' in page
    assert 'href="cells/nginx/run/report.html"' not in page  # no such report on disk
    assert "lighttpd&lt;b&gt;" in page and "<b>" not in page
    grid = page.split('id="matrix"')[1].split("</table>")[0]
    first_row = grid.split("<tr>")[2]
    assert first_row.startswith("<th>I-ADV-")  # failed invariants first
    assert 'class="cell fail"' in first_row and 'class="cell pass"' in first_row
    assert "launch: lighttpd exited 255" in page


def test_nice_ticks_cover_the_range_in_round_steps() -> None:
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0.0, 0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert nice_ticks(5, 5)[0] <= 5 <= nice_ticks(5, 5)[-1]
    assert nice_ticks(float("nan"), 1) == [0.0, 1.0]


def test_charts_escape_labels_and_say_when_empty() -> None:
    svg = line_chart(Chart("<t>", "x", "y", [Series("a<b", [(0, 1), (1, 2)])],
                           [Marker(0.5, '"trip"&')]))
    assert "<t>" not in svg and "&lt;t&gt;" in svg and "a&lt;b" in svg
    assert "&quot;trip&quot;&amp;" in svg
    assert "no data" in line_chart(Chart("t", "x", "y", [Series("a", [])]))
    assert "no data" in percentile_chart("t", [])


def test_percentiles_are_spaced_by_nines() -> None:
    assert percentile_position(0) == 0
    assert percentile_position(90) == pytest.approx(1)
    assert percentile_position(99.9) == pytest.approx(3)
    assert percentile_position(100) == pytest.approx(6, abs=0.01)  # capped, not infinite


def command_document(name: str) -> dict:
    """A failed ``assay watch`` / ``assay proxy`` document (trimmed from real runs)."""
    return json.loads((FIXTURES / "command_blocks.json").read_text())[name]


def test_a_failed_watch_shows_i_reconf_fail_and_its_failure_window(tmp_path: Path) -> None:
    (tmp_path / "validate-results.json").write_text(json.dumps(command_document("watch")))
    page = page_of(tmp_path)
    invariants = page.split('id="invariants"', 1)[1].split("</section>", 1)[0]
    assert "1 failed" in invariants
    assert re.search(r"I-RECONF-FAIL</td><td class=\"status-failed\">failed", invariants)
    assert "keepalive_kept" in invariants and "status-info" in invariants
    failures = page.split('id="failures"', 1)[1].split("</section>", 1)[0]
    assert "no invariant failed" not in failures
    assert "I-RECONF-FAIL [HIGH]" in failures and "failed_requests 10" in failures
    assert "watch failure window" in failures and "3715635" in failures
    assert 'id="command"' in page and "failed_counted" in page


def test_a_failed_proxy_shows_each_finding_with_bytes_and_reproducer(tmp_path: Path) -> None:
    document = command_document("proxy")
    block = document["proxy"]
    block["reproducers"] = {case: str(tmp_path / path.rsplit("/", 1)[1])
                            for case, path in block["reproducers"].items()}
    (tmp_path / "validate-results.json").write_text(json.dumps(document))
    page = page_of(tmp_path)
    invariants = page.split('id="invariants"', 1)[1].split("</section>", 1)[0]
    assert "2 failed, 3 passed" in invariants  # two proxy invariants + two fleet passes
    assert invariants.index("I-PROXY-DESYNC") < invariants.index("I-PROXY-HOP")  # block order
    failures = page.split('id="failures"', 1)[1].split("</section>", 1)[0]
    assert "I-PROXY-DESYNC [HIGH]" in failures and "I-PROXY-HOP [MEDIUM]" in failures
    assert "I-PROXY-REWRITE" not in failures
    assert failures.count("a MEDIUM verdict does not fail the run") == 1  # HOP only
    assert "proxy.cl_te" in failures and "proxy.double_cl" in failures
    assert 'href="proxy-repro-cl_te.bin"' in failures
    # the bytes both ways, escaped as the document escapes bytes, never as markup
    assert "GET /assay-smuggled/" in failures and "Transfer-Encoding: chunked\\r\\n" in failures
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x00" in failures
    assert "<script" not in page.lower()
    assert "backend_received" in failures
    # the RFC section and sentence each case rests on (protocols.proxy_cases)
    assert "RFC 9112 §6.1" in failures
    assert "<blockquote>A server MAY reject a request that contains both" in failures


def test_a_proxy_run_whose_backends_were_not_read_shows_nothing_as_passed(tmp_path: Path
                                                                         ) -> None:
    document = command_document("proxy")
    block = document["proxy"]
    block.update(findings=[], collected=False, fetch_errors={"33101": "TooSlowError()"})
    for verdict in block["verdicts"]:
        verdict.update(status="passed", findings=0)
    (tmp_path / "validate-results.json").write_text(json.dumps(document))
    invariants = page_of(tmp_path).split('id="invariants"', 1)[1].split("</section>", 1)[0]
    for invariant in ("I-PROXY-DESYNC", "I-PROXY-REWRITE", "I-PROXY-HOP"):
        assert f'{invariant}</td><td class="status-not_judged">not judged' in invariants
    assert "backend 33101 could not be asked: TooSlowError()" in invariants
