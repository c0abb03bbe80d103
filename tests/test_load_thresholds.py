"""protocols.load_thresholds: every accepted form parses to exact values, every mistake is one
line quoting the text, and evaluation computes the value a fake run's numbers imply."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from protocols.load_errors import LoadInputError
from protocols.load_model import Threshold
from protocols.load_thresholds import (
    AGGREGATIONS,
    ALIASES,
    METRICS,
    Tags,
    evaluate,
    parse_duration,
    parse_threshold,
    to_json,
)


@pytest.mark.parametrize(("text", "metric", "aggregation", "percentile", "op", "value"), [
    ("p(99)<500", "http_req_duration", "p", 99.0, "<", 500.0),
    ("p(99.9) <= 1000", "http_req_duration", "p", 99.9, "<=", 1000.0),
    ("  p( 95 )  >=  1.5  ", "http_req_duration", "p", 95.0, ">=", 1.5),
    ("p(100)<9", "http_req_duration", "p", 100.0, "<", 9.0),
    ("avg<100", "http_req_duration", "avg", None, "<", 100.0),
    ("min>0", "http_req_duration", "min", None, ">", 0.0),
    ("max<2000", "http_req_duration", "max", None, "<", 2000.0),
    ("med<50", "http_req_duration", "med", None, "<", 50.0),
    ("rate<0.01", "http_req_failed", "rate", None, "<", 0.01),
    ("count>10", "http_reqs", "count", None, ">", 10.0),
    ("count==0", "http_reqs", "count", None, "==", 0.0),
    ("count != 3", "http_reqs", "count", None, "!=", 3.0),
    ("avg<1e3", "http_req_duration", "avg", None, "<", 1000.0),
    ("min>-.5", "http_req_duration", "min", None, ">", -0.5),
    ("http_req_failed: rate<0.01", "http_req_failed", "rate", None, "<", 0.01),
    ("http_req_failed:count<5", "http_req_failed", "count", None, "<", 5.0),
    ("checks: rate>0.99", "checks", "rate", None, ">", 0.99),
    ("latency: p(90)<7", "http_req_duration", "p", 90.0, "<", 7.0),
    ("service : avg<3", "http_req_service", "avg", None, "<", 3.0),
    ("http_req_service: count>1", "http_req_service", "count", None, ">", 1.0),
    ("http_reqs: rate>100", "http_reqs", "rate", None, ">", 100.0),
    ("dropped_iterations: count==0", "dropped_iterations", "count", None, "==", 0.0),
])
def test_accepted_forms(text, metric, aggregation, percentile, op, value):
    t = parse_threshold(text)
    assert (t.metric, t.aggregation, t.percentile, t.op, t.value) == (
        metric, aggregation, percentile, op, value)
    assert t.source == text.strip()
    assert (t.tags, t.abort_on_fail, t.delay_abort_s) == ((), False, 0.0)


def test_tags_in_the_prefix_are_sorted_and_may_hold_colons():
    t = parse_threshold("http_req_duration{scenario:heartbeat}: p(95)<200")
    assert (t.metric, t.tags, t.percentile, t.value) == (
        "http_req_duration", (("scenario", "heartbeat"),), 95.0, 200.0)
    t = parse_threshold(" latency { url : http://x/a , scenario:b } : avg<1 ")
    assert t.tags == (("scenario", "b"), ("url", "http://x/a"))
    assert t.metric == "http_req_duration"


def test_a_semicolon_inside_a_tag_value_is_not_an_option():
    t = parse_threshold("http_req_duration{name:a;b}: p(50)<1; abort_on_fail")
    assert t.tags == (("name", "a;b"),)
    assert t.abort_on_fail is True


@pytest.mark.parametrize(("text", "abort", "delay"), [
    ("p(99)<500; abort_on_fail", True, 0.0),
    ("p(99)<500; abort_on_fail; delay_abort_eval=10s", True, 10.0),
    ("p(99)<500;abortOnFail;delayAbortEval=500ms", True, 0.5),
    ("p(99)<500 ; delay_abort_eval = 1m ;", False, 60.0),
    ("p(99)<500; abort_on_fail=false", False, 0.0),
    ("p(99)<500; abort_on_fail=true; delay_abort_eval=1m30s", True, 90.0),
])
def test_options(text, abort, delay):
    t = parse_threshold(text)
    assert (t.abort_on_fail, t.delay_abort_s, t.value) == (abort, delay, 500.0)
    assert t.source == text.strip()


def test_arguments_give_metric_tags_and_option_defaults():
    t = parse_threshold("p(95)<200", metric="latency{scenario:a}", tags=(("method", "GET"),),
                        abort_on_fail=True, delay_abort_s=5.0)
    assert t == Threshold(source="p(95)<200", metric="http_req_duration", aggregation="p",
                          op="<", value=200.0, percentile=95.0,
                          tags=(("method", "GET"), ("scenario", "a")),
                          abort_on_fail=True, delay_abort_s=5.0)
    assert parse_threshold("rate<0.1", metric="checks").metric == "checks"
    # The expression's options win over the arguments' defaults.
    t = parse_threshold("avg<1; delay_abort_eval=2s", abort_on_fail=True, delay_abort_s=9.0)
    assert (t.abort_on_fail, t.delay_abort_s) == (True, 2.0)
    # The same metric written twice (alias and canonical name) is fine.
    assert parse_threshold("http_req_duration: avg<1", metric="latency").metric == (
        "http_req_duration")


ERRORS = [
    ("", "expected aggregation op value, e.g. p(99)<500"),
    ("p(99)", "expected an operator (<, <=, >, >=, ==, !=) after 'p'"),
    ("p(99)<<500", "bad operator '<<' (use <, <=, >, >=, ==, !=)"),
    ("avg=100", "bad operator '=' (use <, <=, >, >=, ==, !=)"),
    ("avg=>100", "bad operator '=>' (use <, <=, >, >=, ==, !=)"),
    ("avg<500ms", "value '500ms' is not a number"),
    ("avg<", "value '' is not a number"),
    ("avg<1 2", "value '1 2' is not a number"),
    ("p(0)<5", "percentile 0 is outside (0, 100]"),
    ("p(100.5)<5", "percentile 100.5 is outside (0, 100]"),
    ("p(-1)<5", "percentile -1 is outside (0, 100]"),
    ("p(x)<5", "percentile 'x' is not a number"),
    ("p99<5", "unknown aggregation 'p99' (use p(N), avg, min, max, med, rate or count)"),
    ("mean<5", "unknown aggregation 'mean' (use p(N), avg, min, max, med, rate or count)"),
    ("http_req_waiting: avg<5", "unknown metric 'http_req_waiting' (known: http_req_duration, "
     "http_req_service, http_req_failed, checks, http_reqs, dropped_iterations)"),
    ("http_req_failed: avg<5", "http_req_failed is a rate metric: use count, rate, not avg"),
    ("checks: p(99)<5", "checks is a rate metric: use count, rate, not p"),
    ("http_reqs: max<5", "http_reqs is a counter metric: use count, rate, not max"),
    ("latency: rate<5", "http_req_duration is a trend metric: use avg, count, max, med, min, "
     "p, not rate"),
    ("p(99)<5; abort", "unknown option 'abort' (use abort_on_fail, delay_abort_eval=DURATION)"),
    ("p(99)<5; abort_on_fail=yes", "abort_on_fail takes no value or true/false, not 'yes'"),
    ("p(99)<5; delay_abort_eval=10", "duration '10' needs a unit (ms, s, m, h), e.g. 10s"),
    ("p(99)<5; delay_abort_eval=", "duration '' needs a unit (ms, s, m, h), e.g. 10s"),
    ("http_req_duration{scenario}: avg<1", "tag selector 'scenario' is not tag:value"),
    ("http_req_duration{:x}: avg<1", "tag selector ':x' is not tag:value"),
    ("http_req_duration{a:1,a:2}: avg<1", "tag 'a' selected twice"),
    ("http_req_duration{scenario:x: avg<1",
     "expected metric{tag:value,...}: before the expression"),
    ("avg\n<<1\n", "bad operator '<<' (use <, <=, >, >=, ==, !=)"),
]


@pytest.mark.parametrize(("text", "problem"), ERRORS)
def test_errors_are_one_line_quoting_the_text(text, problem):
    with pytest.raises(LoadInputError) as info:
        parse_threshold(text)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"threshold {text!r}: {problem}"


def test_whitespace_includes_newlines():
    assert parse_threshold("avg\n<1\n").value == 1.0


def test_newline_then_digits_is_still_one_line():
    with pytest.raises(LoadInputError) as info:
        parse_threshold("avg<1\n2")
    assert str(info.value) == "threshold 'avg<1\\n2': value '1\\n2' is not a number"


def test_argument_errors():
    with pytest.raises(LoadInputError, match=r"^threshold 'avg<1': unknown metric 'nope' "):
        parse_threshold("avg<1", metric="nope")
    with pytest.raises(LoadInputError) as info:
        parse_threshold("checks: rate>0.9", metric="http_req_failed")
    assert str(info.value) == ("threshold 'checks: rate>0.9': names metric 'checks' but is "
                               "listed under 'http_req_failed'")
    with pytest.raises(LoadInputError) as info:
        parse_threshold("avg<1", metric="latency{a:1")
    assert str(info.value) == "threshold 'avg<1': bad metric 'latency{a:1'"
    with pytest.raises(LoadInputError, match=r"tag 'scenario' selected twice$"):
        parse_threshold("latency{scenario:b}: avg<1", tags=(("scenario", "a"),))


def test_parse_duration():
    assert parse_duration("500ms") == 0.5
    assert parse_duration(" 1h ") == 3600.0
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("1.5s") == 1.5
    for bad in ("10", "s", "10 s", "-1s", "1d"):
        with pytest.raises(LoadInputError, match=r"^duration .* needs a unit"):
            parse_duration(bad)


def test_metric_table():
    assert {m.name: m.kind for m in METRICS.values()} == {
        "http_req_duration": "trend", "http_req_service": "trend",
        "http_req_failed": "rate", "checks": "rate",
        "http_reqs": "counter", "dropped_iterations": "counter"}
    assert ALIASES["latency"] == "http_req_duration"
    assert ALIASES["service"] == "http_req_service"
    assert AGGREGATIONS["counter"] == {"count", "rate"}
    assert all(m.doc for m in METRICS.values())


# --- evaluation -------------------------------------------------------------------------


@dataclass
class FakeTrend:
    samples: list[float]

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def avg_ms(self) -> float:
        return sum(self.samples) / len(self.samples)

    @property
    def min_ms(self) -> float:
        return min(self.samples)

    @property
    def max_ms(self) -> float:
        return max(self.samples)

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class FakeView:
    def __init__(self) -> None:
        self.trends: dict[tuple[str, Tags], FakeTrend] = {}
        self.rates: dict[tuple[str, Tags], tuple[int, int]] = {}
        self.counters: dict[tuple[str, Tags], tuple[int, float]] = {}
        self.asked: list[tuple[str, Tags]] = []

    def trend(self, metric: str, tags: Tags) -> FakeTrend | None:
        self.asked.append((metric, tags))
        return self.trends.get((metric, tags))

    def rate(self, metric: str, tags: Tags) -> tuple[int, int] | None:
        self.asked.append((metric, tags))
        return self.rates.get((metric, tags))

    def counter(self, metric: str, tags: Tags) -> tuple[int, float] | None:
        self.asked.append((metric, tags))
        return self.counters.get((metric, tags))


@pytest.fixture
def view() -> FakeView:
    v = FakeView()
    v.trends["http_req_duration", ()] = FakeTrend([float(x) for x in range(1, 101)])
    v.trends["http_req_duration", (("scenario", "hb"),)] = FakeTrend([5.0, 7.0, 9.0])
    v.trends["http_req_service", ()] = FakeTrend([])
    v.rates["http_req_failed", ()] = (3, 200)
    v.rates["checks", ()] = (990, 1000)
    v.rates["checks", (("scenario", "empty"),)] = (0, 0)
    v.counters["http_reqs", ()] = (200, 4.0)
    v.counters["dropped_iterations", ()] = (0, 4.0)
    v.counters["dropped_iterations", (("scenario", "new"),)] = (0, 0.0)
    return v


@pytest.mark.parametrize(("text", "value", "ok"), [
    ("p(99)<100", 99.0, True),
    ("p(99)<99", 99.0, False),
    ("p(99.5)<=100", 100.0, True),
    ("med==50", 50.0, True),
    ("avg<50", 50.5, False),
    ("avg>50", 50.5, True),
    ("min>0", 1.0, True),
    ("max<100", 100.0, False),
    ("latency: count==100", 100.0, True),
    ("http_req_duration{scenario:hb}: p(50)<7", 7.0, False),
    ("http_req_duration{scenario:hb}: avg!=7", 7.0, False),
    ("rate<0.01", 0.015, False),
    ("rate<0.02", 0.015, True),
    ("http_req_failed: count<=3", 3.0, True),
    ("checks: rate>=0.99", 0.99, True),
    ("checks: count>990", 990.0, False),
    ("count>199", 200.0, True),
    ("http_reqs: rate>=50", 50.0, True),
    ("http_reqs: rate>50", 50.0, False),
    ("dropped_iterations: count==0", 0.0, True),
    ("dropped_iterations: rate<0.1", 0.0, True),
])
def test_evaluate(view, text, value, ok):
    result = evaluate(parse_threshold(text), view)
    assert (result.value, result.ok, result.reason) == (value, ok, None)
    assert result.expr == text


@pytest.mark.parametrize("text", [
    "http_req_service: p(99)<1",  # a trend with zero samples
    "http_req_duration{scenario:none}: avg<1",  # no such tags: None
    "checks{scenario:empty}: rate>0.5",  # a rate over zero total
    "checks{scenario:empty}: count==0",
    "http_reqs{scenario:none}: count==0",
    "dropped_iterations{scenario:new}: rate<1",  # a per-second rate over zero seconds
])
def test_no_data_fails_with_no_samples(view, text):
    result = evaluate(parse_threshold(text), view)
    assert (result.value, result.ok, result.reason) == (None, False, "no samples")
    assert to_json(result)["reason"] == "no samples"


def test_the_view_is_asked_with_canonical_name_and_sorted_tags(view):
    evaluate(parse_threshold("latency{z:1,a:2}: avg<1"), view)
    assert view.asked == [("http_req_duration", (("a", "2"), ("z", "1")))]


def test_nan_never_passes():
    v = FakeView()
    v.trends["http_req_duration", ()] = FakeTrend([math.nan])
    assert evaluate(parse_threshold("avg!=1"), v).ok is False


def test_result_and_json(view):
    t = parse_threshold("http_req_duration{scenario:hb}: p(50)<8; abort_on_fail")
    result = evaluate(t, view)
    assert result.abort_on_fail is True
    assert result.tags == (("scenario", "hb"),)
    assert to_json(result) == {
        "expr": "http_req_duration{scenario:hb}: p(50)<8; abort_on_fail",
        "metric": "http_req_duration", "value": 7.0, "ok": True,
        "tags": {"scenario": "hb"}, "abort_on_fail": True}
    assert to_json(evaluate(parse_threshold("rate<0.01"), view)) == {
        "expr": "rate<0.01", "metric": "http_req_failed", "value": 0.015, "ok": False}
