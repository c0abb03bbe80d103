"""What an ``assay load`` run measured: the summary, the thresholds, and the text a person
reads.

How this works: the load walkers (``actors.load_walker``) count per scenario and record
three histograms per scenario; the coordinator merges them across actors *as
histograms*. This module turns the merged counters and histograms into the summary
(``section``), evaluates the thresholds (``protocols.load_thresholds``) against a
``MetricView`` over the same data, and renders the summary as text (``render``). The
summary is the ``load`` block of ``validate-results.json`` and the whole of
``summary.json``; its keys are the issue's contract (``requests``, ``errors``,
``dropped``, ``rate_asked``, ``rate_achieved``, ``latency_ms``, ``service_ms``,
``thresholds``, ``scenarios``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

from protocols.load_model import LoadPlan, Scenario
from protocols.load_schedule import expected_arrivals
from protocols.load_thresholds import evaluate, to_json
from protocols.tally import latency_summary, new_histogram

#: An expression that starts with its metric (and tags): ``http_req_failed: rate<0.01``.
_QUALIFIED = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*(\{[^}]*\})?\s*:")
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99_9": 99.9}


def _selected(plan: LoadPlan, tags: Sequence[tuple[str, str]]) -> list[Scenario]:
    """The scenarios a tag filter selects: ``scenario:NAME`` or a tag the scenario declares."""
    chosen = []
    for scenario in plan.scenarios:
        own = dict(scenario.tags)
        if all((key == "scenario" and value == scenario.name) or own.get(key) == value
               for key, value in tags):
            chosen.append(scenario)
    return chosen


def window_s(scenarios: Sequence[Scenario], seconds: float) -> float:
    """How long ``scenarios`` ran, measured: from the first measured start to the last end,
    cut at ``seconds`` into the run (a run stopped early). Scenarios in sequence or with
    start times span more than any one of them."""
    if not scenarios:
        return 0.0
    begin = min(s.start_s + s.measure_after_s for s in scenarios)
    end = min(max(s.end_s for s in scenarios), seconds) if seconds > 0 else \
        max(s.end_s for s in scenarios)
    return max(0.0, end - begin)


class _Trend:
    """A merged latency histogram seen as a k6 trend, in milliseconds."""

    def __init__(self, hist: HdrHistogram) -> None:
        self._hist = hist
        self.count = hist.get_total_count()
        basics = latency_summary(hist, {}) if self.count else {}
        self.avg_ms = float(basics.get("mean_ms", 0.0))
        self.min_ms = float(basics.get("min_ms", 0.0))
        self.max_ms = float(basics.get("max_ms", 0.0))

    def percentile_ms(self, p: float) -> float:
        return float(latency_summary(self._hist, {"v": p}).get("v", 0.0))


class MetricView:
    """k6's metrics over merged tallies: which counters and histograms each one reads."""

    TRENDS = {"http_req_duration": "latency", "http_req_service": "service"}

    def __init__(self, plan: LoadPlan, counters: Mapping[str, int],
                 histograms: Mapping[str, HdrHistogram], seconds: float) -> None:
        self.plan = plan
        self.counters = counters
        self.histograms = histograms
        self.seconds = seconds

    def _sum(self, scenarios: Sequence[Scenario], name: str) -> int:
        return sum(self.counters.get(f"load.{s.name}.{name}", 0) for s in scenarios)

    def trend(self, metric: str, tags: Sequence[tuple[str, str]]) -> _Trend | None:
        kind = self.TRENDS.get(metric)
        chosen = _selected(self.plan, tags)
        if kind is None or not chosen:  # a tag no scenario has: no data, not zero
            return None
        merged = merge([self.histograms.get(f"load.{s.name}.{kind}") for s in chosen])
        return _Trend(merged)

    def rate(self, metric: str, tags: Sequence[tuple[str, str]]) -> tuple[int, int] | None:
        scenarios = _selected(self.plan, tags)
        if not scenarios:
            return None
        if metric == "http_req_failed":
            return self._sum(scenarios, "failed"), self._sum(scenarios, "requests")
        if metric == "checks":
            passed = failed = 0
            for scenario in scenarios:
                for index in range(len(scenario.checks)):
                    passed += self.counters.get(f"load.{scenario.name}.check.{index}.pass", 0)
                    failed += self.counters.get(f"load.{scenario.name}.check.{index}.fail", 0)
            return passed, passed + failed
        return None

    def counter(self, metric: str, tags: Sequence[tuple[str, str]]) -> tuple[int, float] | None:
        scenarios = _selected(self.plan, tags)
        if not scenarios:
            return None
        seconds = window_s(scenarios, self.seconds)
        if metric == "http_reqs":
            return self._sum(scenarios, "requests"), seconds
        if metric == "dropped_iterations":
            return self._sum(scenarios, "dropped"), seconds
        return None


