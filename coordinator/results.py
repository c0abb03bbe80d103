"""Results: the run directory, the versioned JSON document, and the human summary.

``validate-results.json`` is rewritten atomically (write a temp file, fsync, rename) at
every checkpoint and at the end, so a killed run loses at most one interval and a reader
never sees half a file. Latency histograms travel as encoded HdrHistograms in
``histograms.json`` beside it: percentiles are derived, never merged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import re
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.slices import SLICES
from coordinator import confirmation_report, response_report
from protocols.tally import latency_summary

SCHEMA_VERSION = "1.0"
RESULTS_FILE = "validate-results.json"
HISTOGRAMS_FILE = "histograms.json"


class ResultsError(OSError):
    """The results directory cannot be created or written (exit 2)."""


def tool_version() -> str:
    """assay's installed version, for the results documents."""
    try:
        from importlib.metadata import version

        return version("assay")
    except Exception:
        return "0+unknown"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def create_run_dir(parent: Path, mode: str, label: str, now: float | None = None) -> Path:
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    safe_label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "target"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(100):
            suffix = "" if attempt == 0 else f"-{attempt}"
            path = parent / f"{stamp}-{mode}-{safe_label}{suffix}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            probe = path / ".writable"
            probe.write_text("")
            probe.unlink()
            return path
    except OSError as exc:
        raise ResultsError(f"results directory {parent} is not writable: "
                           f"{exc.strerror or exc}") from None
    raise ResultsError(f"results directory {parent}: could not pick a fresh run directory")


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=False,
                                       default=_json_default) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write a temp file beside ``path``, fsync, rename: a reader never sees half a file
    and a killed writer leaves the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii"),
                "text": bytes(value).decode("latin-1").encode("unicode_escape").decode("ascii")}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def environment() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "arch": platform.machine(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "coordinator_pid": os.getpid(),
    }


def slice_of(counter: str) -> str:
    return counter.split(".", 1)[0]


def per_slice_counters(counters: Mapping[str, int]) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for name in sorted(counters):
        grouped.setdefault(slice_of(name), {})[name] = counters[name]
    return grouped


def failing_cases(counters: Mapping[str, int], examples: Mapping[str, Any]) -> dict[str, list]:
    """Per slice, every case whose violation or lenient counter is non-zero, with an example."""
    found: dict[str, list] = {}
    for name, count in sorted(counters.items()):
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != "case" or count <= 0:
            continue
        verdict = parts[-1]
        if verdict not in ("violation", "lenient"):
            continue
        example = examples.get(name, {})
        case = ".".join(parts[2:-1])
        rfc, requirement = case_reference(parts[0], case)
        found.setdefault(parts[0], []).append({
            "case": case,
            "verdict": verdict,
            "count": count,
            "rfc": rfc,
            "requirement": requirement,
            "example": example,
        })
    return found


def case_reference(slice_name: str, case: str) -> tuple[str | None, str | None]:
    """The RFC section and requirement of a catalogue case, from the catalogue itself."""
    catalogues = {"adv": "protocols.adversarial_cases", "ws": "protocols.websocket_cases",
                  "h2": "protocols.h2_cases", "tls": "protocols.tls_cases",
                  "h2flood": "protocols.h2_floods"}
    module_name = catalogues.get(slice_name)
    if module_name is None:
        return None, None
    try:
        import importlib

        entry = importlib.import_module(module_name).BY_NAME.get(case)
    except (ImportError, AttributeError):
        return None, None
    if entry is None and slice_name == "ws" and case.startswith("large_"):
        from protocols.ws_large_plan import RFC  # large valid messages: no catalogue entry

        return RFC, None
    if entry is None:
        return None, None
    requirement = getattr(entry, "requirement", None)
    return getattr(entry, "rfc", None), getattr(requirement, "value", requirement)


