"""Body-reading routes: derivation, pre-flight, routing of body cases, and the proof that a
server mis-handling bodies only where it reads them (granian-like) is caught there.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.adversarial import AdvSettings, BaselineCache, probe
from actors.body_routes import path_for
from actors.walker import Target, WalkerContext
from coordinator.body_preflight import decide
from coordinator.config import ConfigError, build_config
from coordinator.inputs import MarkovInputs
from protocols.adversarial_cases import BY_NAME, CASES
from protocols.adversarial_oracle import effective_reaction, judge_case, observe
from protocols.body_routes import (
    Candidate,
    candidates,
    carries_body,
    choose,
    rank,
    route_for,
    route_of,
)
from protocols.markov_loader import load_model
from protocols.openapi import load_spec
from protocols.outcome import Reaction, Verdict
from tests.assay_cli import assay, only_results
from tests.body_server import body_server

SPEC = """
openapi: 3.0.3
info: {title: body server, version: "1"}
paths:
  /:
    get: {responses: {"200": {description: ok}}}
  /items/{id}:
    put:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
  /nothing:
    post: {responses: {"200": {description: ok}}}
  /upload:
    post:
      requestBody: {content: {application/octet-stream: {schema: {type: string}}}}
      responses: {"200": {description: ok}}
"""
MODEL = """
version: 1
start: a
login: {request: POST /login, expect: [2xx]}
states:
  a: {request: GET /, next: {b: 1}}
  b: {request: POST /things, capture: {id: id}, next: {c: 1}}
  c:
    request: PUT /things/{id}
    next: {a: 1}
