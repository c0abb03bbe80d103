"""``assay watch`` end to end: nginx proxying to ``assay backend``s is reloaded with a
third backend mid-watch; the CSV shows it taking traffic and the failures are counted
honestly (whatever nginx does). Bad input exits 2, a closed port 3."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assay_cli import ROOT, assay, only_results
from tests.servers import free_port, nginx_proxy, stop

pytestmark = pytest.mark.integration


@contextmanager
def backends(count: int) -> Iterator[list[int]]:
    proc = subprocess.Popen([sys.executable, "-m", "coordinator", "backend", "--count",
                             str(count), "--id-base", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(count)]  # type: ignore[union-attr]
        yield [int(line.rsplit(":", 1)[1]) for line in lines]
    finally:
        stop(proc, signal.SIGTERM)


def test_reload_adds_a_backend_mid_watch(tmp_path: Path) -> None:
    with backends(3) as ports, nginx_proxy(tmp_path, ports[:2]) as (url, reconfigure):
        data = tmp_path / "data.csv"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        watch = subprocess.Popen(
            [sys.executable, "-m", "coordinator", "watch", "--target", url, "--duration",
             "4s", "--procs", "1", "--clients", "4", "--rate", "100/s", "--backend-ports",
             ",".join(map(str, ports)), "--csv", str(data), "--results",
             str(tmp_path / "results")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            printed = []
            while not (line := watch.stdout.readline()).startswith("ok "):  # type: ignore[union-attr]
                assert line, "no live line"
                printed.append(line)
            # Request lines stream before the first live line: traffic flows.
            assert printed and printed[0].count(",") == 7, printed[:3]
            reloaded_at = time.time()
            reconfigure(ports)
            out, err = watch.communicate(timeout=60)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
    document = only_results(tmp_path / "results")
    block = document["watch"]
    with open(data, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert data.read_text().splitlines()[0] == (
        "us_since_start,client,seq,result,front_port,backend,back_port,retried")
    # The third backend takes traffic, and only after the reload.
    started = document["run_started_at"]
    assert started and block["requests"] == len(rows) >= 200
    reload_us = (reloaded_at - _epoch(started)) * 1e6
    third = [row for row in rows if row["backend"] == "3"]
    assert len(third) >= 20, block["backends"]
    assert int(third[0]["us_since_start"]) > reload_us - 100_000
    assert {row["backend"] for row in rows if int(row["us_since_start"]) < reload_us - 100_000
            } <= {"1", "2"}
    # Failures counted honestly: what the report counts is what the CSV holds.
    failures = [row for row in rows if row["result"] != "200"]
    assert block["failed"] == len(failures)
    assert sum(w["count"] for w in block["failure_windows"]) == len(failures)
    assert watch.returncode == (1 if block["failed_counted"] else 0), (out, err)
    for client in {row["client"] for row in rows}:
        seqs = [int(row["seq"]) for row in rows if row["client"] == client]
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    assert block["health_probes"] > 30 and "I-RECONF-FAIL" in out
    streamed = [line for line in printed + out.splitlines(keepends=True)
                if line.count(",") == 7 and line[0].isdigit()]
    assert sorted(streamed) == sorted(  # every request printed once as the run went
        ",".join(row[k] for k in rows[0]) + "\n" for row in rows)
    run_dir = Path(document["results_path"])
    assert (run_dir / "watch.csv").read_text() == data.read_text()
    assert json.loads((run_dir / "summary.json").read_text())["requests"] == len(rows)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_bad_input_and_closed_port(tmp_path: Path) -> None:
    bad = assay("watch", "--target", "http://127.0.0.1:1/", "--rate", "fast",
                "--results", str(tmp_path))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0, bad.stderr
    for flags in (("--launch-backends", "0"), ("--backend-ports", "80,x")):
        refused = assay("watch", "--target", "http://127.0.0.1:1/", *flags)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    closed = assay("watch", "--target", f"http://127.0.0.1:{free_port()}/", "--duration",
                   "1s", "--procs", "1", "--request-timeout", "1s", "--results",
                   str(tmp_path))
    assert closed.returncode == 3, closed.stderr
    assert "Traceback" not in closed.stderr
