"""k6 threshold expressions: parse ``metric{tag:value}: p(99)<500; abort_on_fail``, judge them.

How this works: ``parse_threshold`` turns one expression into a ``Threshold`` (the plan's
data, ``protocols.load_model``), checking the metric and the aggregation against
``METRICS`` at parse time so a typo fails before the run, not after it. ``evaluate`` asks a
``MetricView`` (whatever holds the run's numbers: the coordinator's merged histograms, a
test's fake) for the metric and computes the value; it never sees samples itself.

Grammar (whitespace allowed between any two parts)::

    threshold := [ metric [ "{" tag ":" value *( "," tag ":" value ) "}" ] ":" ] expr
                 *( ";" option )
    expr      := aggregation op number
    aggregation := "p(" number ")" / "avg" / "min" / "max" / "med" / "rate" / "count"
    op        := "<" / "<=" / ">" / ">=" / "==" / "!="
    option    := "abort_on_fail" / "delay_abort_eval=" duration     (k6's camelCase too)

A tag value may hold ``:`` (only the first one splits). Tags are kept sorted by name so the
same selector always reaches the view in the same form. Nothing here does I/O.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocols.load_errors import LoadInputError
from protocols.load_model import Threshold

TREND = "trend"
RATE = "rate"
COUNTER = "counter"


@dataclass(frozen=True)
class MetricInfo:
    """One metric a threshold may name: its kind decides which aggregations make sense."""

    name: str
    kind: str
    aliases: tuple[str, ...]
    doc: str


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("http_req_duration", TREND, ("latency",),
               "Latency in ms. Open model: from the request's *scheduled* start, so time a "
               "request waited for a free VU counts (no coordinated omission). Closed model: "
               "from the send."),
    MetricInfo("http_req_service", TREND, ("service",),
               "Service time in ms, from the actual send to the end of the response, in "
               "both models: what the server took, whatever the schedule."),
    MetricInfo("http_req_failed", RATE, (),
               "Failed requests / requests. Failed: no response, or a status outside the "
               "expected set (protocols.load_checks.is_failed_status)."),
    MetricInfo("checks", RATE, (),
               "Passed checks / all checks evaluated (every check on every response)."),
    MetricInfo("http_reqs", COUNTER, (),
               "Requests that completed (with a response or an error); rate = per second."),
    MetricInfo("dropped_iterations", COUNTER, (),
               "Open model: requests not sent because every VU was busy; rate = per second."),
)}
ALIASES: dict[str, str] = {
    alias: m.name for m in METRICS.values() for alias in (m.name, *m.aliases)}

#: Aggregations each kind supports. On a rate metric ``count`` is the numerator; on a
#: counter ``rate`` is the count per second of the run (as in k6).
AGGREGATIONS: dict[str, frozenset[str]] = {
    TREND: frozenset({"p", "avg", "min", "max", "med", "count"}),
    RATE: frozenset({"rate", "count"}),
    COUNTER: frozenset({"count", "rate"}),
}
#: The metric an expression without a ``metric:`` prefix is about.
DEFAULT_METRIC: dict[str, str] = {
    "p": "http_req_duration", "avg": "http_req_duration", "min": "http_req_duration",
    "max": "http_req_duration", "med": "http_req_duration",
    "rate": "http_req_failed", "count": "http_reqs",
}
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_PREFIX_RE = re.compile(r"\s*([A-Za-z_]\w*\s*(?:\{[^}]*\})?)\s*:(.*)", re.S)
_METRIC_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\{([^}]*)\})?\s*")
_AGG_RE = re.compile(r"\s*(?:(p)\s*\(([^)]*)\)|([A-Za-z_]\w*))\s*(.*)", re.S)
_OP_RE = re.compile(r"([<>=!]+)\s*(.*)", re.S)
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Tags = tuple[tuple[str, str], ...]


def parse_threshold(text: str, metric: str | None = None, tags: Tags = (),
                    abort_on_fail: bool = False, delay_abort_s: float = 0.0) -> Threshold:
    """Parse one k6 threshold expression.

    Args:
        text: ``[metric[{tags}]:] aggregation op value [; option]*``.
        metric: the metric when the expression has no prefix (a scenario file's key, which
            may itself be ``name{tag:value}``); an alias is normalised.
        tags: extra tag selectors, merged with those written in ``metric`` or ``text``.
        abort_on_fail, delay_abort_s: defaults the expression's options override.

    Raises:
        LoadInputError: one line quoting ``text``: unknown metric or option, an
            aggregation the metric lacks, a bad operator, number or percentile.
    """
    def fail(problem: str) -> LoadInputError:
        return LoadInputError(f"threshold {text!r}: {problem}")

    expr, *options = _split_options(text)
    name, all_tags = None, dict(tags)
    if metric is not None:
        name = _parse_metric(metric, all_tags, fail)
    prefix = _PREFIX_RE.fullmatch(expr)
    if prefix:
        written = _parse_metric(prefix[1], all_tags, fail)
        if name is not None and written != name:
            raise fail(f"names metric {written!r} but is listed under {name!r}")
        name, expr = written, prefix[2]
    elif "{" in expr or "}" in expr:
        raise fail("expected metric{tag:value,...}: before the expression")
    aggregation, percentile, op, value = _parse_expr(expr, fail)
    if name is None:
        name = DEFAULT_METRIC[aggregation]
    kind = METRICS[name].kind
    if aggregation not in AGGREGATIONS[kind]:
        allowed = ", ".join(sorted(AGGREGATIONS[kind]))
        raise fail(f"{name} is a {kind} metric: use {allowed}, not {aggregation}")
    for option in options:
        abort_on_fail, delay_abort_s = _apply_option(
            option.strip(), abort_on_fail, delay_abort_s, fail)
    return Threshold(source=text.strip(), metric=name, aggregation=aggregation, op=op,
                     value=value, percentile=percentile, tags=tuple(sorted(all_tags.items())),
                     abort_on_fail=abort_on_fail, delay_abort_s=delay_abort_s)


def _split_options(text: str) -> list[str]:
    """Split at ``;``, but only after a ``{...}`` selector, whose values may hold anything."""
    start = text.find("}") + 1 if "{" in text else 0
    first, *options = text[start:].split(";")
    return [text[:start] + first, *options]


def _parse_metric(spec: str, tags: dict[str, str],
                  fail: Callable[[str], LoadInputError]) -> str:
    """``name`` or ``name{tag:value,...}`` -> canonical name; the tags go into ``tags``."""
    match = _METRIC_RE.fullmatch(spec)
    if not match:
        raise fail(f"bad metric {spec.strip()!r}")
    name = ALIASES.get(match[1])
    if name is None:
        raise fail(f"unknown metric {match[1]!r} (known: {', '.join(METRICS)})")
    if match[2] is not None:
        for pair in match[2].split(","):
            key, colon, value = (part.strip() for part in pair.partition(":"))
            if not colon or not key or not value:
                raise fail(f"tag selector {pair.strip()!r} is not tag:value")
            if key in tags and tags[key] != value:
                raise fail(f"tag {key!r} selected twice")
            tags[key] = value
    return name


def _parse_expr(expr: str, fail: Callable[[str], LoadInputError]
                ) -> tuple[str, float | None, str, float]:
    """``aggregation op number`` -> (aggregation, percentile, op, value)."""
    match = _AGG_RE.fullmatch(expr)
    if not match or not expr.strip():
        raise fail("expected aggregation op value, e.g. p(99)<500")
    percentile = None
    if match[1]:
        aggregation = "p"
        if not _NUMBER_RE.fullmatch(match[2].strip()):
            raise fail(f"percentile {match[2].strip()!r} is not a number")
        percentile = float(match[2])
        if not 0 < percentile <= 100:
            raise fail(f"percentile {match[2].strip()} is outside (0, 100]")
    else:
        aggregation = match[3]
        if aggregation not in DEFAULT_METRIC:
            raise fail(f"unknown aggregation {aggregation!r} "
                       "(use p(N), avg, min, max, med, rate or count)")
    rest = _OP_RE.fullmatch(match[4])
    if not rest:
        raise fail(f"expected an operator (<, <=, >, >=, ==, !=) after {aggregation!r}")
    if rest[1] not in OPS:
        raise fail(f"bad operator {rest[1]!r} (use <, <=, >, >=, ==, !=)")
    number = rest[2].strip()
    if not _NUMBER_RE.fullmatch(number):
        raise fail(f"value {number!r} is not a number")
    return aggregation, percentile, rest[1], float(number)


def _apply_option(option: str, abort: bool, delay_s: float,
                  fail: Callable[[str], LoadInputError]) -> tuple[bool, float]:
    """One ``;``-separated option; empty segments (a trailing ``;``) are ignored."""
    key, eq, value = (part.strip() for part in option.partition("="))
    if not key:
        return abort, delay_s
    if key in ("abort_on_fail", "abortOnFail"):
        if not eq or value in ("true", "false"):
            return value != "false", delay_s
        raise fail(f"abort_on_fail takes no value or true/false, not {value!r}")
    if key in ("delay_abort_eval", "delayAbortEval"):
        return abort, parse_duration(value, fail)
    raise fail(f"unknown option {key!r} (use abort_on_fail, delay_abort_eval=DURATION)")


def parse_duration(text: str, fail: Callable[[str], LoadInputError] | None = None) -> float:
    """Seconds in a k6 duration: ``500ms``, ``10s``, ``1m``, ``1h``, ``1m30s``.

    A bare number is refused: seconds or milliseconds is exactly the slip to catch.
    """
    spec = text.strip()
    if not spec or _DURATION_RE.sub("", spec):
        problem = f"duration {spec!r} needs a unit (ms, s, m, h), e.g. 10s"
        raise fail(problem) if fail else LoadInputError(problem)
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_RE.findall(spec))


# --- evaluation -------------------------------------------------------------------------


class Trend(Protocol):
    """A latency distribution in milliseconds (a histogram, a sorted sample list...)."""

    @property
    def count(self) -> int: ...
    @property
    def avg_ms(self) -> float: ...
    @property
    def min_ms(self) -> float: ...
    @property
    def max_ms(self) -> float: ...
    def percentile_ms(self, p: float) -> float: ...


class MetricView(Protocol):
    """The run's measurements, as thresholds need them; ``tags`` is sorted by name.

    Return None when the run has no such metric for those tags (an unknown scenario name).
    A counter with nothing counted is ``(0, seconds)``, not None: zero dropped iterations
    is a measurement, and ``dropped_iterations: count==0`` must be able to pass.
    """

    def trend(self, metric: str, tags: Tags) -> Trend | None: ...
    def rate(self, metric: str, tags: Tags) -> tuple[int, int] | None:
        """(hits, total): failed requests for ``http_req_failed``, passed for ``checks``."""
    def counter(self, metric: str, tags: Tags) -> tuple[int, float] | None:
        """(count, seconds of the run so far)."""


@dataclass(frozen=True)
class ThresholdResult:
    """One threshold's verdict. ``value`` is None only when there was nothing to judge."""

    expr: str
    metric: str
    value: float | None
    ok: bool
    reason: str | None
    abort_on_fail: bool
    tags: Tags = ()


