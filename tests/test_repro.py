"""Reproducers: the file format (and every way a file can be wrong), evidence -> program for
each HIGH predicate replayed against the defective and the correct refapp, and shrinking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from coordinator.invariants import HIGH_COUNTERS
from protocols.adversarial_cases import BY_NAME as ADV
from protocols.program import Action, Check, Program, Step
from replay.evidence import EvidenceError, TripContext, derive, group_units
from replay.reduce import Judge, shrink_derived
from replay.repro import (
    Repro,
    ReproError,
    TargetUnreachable,
    load_repro,
    parse_repro,
    replay,
    save_repro,
)
from tests.incident_support import FAST, ROOT, harvest, refapp, url_of


def _repro() -> Repro:
    program = Program((Step(Action.PROBE, path="/healthz", label="probe"),),
                      Check("probes_fail", {"how": "down"}), {"source": "test"})
    return Repro(program, predicate={"id": "I-LIVENESS"}, target={"url": "http://h/"}, seed=5)


# -- format ----------------------------------------------------------------------------------


def test_round_trip_keeps_identity(tmp_path: Path):
    path = tmp_path / "repro.json"
    save_repro(_repro(), path)
    document = json.loads(path.read_text())
    for key in ("format", "digest", "program", "predicate", "target", "seed", "generator",
                "tool", "host", "created_at"):
        assert key in document
    assert document["host"]["arch"] and document["tool"]["name"] == "assay"
    loaded = load_repro(path)
    assert loaded.program == _repro().program and loaded.seed == 5
    assert loaded.program.digest() == document["digest"]


def _broken(text: str, tmp_path: Path) -> str:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ReproError) as caught:
        load_repro(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_every_kind_of_malformed_file_is_one_line(tmp_path: Path):
    good = json.dumps(_repro().to_json(), indent=2)
    assert "looks truncated" in _broken(good[: len(good) // 2], tmp_path)
    assert "empty" in _broken("", tmp_path)
    assert "must be a JSON object" in _broken("[1, 2]", tmp_path)
    document = json.loads(good)
    assert "format" in _broken(json.dumps({**document, "format": "x/9"}), tmp_path)
    no_steps = {**document, "program": {**document["program"], "steps": []}}
    assert "program" in _broken(json.dumps(no_steps), tmp_path)
    bad_step = {**document, "program": {**document["program"],
                                        "steps": [{"action": "teleport"}]}}
    assert "step 0" in _broken(json.dumps(bad_step), tmp_path)
    oracle = {**document, "program": {**document["program"], "check": {"oracle": "nope"}}}
    assert "unknown oracle" in _broken(json.dumps(oracle), tmp_path)
    edited = json.loads(good)
    edited["program"]["steps"][0]["path"] = "/other"
    assert "digest mismatch" in _broken(json.dumps(edited), tmp_path)
    assert "seed" in _broken(json.dumps({**document, "seed": "five"}), tmp_path)
    with pytest.raises(ReproError):
        parse_repro(json.dumps({**document, "notes": [1]}))


@pytest.mark.integration
def test_cli_exit_codes_for_malformed_and_unreachable(tmp_path: Path):
    path = tmp_path / "repro.json"
    save_repro(_repro(), path)
    cut = tmp_path / "cut.json"
    cut.write_text(path.read_text()[:200])
    command = [sys.executable, "-m", "coordinator", "replay"]
    done = subprocess.run([*command, str(cut), "--target", "http://127.0.0.1:9/"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "truncated" in done.stderr
    with pytest.raises(TargetUnreachable):
        replay(load_repro(path), "http://127.0.0.1:9/")


# -- evidence -> program, per HIGH predicate ---------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("invariant", sorted(FAST))
def test_each_high_predicate_replays_bad_on_defective_and_clean_on_correct(invariant: str,
                                                                          tmp_path: Path):
    counter, evidence, defect = harvest(invariant)
    assert HIGH_COUNTERS[counter].id == invariant
    settings = FAST[invariant][2]
    derived = derive(TripContext(counter, invariant, evidence, "http://127.0.0.1:1/",
                                 settings=settings))
    path = tmp_path / "repro.json"
    save_repro(Repro(derived.program, predicate={"id": invariant, "counter": counter}), path)
    loaded = load_repro(path)
    with refapp(defect) as bad:
        outcome = replay(loaded, url_of(bad))
    assert outcome.violated, outcome.detail
    with refapp() as good:
        outcome = replay(loaded, url_of(good))
    assert not outcome.violated, outcome.detail


@pytest.mark.integration
def test_cli_replay_exit_1_on_defective_and_0_on_correct(tmp_path: Path):
    evidence = {"case": "cl-te-smuggle", "sent": ADV["cl-te-smuggle"].build("127.0.0.1", "/")}
    derived = derive(TripContext("adv.desync", "I-ADV-DESYNC", evidence, "http://127.0.0.1:1/"))
    defect = "cl-te-desync"
    path = tmp_path / "repro.json"
    save_repro(Repro(derived.program, predicate={"id": "I-ADV-DESYNC"}), path)
    command = [sys.executable, "-m", "coordinator", "replay", str(path), "--target"]
    for defects, code in (((defect,), 1), ((), 0)):
        with refapp(*defects) as target:
            done = subprocess.run([*command, url_of(target)], capture_output=True, text=True,
                                  cwd=ROOT, timeout=60)
        assert done.returncode == code, done.stdout + done.stderr


@pytest.mark.integration
def test_redundant_evidence_shrinks_to_a_strictly_smaller_repro():
    counter, evidence, defect = harvest("I-ADV-ACCEPTED")
    derived = derive(TripContext(counter, "I-ADV-ACCEPTED", evidence, "http://127.0.0.1:1/",
                                 settings=FAST["I-ADV-ACCEPTED"][2]))
    assert len(derived.units) > 2  # baseline, canary, the walker's earlier exchanges ...
    with refapp(defect) as bad:
        judge = Judge(derived.check, dict(derived.meta), live_url=url_of(bad), launcher=None)
        run = trio.run(lambda: shrink_derived(derived, judge, max_attempts=30, max_seconds=20,
                                              stall_limit=20))
        assert not run.result.flaky and run.verified
        assert len(run.program.steps) < len(derived.program.steps)
        assert replay(Repro(run.program), url_of(bad)).violated
    with refapp() as good:
        assert not replay(Repro(run.program), url_of(good)).violated
    log = run.log_document()
    assert log["attempts"][0]["pass"] == "original" and len(log["attempts"]) == run.result.attempts


def test_evidence_that_cannot_be_replayed_says_why():
    with pytest.raises(EvidenceError, match="no evidence converter"):
        derive(TripContext("adv.sent", "I-X", {}, "http://h/"))
    with pytest.raises(EvidenceError, match="not in this catalogue"):
        derive(TripContext("adv.desync", "I-ADV-DESYNC", {"case": "nope"}, "http://h/"))
    with pytest.raises(EvidenceError, match="truncated"):
        derive(TripContext("ws.hang_no_close", "I-WS-HANG",
                           {"case": "reserved_opcode_5", "sent": b"x" * 10,
                            "sent_truncated": True}, "http://h/"))


def test_liveness_repro_replays_the_candidates_never_just_sleeps():
    with pytest.raises(EvidenceError, match="in flight at the moment of death"):
        derive(TripContext("coord.target_down", "I-LIVENESS", {"path": "/healthz"},
                           "http://127.0.0.1:8080/", target_started_at=100.0, tripped_at=105.5))
    candidates = [{"rank": 1, "slice": "adv", "case": "field-oversized", "sent_at": 5.0,
                   "writes": ["GET / HTTP/1.1\r\nX: aaaa\r\n\r\n"]}]
    derived = derive(TripContext("coord.target_hung", "I-HANG",
                                 {"path": "/healthz", "candidates": candidates},
                                 "http://127.0.0.1:8080/"))
    steps = derived.program.steps
    assert steps[0].action is Action.SEND and steps[0].data.startswith(b"GET / HTTP/1.1")
    assert [s.path for s in steps if s.action is Action.PROBE] == ["/healthz"] * 2
    assert not any(s.action is Action.SLEEP and s.interval_s > 1 for s in steps)
    assert derived.needs_fresh and derived.check.params == {"how": "hung"}


def test_group_units_starts_a_unit_at_each_send_or_probe():
    steps = (Step(Action.SEND, data=b"a"), Step(Action.READ), Step(Action.CLOSE),
             Step(Action.PROBE), Step(Action.SLEEP), Step(Action.SEND, data=b"b"))
    assert [len(u) for u in group_units(steps)] == [3, 1, 1, 1]


def _req(method: str, path: str, body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: h\r\nCookie: session=OLD\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_read_after_write_evidence_rebuilds_the_session_with_captures():
    recent = [
        {"step": 1, "sent": _req("POST", "/items", b'{"name":"a"}'), "status": 201,
         "received": b'{"id":"f00dcafe","name":"a"}'},
        {"step": 2, "sent": _req("PUT", "/items/f00dcafe", b'{"name":"b"}'), "status": 200,
         "received": b'{"id":"f00dcafe","name":"b"}'},
    ]
    evidence = {"sent": _req("GET", "/items/f00dcafe"), "received": b'{"id":"f00dcafe","name":"a"}',
                "status": 200, "step": 3, "recent": recent,
                "login_sent": b"POST /login HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"}
    derived = derive(TripContext("markov.read_after_write_mismatch", "I-DRV-1", evidence,
                                 "http://h/"))
    steps = derived.program.steps
    assert steps[1].capture == (("cookie_session", "cookie:session"),)
    assert steps[3].capture == (("id_1", "json:id"),)
    put = steps[4]
    assert put.template and put.data.startswith(b"PUT /items/{id_1} HTTP/1.1")
    assert b"Cookie: session={cookie_session}\r\n" in put.data and put.label == \
        "raw:write:/items/{id_1}"
    assert steps[6].label == "raw:read:/items/{id_1}"
    # The failing write/read pair is repeated (lost writes are often periodic).
    assert sum(s.label == "raw:write:/items/{id_1}" for s in steps) == 1 + 1 + 2 * 4
    assert derived.stateful and derived.shrink_data
    with pytest.raises(EvidenceError, match="older than the walker's ring"):
        derive(TripContext("markov.read_after_write_mismatch", "I-DRV-1",
                           {**evidence, "recent": recent[1:]}, "http://h/"))


def test_read_after_write_session_leaves_out_other_slices_exchanges():
    """The ring also holds the response probes' exchanges (their own connections): an
    HTTP/1.0 GET among the session's requests would close conn 0 and end the replay."""
    probe = {"step": 1, "slice": "resp", "sent": b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
             "received": b"HTTP/1.1 404 Not Found\r\n\r\n"}
    recent = [probe,
              {"step": 2, "slice": "markov", "sent": _req("POST", "/items", b'{"name":"a"}'),
               "received": b'{"id":"f00dcafe","name":"a"}'}]
    evidence = {"sent": _req("GET", "/items/f00dcafe"), "received": b'{"name":"b"}',
                "step": 3, "slice": "markov", "recent": recent,
                "login_sent": b"POST /login HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"}
    derived = derive(TripContext("markov.read_after_write_mismatch", "I-DRV-1", evidence,
                                 "http://h/"))
    assert not any(b"HTTP/1.0" in (step.data or b"") for step in derived.program.steps)
    assert any(step.label == "raw:write:/items/{id_1}" for step in derived.program.steps)
