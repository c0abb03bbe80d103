"""Crash shrinking: the pure search (singles in rank order, ddmin over the union, every hit
confirmed, bounded), candidates.json parsing, and, end to end, a shrunk repro that kills a
fresh refapp with crash-on-long-header-line and that `assay replay --launch` judges both
ways."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from protocols.program import Action
from replay import checks
from replay.crash_shrink import (
    NEEDS_LAUNCH,
    Candidate,
    CandidateFormatError,
    crash_program,
    not_shrunk,
    parse_candidates,
    search,
    shrink_crash,
)
from replay.repro import load_repro
from replay.shrink_records import ShrinkAbort
from tests.assay_cli import assay

REFAPP = f"{sys.executable} -m refapp --port {{port}}"
DEFECTIVE = REFAPP + " --defect crash-on-long-header-line"
OVERSIZED = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Assay: " + b"a" * 20000 + b"\r\n\r\n")
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def cand(rank: int, case: str, sent_at: float = 0.0, data: bytes = b"x") -> Candidate:
    return Candidate(rank, "adv", case, sent_at or float(rank), (data,))


class Recorder:
    """A pure predicate: the set of cases that kills, and every call it saw."""

    def __init__(self, killers: set[str], flaky_first: bool = False) -> None:
        self.killers = killers
        self.calls: list[list[str]] = []
        self.flaky_first = flaky_first

    def __call__(self, cands: tuple[Candidate, ...]) -> bool:
        self.calls.append([c.case for c in cands])
        if self.flaky_first and len(self.calls) == 1:
            return True
        return self.killers <= {c.case for c in cands}


def test_parse_candidates_document_list_and_errors():
    doc = {"death_at": 10.0, "kind": "hang", "candidates": [
        {"rank": 2, "slice": "ws", "case": "b", "sent_at": 9.5,
         "writes": [{"base64": base64.b64encode(b"\x81\x00").decode()}], "end": "rst"},
        {"rank": 1, "slice": "adv", "case": "a", "sent_at": 9.9, "writes": ["GET / HTTP/1.1\r\n"]},
        {"rank": 3, "slice": "sse", "case": "empty", "writes": []},  # nothing to replay
    ]}
    kind, parsed = parse_candidates(doc)
    assert kind == "hang" and [c.case for c in parsed] == ["a", "b"]
    assert parsed[1].writes == (b"\x81\x00",) and parsed[1].end == "rst"
    assert parse_candidates(doc["candidates"])[0] == "liveness"
    for bad, why in [({"kind": "boom", "candidates": []}, "kind"),
                     ({"candidates": "x"}, "list"),
                     ({"candidates": [{"writes": [{"base64": "!!"}]}]}, "base64"),
                     ({"candidates": [{"writes": ["a"], "end": "later"}]}, "end"),
                     ({"candidates": [{"writes": [3]}]}, "write")]:
        with pytest.raises(CandidateFormatError, match=why):
            parse_candidates(bad)


def test_singles_are_tried_in_rank_order_and_confirmed():
    judge = Recorder({"c"})
    found = search([cand(3, "c"), cand(1, "a"), cand(2, "b")], judge)
    assert found.found is not None and [c.case for c in found.found] == ["c"]
    assert judge.calls == [["a"], ["b"], ["c"], ["c"]]  # the hit ran twice
    assert found.stage == "single" and [e["stage"] for e in found.log][-1] == "confirm"


def test_ddmin_over_the_union_finds_the_pair_in_send_order():
    judge = Recorder({"b", "d"})
    cands = [cand(n, name, sent_at=10.0 - n) for n, name in enumerate("abcde", start=1)]
    found = search(cands, judge, max_attempts=60)
    assert found.found is not None and found.stage == "ddmin"
    assert [c.case for c in found.found] == ["d", "b"]  # the order they were sent
    assert judge.calls[5] == ["e", "d", "c", "b", "a"]  # the union after five singles


def test_a_hit_that_does_not_confirm_does_not_count():
    judge = Recorder({"never"}, flaky_first=True)
    found = search([cand(1, "a")], judge)
    assert found.found is None and judge.calls == [["a"], ["a"]]


def test_nothing_kills_and_bounds_hold():
    judge = Recorder({"zzz"})
    found = search([cand(n, f"c{n}") for n in range(1, 30)], judge, max_attempts=7)
    assert found.found is None and len(judge.calls) <= 8
    clock = iter(range(0, 10_000, 50))
    found = search([cand(n, f"c{n}") for n in range(1, 5)], Recorder({"zzz"}),
                   max_seconds=120, clock=lambda: float(next(clock)))
    assert found.found is None and found.stopped_by == "budget"


def test_an_abort_stops_the_search():
    def abort(_: tuple[Candidate, ...]) -> bool:
        raise ShrinkAbort("cannot launch")

    found = search([cand(1, "a"), cand(2, "b")], abort)
    assert found.found is None and found.stage == "aborted" and "launch" in found.stopped_by


def test_an_abort_mid_shrink_is_not_found_and_claims_nothing():
    """The union's first run aborts (no fresh target launched), a later launch works: the
    search stops with nothing found instead of confirming an input never seen to kill."""
    judge = Recorder({"a", "b"})
    calls = 0

    def flaky_launch(cands: tuple[Candidate, ...]) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:  # two singles, then the union
            raise ShrinkAbort("cannot launch a fresh target")
        return judge(cands)

    found = search([cand(1, "a"), cand(2, "b")], flaky_launch)
    assert found.found is None and found.stage == "aborted", found
    assert "launch" in found.stopped_by and calls == 3


def test_crash_program_replays_writes_then_probes_twice():
    program = crash_program([Candidate(1, "ws", "bad", 1.0, (b"hs", b"frame"), "rst")], "hang",
                            probe_path="/healthz")
    actions = [s.action for s in program.steps]
    assert actions[:5] == [Action.SEND, Action.READ, Action.SEND, Action.READ, Action.RST]
    assert [s.path for s in program.steps if s.action is Action.PROBE] == ["/healthz"] * 2
    assert program.check.oracle == "probes_fail" and program.check.params == {"how": "hung"}
    assert program.check.oracle in checks.CHECKS


def test_without_a_launcher_the_dossier_says_why_and_lists_candidates(tmp_path: Path):
    doc = {"kind": "liveness", "candidates": [cand(1, "field-oversized", data=OVERSIZED)]}
    path = not_shrunk(doc, tmp_path)
    text = (tmp_path / "NOT_SHRUNK.txt").read_text()
    assert "--launch" in text and "#1 adv:field-oversized" in text and text.startswith(
        NEEDS_LAUNCH)
    assert path is not None and load_repro(path).shrink["verified"] is False


@pytest.mark.integration
def test_shrunk_crash_kills_a_fresh_target_and_replay_judges_both_ways(tmp_path: Path):
    from coordinator.launch import TargetLauncher

    doc = {"death_at": 5.0, "kind": "liveness", "candidates": [
        {"rank": 1, "slice": "markov", "case": "GET /healthz", "sent_at": 4.9,
         "writes": [HEALTH.decode()]},
        {"rank": 2, "slice": "adv", "case": "field-oversized", "sent_at": 4.8,
         "writes": [{"base64": base64.b64encode(OVERSIZED).decode()}]},
    ]}
    out = tmp_path / "shrink"
    repro = shrink_crash(doc, TargetLauncher(DEFECTIVE), out, budget_s=60, probe_path="/healthz")
    assert repro is not None, (out / "crash_shrink.json").read_text()
    report = json.loads((out / "crash_shrink.json").read_text())
    assert report["found"] == ["#2 adv:field-oversized"]
    loaded = load_repro(repro)
    assert loaded.predicate["id"] == "I-LIVENESS"
    assert sum(s.action is Action.SEND for s in loaded.program.steps) == 1
    assert shrink_crash(doc, TargetLauncher(REFAPP), tmp_path / "correct", budget_s=60) is None
    bad = assay("replay", str(repro), "--launch", DEFECTIVE, timeout=60)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout
    good = assay("replay", str(repro), "--launch", REFAPP, timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    never = assay("replay", str(repro), "--launch", "exit 4 # {port}", timeout=60)
    assert never.returncode == 3 and len(never.stderr.strip().splitlines()) == 1


def test_a_capped_adversarial_capture_is_rebuilt_from_the_catalogue():
    capped = (OVERSIZED[:16000]).decode()
    _, parsed = parse_candidates([{"rank": 1, "slice": "adv", "case": "field-oversized",
                                   "writes": [capped], "all_writes": 2}])
    assert len(parsed[0].writes[0]) > 90_000 and b"Host: 127.0.0.1\r\n" in parsed[0].writes[0]
    _, whole = parse_candidates([{"slice": "adv", "case": "field-oversized",
                                  "writes": ["GET / HTTP/1.1\r\n\r\n"]}])
    assert whole[0].writes == (b"GET / HTTP/1.1\r\n\r\n",)  # complete captures stay as sent


def test_a_cancelled_search_stops_before_the_next_attempt():
    judge = Recorder({"zzz"})
    found = search([cand(n, f"c{n}") for n in range(1, 6)], judge,
                   cancelled=lambda: len(judge.calls) >= 2)
    assert found.found is None and found.stopped_by == "cancelled" and len(judge.calls) == 2


@pytest.mark.integration
def test_a_hang_is_shrunk_to_the_input_that_hangs_a_fresh_target(tmp_path: Path):
    from coordinator.launch import TargetLauncher

    server = f"{sys.executable} {Path(__file__).with_name('hang_server.py')} {{port}}"
    doc = {"kind": "hang", "candidates": [
        {"rank": 1, "slice": "adv", "case": "plain", "sent_at": 2.0, "writes": [HEALTH.decode()]},
        {"rank": 2, "slice": "markov", "case": "hang", "sent_at": 1.0,
         "writes": ["GET / HTTP/1.1\r\nHost: h\r\nX-Hang: 1\r\n\r\n"]}]}
    repro = shrink_crash(doc, TargetLauncher(server), tmp_path, budget_s=60,
                         probe_timeout_s=1.0)
    assert repro is not None, (tmp_path / "crash_shrink.json").read_text()
    report = json.loads((tmp_path / "crash_shrink.json").read_text())
    assert report["found"] == ["#2 markov:hang"]
    assert load_repro(repro).predicate["id"] == "I-HANG"
    assert "timeout" in report["details"][-1]


def test_connections_left_open_are_closed_before_the_probes():
    program = crash_program([Candidate(1, "adv", "slow", 1.0, (b"GET / HTTP/1.1\r\n",), "open")],
                            "hang")
    actions = [s.action for s in program.steps]
    first_probe = actions.index(Action.PROBE)
    assert Action.CLOSE in actions[:first_probe]