def merge(hists: Sequence[HdrHistogram | None]) -> HdrHistogram:
    merged = new_histogram()
    for hist in hists:
        if hist is not None:
            merged.add(hist)
    return merged


def _latency(hist: HdrHistogram) -> dict[str, float | None]:
    if hist.get_total_count() == 0:
        return {**{key: None for key in PERCENTILES}, "max": None, "avg": None}
    found = latency_summary(hist, PERCENTILES)
    block: dict[str, float | None] = {key: round(found[key], 3) for key in PERCENTILES}
    block["max"] = round(found["max_ms"], 3)
    block["avg"] = round(found["mean_ms"], 3)
    return block


def _block(plan: LoadPlan, scenarios: Sequence[Scenario], counters: Mapping[str, int],
           histograms: Mapping[str, HdrHistogram], seconds: float) -> dict[str, Any]:
    """The summary of ``scenarios`` together (one scenario, or all of them)."""

    def total(name: str) -> int:
        return sum(counters.get(f"load.{s.name}.{name}", 0) for s in scenarios)

    def merged(kind: str) -> HdrHistogram:
        return merge([histograms.get(f"load.{s.name}.{kind}") for s in scenarios])

    requests = total("requests")
    open_model = [s for s in scenarios if s.executor.is_open]
    asked = sum(expected_arrivals(s.executor) for s in open_model)
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    checks: dict[str, dict[str, int]] = {}
    for scenario in scenarios:
        prefix = f"load.{scenario.name}."
        for name, value in counters.items():
            if name.startswith(prefix + "error."):
                cause = name[len(prefix) + 6:]
                errors[cause] = errors.get(cause, 0) + value
            elif name.startswith(prefix + "status."):
                code = name[len(prefix) + 7:]
                statuses[code] = statuses.get(code, 0) + value
        for index, check in enumerate(scenario.checks):
            entry = checks.setdefault(check.label, {"pass": 0, "fail": 0})
            entry["pass"] += counters.get(f"{prefix}check.{index}.pass", 0)
            entry["fail"] += counters.get(f"{prefix}check.{index}.fail", 0)
    measured_s = window_s(scenarios, 0.0)
    window = window_s(scenarios, seconds)
    lag = merged("lag")
    return {
        "model": ("open" if len(open_model) == len(scenarios) else
                  "closed" if not open_model else "mixed"),
        "requests": requests,
        "errors": total("failed"),
        "errors_by_cause": dict(sorted(errors.items())),
        "status_codes": dict(sorted(statuses.items())),
        "dropped": total("dropped"),
        "queued": total("queued"),
        "reconnected": total("reconnected"),
        "scheduled": total("scheduled"),
        "vus": total("vus"),
        "rate_asked": (round(asked / measured_s, 3) if open_model and measured_s > 0
                       else None),
        "rate_achieved": round(requests / window, 3) if window > 0 else 0.0,
        "latency_ms": _latency(merged("latency")),
        "service_ms": _latency(merged("service")),
        "schedule_lag_ms": _latency(lag) if lag.get_total_count() else None,
        "checks": checks,
        "warmup_requests": total("warmup_requests"),
    }


