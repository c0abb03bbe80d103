"""Charts as inline SVG text: line charts over time and an HdrHistogram percentile curve.

How this works: a chart is a pure function of numbers to an ``<svg>`` string, so the HTML
report is one self-contained file (no script, no plotting library, nothing fetched when it
is opened) and the charts are unit-tested as text. Axes get "nice" ticks (1, 2, 5 x 10^n);
series are ``<polyline>``s; vertical markers (invariant trips) are dashed lines with a
``<title>`` tooltip. The percentile curve puts percentiles on the classic HdrHistogram
axis, ``log10(1 / (1 - p))``, so 90 %, 99 %, 99.9 % and 99.99 % are evenly spaced and the
tail is readable.

Every label passes through ``esc``: a series name or a marker can carry text from the
target (a case name, a reason), and it must never become markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 36, 28, 40


def esc(text: object) -> str:
    """HTML/SVG-escape anything (quotes included: it may land in an attribute)."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    color: str = ""
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A vertical line at ``x`` (an invariant trip, a restart), labelled on hover."""
    x: float
    label: str
    color: str = "#d62728"


@dataclass(frozen=True)
class Chart:
    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    markers: Sequence[Marker] = field(default_factory=tuple)
    width: int = 720
    height: int = 240


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^n steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.3g}"


def line_chart(chart: Chart) -> str:
    """``chart`` as an ``<svg>`` element; an empty chart says "no data" instead of axes."""
    width, height = chart.width, chart.height
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title>{esc(chart.title)}</title>'
            f'<text x="{MARGIN_LEFT}" y="16" class="chart-title">{esc(chart.title)}</text>')
    points = [p for s in chart.series for p in s.points
              if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not points:
        return head + (f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                       f'class="muted">no data</text></svg>')
    xs = [p[0] for p in points] + [m.x for m in chart.markers if math.isfinite(m.x)]
    ys = [p[1] for p in points]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
    return head + _plot(chart, x_ticks, y_ticks, lambda x: x) + "</svg>"


def _plot(chart: Chart, x_ticks: list[float], y_ticks: list[float], x_map,
          x_names: Sequence[str] | None = None) -> str:
    width, height = chart.width, chart.height
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    x0, x1 = x_map(x_ticks[0]), x_map(x_ticks[-1])
    y0, y1 = y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x_map(x) - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(y: float) -> float:
        return MARGIN_TOP + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    parts: list[str] = []
    for tick in y_ticks:
        y = sy(tick)
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{width - MARGIN_RIGHT}" '
                     f'y2="{y:.1f}" class="grid"/><text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end" class="tick">{esc(_fmt(tick))}</text>')
    for index, tick in enumerate(x_ticks):
        x = sx(tick)
        name = x_names[index] if x_names is not None else _fmt(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" '
                     f'y2="{MARGIN_TOP + plot_h}" class="grid"/><text x="{x:.1f}" '
                     f'y="{MARGIN_TOP + plot_h + 16}" text-anchor="middle" class="tick">'
                     f'{esc(name)}</text>')
    parts.append(f'<text x="{MARGIN_LEFT + plot_w / 2}" y="{height - 6}" text-anchor="middle" '
                 f'class="axis-label">{esc(chart.x_label)}</text>'
                 f'<text x="14" y="{MARGIN_TOP + plot_h / 2}" text-anchor="middle" '
                 f'class="axis-label" transform="rotate(-90 14 {MARGIN_TOP + plot_h / 2})">'
                 f'{esc(chart.y_label)}</text>')
    legend_x = MARGIN_LEFT + plot_w
    for index, series in enumerate(chart.series):
        color = series.color or PALETTE[index % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in series.points
                          if math.isfinite(x) and math.isfinite(y))
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{esc(color)}" '
                     f'stroke-width="1.6"{dash}><title>{esc(series.name)}</title></polyline>')
        parts.append(f'<text x="{legend_x}" y="{16 + 0}" dx="{-index * 120}" '
                     f'text-anchor="end" class="legend" fill="{esc(color)}">'
                     f'{esc(series.name)}</text>')
    for marker in chart.markers:
        if not math.isfinite(marker.x):
            continue
        x = sx(marker.x)
        parts.append(f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" '
                     f'y2="{MARGIN_TOP + plot_h}" stroke="{esc(marker.color)}" '
                     f'stroke-dasharray="3 3" class="marker"><title>{esc(marker.label)}'
                     f'</title></line>')
    return "".join(parts)


#: Percentiles on the curve's x axis and their labels.
PERCENTILE_TICKS = (0.0, 90.0, 99.0, 99.9, 99.99, 99.999)


def percentile_position(pct: float) -> float:
    """``log10(1 / (1 - p))``: 0 % -> 0, 90 % -> 1, 99 % -> 2, 99.9 % -> 3."""
    remaining = max(1e-6, 1.0 - min(pct, 99.9999) / 100.0)
    return math.log10(1.0 / remaining)


def percentile_chart(title: str, curve: Sequence[tuple[float, float]],
                     width: int = 720, height: int = 260) -> str:
    """The latency-by-percentile curve of a merged HdrHistogram (pairs of % and ms)."""
    chart = Chart(title, "percentile", "latency (ms)",
                  [Series("latency", list(curve))], width=width, height=height)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title>{esc(title)}</title>'
            f'<text x="{MARGIN_LEFT}" y="16" class="chart-title">{esc(title)}</text>')
    if not curve:
        return head + (f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
                       f'class="muted">no data</text></svg>')
    top = max(p for p, _ in curve)
    ticks = [t for t in PERCENTILE_TICKS if t < top] or [0.0]  # then the first tick past
    ticks.append(next((t for t in PERCENTILE_TICKS if t >= top), PERCENTILE_TICKS[-1]))
    y_ticks = nice_ticks(0.0, max(ms for _, ms in curve))
    names = [f"{t:g}%" for t in ticks]
    return head + _plot(chart, ticks, y_ticks, percentile_position, names) + "</svg>"
