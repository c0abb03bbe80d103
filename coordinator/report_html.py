"""``report.html`` for one run (run, soak, load, hold, loris, a stress step): the page.

How this works: the page is built as a list of HTML fragments, one function per section,
each reading the results document defensively (``report_data``) and drawing its charts as
inline SVG (``protocols.svg_charts``). Nothing is fetched when the page is opened: the
styles are inline and there is no script. Every string that came from the target or the
document passes through ``esc`` (bytes sent and received are attacker-controlled; they are
shown escaped, never injected). A section whose input is malformed is replaced by a short
note, so one bad part never costs the rest of the page.

Sections (their ids are what the browser test looks for): ``verdict``, ``timeline``,
``latency``, ``invariants``, ``failures`` (``report_failures``), ``command`` (a load, hold,
loris, watch or proxy block), ``resources`` (the target's RSS/fds/threads with their fitted
slopes) and ``counters``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coordinator import report_data as data
from coordinator.logs import get_logger
from coordinator.report_failures import failures_section, invariants_section
from protocols.svg_charts import Chart, Marker, Series, esc, line_chart, percentile_chart

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
header.verdict{padding:16px 24px;color:#fff}
header.passed{background:#1a7f37}header.failed{background:#cf222e}
header.error,header.interrupted,header.running{background:#9a6700}
header h1{margin:0 0 4px;font-size:22px}header .meta{opacity:.92}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;
margin:16px 0}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status-failed,.status-FAIL{color:#cf222e;font-weight:600}
.status-passed,.status-PASS{color:#1a7f37}.status-not_judged{color:#9a6700}
pre.bytes{background:#0d1117;color:#e6edf3;padding:8px;border-radius:4px;overflow-x:auto;
white-space:pre-wrap;word-break:break-all;max-height:320px;font-size:12px}
blockquote{margin:6px 0;padding:6px 12px;border-left:4px solid #8c959f;background:#f6f8fa}
.case{border:1px solid #ffcecb;border-radius:6px;padding:8px 12px;margin:10px 0;
background:#fffafa}
.muted{color:#57606a;fill:#57606a}
svg.chart{max-width:100%;height:auto;display:block;margin:6px 0}
svg .grid{stroke:#eaeef2}svg .tick{font-size:11px;fill:#57606a}
svg .axis-label,svg .legend{font-size:12px}svg .chart-title{font-size:13px;font-weight:600}
"""

Section = Callable[[Path, dict[str, Any], dict[str, Any]], str]


def render_page(run_dir: Path, document: dict[str, Any], encoded_histograms: Mapping[str, Any]
                ) -> str:
    """The whole self-contained page for one run's results ``document``."""
    histograms = data.decode_histograms(encoded_histograms)
    context = {"histograms": histograms}
    title = (f"assay {document.get('mode', '?')} {document.get('label', '')}: "
             f"{str(document.get('status', '?')).upper()}")
    sections: list[Section] = [timeline_section, latency_section, invariants_section,
                               failures_section, command_section, resources_section,
                               counters_section]
    body = [verdict_header(document)]
    for section in sections:
        body.append(_guarded(section, run_dir, document, context))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
            + body[0] + "<main>" + "".join(body[1:]) + "</main></body></html>\n")


def _guarded(section: Section, run_dir: Path, document: dict[str, Any],
             context: dict[str, Any]) -> str:
    try:
        return section(run_dir, document, context)
    except Exception as exc:  # a malformed part costs its section, not the page
        get_logger("reports").warning("report section skipped", section=section.__name__,
                                      error=f"{type(exc).__name__}: {exc}")
        return (f'<section><p class="muted">{esc(section.__name__)}: not rendered '
                f'({esc(type(exc).__name__)}: {esc(exc)})</p></section>')


def verdict_header(document: Mapping[str, Any]) -> str:
    status = str(document.get("status", "unknown"))
    css = status if status in ("passed", "failed", "error", "interrupted", "running") \
        else "error"
    target = data.as_dict(document.get("target")).get("url") or document.get("target")
    elapsed = data.number(document.get("elapsed_s"))
    facts = [f"exit code {esc(document.get('exit_code'))}",
             f"target {esc(target)}" if target else "",
             f"{elapsed:.1f} s" if elapsed is not None else "",
             f"started {esc(document.get('started_at'))}" if document.get("started_at") else ""]
    error = document.get("error")
    return (f'<header id="verdict" class="verdict {css}"><h1>'
            f'assay {esc(document.get("mode", "?"))} {esc(document.get("label", ""))}: '
            f'{esc(status.upper())}</h1><div class="meta">'
            + " &middot; ".join(f for f in facts if f) + "</div>"
            + (f'<div class="meta">error: {esc(error)}</div>' if error else "")
            + "</header>")


