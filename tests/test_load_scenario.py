"""protocols.load_scenario / load_flags / load_source / load_values: plans from flags and
files, and one-line errors that name the flag, or the file, line and field."""

from __future__ import annotations

import ast
import json
import random
import textwrap
from pathlib import Path

import pytest

from protocols.load_errors import LoadInputError
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    RAMPING_ARRIVAL_RATE,
    RAMPING_VUS,
    LoadPlan,
    Stage,
)
from protocols.load_scenario import load_scenario_file, plan_from_flags
from protocols.load_schedule import expected_arrivals
from protocols.load_source import dotted, toml_line
from protocols.load_template import compile_request
from protocols.load_values import parse_duration, parse_rate

ROOT = Path(__file__).parents[1]
FLAGS = {"path": "/", "rate": None, "vus": None, "max_vus": None, "duration": None,
         "ramp": None}


def flags(**kw) -> LoadPlan:
    return plan_from_flags(**{**FLAGS, **kw})


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(LoadInputError) as info:
        load_scenario_file(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("500ms", 0.5), ("10m", 600), ("1h30m", 5400), ("1.5s", 1.5), ("2h", 7200)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_bare_numbers_and_zero():
    assert parse_duration("45", bare_seconds=True) == 45
    assert parse_duration(45, bare_seconds=True) == 45
    assert parse_duration("0s", allow_zero=True) == 0
    with pytest.raises(LoadInputError, match="needs a unit"):
        parse_duration(30)
    with pytest.raises(LoadInputError, match="must be greater than zero"):
        parse_duration("0s")
    for bad in ("3x", "", "s", "-1s", "1s2", True, None, [1]):
        with pytest.raises(LoadInputError):
            parse_duration(bad, bare_seconds=True)


@pytest.mark.parametrize(("text", "per_s"), [
    ("500", 500), ("2.5", 2.5), ("500/1s", 500), ("500/s", 500), ("30/1m", 0.5),
    ("5/500ms", 10), ("7200/1h", 2), (" 10 / 2s ", 5)])
def test_parse_rate(text, per_s):
    assert parse_rate(text) == pytest.approx(per_s)


def test_parse_rate_refuses_zero_and_junk():
    assert parse_rate("0", allow_zero=True) == 0
    with pytest.raises(LoadInputError, match=r"must be greater than zero \(got '0'\)"):
        parse_rate("0")
    for bad in ("fast", "-5", "5/0s", "5/1x", "5/", "1e3"):
        with pytest.raises(LoadInputError):
            parse_rate(bad)


# --- flags -------------------------------------------------------------------------------


def test_no_flags_is_ten_vus_for_thirty_seconds():
    plan = flags(path="/health")
    (scenario,) = plan.scenarios
    assert scenario.name == "default" and plan.source == "flags"
    assert scenario.executor.kind == CONSTANT_VUS
    assert (scenario.executor.vus, scenario.executor.duration_s) == (10, 30.0)
    assert (scenario.request.method, scenario.request.path) == ("GET", "/health")


def test_vus_and_duration_make_a_closed_model():
    executor = flags(vus="5", duration="1m").scenarios[0].executor
    assert (executor.kind, executor.vus, executor.duration_s) == (CONSTANT_VUS, 5, 60.0)
    assert flags(duration="45").scenarios[0].executor.duration_s == 45.0


@pytest.mark.parametrize(("kw", "pre", "most"), [
    ({}, 10, 100), ({"vus": "20", "max_vus": "300"}, 20, 300), ({"max_vus": "5"}, 5, 5),
    ({"vus": "200"}, 200, 200), ({"max_vus": "50"}, 10, 50)])
def test_rate_makes_an_open_model_with_vu_defaults(kw, pre, most):
    executor = flags(rate="30/1m", duration="10s", **kw).scenarios[0].executor
    assert executor.kind == CONSTANT_ARRIVAL_RATE
    assert executor.rate == pytest.approx(0.5)
    assert (executor.vus, executor.max_vus) == (pre, most)
    assert expected_arrivals(executor) == 5


def test_ramp_makes_a_ramping_arrival_rate_from_zero_or_the_rate():
    alone = flags(ramp="0:10s,500:30s").scenarios[0].executor
    assert alone.kind == RAMPING_ARRIVAL_RATE and alone.start_rate == 0
    assert alone.stages == (Stage(0, 10), Stage(500, 30))
    assert (alone.vus, alone.max_vus) == (10, 100)
    assert expected_arrivals(alone) == 7500
    with_rate = flags(rate="50", ramp="600/1m:30,0:5s", vus="3").scenarios[0].executor
    assert with_rate.kind == RAMPING_ARRIVAL_RATE
    assert with_rate.start_rate == 50 and with_rate.vus == 3
    assert with_rate.stages == (Stage(10, 30), Stage(0, 5))


def test_ramp_with_vus_and_no_rate_ramps_vus():
    executor = flags(vus="5", ramp="0:10s, 20:30s").scenarios[0].executor
    assert (executor.kind, executor.vus) == (RAMPING_VUS, 5)
    assert executor.stages == (Stage(0, 10), Stage(20, 30))
    assert flags(vus="0", ramp="20:30s").scenarios[0].executor.vus == 0


def test_request_and_thresholds_from_flags():
    plan = flags(path="/api/agents/{rand:1..5000}", method="POST",
                 headers=["Content-Type: application/json", "X-Id:{uuid}"],
                 body=b'{"seq": {seq}}',
                 thresholds=["http_req_duration{status:200}: p(99)<300; abort_on_fail",
                             "rate<0.01"])
    request = plan.scenarios[0].request
    assert request.headers == (("Content-Type", "application/json"), ("X-Id", "{uuid}"))
    assert request.body == b'{"seq": {seq}}'
    first, second = plan.thresholds
    assert (first.metric, first.tags, first.abort_on_fail) == (
        "http_req_duration", (("status", "200"),), True)
    assert second.metric == "http_req_failed"


@pytest.mark.parametrize(("kw", "message"), [
    ({"rate": "0"}, "--rate: must be greater than zero (got '0')"),
    ({"rate": "fast"}, "--rate: 'fast' is not a rate"),
    ({"vus": "0"}, "--vus: must be at least 1 (got 0)"),
    ({"vus": "ten"}, "--vus: 'ten' is not a whole number"),
    ({"duration": "3x"}, "--duration: '3x' is not a duration"),
    ({"duration": "0"}, "--duration: must be greater than zero"),
    ({"ramp": "5:10s", "duration": "1m"}, "--duration: not allowed with --ramp"),
    ({"vus": "5", "max_vus": "9"}, "--max-vus: only with --rate or --ramp"),
    ({"max_vus": "9"}, "--max-vus: only with --rate or --ramp"),
    ({"rate": "9", "vus": "20", "max_vus": "5"},
     "--max-vus: must be at least the 20 pre-allocated VUs (got 5)"),
    ({"max_vus": "0", "rate": "1"}, "--max-vus: must be at least 1 (got 0)"),
    ({"ramp": "500"}, "--ramp: stage 1 '500': expected TARGET:DURATION"),
    ({"ramp": "5:1s,"}, "--ramp: stage 2 '': expected TARGET:DURATION"),
    ({"ramp": "5:1s,x:1s"}, "--ramp: stage 2 'x:1s': 'x' is not a rate"),
    ({"ramp": "5:1q"}, "--ramp: stage 1 '5:1q': '1q' is not a duration"),
    ({"ramp": "5:0s"}, "--ramp: the stages last 0s in total"),
    ({"ramp": "0:10s,0:5s"}, "--ramp: the rate is 0 throughout"),
    ({"ramp": "1.5:10s", "vus": "1"}, "--ramp: stage 1 '1.5:10s': '1.5' is not a whole"),
    ({"headers": ["NoColon"]}, "--header: expected 'Name: value' (got 'NoColon')"),
    ({"headers": ["Bad Name: x"]}, ("--header: ", "Bad Name")),
    ({"headers": ["Content-Length: 3"], "body": b"12"}, ("--header: ", "Content-Length")),
    ({"method": "G T"}, ("--method: ", "G T")),
    ({"path": "/a/{nope}"}, ("--target: ", "{nope}")),
    ({"path": "nope"}, ("--target: ", "nope")),
    ({"body": b"{oops"}, ("--body-file: ", "body")),
    ({"thresholds": ["p(95)<<200"]}, ("--threshold: ", "p(95)<<200")),
])
def test_flag_errors_name_the_flag_on_one_line(kw, message):
    """``message``: the whole start, or (start, a fragment) where the rest of the text is
    another module's (the template's, the threshold parser's)."""
    with pytest.raises(LoadInputError) as info:
        flags(**kw)
    start, fragment = message if isinstance(message, tuple) else (message, "")
    assert str(info.value).startswith(start)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# --- the line finder ---------------------------------------------------------------------

TOML = """\
sequence = false                                   # 1
[thresholds]                                       # 2
http_req_failed = ["rate<0.01"]                    # 3
"http_req_duration{scenario:a}" = [                # 4
    "p(95)<200",                                   # 5
    { threshold = "p(99)<500" }, "max<900",        # 6
]                                                  # 7
[scenarios.a]                                      # 8
executor = "ramping-vus"                           # 9
body = '''                                         # 10
not.a.key = 1                                      # 11
'''                                                # 12
stages = [{ duration = "1s", target = 1 },         # 13
  { duration = "2s", target = 2 }]                 # 14
tags.kind = "x"                                    # 15
[scenarios.a.request]                              # 16
path = "/"                                         # 17
[[lists.item]]                                     # 18
x = 1                                              # 19
[[lists.item]]                                     # 20
x = 2                                              # 21
[lists.item.sub]                                   # 22
y = 3                                              # 23
"""


@pytest.mark.parametrize(("path", "line"), [
    (("sequence",), 1),
    (("thresholds",), 2),
    (("thresholds", "http_req_failed", 0), 3),
    (("thresholds", "http_req_duration{scenario:a}"), 4),
    (("thresholds", "http_req_duration{scenario:a}", 0), 5),
    (("thresholds", "http_req_duration{scenario:a}", 1, "threshold"), 6),
    (("thresholds", "http_req_duration{scenario:a}", 2), 6),
    (("scenarios", "a"), 8),
    (("scenarios", "a", "duration"), 8),          # missing: the table's header
    (("scenarios", "a", "stages", 0, "target"), 13),
    (("scenarios", "a", "stages", 1), 14),
    (("scenarios", "a", "tags", "kind"), 15),
    (("scenarios", "a", "request", "path"), 17),
    (("scenarios", "a", "request", "method"), 16),
    (("scenarios",), 8),                           # no [scenarios]: its first table
    (("not", "a", "key"), 1),                      # inside the string, not a key
    (("lists", "item", 0, "x"), 19),
    (("lists", "item", 1, "x"), 21),
    (("lists", "item", 1, "sub", "y"), 23),
])
def test_toml_line(path, line):
    assert toml_line(TOML, path) == line


def test_dotted():
    assert dotted(("scenarios", "a", "stages", 1, "target")) == "scenarios.a.stages[1].target"
    assert dotted(("thresholds", "m{x:y}", 0)) == "thresholds.m{x:y}[0]"


# --- files -------------------------------------------------------------------------------


def test_the_example_heartbeat_storm_parses():
    plan = load_scenario_file(ROOT / "docs" / "examples" / "heartbeat-storm.toml")
    heartbeat, listing = plan.scenarios
    assert heartbeat.executor.kind == CONSTANT_ARRIVAL_RATE
    assert expected_arrivals(heartbeat.executor) == 500 * 120
    assert "{rand:1..5000}" in heartbeat.request.path
    assert listing.executor.kind == RAMPING_ARRIVAL_RATE
    assert listing.start_s == 15.0
    assert listing.executor.stages[0] == Stage(10.0, 30.0)  # 600 per minute
    by_metric = {(t.metric, t.tags, t.source) for t in plan.thresholds}
    assert ("http_req_duration", (("scenario", "heartbeat"),), "p(95)<200") in by_metric
    assert ("http_req_duration", (("scenario", "agent_list"),), "p(95)<800") in by_metric
    aborting = [t for t in plan.thresholds if t.abort_on_fail]
    assert [(t.source, t.delay_abort_s) for t in aborting] == [("p(99)<500", 10.0)]
    assert LoadPlan.from_wire(plan.to_wire()) == plan
    rendered = compile_request(heartbeat.request, "h").render(7, random.Random(1), 0)
    assert json.loads(rendered.partition(b"\r\n\r\n")[2])["seq"] == 7


SAME_TOML = """
[thresholds]
http_req_failed = ["rate<0.01"]
[scenarios.hb]
executor = "constant-arrival-rate"
rate = 120
time_unit = "1m"
duration = "30s"
preAllocatedVUs = 4
maxVUs = 40
tags = { kind = "agent" }
[scenarios.hb.request]
method = "POST"
path = "/hb/{rand:1..50}"
headers = { "Content-Type" = "application/json" }
body = '{"seq": {seq}}'
[scenarios.hb.checks]
status = [200, 429]
[scenarios.hb.thresholds]
http_req_duration = ["p(95)<200", { threshold = "p(99)<500", abortOnFail = true }]
[scenarios.ramp]
executor = "ramping-vus"
startVUs = 0
startTime = "5s"
gracefulRampDown = "1s"
stages = [{ duration = "10s", target = 8 }, { duration = "5s", target = 0 }]
"""

SAME_YAML = """
thresholds:
  http_req_failed: ["rate<0.01"]
scenarios:
  hb:
    executor: constant-arrival-rate
    rate: 120
    timeUnit: 1m
    duration: 30s
    pre_allocated_vus: 4
    max_vus: 40
    tags: {kind: agent}
    request:
      method: POST
      path: "/hb/{rand:1..50}"
      headers: {Content-Type: application/json}
      body: '{"seq": {seq}}'
    checks:
      status: [200, 429]
    thresholds:
      http_req_duration:
        - p(95)<200
        - threshold: p(99)<500
          abort_on_fail: true
  ramp:
    executor: ramping-vus
    start_vus: 0
    start_time: 5s
    graceful_ramp_down: 1s
    stages:
      - {duration: 10s, target: 8}
      - {duration: 5s, target: 0}
"""


def test_toml_and_yaml_with_camel_case_aliases_give_the_same_plan(tmp_path):
    from_toml = load_scenario_file(write(tmp_path, SAME_TOML))
    from_yaml = load_scenario_file(write(tmp_path, SAME_YAML, "plan.yaml"))
    assert from_toml.scenarios == from_yaml.scenarios
    assert from_toml.thresholds == from_yaml.thresholds
    hb, ramp = from_toml.scenarios
    assert hb.executor.rate == 2.0 and (hb.executor.vus, hb.executor.max_vus) == (4, 40)
    assert hb.tags == (("kind", "agent"),)
    assert [c.kind for c in hb.checks] == ["status"]
    assert ramp.executor.vus == 0 and ramp.start_s == 5.0 and ramp.end_s == 20.0
    assert [t.tags for t in from_toml.thresholds] == [(), *[(("scenario", "hb"),)] * 2]
    assert from_toml.thresholds[2].abort_on_fail
    assert len(from_toml.notes) == 1 and "gracefulRampDown" in from_toml.notes[0]
    assert "graceful_ramp_down" in from_yaml.notes[0]
    assert from_toml.source.endswith("plan.toml")


def test_yml_suffix_and_defaults(tmp_path):
    plan = load_scenario_file(write(tmp_path, """
        scenarios:
          s:
            executor: ramping-arrival-rate
            stages: [{duration: 10s, target: 100}]
        """, "p.yml"))
    (scenario,) = plan.scenarios
    assert scenario.executor.start_rate == 0
    assert (scenario.executor.vus, scenario.executor.max_vus) == (10, 100)
    assert (scenario.request.method, scenario.request.path) == ("GET", "/")
    assert expected_arrivals(scenario.executor) == 500
    assert plan.thresholds == () and plan.notes == ()


def test_sequence_starts_each_scenario_when_the_one_before_ends(tmp_path):
    plan = load_scenario_file(write(tmp_path, """
        sequence = true
        [scenarios.warm]
        executor = "constant-vus"
        vus = 2
        duration = "10s"
        [scenarios.ramp]
        executor = "ramping-arrival-rate"
        stages = [{ duration = "20s", target = 50 }, { duration = "0s", target = 5 }]
        [scenarios.soak]
        executor = "constant-arrival-rate"
        rate = 5
        duration = "1m"
        """))
    assert [(s.name, s.start_s, s.end_s) for s in plan.scenarios] == [
        ("warm", 0, 10), ("ramp", 10, 30), ("soak", 30, 90)]
    assert plan.duration_s == 90


def test_start_times_overlap_without_sequence(tmp_path):
    plan = load_scenario_file(write(tmp_path, """
        [scenarios.a]
        executor = "constant-vus"
        vus = 1
        duration = "10s"
        [scenarios.b]
        executor = "constant-vus"
        vus = 1
        duration = "10s"
        start_time = "2s"
        """))
    assert [s.start_s for s in plan.scenarios] == [0, 2]
    assert plan.duration_s == 12


def test_body_file_is_read_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "payload.json").write_bytes(b'{"id": {seq}}')
    plan = load_scenario_file(write(tmp_path / "sub", """
        [scenarios.a]
        executor = "constant-vus"
        vus = 1
        duration = "1s"
        [scenarios.a.request]
        method = "PUT"
        body_file = "payload.json"
        """))
    assert plan.scenarios[0].request.body == b'{"id": {seq}}'


