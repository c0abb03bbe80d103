from coordinator.invariants import BY_ID, REGISTRY, judge_all, run_failed


def _status(grouped, inv_id):
    for status, entries in grouped.items():
        for entry in entries:
            if entry["id"] == inv_id:
                return status, entry
    raise AssertionError(inv_id)


def test_registry_ids_unique_and_meaningful():
    assert len({inv.id for inv in REGISTRY}) == len(REGISTRY)
    assert all(inv.meaning for inv in REGISTRY)


def test_drv1_fires_and_stays_silent():
    silent = judge_all({"markov.requests": 100, "markov.read_after_write_checks": 10}, {})
    assert _status(silent, "I-DRV-1")[0] == "passed"
    fired = judge_all({"markov.requests": 100, "markov.read_after_write_checks": 10,
                       "markov.read_after_write_mismatch": 1}, {})
    assert _status(fired, "I-DRV-1")[0] == "failed"
    assert run_failed(fired)


def test_not_judged_carries_a_reason():
    grouped = judge_all({"markov.requests": 10}, {"ws": "not judged: no /ws route (404)"})
    status, entry = _status(grouped, "I-WS-HANG")
    assert status == "not_judged" and "no /ws route" in entry["reason"]
    status, entry = _status(grouped, "I-DRV-1")
    assert status == "not_judged" and entry["reason"]


def test_ratio_invariant_threshold():
    ok = judge_all({"markov.requests": 1000, "markov.status_5xx": 10}, {})
    assert _status(ok, "I-MKV-SERVER-ERRORS")[0] == "passed"
    bad = judge_all({"markov.requests": 1000, "markov.status_5xx": 11}, {})
    assert _status(bad, "I-MKV-SERVER-ERRORS")[0] == "failed"


def test_low_failures_do_not_fail_the_run():
    from dataclasses import replace

    from coordinator import invariants
    from protocols.outcome import Severity

    low = replace(BY_ID["I-MKV-UNEXPECTED"], severity=Severity.LOW)
    entry = low.judge({"markov.requests": 10, "markov.unexpected_status": 3}, {})
    assert entry.pop("status") == "failed"
    assert not invariants.run_failed({"failed": [entry], "passed": [], "not_judged": []})


def test_unexpected_statuses_fail_above_one_percent():
    grouped = judge_all({"markov.requests": 1000, "markov.unexpected_status": 50}, {})
    assert _status(grouped, "I-MKV-UNEXPECTED")[0] == "failed"
    assert run_failed(grouped)
