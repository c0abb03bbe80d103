"""The numbers the HTML report draws, taken from a results document and its histograms.

How this works: the report reads only what a run already wrote (``validate-results.json``
and ``histograms.json``), so ``assay report DIR`` rebuilds the same page long after the
run. Every reader here tolerates a partial or malformed document (a run killed between
checkpoints, an older schema): a missing or mistyped part yields an empty value, and the
page shows "no data" for it rather than failing as a whole.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from protocols.tally import new_histogram

#: Percentiles the latency curve is drawn through (dense in the tail, where it matters).
CURVE_PERCENTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9,
                     99.95, 99.99, 99.995, 99.999)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def epoch(iso_text: Any) -> float | None:
    """Seconds since the epoch of an ISO-8601 timestamp, None when it is not one."""
    if not isinstance(iso_text, str):
        return None
    try:
        return datetime.fromisoformat(iso_text).timestamp()
    except ValueError:
        return None


def decode_histograms(encoded: Mapping[str, Any]) -> dict[str, HdrHistogram]:
    """``histograms.json`` decoded; an entry that does not decode is left out."""
    decoded: dict[str, HdrHistogram] = {}
    for name, blob in encoded.items():
        if not isinstance(blob, str):
            continue
        try:
            decoded[name] = HdrHistogram.decode(blob)
        except Exception:  # hdrh raises many unrelated types on junk input
            continue
    return decoded


def overall_latency(histograms: Mapping[str, HdrHistogram]) -> HdrHistogram | None:
    """Every ``<slice>.latency`` (and ``load.<scenario>.latency``) merged; the per-state
    ``markov.latency.<state>`` ones are already inside ``markov.latency``, and a load run's
    ``lag``/``service`` histograms measure something else."""
    chosen = [h for name, h in histograms.items() if name.endswith(".latency")]
    if not chosen:
        return None
    merged = new_histogram()
    for hist in chosen:
        merged.add(hist)
    return merged if merged.get_total_count() else None


def percentile_curve(hist: HdrHistogram | None) -> list[tuple[float, float]]:
    """(percentile, ms) pairs through ``CURVE_PERCENTILES``, stopping once the curve reaches
    the maximum (past it, a small histogram has nothing more to say)."""
    if hist is None or hist.get_total_count() == 0:
        return []
    curve: list[tuple[float, float]] = []
    top = hist.get_max_value()
    for pct in CURVE_PERCENTILES:
        value = hist.get_value_at_percentile(pct) if pct > 0 else hist.get_min_value()
        curve.append((pct, value / 1000.0))
        if value >= top:
            break
    return curve


def run_start(document: Mapping[str, Any]) -> float | None:
    return epoch(document.get("run_started_at")) or epoch(document.get("started_at"))


def timeline_points(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``timeline`` samples with a numeric, increasing ``t``."""
    points = [p for p in as_list(document.get("timeline"))
              if isinstance(p, dict) and number(p.get("t")) is not None]
    return sorted(points, key=lambda p: p["t"])


def rates(points: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    """Per-second rate of a cumulative counter between consecutive samples."""
    found: list[tuple[float, float]] = []
    previous_t, previous_v = 0.0, 0.0
    for point in points:
        t, value = number(point.get("t")), number(point.get(key))
        if t is None or value is None:
            continue
        span = t - previous_t
        if span > 0:
            found.append((t, max(0.0, value - previous_v) / span))
        previous_t, previous_v = t, value
    return found


def column(points: Sequence[Mapping[str, Any]], key: str) -> list[tuple[float, float]]:
    found = []
    for point in points:
        t, value = number(point.get("t")), number(point.get(key))
        if t is not None and value is not None:
            found.append((t, value))
    return found


def trips(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Invariant trips in time order, each with ``t`` (s into the run) when known."""
    start = run_start(document)
    found = []
    for counter, trip in as_dict(document.get("trips")).items():
        if not isinstance(trip, dict):
            continue
        at = number(trip.get("received_at")) or number(trip.get("seen_at"))
        found.append({"counter": counter, "invariant": trip.get("invariant", "?"),
                      "via": trip.get("via", ""), "at": at,
                      "t": (at - start) if at is not None and start is not None else None})
    return sorted(found, key=lambda t: (t["at"] is None, t["at"] or 0.0))


def case_quote(slice_name: str, case: str) -> str | None:
    """The RFC sentence a catalogue case quotes (``protocols.rfc_quotes``), if any."""
    catalogues = {"adv": "protocols.adversarial_cases", "ws": "protocols.websocket_cases"}
    module_name = catalogues.get(slice_name)
    if module_name is None:
        return None
    try:
        entry = importlib.import_module(module_name).BY_NAME.get(case)
    except (ImportError, AttributeError):
        return None
    quote = getattr(entry, "quote", None)
    return quote if isinstance(quote, str) and quote else None


def wire_text(value: Any) -> str | None:
    """Bytes as the results document holds them (``{"text", "base64"}``), as text."""
    if isinstance(value, dict):
        text = value.get("text")
        if isinstance(text, str):
            return text
        blob = value.get("base64")
        if isinstance(blob, str):
            try:
                return base64.b64decode(blob).decode("latin-1")
            except (binascii.Error, ValueError):
                return None
    if isinstance(value, str):
        return value
    return None


def relative_link(run_dir: Path, target: Any) -> str | None:
    """``target`` (a path the run wrote) relative to ``run_dir``, for an href; None when it
    lies outside the run directory or is not a path.

    A directory copied or moved since the run (``assay report`` on an archive) still holds
    absolute paths to where it was: a path through a directory of ``run_dir``'s own name is
    taken as inside it when that part exists here."""
    if not isinstance(target, str) or not target:
        return None
    path = Path(target)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except (ValueError, OSError):
        pass
    parts = path.parts
    if run_dir.name not in parts:
        return None
    rest = parts[len(parts) - parts[::-1].index(run_dir.name):]
    if not rest or ".." in rest:
        return None
    inside = Path(*rest)
    return inside.as_posix() if (run_dir / inside).exists() else None


def incidents_for(document: Mapping[str, Any], counter: str) -> list[dict[str, Any]]:
    return [i for i in as_list(document.get("incidents"))
            if isinstance(i, dict) and i.get("counter") == counter]
