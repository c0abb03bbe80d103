"""protocols.divergence: only what both sides judged diverges, worst first."""

from __future__ import annotations

from protocols.divergence import cell_view, diverge, diverge_cells, failing, judged_cells, worst


def _inv(inv_id: str, severity: str, value: int | None = None, **extra) -> dict:
    entry = {"id": inv_id, "severity": severity, "meaning": f"{inv_id} meaning",
             "counter": extra.pop("counter", f"x.{inv_id.lower()}"), **extra}
    if value is not None:
        entry["value"] = value
    return entry


def _view(passed=(), failed=(), not_judged=(), slices=None) -> dict:
    return {"invariants": {"passed": list(passed), "failed": list(failed),
                           "not_judged": list(not_judged)},
            "slices": slices or {}, "failing_cases": {}}


def test_an_invariant_failing_on_one_side_and_passing_on_the_other_takes_its_severity():
    left = _view(passed=[_inv("I-DRV-1", "HIGH", 0), _inv("I-ADV-MUST", "MED", 0)])
    right = _view(failed=[_inv("I-DRV-1", "HIGH", 336), _inv("I-ADV-MUST", "MED", 2)])
    found = diverge("ok", left, "bad", right)
    assert [(d.kind, d.severity, d.key) for d in found] == [
        ("invariant", "HIGH", "I-DRV-1"), ("invariant", "MED", "I-ADV-MUST")]
    assert (found[0].left, found[0].right) == ("ok", "bad")
    assert (found[0].left_value, found[0].right_value) == ("passed (0)", "failed (336)")
    assert found[0].meaning == "I-DRV-1 meaning"
    assert failing(found) and worst(found) == "HIGH"


def test_not_judged_on_either_side_is_not_a_divergence():
    left = _view(not_judged=[_inv("I-DRV-1", "HIGH", reason="no markov")])
    right = _view(failed=[_inv("I-DRV-1", "HIGH", 3)])
    assert diverge("a", left, "b", right) == []
    same = _view(failed=[_inv("I-DRV-1", "HIGH", 3)])
    assert diverge("a", same, "b", right) == []


def test_cases_compared_only_when_both_sides_judged_them_with_catalogue_severity():
    high = _inv("I-ADV-ACCEPTED", "HIGH", 1, counter="adv.wrong_accepted")
    left = _view(slices={"adv": {"adv.case.cl-conflicting.pass": 1,
                                 "adv.case.cl-duplicate-same.pass": 1,
                                 "adv.case.obs-fold.lenient": 1,
                                 "adv.case.cl-hex.unjudged": 1,
                                 "adv.case.only-left.pass": 1}})
    right = _view(failed=[high], slices={"adv": {"adv.case.cl-conflicting.violation": 2,
                                  "adv.case.cl-conflicting.pass": 1,
                                  "adv.case.cl-duplicate-same.violation": 1,
                                  "adv.case.obs-fold.pass": 1,
                                  "adv.case.cl-hex.violation": 1}})
    found = diverge("a", left, "b", right)
    assert [(d.kind, d.severity, d.key) for d in found] == [
        ("case", "HIGH", "adv.cl-conflicting"),
        ("case", "LOW", "adv.cl-duplicate-same"),  # a LOW case of the catalogue
        ("case", "LOW", "adv.obs-fold"),  # lenient against pass: a SHOULD
    ]
    assert found[0].right_value == "violation x2"
    assert "RFC 9112 §6.3" in found[0].meaning


def test_a_high_case_is_med_when_its_side_failed_no_high_invariant_of_the_slice():
    left = _view(slices={"adv": {"adv.case.cl-conflicting.pass": 1}})
    right = _view(failed=[_inv("I-ADV-MUST", "MED", 1, counter="adv.must_violation"),
                          _inv("I-DRV-1", "HIGH", 1, counter="markov.x")],
                  slices={"adv": {"adv.case.cl-conflicting.violation": 1}})
    assert [(d.severity, d.key) for d in diverge("a", left, "b", right)] == [
        ("MED", "adv.cl-conflicting")]


def test_a_case_no_catalogue_knows_is_med_when_violated():
    left = _view(slices={"h2c": {"h2c.case.upgrade-x.pass": 1}})
    right = _view(slices={"h2c": {"h2c.case.upgrade-x.violation": 1}})
    assert [(d.severity, d.key) for d in diverge("a", left, "b", right)] == [
        ("MED", "h2c.upgrade-x")]


def test_counters_on_one_side_only_are_low_and_skip_cases_and_invariant_counters():
    inv = _inv("I-DRV-1", "HIGH", 0, counter="markov.read_after_write_mismatch")
    left = _view(passed=[inv], slices={
        "markov": {"markov.requests": 10, "markov.status_4xx": 3},
        "adv": {"adv.sent": 4}})
    right = _view(passed=[inv], slices={
        "markov": {"markov.requests": 12, "markov.status_4xx": 0,
                   "markov.read_after_write_mismatch": 1}})
    found = diverge("a", left, "b", right)
    assert [(d.kind, d.severity, d.key, d.left_value, d.right_value) for d in found] == [
        ("counter", "LOW", "adv.*", "ran", "absent"),
        ("counter", "LOW", "markov.status_4xx", "3", "0"),
    ]
    assert not failing(found) and not failing(found, strict=True)


def test_strict_counts_med():
    found = diverge("a", _view(passed=[_inv("I-ADV-MUST", "MED", 0)]),
                    "b", _view(failed=[_inv("I-ADV-MUST", "MED", 1)]))
    assert not failing(found) and failing(found, strict=True)


