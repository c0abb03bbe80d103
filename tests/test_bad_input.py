"""Bad input: one clear line, the documented exit code, no traceback, no orphan."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.assay_cli import assay

pytestmark = pytest.mark.integration


def _one_line_error(result) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--target", "not a url"], "scheme"),
    (["--target", "ftp://127.0.0.1/"], "only http://"),
    (["--target", "http://127.0.0.1:99999/"], "malformed"),
    (["--duration", "0s"], "greater than zero"),
    (["--duration=-3s"], "not a duration"),
    (["--concurrency", "0"], "at least 1"),
    (["--procs", "zero"], "not an integer"),
    (["--seed", "banana"], "seed"),
    (["--log-format", "xml"], "log-format"),
])
def test_usage_errors_exit_2(args, fragment, tmp_path: Path):
    result = assay("run", *args, "--results", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert fragment in _one_line_error(result)


def test_unreachable_target_exits_3_within_10s(tmp_path: Path):
    started = time.monotonic()
    result = assay("run", "--target", "http://127.0.0.1:1/", "--results", str(tmp_path))
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 10
    assert "unreachable" in _one_line_error(result)
    assert not list(tmp_path.iterdir())  # no run directory: nothing was started


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    model = tmp_path / "model.yaml"
    model.write_text("version: 1\nstart: a\nstates:\n  a: [unclosed\n")
    result = assay("run", "--markov", str(model), "--results", str(tmp_path))
    assert result.returncode == 2
    line = _one_line_error(result)
    assert "model.yaml:" in line


def test_malformed_openapi_names_file_and_line(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  items: {}\n")
    result = assay("run", "--spec", str(spec), "--results", str(tmp_path))
    assert result.returncode == 2
    line = _one_line_error(result)
    assert "spec.yaml:4" in line


def test_model_route_absent_from_spec(tmp_path: Path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: {title: x, version: '1'}\n"
                    "paths:\n  /items:\n    get:\n      responses: {'200': {description: ok}}\n")
    model = tmp_path / "model.yaml"
    model.write_text("version: 1\nstart: a\nstates:\n  a:\n    request: GET /missing\n")
    result = assay("run", "--spec", str(spec), "--markov", str(model), "--results",
                   str(tmp_path))
    assert result.returncode == 2
    line = _one_line_error(result)
    assert "/missing" in line and "model.yaml:" in line


def test_missing_model_file(tmp_path: Path):
    result = assay("run", "--markov", str(tmp_path / "nope.yaml"), "--results", str(tmp_path))
    assert result.returncode == 2
    assert "nope.yaml" in _one_line_error(result)


def test_results_dir_not_writable(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = assay("run", "--results", str(blocker / "sub"))
    assert result.returncode == 2
    assert "not writable" in _one_line_error(result)


def test_malformed_config_file(tmp_path: Path):
    config = tmp_path / "assay.toml"
    config.write_text("[run]\nduration = \n")
    result = assay("run", "--config", str(config), "--results", str(tmp_path))
    assert result.returncode == 2
    assert "assay.toml" in _one_line_error(result)