def evaluate(threshold: Threshold, view: MetricView) -> ThresholdResult:
    """Judge ``threshold`` against the run; no data at all fails (reason "no samples").

    A threshold that cannot be judged is not passed: a p99 target over zero requests
    proves nothing, and a silent pass would hide a scenario that never ran.
    """
    value = _value(threshold, view)
    ok = value is not None and not math.isnan(value) and OPS[threshold.op](
        value, threshold.value)
    return ThresholdResult(expr=threshold.source, metric=threshold.metric, value=value,
                           ok=ok, reason=None if value is not None else "no samples",
                           abort_on_fail=threshold.abort_on_fail, tags=threshold.tags)


def _value(t: Threshold, view: MetricView) -> float | None:
    kind = METRICS[t.metric].kind
    if kind == TREND:
        trend = view.trend(t.metric, t.tags)
        if trend is None or trend.count <= 0:
            return None
        if t.aggregation == "p":
            return float(trend.percentile_ms(t.percentile if t.percentile else 100.0))
        if t.aggregation == "med":
            return float(trend.percentile_ms(50.0))
        if t.aggregation == "count":
            return float(trend.count)
        return float(getattr(trend, f"{t.aggregation}_ms"))
    if kind == RATE:
        rate = view.rate(t.metric, t.tags)
        if rate is None or rate[1] <= 0:
            return None
        hits, total = rate
        return float(hits) if t.aggregation == "count" else hits / total
    counted = view.counter(t.metric, t.tags)
    if counted is None:
        return None
    count, seconds = counted
    if t.aggregation == "count":
        return float(count)
    return count / seconds if seconds > 0 else None


def to_json(result: ThresholdResult) -> dict[str, Any]:
    """The summary's (and ``--json``'s) form of one result."""
    out: dict[str, Any] = {"expr": result.expr, "metric": result.metric,
                           "value": result.value, "ok": result.ok}
    if result.tags:
        out["tags"] = dict(result.tags)
    if result.reason is not None:
        out["reason"] = result.reason
    if result.abort_on_fail:
        out["abort_on_fail"] = True
    return out