def test_binary_body_file_is_sent_verbatim(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\xff{\x00")
    plan = load_scenario_file(write(tmp_path, """
        [scenarios.a]
        executor = "constant-vus"
        vus = 1
        duration = "1s"
        request = { method = "POST", body_file = "blob.bin" }
        """))
    assert plan.scenarios[0].request.body == b"\xff{\x00"


def test_connections_on_open_executors(tmp_path):
    plan = load_scenario_file(write(tmp_path, """
        [scenarios.a]
        executor = "constant-arrival-rate"
        rate = 10
        duration = "1s"
        connections = 4
        """))
    assert plan.scenarios[0].executor.connections == 4


HEAD = '[scenarios.a]\nexecutor = "constant-vus"\nvus = 1\nduration = "1s"\n'  # lines 1-4


@pytest.mark.parametrize(("text", "expected"), [
    ('colour = "red"\n' + HEAD, "1: colour: unknown key (expected one of: scenarios, "
                                "sequence, thresholds)"),
    (HEAD + "vu = 3\n", "5: scenarios.a.vu: unknown key (fields of constant-vus: checks, "),
    (HEAD + "rate = 3\n", "5: scenarios.a.rate: not a field of constant-vus (it belongs to "
                          "constant-arrival-rate)"),
    (HEAD + "max_vus = 3\n", "5: scenarios.a.max_vus: not a field of constant-vus (it belongs "
                             "to constant-arrival-rate and ramping-arrival-rate)"),
    (HEAD + 'exec = "main"\n', "5: scenarios.a.exec: not supported"),
    (HEAD.replace("constant-vus", "per-vu-iterations"),
     "2: scenarios.a.executor: unknown executor 'per-vu-iterations' (one of: constant-vus"),
    ("[scenarios.a]\nvus = 1\n", "1: scenarios.a.executor: missing (one of:"),
    ('[scenarios.a]\nexecutor = "constant-vus"\nvus = 2\n',
     "1: scenarios.a.duration: missing (constant-vus needs vus and duration)"),
    (HEAD.replace("vus = 1", 'vus = "ten"'),
     "3: scenarios.a.vus: expected a whole number, got a string ('ten')"),
    (HEAD.replace("vus = 1", "vus = 0"), "3: scenarios.a.vus: must be at least 1 (got 0)"),
    (HEAD.replace('"1s"', '"3x"'), "4: scenarios.a.duration: '3x' is not a duration"),
    (HEAD.replace('"1s"', "30"), "4: scenarios.a.duration: 30 needs a unit"),
    ('[scenarios.a]\nexecutor = "constant-arrival-rate"\nduration = "1s"\nrate = 0\n',
     "4: scenarios.a.rate: must be greater than 0 (got 0)"),
    ('[scenarios.a]\nexecutor = "constant-arrival-rate"\nduration = "1s"\nrate = -2\n',
     "4: scenarios.a.rate: must be greater than 0 (got -2)"),
    ('[scenarios.a]\nexecutor = "constant-arrival-rate"\nduration = "1s"\nrate = 1\n'
     'time_unit = "0s"\n', "5: scenarios.a.time_unit: must be greater than zero"),
    ('[scenarios.a]\nexecutor = "constant-arrival-rate"\nduration = "1s"\nrate = 1\n'
     "pre_allocated_vus = 20\nmax_vus = 5\n",
     "6: scenarios.a.max_vus: must be at least the 20 pre-allocated VUs (got 5)"),
    ('[scenarios.a]\nexecutor = "constant-arrival-rate"\nduration = "1s"\nrate = 1\n'
     "maxVUs = 5\nmax_vus = 5\n", "6: scenarios.a.max_vus: given twice (as maxVUs and max_vus)"),
    ('[scenarios.a]\nexecutor = "ramping-vus"\nstages = []\n',
     "3: scenarios.a.stages: expected a non-empty list"),
    ('[scenarios.a]\nexecutor = "ramping-vus"\nstages = [\n  { duration = "1s", target = 1 },\n'
     '  { duration = "1s" },\n]\n', "5: scenarios.a.stages[1].target: missing"),
    ('[scenarios.a]\nexecutor = "ramping-vus"\nstages = [{ duration = "1s", target = 1.5 }]\n',
     "3: scenarios.a.stages[0].target: expected a whole number, got a number (1.5)"),
    ('[scenarios.a]\nexecutor = "ramping-arrival-rate"\n'
     'stages = [{ duration = "0s", target = 1 }]\n',
     "3: scenarios.a.stages: the stages last 0s in total"),
    ('[scenarios.a]\nexecutor = "ramping-arrival-rate"\n'
     'stages = [{ duration = "9s", target = 0 }]\n', "3: scenarios.a.stages: the rate is 0"),
    (HEAD + 'start_time = "soon"\n', "5: scenarios.a.start_time: 'soon' is not a duration"),
    ("sequence = true\n" + HEAD + 'start_time = "1s"\n',
     "6: scenarios.a.start_time: not allowed with sequence = true"),
    ('sequence = "yes"\n' + HEAD, "1: sequence: expected true or false, got a string"),
    (HEAD + "tags = { kind = 3 }\n", "5: scenarios.a.tags.kind: expected a string, got a "
                                     "number (3)"),
    (HEAD + '[scenarios.a.request]\nmethod = "GET"\npath = "/a/{nope}"\n',
     ("7: scenarios.a.request.path: ", "{nope}")),
    (HEAD + '[scenarios.a.request]\npath = "/"\nheaders = { "X-A" = "{rand:9..1}" }\n',
     ("7: scenarios.a.request.headers.X-A: ", "{rand:9..1}")),
    (HEAD + "[scenarios.a.request]\nmethod = 'POST'\nbody = '{x'\n",
     ("7: scenarios.a.request.body: ", "{x")),
    (HEAD + '[scenarios.a.request]\nmethod = "G T"\n', ("6: scenarios.a.request.method: ",
                                                       "G T")),
    (HEAD + '[scenarios.a.request]\nbody = "a"\nbody_file = "b"\n',
     "7: scenarios.a.request.body_file: give body or body_file, not both"),
    (HEAD + '[scenarios.a.request]\nbody_file = "missing.json"\n',
     "6: scenarios.a.request.body_file: cannot read 'missing.json': No such file"),
    (HEAD + '[scenarios.a.request]\nheaders = { "Content-Length" = "9" }\nbody = "ab"\n',
     ("6: scenarios.a.request.headers: ", "Content-Length '9'")),
    (HEAD + "[scenarios.a.request]\nverb = 'GET'\n",
     "6: scenarios.a.request.verb: unknown key (expected one of: body, body_file, headers,"),
    (HEAD + "[scenarios.a.checks]\nheader_equals = {}\nstatus = [200, 99]\n",
     ("7: scenarios.a: ", "99")),
    (HEAD + "checks = [200]\n", "5: scenarios.a.checks: expected a table of checks, got a "
                                "list"),
    (HEAD + '[scenarios.a.thresholds]\nhttp_req_duration = [\n  "p(95)<200",\n  "p(99)<<5",\n]\n',
     ("8: scenarios.a.thresholds.http_req_duration[1]: ", "p(99)<<5")),
    (HEAD + '[scenarios.a.thresholds]\n"http_req_duration{scenario:b}" = ["p(95)<200"]\n',
     ("6: scenarios.a.thresholds.http_req_duration{scenario:b}[0]: ", "scenario")),
    ('[thresholds]\nlatncy = ["p(95)<200"]\n' + HEAD,
     ("2: thresholds.latncy[0]: ", "latncy")),
    ('[thresholds]\nchecks = "rate>0.9"\n' + HEAD,
     "2: thresholds.checks: expected a list of threshold expressions, got a string"),
    ('[thresholds]\nchecks = [{ threshold = "rate>0.9", abort_on_fail = "y" }]\n' + HEAD,
     "2: thresholds.checks[0].abort_on_fail: expected true or false"),
    ('[thresholds]\nchecks = [\n  { abort_on_fail = true },\n]\n' + HEAD,
     "3: thresholds.checks[0].threshold: missing"),
    ('[thresholds]\nchecks = [{ threshold = "rate>0.9", delay_abort_eval = "x" }]\n' + HEAD,
     "2: thresholds.checks[0].delay_abort_eval: 'x' is not a duration"),
    ('[thresholds]\nchecks = [{ threshold = "rate>0.9", abort = true }]\n' + HEAD,
     "2: thresholds.checks[0].abort: unknown key"),
    ("sequence = false\n", "1: scenarios: no scenarios: add at least one [scenarios.NAME]"),
    ("# plan\n\n[scenarios]\n", "3: scenarios: no scenarios"),
    ("scenarios = 3\n", "1: scenarios: expected a table of scenarios by name, got a number"),
    (HEAD.replace("scenarios.a", 'scenarios."a b"'),
     "1: scenarios.a b: scenario name 'a b' must be 1-64 letters"),
    ("[scenarios.a]\nexecutor = 'constant-vus'\nvus = 1\nduration = '1s'\n[oops\n",
     "5: invalid TOML: "),
    ('[scenarios.a]\nexecutor = "constant-vus"\nexecutor = "x"\n', "3: invalid TOML: "),
])
def test_toml_errors_name_file_line_and_field(tmp_path, text, expected):
    """``expected``: the message's start after ``FILE:``, or (start, a fragment) where the
    rest is another module's text (the template's, the threshold or check parser's)."""
    path = write(tmp_path, text)
    start, fragment = expected if isinstance(expected, tuple) else (expected, "")
    message = error_of(path)
    assert message.startswith(f"{path}:{start}")
    assert fragment in message


YAML_HEAD = "scenarios:\n  a:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("- 1\n- 2\n", "1: expected a table, got a list"),
    ("", "1: document is empty"),
    ("scenarios: {}\n", "1: scenarios: no scenarios"),
    ("scenarios:\n  a: [1]\n", "2: scenarios.a: expected a table, got a list"),
    (YAML_HEAD + "    rate: 5\n", "6: scenarios.a.rate: not a field of constant-vus"),
    (YAML_HEAD.replace("1s", "'30'"), "5: scenarios.a.duration: '30' needs a unit"),
    (YAML_HEAD + "    request:\n      path: /x/{seq\n",
     ("7: scenarios.a.request.path: ", "{seq")),
    (YAML_HEAD + "    thresholds:\n      http_req_duration:\n        - p(95)<200\n"
                 "        - threshold: p(99) < x\n",
     ("9: scenarios.a.thresholds.http_req_duration[1].threshold: ", "p(99) < x")),
    (YAML_HEAD + "    stages: []\n", "6: scenarios.a.stages: not a field of constant-vus"),
    ("scenarios:\n  a:\n    executor: ramping-vus\n    stages:\n      - duration: 1s\n"
     "        target: -1\n", "6: scenarios.a.stages[0].target: must be at least 0 (got -1)"),
    ("scenarios:\n  a:\n    executor: ramping-vus\n    stages:\n      - duration: 1s\n"
     "      - {duration: 1s, target: 1}\n", "5: scenarios.a.stages[0].target: missing"),
    ("scenarios:\n  a: {executor: x\n", "3: invalid YAML: "),
    (YAML_HEAD + "    vus: 2\n", "6: duplicate key 'vus'"),
    ("scenarios:\n  1:\n    executor: constant-vus\n",
     "2: scenarios.1: scenario name 1 must be 1-64"),
    ("scenarios:\n  a:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n"
     "    checks: {status: [600]}\n", ("6: scenarios.a: ", "600")),
])
def test_yaml_errors_name_file_line_and_field(tmp_path, text, expected):
    path = write(tmp_path, text, "plan.yaml")
    start, fragment = expected if isinstance(expected, tuple) else (expected, "")
    message = error_of(path)
    assert message.startswith(f"{path}:{start}")
    assert fragment in message


def test_unreadable_and_unsupported_files(tmp_path):
    missing = tmp_path / "none.toml"
    assert error_of(missing) == f"{missing}: cannot read: No such file or directory"
    json_file = write(tmp_path, "{}", "plan.json")
    assert error_of(json_file).startswith(f"{json_file}: a scenario file must end in .toml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"scenarios: \xff\n")
    assert error_of(latin) == f"{latin}: not UTF-8 text"


@pytest.mark.parametrize("module", [
    "load_scenario", "load_flags", "load_source", "load_values", "load_schedule"])
def test_modules_are_sans_io(module):
    tree = ast.parse((ROOT / "protocols" / f"{module}.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"trio", "zmq", "socket", "coordinator", "actors"}
