"""Divergences: what one cell (or run) failed that another, given the same work, passed.

How this works: every results document is first reduced to a ``cell view`` -- the shape of
one entry of a matrix's ``cells[]``: ``invariants`` (passed/failed/not_judged, verbatim),
``slices`` (``{slice: {counter: int}}`` of the slices that ran, plus ``coord``) and
``failing_cases``; the verdicts ``assay watch``/``assay proxy`` keep in their own block
(I-RECONF-FAIL, I-PROXY-*) join the invariants. ``cell_view`` builds it from a run's
``validate-results.json``; a matrix document already holds one per cell.
``diverge(left, right)`` then compares two views and only what both sides judged ("the
same workload"):

* an invariant ``failed`` on one side and ``passed`` on the other, with the severity the
  documents give it (``coordinator.invariants`` wrote it there). ``not_judged`` on either
  side is no divergence: that side never did the work.
* a catalogue case (``<slice>.case.<name>.<verdict>`` counters) judged on both sides with
  verdicts that differ: a violation against a pass or a leniency takes the case's severity
  from its catalogue (``protocols.adversarial_cases``, ``protocols.websocket_cases``; MED
  when no catalogue knows it: a MUST was missed) -- but HIGH only when the violating side
  also failed a HIGH invariant of that slice: the oracles count a HIGH case's miss as MED
  when it is not the hazard itself (a 400 that kept the connection open is
  ``adv.must_violation``, not ``adv.wrong_accepted``), and the diff must not call HIGH what
  the run judged MED. A leniency against a pass is LOW (a SHOULD, reported, never
  failing). A case sent on one side only is not compared.
* a counter present on one side only (LOW): a slice that ran on one side only is one
  divergence keyed ``<slice>.*``; inside a slice both ran, a counter non-zero on one side
  and absent or zero on the other. Per-case counters and invariant counters are left out
  (the two kinds above judge them).

Sorted by severity (HIGH, MED, LOW), then kind (invariant, case, cell, counter), then key,
then the cells. Pure: documents in, values
out; the I/O (which files, where the diff goes) is ``coordinator.diff_cli``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from protocols import adversarial_cases, h2_cases, tls_cases, websocket_cases

SEVERITY_ORDER = {"HIGH": 0, "MED": 1, "LOW": 2}
#: Within a severity: invariants (the verdicts) first, then the cases and counters behind them.
KIND_ORDER = {"invariant": 0, "case": 1, "cell": 2, "counter": 3}
#: Case catalogues by slice: the slice's per-case counters name their cases.
CATALOGUES: dict[str, Mapping[str, Any]] = {
    "adv": adversarial_cases.BY_NAME,
    "ws": websocket_cases.BY_NAME,
    "h2": h2_cases.BY_NAME,
    "tls": tls_cases.BY_NAME,
}
#: Result blocks of fleet commands that judge outside the tallies (their own verdicts).
COMMAND_BLOCKS = ("watch", "proxy")
#: A case verdict that fails (a MUST missed), one that deviates (SHOULD/MAY), one that passes.
VIOLATION, LENIENT, PASS = "violation", "lenient", "pass"


@dataclass(frozen=True)
class Divergence:
    """One difference between two cells that did the same work."""

    #: ``invariant``, ``case`` or ``counter``.
    kind: str
    severity: str
    #: The invariant id, ``<slice>.<case>``, or the counter (``<slice>.*`` for a slice).
    key: str
    left: str
    right: str
    left_value: str
    right_value: str
    meaning: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def sort_key(self) -> tuple[int, int, str, str, str]:
        return (SEVERITY_ORDER.get(self.severity, 3), KIND_ORDER.get(self.kind, 9), self.key,
                self.left, self.right)


def cell_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """A run's ``validate-results.json`` reduced to what a matrix cell records of it.

    A part of the wrong type (a hand-edited or truncated file) reads as absent."""
    tier1 = _mapping(document.get("tier_1"))
    slices: dict[str, dict[str, int]] = {}
    for name, block in _mapping(tier1.get("slices")).items():
        if isinstance(block, dict) and not block.get("not_run"):
            slices[name] = _counts(block.get("counters"))
    if _mapping(tier1.get("coordinator")):
        slices["coord"] = _counts(tier1["coordinator"])
    failing = {name: [{k: v for k, v in entry.items() if k != "example"}
                      for entry in entries if isinstance(entry, dict)]
               for name, entries in _mapping(tier1.get("failing_cases")).items()
               if isinstance(entries, list)}
    invariants = _invariant_lists(document.get("invariants"))
    for status, entry in _command_verdicts(document):
        invariants[status].append(entry)
    return {"invariants": invariants, "slices": slices, "failing_cases": failing}


def _command_verdicts(document: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(status, entry) of the verdicts ``assay watch`` and ``assay proxy`` keep in their own
    block (I-RECONF-FAIL, I-PROXY-*), shaped as invariant entries, so two proxies or two
    reloads diverge on them too. A proxy run whose backends were not read judged nothing:
    its verdicts are ``not_judged``. The block's MEDIUM is this module's MED."""
    found = []
    for key in COMMAND_BLOCKS:
        block = _mapping(document.get(key))
        unread = key == "proxy" and (block.get("collected") is False
                                     or bool(block.get("fetch_errors")))
        for verdict in block.get("verdicts") if isinstance(block.get("verdicts"), list) else []:
            if not isinstance(verdict, dict) or verdict.get("status") not in ("passed",
                                                                               "failed"):
                continue  # an informational line (keepalive_kept): never a verdict
            severity = str(verdict.get("severity", "MED"))
            entry = {"id": str(verdict.get("id", "?")),
                     "severity": "MED" if severity == "MEDIUM" else severity,
                     "meaning": str(verdict.get("meaning", "")),
                     "counter": f"{key}.{verdict.get('id', '?')}"}
            count = next((verdict[k] for k in ("failed_requests", "findings")
                          if isinstance(verdict.get(k), int)), None)
            if count is not None:
                entry["value"] = count
            found.append(("not_judged" if unread else str(verdict["status"]), entry))
    return found


