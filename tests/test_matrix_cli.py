"""assay matrix / assay diff: bad input is one line and exit 2; a stuck cell is stopped."""

from __future__ import annotations

import json

import pytest

from coordinator.cli import main
from tests.assay_cli import assay

BAD_MATRICES = {
    "malformed": ("[[cell]\nname = 'a'\n", "m.toml:1: invalid TOML"),
    "duplicate": ("[[cell]]\nname = 'a'\n[[cell]]\nname = 'a'\n",
                  "m.toml:4: cell[1].name: name 'a' is already the name of cell[0]"),
    "both": ("[[cell]]\nname = 'a'\ntarget = 'http://127.0.0.1:9/'\nlaunch = 'x {port}'\n",
             "m.toml:4: cell[0].launch: give target or launch, not both"),
    "run_args unknown": ("[[cell]]\nname = 'a'\nrun_args = ['--no-such-flag']\n",
                         "m.toml:1: cell[0].run_args: unrecognized arguments: --no-such-flag"),
    "run_args owned": ("[[cell]]\nname = 'a'\nrun_args = ['--duration', '1s']\n",
                       "cell[0].run_args: --duration is a cell key"),
    "run_args value": ("[[cell]]\nname = 'a'\nrun_args = ['--leak-probes', 'maybe']\n",
                       "argument --leak-probes: invalid choice: 'maybe'"),
}


@pytest.mark.parametrize("case", sorted(BAD_MATRICES))
def test_a_bad_matrix_file_is_exit_2_with_one_line_and_no_matrix_dir(case, tmp_path,
                                                                     monkeypatch, capsys):
    text, expected = BAD_MATRICES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.toml").write_text(text)
    assert main(["matrix", "m.toml", "--results", "out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("assay matrix: error: "), err
    assert expected in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["missing.toml"], "matrix file missing.toml: No such file or directory"),
    (["ok.toml", "--parallel", "0"], "--parallel must be at least 1"),
    (["ok.toml", "--cell-grace", "soon"], "--cell-grace 'soon' is not a duration"),
    (["ok.toml", "--label", "a b"], "label 'a b' must be"),
])
def test_bad_flags_are_exit_2(args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.toml").write_text("[[cell]]\nname = 'a'\n")
    assert main(["matrix", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_diff_of_unreadable_input_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    run = tmp_path / "run"
    run.mkdir()
    (run / "validate-results.json").write_text(json.dumps({"invariants": {}}))
    cases = [
        (["nowhere"], "nowhere: no validate-results.json there"),
        (["junk.json", "run"], "junk.json: not JSON"),
        (["other.json", "run"], "other.json: not an assay results document"),
        (["run"], "a single run; give two results to compare"),
        (["run", "run", "run"], "give one matrix, or two results to compare"),
    ]
    for args, expected in cases:
        assert main(["diff", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "validate-diff").exists()
    assert main(["diff", "run", "run"]) == 0  # nothing judged on either side: no divergence
    assert (tmp_path / "validate-diff" / "diff.txt").read_text().startswith(
        "assay diff: PASS: 0 divergence(s)")


def test_a_cell_past_its_deadline_is_stopped_as_an_error(tmp_path):
    (tmp_path / "m.toml").write_text(
        "[[cell]]\nname = 'sleepy'\nlaunch = 'sleep 30 # {port}'\nduration = '1s'\n")
    done = assay("matrix", str(tmp_path / "m.toml"), "--results", str(tmp_path / "r"),
                 "--cell-grace", "1s", timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    document = json.loads(next((tmp_path / "r").glob("*/validate-results.json")).read_text())
    cell = document["cells"][0]
    assert (cell["status"], cell["launch"]) == ("error", "sleep 30 # {port}")
    assert cell["reason"].startswith("stopped: still running 2 s")
    assert (tmp_path / "r" / next((tmp_path / "r").iterdir()).name / "cells" / "sleepy" /
            "run.log").is_file()


def _cell(name: str, status: str, drv: str) -> dict:
    entry = {"id": "I-DRV-1", "severity": "HIGH", "meaning": "lost write",
             "counter": "markov.read_after_write_mismatch", "value": int(drv == "failed")}
    return {"name": name, "run_dir": f"cells/{name}", "status": status, "exit_code": 0,
            "invariants": {"passed": [], "failed": [], "not_judged": [], drv: [entry]},
            "slices": {}, "failing_cases": {}}


def test_two_matrices_pair_cells_by_name_even_when_one_has_a_single_judged_cell():
    """Matrix A's second cell could not run: its one judged cell must still meet only
    the cell of the same name, not every cell of B (nginx against apache is no regression)."""
    from coordinator.diff_cli import diverge_pairs

    left = {"mode": "matrix", "cells": [_cell("nginx", "passed", "passed"),
                                        {"name": "apache", "status": "error", "run_dir": None}]}
    right = {"mode": "matrix", "cells": [_cell("nginx", "passed", "passed"),
                                         _cell("apache", "failed", "failed")]}
    found = diverge_pairs(left, right)
    assert [(d.kind, d.severity, d.key) for d in found] == [("cell", "LOW", "apache")]
    run = {"mode": "run", "label": "nginx-now", **_cell("x", "passed", "passed")}
    against = diverge_pairs(run, right)  # a run against a matrix still meets every cell
    assert [(d.severity, d.key, d.right) for d in against] == [
        ("HIGH", "I-DRV-1", "B:apache")]
