"""``assay stress`` end to end: the laptop preset against nginx, a closed port, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.assay_cli import assay
from tests.servers import free_port, nginx

pytestmark = pytest.mark.integration

#: The laptop preset's loads and thresholds, over seconds instead of a minute.
SHORT = {"CONCURRENT_DURATION": "2s", "SUSTAINED_DURATION": "2s", "LORIS_DURATION": "3s",
         "LORIS_CONTROL_DURATION": "3s"}


def test_the_laptop_preset_passes_on_nginx_with_three_result_files(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _):
        result = assay("stress", url + "healthz", "--preset", "laptop", "--procs", "2",
                       "--results", str(tmp_path / "results"), env=SHORT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (top,) = (tmp_path / "results").glob("*-stress-*")
    for test in ("concurrent", "sustained", "loris"):
        verdict = json.loads((top / f"{test}.json").read_text())
        assert verdict["passed"] is True, verdict
        assert (top / f"{test}.txt").read_text().startswith(f"{test:<11} PASS")
        assert f"{test:<11} PASS" in result.stdout
    concurrent = json.loads((top / "concurrent.json").read_text())
    assert concurrent["settings"]["concurrent_workers"] == 32  # the preset
    assert concurrent["summary"]["requests"] > 100
    assert "overall     PASS" in result.stdout and str(top) in result.stdout


def test_a_closed_port_exits_3_and_a_bad_preset_exits_2(tmp_path: Path) -> None:
    closed = assay("stress", f"http://127.0.0.1:{free_port()}/", "--results", str(tmp_path))
    assert closed.returncode == 3, closed.stdout + closed.stderr
    assert len(closed.stderr.strip().splitlines()) == 1
    bad = assay("stress", "http://127.0.0.1:9/", "--preset", "fast", "--results",
                str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("assay: error: --preset 'fast' is not one of: laptop, "
                                  "same-network")
    env = assay("stress", "http://127.0.0.1:9/", "--results", str(tmp_path),
                env={"SUSTAINED_RATE": "fast"})
    assert env.returncode == 2 and "SUSTAINED_RATE" in env.stderr