def checked_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """A cell view (a matrix entry, possibly hand-edited) with every part of the wrong
    type read as absent, so the comparisons below only meet the shapes they expect."""
    return {"invariants": _invariant_lists(view.get("invariants")),
            "slices": {str(name): _counts(counters)
                       for name, counters in _mapping(view.get("slices")).items()
                       if isinstance(counters, dict)},
            "failing_cases": _mapping(view.get("failing_cases"))}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _counts(value: Any) -> dict[str, int]:
    """Counter -> count; a non-integer count is left out."""
    return {str(k): v for k, v in _mapping(value).items()
            if isinstance(v, int) and not isinstance(v, bool)}


def _invariant_lists(value: Any) -> dict[str, list[dict[str, Any]]]:
    invariants = _mapping(value)
    return {status: [e for e in invariants.get(status) or [] if isinstance(e, dict)]
            if isinstance(invariants.get(status), list) else []
            for status in ("passed", "failed", "not_judged")}


def judged_cells(matrix: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, cell) of a matrix document's cells that have results: a cell in ``error``
    (its target never answered, it was stopped at its deadline) judged nothing, and
    comparing with it would only list every slice as present on one side."""
    return [(str(cell.get("name")), cell) for cell in matrix.get("cells") or []
            if isinstance(cell, dict) and cell.get("run_dir") is not None
            and cell.get("status") in ("passed", "failed", "interrupted")]


def diverge(left_name: str, left: Mapping[str, Any], right_name: str,
            right: Mapping[str, Any]) -> list[Divergence]:
    """Every divergence between two cell views, sorted (see the module docstring)."""
    left, right = checked_view(left), checked_view(right)
    found = [*_invariants(left_name, left, right_name, right),
             *_cases(left_name, left, right_name, right),
             *_counters(left_name, left, right_name, right)]
    return sorted(found, key=Divergence.sort_key)


def diverge_cells(cells: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Divergence]:
    """Every pair of cells, each earlier cell on the left: a matrix against itself."""
    named = list(cells)
    found: list[Divergence] = []
    for i, (left_name, left) in enumerate(named):
        for right_name, right in named[i + 1:]:
            found += diverge(left_name, left, right_name, right)
    return sorted(found, key=Divergence.sort_key)


def worst(divergences: Iterable[Divergence]) -> str | None:
    """The highest severity among ``divergences`` (None when there are none)."""
    levels = sorted((d.severity for d in divergences), key=lambda s: SEVERITY_ORDER.get(s, 3))
    return levels[0] if levels else None


def failing(divergences: Iterable[Divergence], strict: bool = False) -> bool:
    """True when a HIGH divergence exists (``strict``: a MED one too)."""
    counted = {"HIGH", "MED"} if strict else {"HIGH"}
    return any(d.severity in counted for d in divergences)


def _verdicts(view: Mapping[str, Any]) -> dict[str, tuple[str, dict]]:
    """Invariant id -> (passed|failed|not_judged, its entry)."""
    out: dict[str, tuple[str, dict]] = {}
    for status, entries in (view.get("invariants") or {}).items():
        for entry in entries or []:
            if isinstance(entry, dict) and "id" in entry:
                out[entry["id"]] = (status, entry)
    return out


def _shown(status: str, entry: Mapping[str, Any]) -> str:
    return f"{status} ({entry['value']})" if "value" in entry else status


def _invariants(left_name: str, left: Mapping[str, Any], right_name: str,
                right: Mapping[str, Any]) -> list[Divergence]:
    lhs, rhs = _verdicts(left), _verdicts(right)
    found = []
    for inv_id in sorted(lhs.keys() & rhs.keys()):
        (l_status, l_entry), (r_status, r_entry) = lhs[inv_id], rhs[inv_id]
        if {l_status, r_status} != {"passed", "failed"}:
            continue
        entry = l_entry if l_status == "failed" else r_entry
        found.append(Divergence(
            "invariant", str(entry.get("severity", "MED")), inv_id, left_name, right_name,
            _shown(l_status, l_entry), _shown(r_status, r_entry),
            str(entry.get("meaning", ""))))
    return found


def _case_verdicts(view: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, int]]:
    """(slice, case) -> (its worst judged verdict, how many times), from case counters."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for slice_name, counters in (view.get("slices") or {}).items():
        for counter, count in counters.items():
            parts = counter.split(".")
            if len(parts) >= 4 and parts[1] == "case" and isinstance(count, int) and count > 0:
                key = (slice_name, ".".join(parts[2:-1]))
                counts.setdefault(key, {})[parts[-1]] = count
    out = {}
    for key, by_verdict in counts.items():
        for verdict in (VIOLATION, LENIENT, PASS):
            if by_verdict.get(verdict):
                out[key] = (verdict, by_verdict[verdict])
                break
    return out


