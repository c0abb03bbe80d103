"""Commit bisect on a throwaway repository of a tiny server whose parser turns lenient at a
known commit: ``assay bisect`` must name exactly that commit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from coordinator.incident_settings import IncidentSettings
from coordinator.incidents import IncidentManager
from coordinator.invariants import BY_ID
from protocols.adversarial_cases import BY_NAME
from replay.bisect import BisectConfig, bisect
from replay.evidence import TripContext, derive
from replay.launcher import launch
from replay.repro import Repro, save_repro

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent

SERVER = '''"""A tiny HTTP server; one connection at a time, Connection: close."""
import socket
import sys

STRICT = True  # reject requests with conflicting Content-Length values


def handle(conn):
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head = data.split(b"\\r\\n\\r\\n", 1)[0]
    lengths = {line.split(b":", 1)[1].strip() for line in head.split(b"\\r\\n")[1:]
               if line.lower().startswith(b"content-length:")}
    if STRICT and len(lengths) > 1:
        conn.sendall(b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\n"
                     b"Connection: close\\r\\n\\r\\n")
        return
    conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")


server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    conn, _ = server.accept()
    with conn:
        handle(conn)
'''

#: (file edits, subject) per commit; commit 5 makes the parser lenient (the defect).
HISTORY = [
    ({"server.py": SERVER}, "tiny server"),
    ({"README": "tiny server\n"}, "readme"),
    ({"VERSION": "3\n"}, "version 3"),
    ({"BROKEN": "the build fails here\n"}, "work in progress"),
    ({"server.py": SERVER.replace("STRICT = True", "STRICT = False"), "BROKEN": None},
     "accept whatever Content-Length comes first"),
    ({"VERSION": "6\n"}, "version 6"),
    ({"README": "tiny server, lenient\n"}, "docs"),
    ({"VERSION": "8\n"}, "version 8"),
]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("tiny-server")
    _git(path, "init", "-q")
    _git(path, "config", "user.email", "t@example.invalid")
    _git(path, "config", "user.name", "t")
    shas = []
    for edits, subject in HISTORY:
        for name, text in edits.items():
            if text is None:
                (path / name).unlink()
            else:
                (path / name).write_text(text)
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", subject)
        shas.append(_git(path, "rev-parse", "HEAD"))
    return path, shas


@pytest.fixture(scope="module")
def repro_file(tmp_path_factory) -> Path:
    evidence = {"case": "cl-conflicting", "sent": BY_NAME["cl-conflicting"].build("h", "/")}
    derived = derive(TripContext("adv.wrong_accepted", "I-ADV-ACCEPTED", evidence,
                                 "http://127.0.0.1:1/"))
    path = tmp_path_factory.mktemp("repro") / "repro.json"
    save_repro(Repro(derived.program, predicate={"id": "I-ADV-ACCEPTED"}), path)
    return path


LAUNCH = f"{sys.executable} server.py {{port}}"


def test_assay_bisect_names_the_commit_that_made_the_parser_lenient(repo, repro_file,
                                                                     tmp_path):
    path, shas = repo
    out = tmp_path / "bisect"
    done = subprocess.run(
        [sys.executable, "-m", "coordinator", "bisect", "--repo", str(path), "--good", shas[0],
         "--bad", shas[-1], "--launch", LAUNCH, "--build", f"{sys.executable} -m py_compile "
         "server.py", "--repro", str(repro_file), "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"first bad commit: {shas[4]} accept whatever Content-Length" in done.stdout
    report = json.loads((out / "bisect.json").read_text())
    assert report["status"] == "found" and report["first_bad"]["sha"] == shas[4]
    verdicts = {r["sha"]: r["verdict"] for r in report["tested"]}
    assert verdicts[shas[-1]] == "bad" and verdicts[shas[0]] == "good"
    assert len(report["tested"]) <= 5  # both ends plus log2(7) probes
    assert len(_git(path, "worktree", "list").splitlines()) == 1  # no worktree left behind
    assert _git(path, "status", "--porcelain") == ""  # the user's checkout is untouched


def test_an_unbuildable_commit_is_skipped_and_can_leave_the_answer_ambiguous(repo, repro_file,
                                                                             tmp_path):
    path, shas = repo
    report = bisect(BisectConfig(repo=path, good=shas[2], bad=shas[5], launch=LAUNCH,
                                 build="test ! -f BROKEN", repro=repro_file,
                                 out_dir=tmp_path))
    skipped = [r for r in report["tested"] if r["verdict"] == "skip"]
    assert skipped and "build exited 1" in skipped[0]["reason"]
    assert report["status"] == "ambiguous"
    assert [c["sha"] for c in report["candidates_left"]] == [shas[3], shas[4]]


def test_a_good_revision_that_reproduces_is_an_error(repo, repro_file, tmp_path):
    path, shas = repo
    report = bisect(BisectConfig(repo=path, good=shas[5], bad=shas[7], launch=LAUNCH,
                                 repro=repro_file, out_dir=tmp_path))
    assert report["status"] == "error" and "good revision" in report["reason"]
    report = bisect(BisectConfig(repo=path, good=shas[7], bad=shas[0], launch=LAUNCH,
                                 repro=repro_file, out_dir=tmp_path))
    assert report["status"] == "error" and "not an ancestor" in report["reason"]


def test_an_incident_bisects_its_own_repro(repo, tmp_path):
    """``assay run --bisect-repo ... --bisect-launch ...``: the incident path shrinks the
    evidence against the live target, then bisects with the shrunk repro."""
    path, shas = repo
    target = launch(LAUNCH, cwd=path)  # HEAD: the lenient parser
    try:
        settings = IncidentSettings(bisect_repo=str(path), bisect_good=shas[0],
                                    bisect_launch=LAUNCH, max_attempts=10, budget_s=60)
        manager = IncidentManager(tmp_path, settings, run_id="r", target_url=target.url,
                                  target_pid=target.pid, builtin=False)
        evidence = {"case": "cl-conflicting", "target": target.url,
                    "sent": BY_NAME["cl-conflicting"].build("127.0.0.1", "/")}

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(manager.serve)
                await trio.sleep(0)
                manager.trip("adv.wrong_accepted", BY_ID["I-ADV-ACCEPTED"],
                             {"seen_at": time.time(), "evidence": evidence})
                assert await manager.drain()
                nursery.cancel_scope.cancel()

        trio.run(main)
    finally:
        target.stop()
    incident = manager.incidents["adv.wrong_accepted"]
    assert incident.status == "complete", incident.error
    stage = incident.stages["bisect"]
    assert stage["status"] == "found" and stage["first_bad"]["sha"] == shas[4]
    report = json.loads((incident.root / "bisect/bisect.json").read_text())
    assert report["repro"] == str(incident.root / "shrink/repro.json")
    assert incident.stages["shrink"]["mode"] == "live"
    assert manager.summary()[0]["bisect"]["first_bad"]["sha"] == shas[4]