def timeline_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    points = data.timeline_points(document)
    trips = data.trips(document)
    markers = [Marker(t["t"], f"{t['invariant']} ({t['counter']}) tripped")
               for t in trips if t["t"] is not None]
    rate = line_chart(Chart("Exchanges and transport errors per second", "seconds into the run",
                            "per second", [Series("exchanges/s", data.rates(points, "exchanges")),
                                           Series("errors/s", data.rates(points, "errors"),
                                                  color="#d62728")], markers))
    latency = line_chart(Chart("Latency in each interval", "seconds into the run", "ms",
                               [Series("p50", data.column(points, "p50_ms")),
                                Series("p99", data.column(points, "p99_ms"), color="#ff7f0e")],
                               markers))
    rows = "".join(
        f"<tr><td class=\"num\">{_fmt_s(t['t'])}</td><td>{esc(t['invariant'])}</td>"
        f"<td><code>{esc(t['counter'])}</code></td><td>{esc(t['via'])}</td></tr>"
        for t in trips)
    trip_table = (f"<h3>Invariant timeline</h3><table><tr><th>t (s)</th><th>invariant</th>"
                  f"<th>counter</th><th>via</th></tr>{rows}</table>" if trips else
                  "<h3>Invariant timeline</h3><p class=\"muted\">no invariant tripped</p>")
    note = ("" if points else "<p class=\"muted\">this document has no timeline (an older or "
            "interrupted run)</p>")
    return (f'<section id="timeline"><h2>Over time</h2>{note}{rate}{latency}{trip_table}'
            "</section>")


