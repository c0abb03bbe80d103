"""The ``response_rules`` results section and its summary lines.

Actors count each response-rule finding once per (rule, verdict, route) in
``resp.route.<rule>.<verdict>.<route>`` (see ``actors.response_check``); summed across
actors such a counter is the number of actors that saw it, so routes are counted here by
distinct key, not by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.response_rules import RULES

_ROUTE_PREFIX = "resp.route."


def section(counters: Mapping[str, int], examples: Mapping[str, Any],
            no_clock: bool = False) -> dict[str, Any]:
    """Per rule: status (violation | pass | not_observed | not_judged), routes, example, RFC."""
    routes: dict[tuple[str, str], list[str]] = {}
    for name, value in counters.items():
        if value <= 0 or not name.startswith(_ROUTE_PREFIX):
            continue
        parts = name[len(_ROUTE_PREFIX):].split(".", 2)
        if len(parts) == 3:
            routes.setdefault((parts[0], parts[1]), []).append(parts[2])
    rules: list[dict[str, Any]] = []
    for rule in RULES:
        bad = sorted(routes.get((rule.name, "violation"), []))
        good = sorted(routes.get((rule.name, "pass"), []))
        if rule.name == "date" and no_clock:
            status = "not_judged"
        elif bad:
            status = "violation"
        elif good:
            status = "pass"
        else:
            status = "not_observed"
        entry: dict[str, Any] = {
            "rule": rule.name, "status": status, "rfc": rule.rfc,
            "requirement": rule.requirement.value, "severity": rule.severity.value,
            "framing": rule.framing, "summary": rule.summary, "count": len(bad),
            "routes": bad, "routes_passed": len(good),
        }
        if status == "not_judged":
            entry["reason"] = "--no-clock: the target declares no clock"
        if bad:
            entry["quote"] = rule.quote
            entry["example"] = examples.get(f"resp.rule.{rule.name}.violation", {})
        rules.append(entry)
    return {
        "checked": counters.get("resp.checked", 0),
        "violations": sum(1 for r in rules if r["status"] == "violation"),
        "rules": rules,
    }


def summary_lines(block: Mapping[str, Any]) -> list[str]:
    """One line per violated rule, for the end-of-run summary."""
    if not block:
        return []
    lines = [f"  response rules: {block.get('checked', 0)} responses checked, "
             f"{block.get('violations', 0)} rules violated"]
    for rule in block.get("rules", []):
        if rule["status"] == "violation":
            routes = ", ".join(rule["routes"][:3]) + (" ..." if len(rule["routes"]) > 3 else "")
            lines.append(f"    resp {rule['rule']}: {rule['count']} route(s) [{routes}] "
                         f"({rule['rfc']} {rule['requirement']})")
    return lines