def test_every_pair_of_cells_earlier_on_the_left():
    ok = _view(passed=[_inv("I-DRV-1", "HIGH", 0)])
    bad = _view(failed=[_inv("I-DRV-1", "HIGH", 5)])
    found = diverge_cells([("one", ok), ("two", bad), ("three", ok)])
    assert [(d.left, d.right) for d in found] == [("one", "two"), ("two", "three")]
    assert diverge_cells([("only", ok)]) == [] and worst([]) is None


def test_cell_view_keeps_slices_that_ran_coord_counters_and_drops_examples():
    document = {
        "invariants": {"passed": [_inv("I-HANG", "HIGH", 0)], "failed": [],
                       "not_judged": []},
        "tier_1": {
            "slices": {"adv": {"walkers": 1, "not_run": None, "counters": {"adv.sent": 3}},
                       "ws": {"walkers": 0, "not_run": "slice not selected",
                              "counters": {}}},
            "coordinator": {"coord.health_probes": 4},
            "failing_cases": {"adv": [{"case": "x", "verdict": "violation", "count": 1,
                                       "example": {"sent": "..."}}]},
        },
    }
    view = cell_view(document)
    assert view["slices"] == {"adv": {"adv.sent": 3}, "coord": {"coord.health_probes": 4}}
    assert view["failing_cases"] == {"adv": [{"case": "x", "verdict": "violation",
                                              "count": 1}]}
    assert view["invariants"]["passed"][0]["id"] == "I-HANG"
    assert cell_view({}) == {"invariants": {"passed": [], "failed": [], "not_judged": []},
                             "slices": {}, "failing_cases": {}}


def test_judged_cells_leave_out_cells_without_results():
    matrix = {"cells": [
        {"name": "ok", "run_dir": "cells/ok/r", "status": "passed"},
        {"name": "gone", "run_dir": None, "status": "error"},
        {"name": "stuck", "run_dir": "cells/stuck/r", "status": "error"},
        {"name": "stopped", "run_dir": "cells/stopped/r", "status": "interrupted"},
    ]}
    assert [name for name, _cell in judged_cells(matrix)] == ["ok", "stopped"]


def test_parts_of_the_wrong_type_read_as_absent_instead_of_raising():
    """A hand-edited or truncated results file: ``assay diff`` must say something, not
    raise (it exits 2 only for a file that is no results document at all)."""
    hostile = {"invariants": {"failed": [1, "x", {"id": "I-DRV-1", "severity": "HIGH"}],
                              "passed": "no"},
               "tier_1": {"slices": {"adv": {"counters": [1, 2]}, "ws": 5,
                                     "markov": {"counters": {"markov.x": "7", "markov.y": 2}}},
                          "coordinator": [3], "failing_cases": {"adv": [1, {"case": "c"}],
                                                                "ws": "?"}}}
    view = cell_view(hostile)
    assert view["invariants"]["failed"] == [{"id": "I-DRV-1", "severity": "HIGH"}]
    assert view["slices"] == {"adv": {}, "markov": {"markov.y": 2}}
    assert view["failing_cases"] == {"adv": [{"case": "c"}]}
    cell = {"invariants": [], "slices": {"adv": [1], "ws": {"ws.z": 1}}, "failing_cases": 3}
    found = diverge("a", view, "b", cell)
    assert [(d.severity, d.key) for d in found] == [("LOW", "adv.*"), ("LOW", "markov.*"),
                                                    ("LOW", "ws.*")]
    assert diverge("a", {"invariants": 1, "slices": []}, "b", {}) == []


def _proxy_run(desync: str, hop: str, **block) -> dict:
    verdicts = [{"id": "I-PROXY-DESYNC", "severity": "HIGH", "meaning": "m", "status": desync,
                 "findings": int(desync == "failed") * 2},
                {"id": "I-PROXY-HOP", "severity": "MEDIUM", "meaning": "h", "status": hop,
                 "findings": int(hop == "failed")}]
    return {"invariants": {}, "proxy": {"verdicts": verdicts, "collected": True,
                                        "fetch_errors": {}, **block}}


def test_watch_and_proxy_verdicts_from_their_own_blocks_diverge_too():
    """assay diff of two proxies: nginx against one that frames by Content-Length only."""
    good, bad = cell_view(_proxy_run("passed", "failed")), cell_view(_proxy_run("failed",
                                                                                "failed"))
    found = diverge("nginx", good, "cl-only", bad)
    assert [(d.kind, d.severity, d.key, d.left_value, d.right_value) for d in found] == [
        ("invariant", "HIGH", "I-PROXY-DESYNC", "passed (0)", "failed (2)")]
    hop = diverge("a", cell_view(_proxy_run("passed", "passed")), "b", good)
    assert [(d.severity, d.key) for d in hop] == [("MED", "I-PROXY-HOP")]  # MEDIUM -> MED
    assert failing(hop, strict=True) and not failing(hop)
    unread = cell_view(_proxy_run("passed", "passed", collected=False))
    assert diverge("a", unread, "b", bad) == []  # backends never read: judged nothing
    watch = {"watch": {"verdicts": [
        {"id": "I-RECONF-FAIL", "severity": "HIGH", "status": "failed", "meaning": "r",
         "failed_requests": 10},
        {"id": "keepalive_kept", "severity": "INFO", "status": "reconnected"}]}}
    calm = {"watch": {"verdicts": [{"id": "I-RECONF-FAIL", "severity": "HIGH",
                                    "status": "passed", "failed_requests": 0}]}}
    found = diverge("reload", cell_view(watch), "calm", cell_view(calm))
    assert [(d.key, d.left_value) for d in found] == [("I-RECONF-FAIL", "failed (10)")]
