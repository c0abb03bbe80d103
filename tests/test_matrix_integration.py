"""assay matrix and assay diff end to end: real runs of the built-in refapp, on loopback.

One matrix does many checks (CI time): a correct refapp, the same with the lost-write
defect, and a target that is not there, two cells at a time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.assay_cli import ROOT, assay

#: Fast cells: no end-of-run leak probes, no shrinking, a short wait for incidents.
QUICK = 'run_args = ["--leak-probes", "off", "--no-shrink", "--incident-budget", "1"]'


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _only_dir(parent: Path) -> Path:
    dirs = [p for p in parent.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_matrix_of_correct_and_defective_refapp_diffs_to_exactly_that_invariant(tmp_path):
    matrix_file = tmp_path / "matrix.toml"
    matrix_file.write_text(f"""\
[defaults]
duration = "3s"
procs = 1
slices = ["markov"]
{QUICK}

[[cell]]
name = "gone"
target = "http://127.0.0.1:{_closed_port()}/"

[[cell]]
name = "correct"

[[cell]]
name = "lost-write"
refapp_defect = ["lost-write"]
""")
    done = assay("matrix", str(matrix_file), "--results", str(tmp_path / "results"),
                 "--parallel", "2", timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    matrix_dir = _only_dir(tmp_path / "results")
    assert "-matrix-matrix" in matrix_dir.name
    document = json.loads((matrix_dir / "validate-results.json").read_text())
    assert (document["mode"], document["status"], document["exit_code"]) == \
        ("matrix", "failed", 1)
    cells = {cell["name"]: cell for cell in document["cells"]}
    assert list(cells) == ["gone", "correct", "lost-write"]
    assert (cells["gone"]["status"], cells["gone"]["exit_code"]) == ("error", 3)
    assert "unreachable" in cells["gone"]["reason"] and cells["gone"]["run_dir"] is None
    assert (cells["correct"]["status"], cells["lost-write"]["status"]) == ("passed", "failed")
    for name in ("correct", "lost-write"):
        run = json.loads((matrix_dir / cells[name]["run_dir"] / "validate-results.json")
                         .read_text())
        assert run["label"] == name and run["config"]["procs"] == 1
        assert cells[name]["invariants"] == run["invariants"]  # verbatim
        assert cells[name]["slices"]["markov"] == run["tier_1"]["slices"]["markov"]["counters"]
        assert cells[name]["target"] == run["target"]["url"]
    assert cells["lost-write"]["slices"]["markov"]["markov.read_after_write_mismatch"] > 0

    diff = json.loads((matrix_dir / "diff.json").read_text())
    high = [(d["kind"], d["key"], d["left"], d["right"]) for d in diff["divergences"]
            if d["severity"] == "HIGH"]
    assert high == [("invariant", "I-DRV-1", "correct", "lost-write")]
    assert diff["failed"] is True
    assert "HIGH invariant I-DRV-1: correct=passed (0)  lost-write=failed" in \
        (matrix_dir / "diff.txt").read_text()

    # assay diff DIR: the matrix's cells again; A B: two run directories.
    again = assay("diff", str(matrix_dir), "--out", str(tmp_path / "d1"), timeout=30)
    assert again.returncode == 1 and "I-DRV-1" in again.stdout
    correct, broken = (str(matrix_dir / cells[n]["run_dir"]) for n in ("correct", "lost-write"))
    pair = assay("diff", correct, broken, "--out", str(tmp_path / "d2"), timeout=30)
    assert pair.returncode == 1
    pair_doc = json.loads((tmp_path / "d2" / "diff.json").read_text())
    assert [(d["severity"], d["key"], d["left"], d["right"])
            for d in pair_doc["divergences"]] == [
        ("HIGH", "I-DRV-1", "A:correct", "B:lost-write")]
    same = assay("diff", correct, correct + "/validate-results.json", "--out",
                 str(tmp_path / "d3"), timeout=30)
    assert same.returncode == 0 and "PASS: 0 divergence(s)" in same.stdout


def test_ctrl_c_stops_the_running_cell_and_keeps_what_it_wrote(tmp_path):
    matrix_file = tmp_path / "m.toml"
    matrix_file.write_text(f"""\
[[cell]]
name = "long"
duration = "60s"
procs = 1
slices = ["markov"]
{QUICK}

[[cell]]
name = "never-started"
duration = "3s"
""")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "coordinator", "matrix", str(matrix_file),
                             "--results", str(tmp_path / "results")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        run_dir = None
        while time.monotonic() < deadline and run_dir is None:
            found = list((tmp_path / "results").glob("*/cells/long/*-run-long"))
            run_dir = found[0] if found else None
            time.sleep(0.2)
        assert run_dir is not None, "the cell's run never started"
        time.sleep(2.0)  # the walkers are running
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.1)  # an impatient second Ctrl-C while the cell writes its results
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    document = json.loads(next((tmp_path / "results").glob("*/validate-results.json"))
                          .read_text())
    assert (document["status"], document["exit_code"]) == ("interrupted", 130)
    assert [(c["name"], c["status"], c["exit_code"]) for c in document["cells"]] == \
        [("long", "interrupted", 130)]
    run = json.loads((run_dir / "validate-results.json").read_text())
    assert run["elapsed_s"] < 30  # stopped, not run out
    assert document["cells"][0]["invariants"] == run["invariants"]
