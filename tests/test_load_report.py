"""coordinator.load_report: the load summary from merged counters and histograms."""

from __future__ import annotations

from coordinator.load_report import aborting, render, section
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    Check,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
)
from protocols.load_thresholds import parse_threshold
from protocols.tally import new_histogram


def _hist(values_ms: list[float]):
    hist = new_histogram()
    for value in values_ms:
        hist.record_value(int(value * 1000))
    return hist


def _plan(*thresholds: str) -> LoadPlan:
    beat = Scenario("beat", Executor(CONSTANT_ARRIVAL_RATE, vus=2, max_vus=10, rate=100,
                                     duration_s=10), RequestTemplate(),
                    tags=(("kind", "agent"),),
                    checks=(Check("status", "", [200, 429], "status in (200, 429)"),))
    browse = Scenario("browse", Executor(CONSTANT_VUS, vus=4, duration_s=10),
                      RequestTemplate(path="/list"))
    return LoadPlan((beat, browse), tuple(parse_threshold(t) for t in thresholds))


COUNTERS = {
    "load.beat.requests": 990, "load.beat.failed": 10, "load.beat.dropped": 10,
    "load.beat.scheduled": 1000, "load.beat.status.200": 900, "load.beat.status.429": 80,
    "load.beat.error.timeout": 10, "load.beat.check.0.pass": 980, "load.beat.check.0.fail": 10,
    "load.browse.requests": 500, "load.browse.failed": 0, "load.browse.status.200": 500,
}
HISTOGRAMS = {
    "load.beat.latency": _hist([1.0] * 98 + [200.0, 300.0]),
    "load.beat.service": _hist([1.0] * 100),
    "load.browse.latency": _hist([5.0] * 100),
    "load.browse.service": _hist([5.0] * 100),
}


def test_the_summary_has_the_contract_keys_overall_and_per_scenario() -> None:
    summary = section(_plan(), COUNTERS, HISTOGRAMS, 10.0)
    assert summary["requests"] == 1490 and summary["errors"] == 10
    assert summary["dropped"] == 10 and summary["model"] == "mixed"
    assert summary["rate_asked"] == 100.0  # the open scenario's schedule
    assert summary["rate_achieved"] == 149.0
    assert summary["errors_by_cause"] == {"timeout": 10}
    assert summary["status_codes"] == {"200": 1400, "429": 80}
    assert summary["checks"] == {"status in (200, 429)": {"pass": 980, "fail": 10}}
    beat = summary["scenarios"]["beat"]
    assert beat["executor"] == CONSTANT_ARRIVAL_RATE and beat["requests"] == 990
    assert beat["latency_ms"]["p50"] == 1.0 and beat["latency_ms"]["max"] >= 299
    assert summary["scenarios"]["browse"]["rate_asked"] is None
    for key in ("p50", "p90", "p95", "p99", "p99_9", "max"):
        assert key in summary["latency_ms"] and key in summary["service_ms"]


def test_thresholds_are_listed_with_their_values_and_select_by_tag() -> None:
    summary = section(_plan("p(99)<100", "http_req_duration{kind:agent}: max<250",
                            "http_req_failed{scenario:browse}: rate==0",
                            "checks: rate>0.98"), COUNTERS, HISTOGRAMS, 10.0)
    results = {t["expr"]: t for t in summary["thresholds"]}
    assert results["p(99)<100"]["ok"] is True  # 2 slow of 200 samples overall: p99 is 5 ms
    assert results["http_req_duration{kind:agent}: max<250"]["ok"] is False
    assert results["http_req_duration{kind:agent}: max<250"]["value"] >= 299
    assert results["http_req_failed{scenario:browse}: rate==0"]["ok"] is True
    assert results["checks: rate>0.98"]["value"] == 980 / 990
    assert summary["thresholds_failed"] == ["http_req_duration{kind:agent}: max<250"]
    text = "\n".join(render(summary))
    assert "FAIL threshold http_req_duration{kind:agent}: max<250" in text
    assert "scenario beat (constant-arrival-rate)" in text


def test_a_threshold_with_no_samples_fails() -> None:
    summary = section(_plan("http_req_duration{scenario:nobody}: p(95)<10"), COUNTERS,
                      HISTOGRAMS, 10.0)
    (result,) = summary["thresholds"]
    assert result["ok"] is False and result["value"] is None


def test_only_abort_on_fail_thresholds_past_their_delay_abort_the_run() -> None:
    plan = _plan("p(99)<0.5", "p(99)<0.5; abort_on_fail; delay_abort_eval=20s")
    assert aborting(plan, COUNTERS, HISTOGRAMS, 10.0) == []
    assert aborting(plan, COUNTERS, HISTOGRAMS, 21.0) == [
        "p(99)<0.5; abort_on_fail; delay_abort_eval=20s"]