def case_severity(slice_name: str, case: str) -> str:
    """The catalogue severity of a case; MED (a MUST missed) when no catalogue has it."""
    entry = CATALOGUES.get(slice_name, {}).get(case)
    severity = getattr(entry, "severity", None)
    return str(getattr(severity, "value", severity) or "MED")


def _failed_high(view: Mapping[str, Any], slice_name: str) -> bool:
    """Did ``view`` fail a HIGH invariant read from ``slice_name``'s counters?"""
    return any(status == "failed" and entry.get("severity") == "HIGH"
               and str(entry.get("counter", "")).startswith(f"{slice_name}.")
               for status, entry in _verdicts(view).values())


def _cases(left_name: str, left: Mapping[str, Any], right_name: str,
           right: Mapping[str, Any]) -> list[Divergence]:
    lhs, rhs = _case_verdicts(left), _case_verdicts(right)
    found = []
    for slice_name, case in sorted(lhs.keys() & rhs.keys()):
        (l_verdict, l_count), (r_verdict, r_count) = lhs[slice_name, case], rhs[slice_name, case]
        if l_verdict == r_verdict:
            continue
        if VIOLATION in (l_verdict, r_verdict):
            violating = left if l_verdict == VIOLATION else right
            severity = case_severity(slice_name, case)
            if severity == "HIGH" and not _failed_high(violating, slice_name):
                severity = "MED"
            meaning = "a MUST of the case's RFC section was missed on one side only"
        else:
            severity = "LOW"
            meaning = "a SHOULD/MAY was not followed on one side only (reported, not failed)"
        entry = CATALOGUES.get(slice_name, {}).get(case)
        rfc = getattr(entry, "rfc", None)
        found.append(Divergence(
            "case", severity, f"{slice_name}.{case}", left_name, right_name,
            f"{l_verdict} x{l_count}", f"{r_verdict} x{r_count}",
            f"{meaning} ({rfc})" if rfc else meaning))
    return found


def _invariant_counters(*views: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for view in views:
        for _status, entry in _verdicts(view).values():
            for key in ("counter", "denominator"):
                if entry.get(key):
                    names.add(str(entry[key]))
    return names


def _counters(left_name: str, left: Mapping[str, Any], right_name: str,
              right: Mapping[str, Any]) -> list[Divergence]:
    lhs, rhs = left.get("slices") or {}, right.get("slices") or {}
    judged_elsewhere = _invariant_counters(left, right)
    found = []
    for slice_name in sorted(lhs.keys() ^ rhs.keys()):
        on_left = slice_name in lhs
        found.append(Divergence(
            "counter", "LOW", f"{slice_name}.*", left_name, right_name,
            "ran" if on_left else "absent", "absent" if on_left else "ran",
            f"the {slice_name} slice ran on one side only: nothing of it is compared"))
    for slice_name in sorted(lhs.keys() & rhs.keys()):
        l_counters, r_counters = lhs[slice_name], rhs[slice_name]
        for counter in sorted(l_counters.keys() | r_counters.keys()):
            if ".case." in counter or counter in judged_elsewhere:
                continue
            l_value, r_value = l_counters.get(counter, 0), r_counters.get(counter, 0)
            if bool(l_value) == bool(r_value):
                continue
            found.append(Divergence(
                "counter", "LOW", counter, left_name, right_name, str(l_value),
                str(r_value), "counted on one side only"))
    return found