def section(plan: LoadPlan, counters: Mapping[str, int],
            histograms: Mapping[str, HdrHistogram], seconds: float) -> dict[str, Any]:
    """The whole summary: overall, per scenario, and every threshold with its value."""
    view = MetricView(plan, counters, histograms, seconds)
    results = [evaluate(threshold, view) for threshold in plan.thresholds]
    overall = _block(plan, plan.scenarios, counters, histograms, seconds)
    overall["thresholds"] = [to_json(result) for result in results]
    overall["thresholds_failed"] = [result.expr for result in results if not result.ok]
    overall["scenarios"] = {
        s.name: {**_block(plan, [s], counters, histograms, seconds),
                 "executor": s.executor.kind}
        for s in plan.scenarios}
    overall["plan_source"] = plan.source
    return overall


def aborting(plan: LoadPlan, counters: Mapping[str, int],
             histograms: Mapping[str, HdrHistogram], seconds: float) -> list[str]:
    """The abort-on-fail thresholds failing now (past their delay): the run stops early."""
    view = MetricView(plan, counters, histograms, seconds)
    failing = []
    for threshold in plan.thresholds:
        if threshold.abort_on_fail and seconds >= threshold.delay_abort_s:
            result = evaluate(threshold, view)
            if not result.ok and result.value is not None:
                failing.append(threshold.source)
    return failing


def _ms(block: Mapping[str, Any]) -> str:
    if block.get("p50") is None:
        return "no samples"
    return "  ".join(f"{key.replace('_', '.')} {block[key]:.2f}" for key in
                     ("p50", "p90", "p95", "p99", "p99_9", "max")) + " ms"


def threshold_label(entry: Mapping[str, Any]) -> str:
    """``metric{tag:value}: expr`` - what a threshold of a scenario file means, which its
    expression alone (``p(95)<200``) does not say; an expression that names its metric is
    shown as written."""
    expr = entry["expr"]
    if _QUALIFIED.match(expr):
        return expr
    tags = entry.get("tags") or {}
    selector = "{" + ",".join(f"{k}:{v}" for k, v in tags.items()) + "}" if tags else ""
    return f"{entry['metric']}{selector}: {expr}"


def render(load: Mapping[str, Any]) -> list[str]:
    """The load summary as lines of text (the run summary adds its header and footer)."""
    lines = []
    asked = load.get("rate_asked")
    rate = f"{load['rate_achieved']:.1f}/s" + (f" (asked {asked:.1f}/s)" if asked else "")
    lines.append(f"  requests {load['requests']} at {rate}, {load['errors']} failed, "
                 f"{load['dropped']} dropped")
    lines.append(f"  latency  {_ms(load['latency_ms'])}")
    lines.append(f"  service  {_ms(load['service_ms'])}")
    if load.get("errors_by_cause"):
        lines.append("  errors   " + ", ".join(f"{cause} {count}" for cause, count in
                                               load["errors_by_cause"].items()))
    for label, entry in load.get("checks", {}).items():
        total = entry["pass"] + entry["fail"]
        lines.append(f"  check    {label}: {entry['pass']}/{total} passed")
    if len(load.get("scenarios", {})) > 1:
        for name, block in load["scenarios"].items():
            p99 = block["latency_ms"].get("p99")
            lines.append(f"  scenario {name} ({block['executor']}): {block['requests']} "
                         f"requests, {block['rate_achieved']:.1f}/s, {block['errors']} failed, "
                         f"{block['dropped']} dropped, p99 "
                         + ("-" if p99 is None else f"{p99:.2f} ms"))
    for entry in load.get("thresholds", []):
        value = entry.get("value")
        shown = "no samples" if value is None else f"{value:g}"
        lines.append(f"  {'ok  ' if entry['ok'] else 'FAIL'} threshold {threshold_label(entry)}"
                     f": {shown}")
    return lines
