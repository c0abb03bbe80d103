"""The invariants table and, for each failed invariant, its cases with bytes and RFC text.

How this works: a failed invariant names the counter that moved (``adv.wrong_accepted``);
its slice is the counter's prefix. The section shows the counter's first example (the
exchange that moved it first), then every case of that slice whose verdict is
``violation`` (``tier_1.failing_cases``), each with its RFC section and requirement, the
sentence the case's catalogue entry quotes (``protocols.rfc_quotes``), the reaction
observed, and the bytes sent and received. Bytes come from the target: they are shown
escaped inside ``<pre>``, never as markup. Links to the incident dossier and the
reproducer are hrefs relative to the run directory, so the directory can be moved or
archived whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coordinator import report_data as data
from coordinator.report_command_verdicts import (
    CommandVerdict,
    command_errors,
    command_verdicts,
)
from protocols.svg_charts import esc

#: Cases shown per slice before the rest are only counted (a broken parser can fail 200).
MAX_CASES_PER_SLICE = 25
#: Example keys the case heading or quote already shows.
SHOWN_ELSEWHERE = frozenset({"quote"})
#: Keys of a proxy finding that hold bytes as latin-1 text (shown escaped, as bytes).
WIRE_KEYS = frozenset({"sent", "client_received", "backend_received"})
#: Example keys shown as rows of the small fact table, in this order.
FACTS = ("case", "verdict", "reaction", "reason", "statuses", "baseline_status", "ending",
         "rfc", "walker", "state", "request", "status", "expected", "detail")


def invariants_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    verdicts = data.as_dict(document.get("invariants"))
    rows = []
    for status in ("failed", "not_judged", "passed"):
        for entry in data.as_list(verdicts.get(status)):
            if not isinstance(entry, dict):
                continue
            detail = entry.get("reason") if status == "not_judged" else entry.get("value")
            also = entry.get("consequence_of")
            rows.append(f"<tr><td>{esc(entry.get('id'))}</td>"
                        f"<td class=\"status-{status}\">{esc(status.replace('_', ' '))}</td>"
                        f"<td>{esc(entry.get('severity'))}</td><td>{esc(entry.get('meaning'))}"
                        + (f" <em>(a consequence of {esc(also)})</em>" if also else "")
                        + f"</td><td><code>{esc(entry.get('counter', ''))}</code></td>"
                        f"<td>{esc(detail if detail is not None else '')}</td></tr>")
    counts = {s: len(data.as_list(verdicts.get(s))) for s in ("passed", "failed", "not_judged")}
    first = 0  # where the next failed command verdict goes: after those before it
    for verdict in command_verdicts(document):  # watch / proxy keep theirs in their block
        css = verdict.status if verdict.status in ("passed", "failed", "not_judged") \
            else "info"
        counts[verdict.status] = counts.get(verdict.status, 0) + (css != "info")
        first += verdict.failed
        rows.insert(first - 1 if verdict.failed else len(rows),
                    f"<tr><td>{esc(verdict.id)}</td><td class=\"status-{css}\">"
                    f"{esc(verdict.status.replace('_', ' '))}</td>"
                    f"<td>{esc(verdict.severity)}</td>"
                    f"<td>{esc(verdict.meaning)}"
                    + (f" <em>({esc(verdict.note)})</em>" if verdict.note else "")
                    + f"</td><td><code>{esc(verdict.block)}</code>"
                    f"</td><td>{esc(verdict.detail)}</td></tr>")
    for block_name, message in command_errors(document):
        counts["not_judged"] += 1
        rows.insert(first, f"<tr><td>{esc(block_name)}</td><td class=\"status-not_judged\">"
                       f"not judged</td><td></td><td>{esc(message)}</td><td></td><td></td></tr>")
    return ('<section id="invariants"><h2>Invariants</h2>'
            f"<p>{counts['failed']} failed, {counts['passed']} passed, "
            f"{counts['not_judged']} not judged</p><table><tr><th>invariant</th><th>status</th>"
            "<th>severity</th><th>meaning</th><th>counter</th><th>value / reason</th></tr>"
            + "".join(rows) + "</table></section>")


def failures_section(run_dir: Path, document: dict[str, Any], context: dict[str, Any]) -> str:
    verdicts = data.as_dict(document.get("invariants"))
    tier1 = data.as_dict(document.get("tier_1"))
    examples = data.as_dict(tier1.get("examples"))
    by_slice = data.as_dict(tier1.get("failing_cases"))
    failed = [e for e in data.as_list(verdicts.get("failed")) if isinstance(e, dict)]
    parts: list[str] = []
    shown_slices: set[str] = set()
    for entry in failed:
        counter = str(entry.get("counter", ""))
        slice_name = counter.split(".", 1)[0]
        parts.append(f'<h3 class="status-failed">{esc(entry.get("id"))} '
                     f'[{esc(entry.get("severity"))}]: {esc(entry.get("meaning"))}</h3>'
                     f"<p><code>{esc(counter)}</code> = {esc(entry.get('value'))}</p>")
        parts.append(_incident_links(run_dir, document, counter))
        first = examples.get(counter)
        if isinstance(first, dict) and first:
            parts.append(_case_block(slice_name, first, "first example", None))
        if slice_name not in shown_slices:
            shown_slices.add(slice_name)
            parts.append(_slice_cases(slice_name, by_slice.get(slice_name), "violation"))
    failed_commands = [v for v in command_verdicts(document) if v.failed]
    for verdict in failed_commands:
        parts.append(_command_failure(run_dir, verdict))
    if not failed and not failed_commands:
        parts.append('<p class="status-passed">no invariant failed</p>')
    lenient = [(s, c) for s, cases in by_slice.items() for c in data.as_list(cases)
               if isinstance(c, dict) and c.get("verdict") == "lenient"]
    if lenient:
        parts.append(f"<details><summary>{len(lenient)} lenient cases (a SHOULD not followed; "
                     "reported, no invariant)</summary>"
                     + "".join(_case_block(s, c.get("example") or {}, None, c)
                               for s, c in lenient[:MAX_CASES_PER_SLICE]) + "</details>")
    return '<section id="failures"><h2>Failures</h2>' + "".join(parts) + "</section>"


def _command_failure(run_dir: Path, verdict: CommandVerdict) -> str:
    """A failed watch / proxy verdict: each proxy finding with its bytes and reproducer
    link, or each watch failure window that counted against the proxy."""
    blocks = []
    for example in verdict.examples[:MAX_CASES_PER_SLICE]:
        repro = data.relative_link(run_dir, example.get("reproducer"))
        shown = {k: ({"text": _escaped(v)} if k in WIRE_KEYS and isinstance(v, str) else v)
                 for k, v in example.items() if k != "reproducer"}
        title = (f"{verdict.block}.{example['case']}" if example.get("case")
                 else f"{verdict.block} failure window")
        block = _case_block(verdict.block, shown, title, None)
        if repro:
            block = block.replace("</strong>", f'</strong> &middot; <a href="{esc(repro)}">'
                                  "reproducer</a>", 1)
        blocks.append(block)
    more = len(verdict.examples) - MAX_CASES_PER_SLICE
    return (f'<h3 class="status-failed">{esc(verdict.id)} [{esc(verdict.severity)}]: '
            f"{esc(verdict.meaning)}</h3><p><code>{esc(verdict.block)}</code>: "
            f"{esc(verdict.detail)}"
            + (f" <em>({esc(verdict.note)})</em>" if verdict.note else "") + "</p>"
            + "".join(blocks)
            + (f'<p class="muted">and {more} more in validate-results.json</p>'
               if more > 0 else ""))


def _escaped(text: str) -> str:
    """Latin-1 text escaped as the results document escapes bytes (``\\r\\n``, ``\\xNN``)."""
    return text.encode("latin-1", "replace").decode("latin-1").encode("unicode_escape") \
        .decode("ascii")


def _slice_cases(slice_name: str, cases: Any, verdict: str) -> str:
    chosen = [c for c in data.as_list(cases) if isinstance(c, dict)
              and c.get("verdict") == verdict]
    if not chosen:
        return ""
    blocks = [_case_block(slice_name, c.get("example") or {}, None, c)
              for c in chosen[:MAX_CASES_PER_SLICE]]
    more = len(chosen) - MAX_CASES_PER_SLICE
    return (f"<h4>{len(chosen)} failing {esc(slice_name)} case(s)</h4>" + "".join(blocks)
            + (f'<p class="muted">and {more} more in validate-results.json</p>'
               if more > 0 else ""))


def _case_block(slice_name: str, example: Mapping[str, Any], heading: str | None,
                case: Mapping[str, Any] | None) -> str:
    """One failing case: name, verdict, RFC section and quote, facts, bytes both ways."""
    example = data.as_dict(example)
    case = data.as_dict(case)
    name = case.get("case") or example.get("case")
    rfc = case.get("rfc") or example.get("rfc")
    requirement = case.get("requirement")
    quote = (data.case_quote(slice_name, str(name)) if name else None) or example.get("quote")
    title = heading or f"{slice_name}.{name}"
    head = (f"<div class=\"case\"><strong>{esc(title)}</strong>"
            + (f" &mdash; {esc(case.get('verdict'))} &times;{esc(case.get('count'))}"
               if case else "")
            + (f"<div>{esc(rfc)}" + (f" ({esc(requirement)})" if requirement else "")
               + "</div>" if rfc else ""))
    quoted = f"<blockquote>{esc(quote)}</blockquote>" if quote else ""
    facts, wires, rest = [], [], []
    for key, value in example.items():
        text = data.wire_text(value) if isinstance(value, dict) else None
        if text is not None:
            if text:  # a line break after each escaped CRLF, so a head reads as lines
                shown = text[:8192].replace("\\r\\n", "\\r\\n\n")
                wires.append(f"<div>{esc(key)} ({len(text)} characters, escaped):</div>"
                             f"<pre class=\"bytes\">{esc(shown)}"
                             + ("\n[... cut at 8192]" if len(text) > 8192 else "")
                             + "</pre>")
        elif value is None or key in SHOWN_ELSEWHERE:
            continue
        elif key in FACTS:
            facts.append(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>")
        else:
            rest.append(f"<tr><th>{esc(key)}</th><td><code>{esc(_short(value))}</code></td></tr>")
    table = "<table>" + "".join(facts + rest) + "</table>" if facts or rest else ""
    return head + quoted + table + "".join(wires) + "</div>"


def _incident_links(run_dir: Path, document: Mapping[str, Any], counter: str) -> str:
    links = []
    for incident in data.incidents_for(document, counter):
        dossier = data.relative_link(run_dir, incident.get("dossier") or incident.get("path"))
        repro = data.relative_link(run_dir, incident.get("repro"))
        items = [f"incident {esc(incident.get('id'))} ({esc(incident.get('status'))})"]
        if dossier:
            items.append(f'<a href="{esc(dossier)}/">dossier</a>')
        if repro:
            items.append(f'<a href="{esc(repro)}">reproducer</a>')
        links.append("<li>" + " &middot; ".join(items) + "</li>")
    return "<ul class=\"incidents\">" + "".join(links) + "</ul>" if links else ""


def _short(value: Any, limit: int = 400) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
