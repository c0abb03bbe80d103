"""``report.html`` for ``assay matrix``: the cells x invariants grid.

How this works: the matrix document lists its cells, each with the invariants block copied
verbatim from the cell's own run document and the cell's run directory relative to the
matrix directory. The page is one table with an invariant per row and a cell per column
(pass / FAIL / n/j, the reason or value on hover), the column heads linking to each cell's
own ``report.html``, then a table of the cells (target, status, exit code, why a cell did
not run). Everything from a cell passes through ``esc``; links are relative, so the matrix
directory can be archived whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator import report_data as data
from coordinator.report_html import STYLE, verdict_header
from protocols.svg_charts import esc

GRID_STYLE = """
table.grid td.cell{text-align:center;font-weight:600}
td.pass{background:#dafbe1;color:#1a7f37}td.fail{background:#ffebe9;color:#cf222e}
td.nj{background:#fff8c5;color:#9a6700}td.absent{background:#f6f8fa;color:#8c959f}
"""
MARKS = {"passed": ("pass", "pass"), "failed": ("FAIL", "fail"), "not_judged": ("n/j", "nj")}


def render_matrix(matrix_dir: Path, document: dict[str, Any]) -> str:
    cells = [c for c in data.as_list(document.get("cells")) if isinstance(c, dict)]
    title = f"assay matrix: {str(document.get('status', '?')).upper()}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{STYLE}{GRID_STYLE}</style></head><body>"
            + verdict_header({**document, "label": Path(str(document.get("matrix_file") or
                                                              "")).name})
            + "<main>" + grid_section(matrix_dir, cells) + cells_section(matrix_dir, cells)
            + "</main></body></html>\n")


def cell_link(matrix_dir: Path, cell: dict[str, Any]) -> str | None:
    """The relative href of a cell's own report, when its run directory has one."""
    run_dir = cell.get("run_dir")
    if not isinstance(run_dir, str) or not run_dir:
        return None
    href = f"{Path(run_dir).as_posix()}/report.html"
    return href if (matrix_dir / run_dir / "report.html").exists() else None


def grid_section(matrix_dir: Path, cells: list[dict[str, Any]]) -> str:
    verdicts: dict[str, dict[str, tuple[str, str]]] = {}
    order: list[str] = []
    for cell in cells:
        block = data.as_dict(cell.get("invariants"))
        for status in ("failed", "not_judged", "passed"):
            for entry in data.as_list(block.get(status)):
                if not isinstance(entry, dict) or "id" not in entry:
                    continue
                invariant = str(entry["id"])
                if invariant not in verdicts:
                    verdicts[invariant] = {}
                    order.append(invariant)
                detail = entry.get("reason") if status == "not_judged" else \
                    f"{entry.get('counter')}={entry.get('value')}"
                verdicts[invariant][str(cell.get("name"))] = (status, str(detail))
    failed_first = sorted(order, key=lambda i: (not any(v[0] == "failed" for v in
                                                          verdicts[i].values()), order.index(i)))
    heads = []
    for cell in cells:
        href = cell_link(matrix_dir, cell)
        name = esc(cell.get("name"))
        heads.append(f'<th><a href="{esc(href)}">{name}</a></th>' if href else f"<th>{name}</th>")
    rows = []
    for invariant in failed_first:
        tds = []
        for cell in cells:
            found = verdicts[invariant].get(str(cell.get("name")))
            if found is None:
                tds.append('<td class="cell absent">&ndash;</td>')
                continue
            mark, css = MARKS[found[0]]
            tds.append(f'<td class="cell {css}" title="{esc(found[1])}">{mark}</td>')
        rows.append(f"<tr><th>{esc(invariant)}</th>{''.join(tds)}</tr>")
    if not cells:
        return '<section id="matrix"><h2>Cells &times; invariants</h2><p class="muted">no ' \
               'cell finished</p></section>'
    return ('<section id="matrix"><h2>Cells &times; invariants</h2><table class="grid"><tr>'
            "<th>invariant</th>" + "".join(heads) + "</tr>" + "".join(rows) + "</table>"
            + ('<p><a href="diff.txt">diff.txt</a>: where the cells disagree</p>'
               if (matrix_dir / "diff.txt").exists() else "") + "</section>")


def cells_section(matrix_dir: Path, cells: list[dict[str, Any]]) -> str:
    rows = []
    for cell in cells:
        href = cell_link(matrix_dir, cell)
        failing = sum(len(data.as_list(v)) for v in
                      data.as_dict(cell.get("failing_cases")).values())
        failed = len(data.as_list(data.as_dict(cell.get("invariants")).get("failed")))
        link = f'<a href="{esc(href)}">report</a>' if href else ""
        rows.append(
            f"<tr><td>{esc(cell.get('name'))}</td><td>{esc(cell.get('target') or '')}</td>"
            f"<td class=\"status-{esc(cell.get('status'))}\">{esc(cell.get('status'))}</td>"
            f"<td class=\"num\">{esc(cell.get('exit_code'))}</td><td class=\"num\">{failed}"
            f"</td><td class=\"num\">{failing}</td><td>{esc(cell.get('reason') or '')}</td>"
            f"<td>{link}</td></tr>")
    return ('<section id="cells"><h2>Cells</h2><table><tr><th>cell</th><th>target</th>'
            "<th>status</th><th>exit</th><th>invariants failed</th><th>cases failing</th>"
            "<th>note</th><th>report</th></tr>" + "".join(rows) + "</table></section>")