"""
#: Body cases of today's catalogue (kept if a rename drops one): chunk grammar and lengths.
BODY_CASES = [name for name in (
    "chunk-size-hex-prefix", "chunk-size-invalid", "chunk-size-overflow", "chunk-data-overrun",
    "chunk-size-bare-lf", "chunk-data-bare-lf", "chunk-ext-invalid", "chunk-ext-bare-lf",
    "cl-hex", "cl-negative", "cl-te-smuggle", "te-gzip-only") if name in BY_NAME]
SETTINGS = {"adv_timeout": 1.0, "adv_grace": 0.15, "adv_drip_max": 0.3}


# -- pure parts ----------------------------------------------------------------------------


def test_body_cases_are_the_ones_with_a_body() -> None:
    assert carries_body(BY_NAME["chunk-size-invalid"])
    assert carries_body(BY_NAME["cl-hex"])
    assert not carries_body(BY_NAME["host-missing"])
    assert not carries_body(BY_NAME["get-with-body"])  # a GET body is the point of that case
    assert any(carries_body(case) for case in CASES)


def test_route_for_rotates_body_cases_and_leaves_the_rest() -> None:
    chunk, host = BY_NAME["chunk-size-invalid"], BY_NAME["host-missing"]
    assert route_for(chunk, (), "/") == "/"
    assert route_for(host, ("/a", "/b"), "/x") == "/x"
    assert [route_for(chunk, ("/a", "/b"), "/", pick) for pick in range(3)] == ["/a", "/b", "/a"]


def test_candidates_from_spec_and_model_skip_path_parameters() -> None:
    spec = load_spec(SPEC, "spec.yaml")
    model = load_model(MODEL, "model.yaml")
    assert [c.path for c in candidates(spec, None)] == ["/nothing", "/upload"]
    assert [c.path for c in candidates(None, model)] == ["/things", "/login"]
    both = candidates(spec, model)
    assert [c.path for c in both] == ["/nothing", "/upload", "/things", "/login"]
    assert candidates(None, None) == []


@pytest.mark.parametrize(("status", "grade"), [
    (200, 0), (204, 0), (302, 2), (401, 2), (403, 2), (415, 1), (422, 1), (400, None),
    (404, None), (405, None), (500, None), (503, None), (None, None), (501, None)])
def test_rank(status: int | None, grade: int | None) -> None:
    assert rank(status) == grade


def test_choose_keeps_the_best_grade_in_order() -> None:
    cands = [Candidate(p, "spec") for p in ("/a", "/b", "/c", "/d")]
    assert choose(zip(cands, [401, 415, 405, 422], strict=True)) == ("/b", "/d")
    assert choose(zip(cands, [401, 200, 200, 404], strict=True)) == ("/b", "/c")
    assert choose(zip(cands, [405, 404, None, 500], strict=True)) == ()


def test_body_path_config_from_flags_env_and_toml(tmp_path: Path) -> None:
    assert build_config({"body_path": ["/upload", "/echo"]}, None, {}).body_paths == (
        "/upload", "/echo")
    assert build_config({}, None, {"ASSAY_BODY_PATH": "/a, /b"}).body_paths == ("/a", "/b")
    toml = tmp_path / "assay.toml"
    toml.write_text('[run]\nbody_path = ["/upload"]\n')
    assert build_config({}, toml, {}).body_paths == ("/upload",)
    with pytest.raises(ConfigError, match="--body-path"):
        build_config({"body_path": ["upload"]}, None, {})


def test_baseline_5xx_equal_is_the_routes_answer_not_a_server_error() -> None:
    """A route that fails every body with 500 does not make a 500 to a case a finding."""
    case = BY_NAME["chunk-size-invalid"]
    error = observe(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", "timeout")
    ok = observe(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "timeout")
    assert effective_reaction(case, error, error)[0] is Reaction.ACCEPTED
    assert effective_reaction(case, error, ok)[0] is Reaction.SERVER_ERROR
    overflow = BY_NAME["chunk-size-overflow"]  # MUST: a 500 where 200 is normal is a finding
    assert judge_case(overflow, error, ok).verdict is Verdict.VIOLATION
    assert judge_case(overflow, error, error).verdict is Verdict.PASS


def test_path_for_reads_the_setting() -> None:
    ctx = _ctx("http://127.0.0.1:1/base", [], adv_body_paths=["/up"])
    assert path_for(ctx, BY_NAME["chunk-size-invalid"]) == "/up"
    assert path_for(ctx, BY_NAME["host-missing"]) == "/base"
    bare = _ctx("http://127.0.0.1:1/base", [])
    assert path_for(bare, BY_NAME["chunk-size-invalid"]) == "/base"


# -- against the granian-like server -------------------------------------------------------


def _ctx(url: str, reports: list, **settings: Any) -> WalkerContext:
    return WalkerContext(
        actor_id=0, walker_id=0, slice_name="adv", seed=1, rng=random.Random(1),
        target=Target.from_url(url), tally=__import__("protocols.tally").tally.Tally(),
        settings={**SETTINGS, **settings}, deadline=1e12,
        violation_sink=lambda walker, counter, payload: reports.append((counter, payload)),
    )


def sweep(url: str, body_paths: list[str], names: list[str] = BODY_CASES) -> dict[str, int]:
    """Each named case once; the counters."""
    reports: list = []
    box: list[dict[str, int]] = []

    async def main() -> None:
        ctx = _ctx(url, reports, adv_body_paths=body_paths)
        ctx.deadline = trio.current_time() + 300
        settings = AdvSettings.from_mapping(ctx.settings)
        cache = BaselineCache(settings)
        for name in names:
            assert await probe(ctx, BY_NAME[name], settings, cache), name
        box.append(dict(ctx.tally.counters))

    trio.run(main)
    return box[0]


@pytest.mark.integration
def test_granian_like_defect_is_caught_on_the_body_route_only() -> None:
    with body_server(defective=True) as server:
        on_root = sweep(server.url, [])
        on_upload = sweep(server.url, ["/upload"])
        posts = {path for method, path in server.seen if method == "POST"}
    assert "/upload" in posts
    assert not on_root.get("adv.server_error"), on_root  # at / it all looks fine (405)
    assert on_upload.get("adv.server_error", 0) >= 1, on_upload
    if "chunk-size-overflow" in BODY_CASES:  # a MUST case: its 500 fails I-ADV-MUST
        assert on_upload.get("adv.case.chunk-size-overflow.violation") == 1, on_upload
        assert on_upload.get("adv.must_violation", 0) >= 1


@pytest.mark.integration
def test_correct_server_stays_silent_on_the_body_route() -> None:
    """Every case with a body, the whole grown catalogue's, on the body route."""
    every_body_case = [case.name for case in CASES if carries_body(case)]
    with body_server(defective=False) as server:
        counters = sweep(server.url, ["/upload"], every_body_case)
    bad = {k: v for k, v in counters.items()
           if k.endswith(".violation") or k in ("adv.server_error", "adv.must_violation",
                                                "adv.wrong_accepted", "adv.desync")}
    assert bad == {}, counters


