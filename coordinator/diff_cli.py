"""``assay diff``: divergences between runs, matrices, or a matrix's own cells.

``assay diff A B`` compares two results (each a run directory, a matrix directory, or a
``validate-results.json``); ``assay diff DIR`` compares a matrix's cells with each other,
every pair, the earlier cell in the file on the left -- a matrix has no privileged
baseline (engine x arch), and every pair is what finds a divergence between two cells
that both differ from the first. Pairing for two inputs: two single runs are one pair; a
run against a matrix is compared with each of its cells; two matrices pair cells by name,
and a cell on one side only is a LOW divergence. Cell names are prefixed ``A:``/``B:``.

The judging is ``protocols.divergence``; this module reads the files and writes
``diff.txt`` and ``diff.json`` (``--out``, default ``./validate-diff``). Exit 1 when a HIGH
divergence exists (``--strict``: a MED one too), 0 otherwise, 2 when an input cannot be
read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coordinator.results import ResultsError, write_json_atomic
from protocols.divergence import (
    Divergence,
    cell_view,
    diverge,
    diverge_cells,
    failing,
    judged_cells,
    worst,
)

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
RESULTS_FILE = "validate-results.json"


class DiffInputError(ValueError):
    """An input is not a results document (one line, exit 2)."""


def add_diff_parser(sub: Any) -> None:
    diff = sub.add_parser("diff", help="divergences between two results (runs or matrices) "
                          "or between a matrix's cells: diff.txt + diff.json, exit 1 on HIGH")
    diff.add_argument("inputs", nargs="+", type=Path, metavar="A [B]",
                      help="run dir, matrix dir or validate-results.json; one matrix alone "
                      "compares its cells with each other")
    diff.add_argument("--out", type=Path, default=Path("validate-diff"),
                      help="where diff.txt and diff.json go (default ./validate-diff)")
    diff.add_argument("--strict", action="store_true",
                      help="a MED divergence also exits 1")


def run_diff(args: argparse.Namespace) -> int:
    if len(args.inputs) > 2:
        sys.stderr.write("assay diff: error: give one matrix, or two results to compare\n")
        return EXIT_USAGE
    try:
        documents = [load_results(path) for path in args.inputs]
        if len(documents) == 1:
            cells = matrix_cells(documents[0], args.inputs[0])
            found = diverge_cells(cells)
            sources = {"matrix": str(args.inputs[0])}
        else:
            found = diverge_pairs(documents[0], documents[1])
            sources = {"A": str(args.inputs[0]), "B": str(args.inputs[1])}
    except DiffInputError as exc:
        sys.stderr.write(f"assay diff: error: {exc}\n")
        return EXIT_USAGE
    try:
        text = write_diff(args.out, found, sources, strict=args.strict)
    except (OSError, ResultsError) as exc:
        sys.stderr.write(f"assay diff: error: cannot write {args.out}: "
                         f"{getattr(exc, 'strerror', None) or exc}\n")
        return EXIT_USAGE
    sys.stdout.write(text)
    print(f"diff     {args.out / 'diff.txt'}")
    return EXIT_FAIL if failing(found, args.strict) else EXIT_PASS


def load_results(path: Path) -> dict[str, Any]:
    """A results document from a directory holding one, or the file itself."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        document = json.loads(file.read_text())
    except FileNotFoundError:
        raise DiffInputError(f"{path}: no {RESULTS_FILE} there") from None
    except OSError as exc:
        raise DiffInputError(f"{file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DiffInputError(f"{file}: not JSON ({exc})") from None
    if not isinstance(document, dict) or (
            "invariants" not in document and document.get("mode") != "matrix"):
        raise DiffInputError(f"{file}: not an assay results document (no invariants, no "
                             "matrix cells)")
    return document


def matrix_cells(document: Mapping[str, Any], path: Path) -> list[tuple[str, Any]]:
    """The cells of a matrix document that have results (a cell in error has none)."""
    if document.get("mode") != "matrix":
        raise DiffInputError(f"{path}: a single run; give two results to compare, or a "
                             "matrix to compare its cells")
    return judged_cells(document)


def _cells(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    if document.get("mode") == "matrix":
        return [dict(cell) for _name, cell in judged_cells(document)]
    return [{"name": document.get("label") or document.get("run_id") or "run",
             **cell_view(document)}]


def diverge_pairs(left_doc: Mapping[str, Any], right_doc: Mapping[str, Any]
                  ) -> list[Divergence]:
    """Two documents' cells paired as the module docstring says."""
    left, right = _cells(left_doc), _cells(right_doc)
    pairs: list[tuple[dict, dict]] = []
    found: list[Divergence] = []
    both_matrices = left_doc.get("mode") == "matrix" and right_doc.get("mode") == "matrix"
    if not both_matrices:  # a run meets every cell (a matrix with one judged cell is
        pairs = [(a, b) for a in left for b in right]  # still paired by name below)
    else:
        by_name = {cell["name"]: cell for cell in right}
        for cell in left:
            if cell["name"] in by_name:
                pairs.append((cell, by_name[cell["name"]]))
        for name in sorted({c["name"] for c in left} ^ by_name.keys()):
            on_left = any(c["name"] == name for c in left)
            found.append(Divergence("cell", "LOW", str(name), f"A:{name}" if on_left else "-",
                                    "-" if on_left else f"B:{name}",
                                    "ran" if on_left else "absent",
                                    "absent" if on_left else "ran",
                                    "a cell with results in one matrix only: nothing of "
                                    "it is compared"))
    for a, b in pairs:
        found += diverge(f"A:{a['name']}", a, f"B:{b['name']}", b)
    return sorted(found, key=Divergence.sort_key)


def render_text(found: Sequence[Divergence], sources: Mapping[str, str],
                strict: bool = False) -> str:
    """``diff.txt``: a verdict line, the sources, one block per divergence, worst first."""
    counts = {level: sum(d.severity == level for d in found) for level in ("HIGH", "MED", "LOW")}
    verdict = "FAIL" if failing(found, strict) else "PASS"
    lines = [f"assay diff: {verdict}: {len(found)} divergence(s) "
             f"(HIGH {counts['HIGH']}, MED {counts['MED']}, LOW {counts['LOW']})"
             + (" [--strict: MED fails]" if strict else "")]
    lines += [f"  {name} = {path}" for name, path in sources.items()]
    for d in found:
        lines.append(f"{d.severity:<4} {d.kind:<9} {d.key}: {d.left}={d.left_value}  "
                     f"{d.right}={d.right_value}")
        if d.meaning:
            lines.append(f"     {d.meaning}")
    return "\n".join(lines) + "\n"


def write_diff(out: Path, found: Sequence[Divergence], sources: Mapping[str, str],
               strict: bool = False) -> str:
    """Writes ``diff.txt`` and ``diff.json`` into ``out``; returns the text."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_text(found, sources, strict)
    (out / "diff.txt").write_text(text)
    write_json_atomic(out / "diff.json", {
        "schema_version": "1.0",
        "sources": dict(sources),
        "strict": strict,
        "worst": worst(found),
        "failed": failing(found, strict),
        "counts": {level: sum(d.severity == level for d in found)
                   for level in ("HIGH", "MED", "LOW")},
        "divergences": [d.to_json() for d in found],
    })
    return text