def latency_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    merged = data.overall_latency(context.get("histograms", {}))
    curve = percentile_chart("Latency by percentile (all slices, merged HdrHistogram)",
                             data.percentile_curve(merged))
    rows = []
    slices = data.as_dict(data.as_dict(document.get("tier_1")).get("slices"))
    for _, block in sorted(slices.items()):
        for name, summary in sorted(data.as_dict(data.as_dict(block).get("latency")).items()):
            summary = data.as_dict(summary)
            if not summary.get("count"):
                continue
            rows.append(f"<tr><td><code>{esc(name)}</code></td>"
                        f"<td class=\"num\">{esc(summary.get('count'))}</td>"
                        + "".join(f"<td class=\"num\">{_fmt_ms(summary.get(k))}</td>" for k in
                                  ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"))
                        + "</tr>")
    table = ("<table><tr><th>histogram</th><th>count</th><th>p50 ms</th><th>p90 ms</th>"
             "<th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>" + "".join(rows)
             + "</table>") if rows else ""
    return f'<section id="latency"><h2>Latency</h2>{curve}{table}</section>'


def command_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    """The block a fleet command adds (``load``, ``hold``, ``loris``, ``watch``, ``proxy``):
    its thresholds and figures as tables; absent for a plain run."""
    for key in ("load", "hold", "loris", "watch", "proxy"):
        block = document.get(key)
        if isinstance(block, dict):
            return (f'<section id="command"><h2>{esc(key)}</h2>'
                    + _thresholds_table(block) + _flat_table(block) + "</section>")
    return ""


def _thresholds_table(block: Mapping[str, Any]) -> str:
    rows = []
    for entry in data.as_list(block.get("thresholds")):
        if not isinstance(entry, dict):
            continue
        status = "PASS" if entry.get("ok") else "FAIL"
        rows.append(f"<tr><td>{esc(entry.get('metric', '?'))}: {esc(entry.get('expr', '?'))}"
                    f"</td><td class=\"status-{status}\">{status}</td>"
                    f"<td>{esc(entry.get('value'))}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Thresholds</h3><table><tr><th>threshold</th><th>status</th><th>value</th>"
            "</tr>" + "".join(rows) + "</table>")


def _flat_table(block: Mapping[str, Any], depth: int = 0) -> str:
    rows = []
    for key, value in block.items():
        if key == "thresholds":
            continue
        if isinstance(value, dict) and depth < 2:
            cell = _flat_table(value, depth + 1)
        elif isinstance(value, (dict, list)):
            cell = f"<code>{esc(_short(value))}</code>"
        else:
            cell = esc(value)
        rows.append(f"<tr><th>{esc(key)}</th><td>{cell}</td></tr>")
    return "<table>" + "".join(rows) + "</table>" if rows else ""


def resources_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    """RSS, fds and threads of the target over time, with the slope the leak verdict fitted
    (drawn through the last sample so its steepness can be compared by eye)."""
    resources = data.as_dict(document.get("target_resources"))
    metrics = data.as_dict(resources.get("metrics"))
    points = data.timeline_points(document)
    if not metrics and not any("rss" in p for p in points):
        return ""
    charts, rows = [], []
    for name, metric in metrics.items():
        metric = data.as_dict(metric)
        series = data.column(points, name)
        slope = data.number(metric.get("slope_per_h"))
        unit = str(metric.get("unit", ""))
        lines = [Series(name, series)]
        if series and slope is not None:
            (t_first, _), (t_last, v_last) = series[0], series[-1]
            lines.append(Series(f"fitted {slope:+.3g} {unit}/h",
                                [(t_first, v_last - slope * (t_last - t_first) / 3600.0),
                                 (t_last, v_last)], color="#8c959f", dashed=True))
        charts.append(line_chart(Chart(f"target {name} ({unit})", "seconds into the run",
                                       unit, lines, width=360, height=200)))
        rows.append(f"<tr><td>{esc(name)}</td><td class=\"status-{esc(metric.get('status'))}\">"
                    f"{esc(metric.get('status'))}</td><td class=\"num\">{esc(slope)}</td>"
                    f"<td>{esc(unit)}/h</td><td class=\"num\">{esc(metric.get('buckets'))}</td>"
                    f"<td class=\"num\">{esc(metric.get('first_bucket_min'))} &rarr; "
                    f"{esc(metric.get('last_bucket_min'))}</td></tr>")
    reason = resources.get("reason")
    return ('<section id="resources"><h2>Target resources</h2>'
            + (f'<p class="muted">not judged: {esc(reason)}</p>' if reason else "")
            + '<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(charts) + "</div>"
            + "<table><tr><th>metric</th><th>verdict</th><th>fitted slope</th><th>unit</th>"
              "<th>buckets</th><th>first &rarr; last bucket minimum</th></tr>"
            + "".join(rows) + "</table></section>")


def counters_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    """Per-slice counters; the per-case ones (hundreds) folded away under each slice."""
    tier1 = data.as_dict(document.get("tier_1"))
    parts = []
    for slice_name, block in sorted(data.as_dict(tier1.get("slices")).items()):
        counters = data.as_dict(data.as_dict(block).get("counters"))
        main = {k: v for k, v in counters.items() if ".case." not in k}
        cases = {k: v for k, v in counters.items() if ".case." in k}
        walkers = data.as_dict(block).get("walkers")
        parts.append(f"<h3>{esc(slice_name)} <span class=\"muted\">({esc(walkers)} walkers)"
                     f"</span></h3>" + _counter_table(main)
                     + (f"<details><summary>{len(cases)} per-case counters</summary>"
                        f"{_counter_table(cases)}</details>" if cases else ""))
    totals = data.as_dict(tier1.get("totals"))
    return ('<section id="counters"><h2>Counters per slice</h2>'
            + (_counter_table(totals) if totals else "") + "".join(parts) + "</section>")


def _counter_table(counters: Mapping[str, Any]) -> str:
    return ("<table>" + "".join(f"<tr><td><code>{esc(k)}</code></td><td class=\"num\">"
                                f"{esc(v)}</td></tr>" for k, v in sorted(counters.items()))
            + "</table>")


def _short(value: Any, limit: int = 300) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _fmt_ms(value: Any) -> str:
    number = data.number(value)
    return "-" if number is None else f"{number:.2f}"


def _fmt_s(value: Any) -> str:
    number = data.number(value)
    return "-" if number is None else f"{number:.1f}"