@pytest.mark.integration
def test_derivation_finds_the_body_route_from_a_spec() -> None:
    markov = MarkovInputs(None, None, SPEC, "spec.yaml")
    with body_server(defective=True) as server:
        chosen = decide(server.url, (), markov, builtin=False)
        none = decide(server.url, (), MarkovInputs(None, None, None, None), builtin=False)
    assert chosen.paths == ("/upload",), chosen.note  # /nothing answers 404
    assert none.paths == ()
    assert decide("http://127.0.0.1:1/", ("/x",), markov, builtin=False).paths == ("/x",)
    assert decide("http://127.0.0.1:1/", (), markov, builtin=True).paths == ("/echo",)


@pytest.mark.integration
@pytest.mark.parametrize("how", ["flag", "spec"])
def test_assay_run_sends_body_cases_to_the_body_route(tmp_path: Path, how: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    extra = ["--body-path", "/upload"] if how == "flag" else ["--spec", str(spec)]
    with body_server(defective=True) as server:
        done = assay("run", "--target", server.url, "--slices", "adv", "--duration", "4s",
                     "--procs", "1", "--concurrency", "2", "--results", str(tmp_path / "r"),
                     *extra, timeout=120)
        posts = [path for method, path in server.seen if method == "POST"]
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert posts.count("/upload") >= 3, posts
    document = only_results(tmp_path / "r")
    assert document["tier_1"]["slices"]["adv"]["counters"]["adv.sent"] > 0
    assert any(note.startswith("body routes") and "/upload" in note
               for note in document["notes"]), document["notes"]


@pytest.mark.integration
def test_refapp_echo_route_takes_every_body_case_without_a_finding() -> None:
    """The built-in run's body route: the correct refapp breaks no MUST there."""
    import subprocess

    from refapp.launch import start_refapp

    reports: list = []
    box: list[dict[str, int]] = []
    with start_refapp(stderr=subprocess.DEVNULL) as app:
        async def main() -> None:
            ctx = _ctx(app.url, reports, adv_body_paths=["/echo"])
            ctx.deadline = trio.current_time() + 300
            settings = AdvSettings.from_mapping(ctx.settings)
            cache = BaselineCache(settings)
            for case in CASES:
                if carries_body(case):
                    assert await probe(ctx, case, settings, cache), case.name
            box.append(dict(ctx.tally.counters))

        trio.run(main)
    counters = box[0]
    failing = {k: v for k, v in counters.items() if k.endswith(".violation")}
    assert not counters.get("adv.must_violation") and not reports, (failing, reports)
    assert counters.get("adv.baseline", 0) >= 1


def test_route_answer_then_close_like_the_baseline_is_not_a_body_verdict() -> None:
    """405 + close to the valid POST and to a malformed chunked body: the body was never
    read (the 405 needs none), so the case is not judged rather than 'accepted'."""
    case = BY_NAME["chunk-size-invalid"]
    closed_405 = observe(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         "eof")
    kept_405 = observe(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n", "timeout")
    assert effective_reaction(case, closed_405, closed_405) == (None, "answered_before_body")
    assert effective_reaction(case, closed_405, kept_405)[0] is Reaction.REJECTED_CLOSED
    assert effective_reaction(case, kept_405, kept_405)[0] is Reaction.ACCEPTED
    ok_closed = observe(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "eof")  # a body route that read the malformed body: still accepted
    assert effective_reaction(case, ok_closed, ok_closed)[0] is Reaction.ACCEPTED


def test_route_of_reads_the_route_back_from_the_sent_bytes() -> None:
    """A reproducer's baseline goes where the recorded case went."""
    chunk, host = BY_NAME["chunk-size-invalid"], BY_NAME["host-missing"]
    sent = chunk.build("h", "/b?x=1")
    assert route_of(chunk, sent, ("/a", "/b"), "/") == "/b"
    assert route_of(chunk, chunk.build("h", "/c"), ("/a", "/b"), "/") == "/a"
    assert route_of(chunk, b"", ("/a",), "/") == "/a"
    assert route_of(chunk, sent, (), "/") == "/"
    assert route_of(host, host.build("h", "/b"), ("/b",), "/base") == "/base"
