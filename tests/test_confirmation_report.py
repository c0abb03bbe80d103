"""The confirmation section of the results, and its setting (``--adv-confirm-tries``)."""

from __future__ import annotations

import pytest

from coordinator import confirmation_report
from coordinator.config import ConfigError, RunConfig, build_config

COUNTERS = {
    "adv.sent": 10, "adv.confirmed": 2, "adv.confirm_sent": 5, "adv.unconfirmed": 3,
    "adv.unconfirmed.baseline_slow": 2, "adv.unconfirmed.not_reproduced": 1,
    "adv.case.cl-conflicting.unconfirmed": 2, "adv.case.te-double.unconfirmed": 1,
    "adv.case.cl-te-smuggle.violation": 2, "ws.sessions": 4, "markov.requests": 9,
}
EXAMPLES = {"adv.case.cl-conflicting.unconfirmed": {"why": "baseline_slow", "case": "x"}}


def test_block_per_confirming_slice() -> None:
    assert confirmation_report.block("adv", COUNTERS) == {
        "confirmed": 2, "unconfirmed": 3, "resent": 5,
        "by_reason": {"baseline_slow": 2, "not_reproduced": 1},
    }
    assert confirmation_report.block("ws", COUNTERS) == {
        "confirmed": 0, "unconfirmed": 0, "by_reason": {}, "resent": 0}
    assert confirmation_report.block("markov", COUNTERS) is None


def test_unconfirmed_cases_are_listed_with_why() -> None:
    cases = confirmation_report.unconfirmed_cases(COUNTERS, EXAMPLES)
    assert [c["case"] for c in cases["adv"]] == ["cl-conflicting", "te-double"]
    assert cases["adv"][0]["why"] == "baseline_slow" and cases["adv"][0]["count"] == 2
    assert cases["adv"][1]["why"] is None and "ws" not in cases


def test_summary_lines() -> None:
    tier1 = {
        "slices": {"adv": {"confirmation": confirmation_report.block("adv", COUNTERS)},
                   "ws": {"confirmation": confirmation_report.block("ws", COUNTERS)},
                   "markov": {}},
        "unconfirmed_cases": confirmation_report.unconfirmed_cases(COUNTERS, EXAMPLES),
    }
    lines = confirmation_report.summary_lines(tier1)
    assert lines[0] == ("  confirm  adv: 2 confirmed, 3 unconfirmed "
                        "(baseline_slow 2, not_reproduced 1)")
    assert "unconfirmed adv.cl-conflicting x2 (baseline_slow): not counted" in lines[1]
    assert len(lines) == 3  # ws confirmed nothing: no line


def test_setting_default_flag_env_and_bad_value() -> None:
    assert RunConfig().adv_confirm_tries == 2
    assert build_config({"adv_confirm_tries": "0"}, None, {}).adv_confirm_tries == 0
    assert build_config({}, None, {"ASSAY_ADV_CONFIRM_TRIES": "3"}).adv_confirm_tries == 3
    with pytest.raises(ConfigError, match="adv-confirm-tries"):
        build_config({"adv_confirm_tries": "many"}, None, {})