def totals(counters: Mapping[str, int], elapsed_s: float) -> dict[str, Any]:
    exchanges = sum(counters.get(SLICES[s][2], 0) for s in SLICES)
    errors = sum(counters.get(SLICES[s][3], 0) for s in SLICES)
    return {
        "exchanges": exchanges,
        "requests": counters.get("markov.requests", 0),
        "errors": errors,
        "rate_per_s": round(exchanges / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "harness_errors": counters.get("harness.walker_errors", 0),
    }


def latency_block(histograms: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    by_slice: dict[str, dict[str, Any]] = {}
    for name in sorted(histograms):
        by_slice.setdefault(slice_of(name), {})[name] = latency_summary(histograms[name])
    return by_slice


def encode_histograms(histograms: Mapping[str, Any]) -> dict[str, str]:
    return {name: hist.encode().decode("ascii") for name, hist in sorted(histograms.items())}


def _fmt_ms(summary: Mapping[str, Any], key: str) -> str:
    value = summary.get(key)
    return "-" if value is None else f"{value:.2f}ms"


def render_summary(document: Mapping[str, Any]) -> str:
    """The end-of-run text a person reads first; the JSON has everything else."""
    lines: list[str] = []
    tier1 = document.get("tier_1", {})
    tot = tier1.get("totals", {})
    verdict = document.get("status", "?").upper()
    lines.append(f"assay {document.get('mode')} {document.get('label')}: {verdict} "
                 f"(exit {document.get('exit_code')}) in {document.get('elapsed_s', 0):.1f} s")
    lines.append(f"  target   {document.get('target', {}).get('url')}")
    lines.append(f"  traffic  {tot.get('exchanges', 0)} exchanges "
                 f"({tot.get('requests', 0)} session requests), {tot.get('rate_per_s', 0)}/s, "
                 f"{tot.get('errors', 0)} transport errors")
    overall = tier1.get("slices", {}).get("markov", {}).get("latency", {}).get("markov.latency")
    if overall and overall.get("count"):
        lines.append(f"  latency  p50 {_fmt_ms(overall, 'p50_ms')}  p99 "
                     f"{_fmt_ms(overall, 'p99_ms')}  p99.9 {_fmt_ms(overall, 'p99_9_ms')}  "
                     f"max {_fmt_ms(overall, 'max_ms')}")
    walkers = {name: s.get("walkers", 0) for name, s in tier1.get("slices", {}).items()}
    lines.append("  walkers  " + ", ".join(f"{k}={v}" for k, v in walkers.items() if v))
    for note in document.get("notes", []):
        lines.append(f"  note     {note}")
    inv = document.get("invariants", {})
    lines.append(f"  invariants: {len(inv.get('passed', []))} passed, "
                 f"{len(inv.get('failed', []))} failed, "
                 f"{len(inv.get('not_judged', []))} not judged")
    for entry in inv.get("failed", []):
        value = entry.get("value")
        lines.append(f"    FAIL {entry['id']} [{entry['severity']}] {entry['meaning']} "
                     f"({entry['counter']}={value})"
                     + (f" -- a consequence of {entry['consequence_of']}, not a cause"
                        if entry.get("consequence_of") else ""))
    by_reason: dict[str, list[str]] = {}  # one line per reason (e.g. the nine I-API-*)
    for entry in inv.get("not_judged", []):
        by_reason.setdefault(str(entry.get("reason")), []).append(entry["id"])
    for reason, ids in by_reason.items():
        lines.append(f"    n/j  {', '.join(ids)}: {reason}")
    for slice_name, cases in tier1.get("failing_cases", {}).items():
        for case in cases:
            lines.append(f"    case {slice_name}.{case['case']}: {case['verdict']} x{case['count']}"
                         f" ({case.get('rfc') or 'no RFC ref'})")
    lines += confirmation_report.summary_lines(tier1)
    lines += response_report.summary_lines(document.get("response_rules", {}))
    for incident in document.get("incidents", []):
        lines.append(f"  incident {incident.get('id')}: {incident.get('path')}")
    if document.get("error"):
        lines.append(f"  error    {document['error']}")
    lines.append(f"  results  {document.get('results_path')}")
    return "\n".join(lines)
