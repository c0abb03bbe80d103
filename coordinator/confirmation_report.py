"""The confirmation section of the results: how many violations were confirmed, how many
were not, and why (see ``protocols.confirmation``).

How this works: the slices count ``<slice>.confirmed``, ``<slice>.unconfirmed``,
``<slice>.unconfirmed.<why>`` and ``<slice>.case.<name>.unconfirmed`` (with an example); this
module only reads those counters back, per slice, into the ``tier_1`` blocks and into the
end-of-run summary. An unconfirmed case never fails an invariant: it is listed beside
``failing_cases`` so a reader sees what was seen once under load and did not reproduce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Slices that confirm their violations.
CONFIRMING = ("adv", "ws", "h2c", "sse")


def block(slice_name: str, counters: Mapping[str, int]) -> dict[str, Any] | None:
    """``{confirmed, unconfirmed, by_reason}`` for one slice (None for a slice that does not
    confirm)."""
    if slice_name not in CONFIRMING:
        return None
    prefix = f"{slice_name}.unconfirmed."
    return {
        "confirmed": counters.get(f"{slice_name}.confirmed", 0),
        "unconfirmed": counters.get(f"{slice_name}.unconfirmed", 0),
        "by_reason": {name[len(prefix):]: count for name, count in sorted(counters.items())
                      if name.startswith(prefix) and count > 0},
        "resent": counters.get(f"{slice_name}.confirm_sent", 0),
    }


def unconfirmed_cases(
    counters: Mapping[str, int], examples: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Per slice, every case with an unconfirmed violation, its count, why, and an example."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, count in sorted(counters.items()):
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != "case" or parts[-1] != "unconfirmed" or count <= 0:
            continue
        example = examples.get(name, {})
        found.setdefault(parts[0], []).append({
            "case": ".".join(parts[2:-1]),
            "count": count,
            "why": example.get("why"),
            "example": example,
        })
    return found


def summary_lines(tier1: Mapping[str, Any]) -> list[str]:
    """Lines for the human summary: one per slice that confirmed anything, then the cases."""
    lines: list[str] = []
    for name, data in tier1.get("slices", {}).items():
        info = data.get("confirmation") if isinstance(data, Mapping) else None
        if not info or not (info.get("confirmed") or info.get("unconfirmed")):
            continue
        reasons = ", ".join(f"{why} {n}" for why, n in info.get("by_reason", {}).items())
        lines.append(f"  confirm  {name}: {info['confirmed']} confirmed, "
                     f"{info['unconfirmed']} unconfirmed" + (f" ({reasons})" if reasons else ""))
    for slice_name, cases in tier1.get("unconfirmed_cases", {}).items():
        for case in cases:
            lines.append(f"    unconfirmed {slice_name}.{case['case']} x{case['count']}"
                         f" ({case.get('why') or '?'}): not counted")
    return lines
