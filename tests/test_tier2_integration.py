"""``assay tier2`` against the built-in refapp: each API defect found with a minimal
sequence, nothing found on the correct refapp, repro files that replay with the right exit
status, and the exit statuses for bad input and an unreachable target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refapp.launch import start_refapp
from tests.assay_cli import assay

EXPECTED = {
    "api-delete-leaves-readable": {
        "I-API-USE-AFTER-DELETE:readItem:2xx": ["login", "createItem", "deleteItem", "readItem"],
        "I-API-USE-AFTER-DELETE:updateItem:2xx": ["login", "createItem", "deleteItem",
                                                  "updateItem"],
    },
    "api-double-delete-500": {
        "I-API-DOUBLE-DELETE:deleteItem:5xx": ["login", "createItem", "deleteItem",
                                               "deleteItem"],
    },
    "api-invalid-body-creates": {
        "I-API-INVALID-SIDE-EFFECT:createItem:4xx": ["login", "listItems", "createItem",
                                                     "listItems"],
    },
}


def _tier2(out: Path, *extra: str):
    result = assay("tier2", "--budget", "20s", "--max-length", "3", "--out", str(out), *extra,
                   timeout=60)
    section = json.loads((out / "validate-results.json").read_text())["tier_2"]
    return result, section


@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_each_api_defect_is_found_with_a_minimal_sequence(tmp_path: Path, defect: str) -> None:
    result, section = _tier2(tmp_path, "--refapp-defect", defect)
    assert result.returncode == 1, result.stderr
    found = {f["bucket"]: f for f in section["findings"]}
    assert set(found) == set(EXPECTED[defect])
    for bucket, minimal in EXPECTED[defect].items():
        finding = found[bucket]
        assert [s["op"] for s in finding["minimal_sequence"]] == minimal
        assert finding["severity"] == "HIGH" and "RFC 9110" in finding["basis"]
        assert finding["count"] >= 1 and Path(finding["repro"]).is_file()
    assert section["stopped_by"] == "exhausted" and section["sequences"] > 20


def test_correct_refapp_yields_nothing_and_repros_replay(tmp_path: Path) -> None:
    result, section = _tier2(tmp_path / "clean")
    assert result.returncode == 0, result.stdout + result.stderr
    assert section["findings"] == []
    cov = section["coverage"]
    assert cov["operations"] == cov["operations_2xx"] == 7 and cov["never_2xx"] == []
    assert {"201", "422"} <= set(cov["statuses"]["createItem"])
    # a repro from the buggy build: fails there, passes on the fixed one
    _, buggy = _tier2(tmp_path / "bug", "--refapp-defect", "api-double-delete-500",
                      "--no-shrink")
    assert buggy["findings"] and buggy["findings"][0]["repro"] is None
    _, buggy = _tier2(tmp_path / "bug2", "--refapp-defect", "api-double-delete-500")
    repro = buggy["findings"][0]["repro"]
    with start_refapp(defects=["api-double-delete-500"]) as bad, start_refapp() as fixed:
        assert assay("replay", repro, "--target", bad.url).returncode == 1
        passed = assay("replay", repro, "--target", fixed.url)
        assert passed.returncode == 0 and "PASS" in passed.stdout
        port = fixed.port
    gone = assay("replay", repro, "--target", f"http://127.0.0.1:{port}/")
    assert gone.returncode == 3 and "unreachable" in gone.stderr


def test_plan_bad_input_and_unreachable(tmp_path: Path) -> None:
    plan = assay("tier2", "--plan")
    assert plan.returncode == 0 and "items: createItem (response member 'id')" in plan.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.0.0\npaths:\n  items: {}\n")
    result = assay("tier2", "--spec", str(bad), "--plan")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "bad.yaml:3" in \
        result.stderr
    overrides = tmp_path / "o.toml"
    overrides.write_text('skip = ["nope"]\n')
    result = assay("tier2", "--overrides", str(overrides), "--plan")
    assert result.returncode == 2 and "o.toml:1: skip[0]: no operation 'nope'" in result.stderr
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('setup_body = { username = "u", password = "wrong" }\n')
    result = assay("tier2", "--overrides", str(wrong), "--budget", "2s", "--out",
                   str(tmp_path / "w"))
    assert result.returncode == 2 and "setup login never answered 2xx" in result.stderr
    result = assay("tier2", "--budget", "soon", "--plan")
    assert result.returncode == 2 and "--budget" in result.stderr
    spec = Path(__file__).resolve().parent.parent / "refapp" / "openapi.yaml"
    result = assay("tier2", "--spec", str(spec), "--target", "http://127.0.0.1:1/",
                   "--out", str(tmp_path / "x"))
    assert result.returncode == 3 and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr
