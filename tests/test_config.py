from pathlib import Path

import pytest

from coordinator.config import ConfigError, RunConfig, build_config
from coordinator.config_values import parse_duration, parse_seed, validate_target_url


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("10m", 600), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25), ("45", 45),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0s", "-5s", "abc", "10x", "", "5m3"])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/", "127.0.0.1:80", "http://", "http://127.0.0.1:99999/", "gopher://x/",
    "http://127.0.0.1:0/", "http://bad host/", "http://127.0.0.1/?q=1",
])
def test_bad_urls(url):
    with pytest.raises(ConfigError):
        validate_target_url(url)


def test_good_url():
    assert validate_target_url("http://[::1]:8080/api") == "http://[::1]:8080/api"


def test_seed_bounds():
    assert parse_seed("0x10") == 16
    with pytest.raises(ConfigError):
        parse_seed(2**64)
    with pytest.raises(ConfigError):
        parse_seed("seven")


def test_layering_flags_beat_env_beat_file(tmp_path: Path):
    toml = tmp_path / "assay.toml"
    toml.write_text('[run]\nduration = "10m"\nconcurrency = 4\nprocs = "auto"\n')
    env = {"ASSAY_DURATION": "2m", "ASSAY_CONCURRENCY": "8"}
    config = build_config({"concurrency": "16", "duration": None}, toml, env)
    assert config.duration_s == 120  # env over file
    assert config.concurrency == 16  # flag over env
    assert config.procs == 0


def test_file_errors_are_one_line(tmp_path: Path):
    toml = tmp_path / "bad.toml"
    toml.write_text("[run\nduration=")
    with pytest.raises(ConfigError) as info:
        build_config({}, toml, {})
    assert "bad.toml" in str(info.value) and "\n" not in str(info.value)
    toml.write_text('[run]\nbogus = 1\n')
    with pytest.raises(ConfigError, match="unknown setting 'bogus'"):
        build_config({}, toml, {})


def test_concurrency_must_be_positive():
    with pytest.raises(ConfigError, match="at least 1"):
        build_config({"concurrency": "0"}, None, {})


def test_to_json_is_plain():
    import json

    json.dumps(RunConfig().to_json())
