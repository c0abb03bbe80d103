"""protocols.stress: presets, environment and flag overrides, and the three tests' rules."""

from __future__ import annotations

import pytest

from protocols.load_errors import LoadInputError
from protocols.stress import (
    LAPTOP,
    SAME_NETWORK,
    flag_name,
    judge_concurrent,
    judge_loris,
    judge_sustained,
    resolve,
)


def test_presets_are_the_harness_values() -> None:
    assert (LAPTOP.concurrent_workers, LAPTOP.concurrent_duration_s) == (32, 15.0)
    assert (LAPTOP.sustained_rate, LAPTOP.sustained_duration_s) == (10.0, 30.0)
    assert (LAPTOP.loris_conns, LAPTOP.loris_duration_s, LAPTOP.loris_control_rate) == (
        50, 20.0, 5.0)
    assert (LAPTOP.thresh_p99_ms, LAPTOP.thresh_err_pct) == (8000.0, 5.0)
    assert (SAME_NETWORK.concurrent_workers, SAME_NETWORK.sustained_rate) == (4096, 1000.0)
    assert (SAME_NETWORK.loris_conns, SAME_NETWORK.loris_control_rate) == (1000, 100.0)
    assert (SAME_NETWORK.thresh_p99_ms, SAME_NETWORK.thresh_err_pct,
            SAME_NETWORK.thresh_success_pct, SAME_NETWORK.thresh_loris_ctrl) == (
        500.0, 1.0, 99.5, 95.0)


def test_flags_override_the_environment_which_overrides_the_preset() -> None:
    env = {"SUSTAINED_RATE": "20", "LORIS_DURATION": "60", "THRESH_P99_MS": "100"}
    settings = resolve("laptop", env, {"thresh_p99_ms": "300", "sustained_rate": None})
    assert settings.sustained_rate == 20.0  # environment
    assert settings.loris_duration_s == 60.0  # plain seconds, as the harness wrote them
    assert settings.thresh_p99_ms == 300.0  # the flag wins
    assert settings.concurrent_workers == 32  # the preset
    assert resolve("laptop", {"SUSTAINED_RATE": "30/1m"}, {}).sustained_rate == 0.5
    assert resolve("laptop", {"CONCURRENT_DURATION": "2s"}, {}).concurrent_duration_s == 2.0
    assert flag_name("loris_control_duration_s") == "--loris-control-duration"


@pytest.mark.parametrize(("preset", "env", "flags", "message"), [
    ("fast", {}, {}, "--preset 'fast' is not one of: laptop, same-network"),
    ("laptop", {"CONCURRENT_WORKERS": "0"}, {},
     "CONCURRENT_WORKERS: must be a whole number of at least 1 (got '0')"),
    ("laptop", {"CONCURRENT_WORKERS": "2.5"}, {},
     "CONCURRENT_WORKERS: must be a whole number of at least 1 (got '2.5')"),
    ("laptop", {}, {"sustained_rate": "0"}, "--sustained-rate: must be greater than zero "
     "(got '0')"),
    ("laptop", {"THRESH_ERR_PCT": "101"}, {},
     "THRESH_ERR_PCT: must be a percentage, 0 to 100 (got '101')"),
    ("laptop", {"LORIS_DURATION": "soon"}, {},
     "LORIS_DURATION: 'soon' is not a duration (examples: 30s, 500ms, 10m, 1h30m)"),
    ("laptop", {}, {"thresh_p99_ms": "-1"}, "--thresh-p99-ms: must be greater than zero "
     "(got '-1')"),
])
def test_bad_values_are_one_line_naming_their_source(preset, env, flags, message) -> None:
    with pytest.raises(LoadInputError) as info:
        resolve(preset, env, flags)
    assert str(info.value) == message


def test_concurrent_judges_the_error_share_and_needs_answers() -> None:
    assert judge_concurrent({"requests": 1000, "errors": 10}, SAME_NETWORK).passed
    assert not judge_concurrent({"requests": 1000, "errors": 11}, SAME_NETWORK).passed
    assert not judge_concurrent({"requests": 0, "errors": 0}, SAME_NETWORK).passed
    assert judge_concurrent({"requests": 1000, "errors": 11}, SAME_NETWORK).checks[1] == (
        "errors 1.10 % (<= 1 %)")


def test_sustained_counts_drops_as_failures_and_bounds_p99() -> None:
    good = {"requests": 1000, "errors": 5, "dropped": 0, "latency_ms": {"p99": 450.0}}
    assert judge_sustained(good, SAME_NETWORK).passed
    assert not judge_sustained({**good, "dropped": 1}, SAME_NETWORK).passed  # 99.4 %
    assert not judge_sustained({**good, "latency_ms": {"p99": 501.0}}, SAME_NETWORK).passed
    assert not judge_sustained({**good, "latency_ms": {"p99": None}}, SAME_NETWORK).passed


def test_loris_judges_the_control_success() -> None:
    assert judge_loris(95.0, SAME_NETWORK).passed
    assert not judge_loris(94.9, SAME_NETWORK).passed
    assert not judge_loris(None, SAME_NETWORK).passed
