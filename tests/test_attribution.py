"""Crash and hang attribution: the pure ranking and consequence rules, the walkers' flight
log, the wire messages, the coordinator's collection, and one end-to-end run in which the
target dies on one WebSocket case while every slice runs."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import flight, net
from actors.walker import Target, WalkerContext
from coordinator.attribution import Attribution
from protocols import attribution as attr
from protocols import wire
from protocols.tally import Tally
from protocols.websocket_cases import BY_NAME as WS_BY_NAME
from replay.crash_shrink import parse_candidates
from tests.assay_cli import assay, only_results

DEATH = 1_000.0


def sent(case: str, last: float, *, slice_name: str = "adv", answered: float | None = None,
         first: float | None = None, writes: tuple[bytes, ...] = (b"X",),
         conns: tuple[int, ...] = (), closed: float | None = None, actor: int = 0,
         walker: int = 0) -> attr.Sent:
    return attr.Sent(actor, walker, slice_name, case, first if first is not None else last,
                     last, answered, writes, conns, closed_at=closed)


# -- pure: ranking ----------------------------------------------------------------------------

def test_from_wire_validates_and_drops_junk():
    raw = {"walker": 3, "slice": "ws", "case": "close_code_1005", "sent_at": 1.0,
           "last_sent_at": 2.0, "answered_at": None, "writes": [b"a", "not bytes", b"b"],
           "conns": [0, 0], "end": "rst", "closed_at": 2.5}
    entry = attr.Sent.from_wire(1, raw)
    assert entry is not None
    assert (entry.actor, entry.walker, entry.key) == (1, 3, "ws/close_code_1005")
    assert entry.writes == (b"a", b"b") and entry.end == "rst" and entry.closed_at == 2.5
    for junk in (None, [], {"walker": 1}, {**raw, "sent_at": "soon"}, {**raw, "walker": None}):
        assert attr.Sent.from_wire(0, junk) is None


def test_answered_means_after_the_last_write():
    assert sent("a", 10.0, answered=10.5).answered
    assert not sent("a", 10.0, answered=9.0, first=8.0).answered  # e.g. a 101, then a frame
    assert not sent("a", 10.0).answered


def test_death_estimate_is_the_last_sign_of_life_before_it_was_noticed():
    entries = [sent("a", 1.0, answered=5.0), sent("b", 1.0, answered=9.0),
               sent("c", 1.0, answered=20.0)]  # answered after "noticed": a clock oddity
    assert attr.estimate_death(entries, noticed_at=10.0) == 9.0
    assert attr.estimate_death(entries, noticed_at=10.0, last_ok_probe=9.5) == 9.5
    assert attr.estimate_death([], noticed_at=10.0) == 10.0


def test_survived_cases_by_answer_or_by_margin():
    entries = [sent("answered", 1.0, answered=1.1),
               sent("long-ago", DEATH - 5.0),
               sent("just-now", DEATH - 0.01),
               sent("alive", DEATH - 0.01, answered=DEATH)]
    found = attr.survived_cases(entries, extra=["ws/from-actor"])
    assert found == {"adv/answered", "adv/long-ago", "adv/alive", "ws/from-actor"}
    assert "adv/just-now" not in found


def test_tiers_put_malformed_suspects_first():
    survived = {"h2c/request_sent/fin"}
    assert attr.tier_of(sent("x", 1, slice_name="ws"), survived) == 0
    assert attr.tier_of(sent("x", 1, slice_name="h2c"), survived) == 1
    assert attr.tier_of(sent("list_items", 1, slice_name="markov"), survived) == 2
    assert attr.tier_of(sent("baseline", 1, slice_name="adv"), survived) == 2
    assert attr.tier_of(sent("request_sent/fin", 1, slice_name="h2c"), survived) == 3
    assert attr.tier_of(sent("x", 1, slice_name="ws", answered=2), survived) == 4


def test_rank_names_the_killer_not_the_traffic_around_it():
    killer = sent("close_code_1005", DEATH - 0.019, slice_name="ws", first=DEATH - 0.03,
                  answered=DEATH - 0.025, closed=DEATH + 0.001, walker=3)
    entries = [
        killer,
        # an h2c round in flight, closer to the death but well-formed
        sent("mid_response/rst", DEATH - 0.017, slice_name="h2c", closed=DEATH, walker=2),
        # Markov requests cut off by the death: valid traffic the target survived before
        sent("read_item", DEATH - 0.0001, slice_name="markov", closed=DEATH, walker=5),
        # an earlier WebSocket case the server closed normally
        sent("reserved_opcode_7", DEATH - 0.04, slice_name="ws", closed=DEATH - 0.03,
             walker=3),
        # sent after the target was already dead
        sent("close_code_1015", DEATH + 0.01, slice_name="ws", walker=3),
        # nothing written: not a candidate
        sent("connect_refused", DEATH - 0.001, writes=()),
        # far after the death: not a candidate
        sent("later", DEATH + 5.0),
    ]
    survived = attr.survived_cases(entries, extra=["markov/read_item"])
    ranked = attr.rank(entries, DEATH, survived)
    assert [c.sent.case for c in ranked] == [
        "close_code_1005", "reserved_opcode_7", "mid_response/rst", "read_item",
        "close_code_1015"]
    assert ranked[0].rank == 1 and ranked[0].cut and ranked[0].tier == 0
    assert ranked[-1].before_death_s < 0


def test_rank_by_closeness_within_a_tier_and_limit():
    entries = [sent(f"c{n}", DEATH - n / 100) for n in range(1, 30)]
    ranked = attr.rank(entries, DEATH, set(), limit=5)
    assert [c.sent.case for c in ranked] == ["c1", "c2", "c3", "c4", "c5"]


def test_replay_writes_are_the_connection_of_the_last_write():
    entry = sent("case", 2.0, writes=(b"GET baseline", b"BAD", b"CANARY"), conns=(0, 1, 1))
    assert entry.replay_writes() == (b"BAD", b"CANARY")
    assert sent("x", 1, writes=(b"a", b"b")).replay_writes() == (b"a", b"b")


def test_candidates_document_is_what_crash_shrink_reads():
    killer = sent("close_code_1005", DEATH - 0.01, slice_name="ws",
                  writes=(b"GET /ws HTTP/1.1\r\n\r\n", b"\x88\x82\xff\x00"), conns=(0, 0))
    ranked = attr.rank([killer, sent("x", DEATH - 1, slice_name="h2c")], DEATH, set())
    document = attr.candidates_document(DEATH, "liveness", ranked)
    assert set(document) == {"death_at", "kind", "candidates"}
    first = document["candidates"][0]
    for key in ("rank", "actor", "walker", "slice", "case", "sent_at", "writes", "summary"):
        assert key in first
    assert first["writes"][1] == "\x88\x82\xff\x00"  # latin-1, byte for byte
    json.dumps(document)
    kind, parsed = parse_candidates(document)
    assert kind == "liveness" and parsed[0].case == "close_code_1005"
    assert parsed[0].writes == killer.writes
    assert "ws close_code_1005" in attr.shown(ranked)[0]["summary"]


# -- pure: consequences -----------------------------------------------------------------------

def test_consequence_counters_and_windows():
    assert attr.is_consequence_counter("h2c.crashed")
    assert attr.is_consequence_counter("ws.hang_no_close")
    assert attr.is_consequence_counter("sse.leak")
    assert not attr.is_consequence_counter("adv.desync")
    assert not attr.is_consequence_counter("ws.accepted_bad_frame")
    outage = attr.Outage("I-LIVENESS", noticed_at=100.0, ended_at=150.0)
    assert attr.coincides(96.0, outage) and attr.coincides(120.0, outage)
    assert not attr.coincides(90.0, outage) and not attr.coincides(160.0, outage)
    assert attr.coincides(10_000.0, attr.Outage("I-HANG", 100.0))  # still down
    assert attr.consequence_of("h2c.crashed", 99.0, [outage]) == "I-LIVENESS"
    assert attr.consequence_of("adv.desync", 99.0, [outage]) is None
    assert attr.consequence_of("h2c.crashed", 50.0, [outage]) is None


def test_death_from_probe():
    assert attr.death_from_probe("refused") == "I-LIVENESS"
    assert attr.death_from_probe("broken") == "I-LIVENESS"
    assert attr.death_from_probe("timeout") == "I-HANG"
    assert attr.death_from_probe("ok") is None
    assert attr.death_from_probe("bad_status") is None


def test_annotate_invariants():
    verdicts = {"failed": [{"id": "I-LIVENESS"}, {"id": "I-H2C-CRASHED"},
                           {"id": "I-MKV-TRANSPORT"}, {"id": "I-WS-HANG"},
                           {"id": "I-ADV-DESYNC"}],
                "passed": [], "not_judged": []}
    trips = {"h2c.crashed": {"consequence_of": "I-LIVENESS"},
             "ws.hang_no_close": {"invariant": "I-WS-HANG"}}  # judged independent
    attr.annotate_invariants(verdicts, trips)
    by_id = {e["id"]: e for e in verdicts["failed"]}
    assert by_id["I-H2C-CRASHED"]["consequence_of"] == "I-LIVENESS"
    assert by_id["I-MKV-TRANSPORT"]["consequence_of"] == "I-LIVENESS"
    assert "consequence_of" not in by_id["I-WS-HANG"]
    assert "consequence_of" not in by_id["I-ADV-DESYNC"]
    lone = {"failed": [{"id": "I-MKV-TRANSPORT"}], "passed": [], "not_judged": []}
    attr.annotate_invariants(lone, {})
    assert "consequence_of" not in lone["failed"][0]


# -- the walkers' flight log ------------------------------------------------------------------

def _ctx(slice_name: str = "ws", walker: int = 1) -> WalkerContext:
    return WalkerContext(actor_id=0, walker_id=walker, slice_name=slice_name, seed=1,
                         rng=random.Random(1), target=Target.from_url("http://127.0.0.1:1/"),
                         tally=Tally(), settings={}, deadline=float("inf"),
                         violation_sink=lambda *a: None)


def test_flight_log_notes_writes_answers_and_asides():
    ctx = _ctx()

    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        ctx.begin_case("refused")  # never writes: never enters the ring
        ctx.begin_case("close_code_1005")
        with ctx.aside_case("baseline"):
            await net.send_all(client, b"GET / HTTP/1.1\r\n\r\n", 1.0)
        await net.send_all(client, b"GET /ws HTTP/1.1\r\n\r\n", 1.0)
        await server.send_all(b"HTTP/1.1 101 Switching\r\n\r\n")
        assert await net.receive_some(client, 1.0)
        await net.send_all(client, b"\x88\x82abcd", 1.0)
        flight.note_reset()  # what net.arm_reset notes (a memory stream has no socket)
        await server.aclose()
        result = await net.read_until(client, 1.0, 1024)
        assert result.ending is net.Ending.EOF

    trio.run(main)
    entries, truncated = flight.report([ctx], since=0.0)
    assert not truncated
    cases = {e["case"]: e for e in entries}
    assert set(cases) == {"baseline", "close_code_1005"}
    case = cases["close_code_1005"]
    assert case["writes"] == [b"GET /ws HTTP/1.1\r\n\r\n", b"\x88\x82abcd"]
    assert case["answered_at"] is not None and case["answered_at"] < case["last_sent_at"]
    assert case["closed_at"] is not None and case["end"] == "rst"
    entry = attr.Sent.from_wire(0, case)
    assert entry is not None and not entry.answered
    wire.decode(wire.encode(wire.InFlightReport(0, 0, "r", entries, [], False)))


def test_flight_log_settles_survivors_and_caps_bytes():
    log = flight.FlightLog()
    flight.begin(log, 0, "adv", "big")
    for _ in range(40):
        flight.note_write(b"x" * 4096, object())
    big = log.ring[-1]
    assert big.size == flight.MAX_FLIGHT_BYTES and len(big.writes) <= flight.MAX_WRITES
    for number in range(20):  # a run of large cases: the ring keeps a bounded few
        flight.begin(log, 0, "adv", f"large-{number}")
        flight.note_write(b"y" * 60_000, object())
    assert log.size <= flight.RING_BYTES + flight.MAX_FLIGHT_BYTES
    assert log.size == sum(f.size for f in log.ring) and log.ring[-1].case == "large-19"
    big.last_sent_at -= 10  # long ago
    log.last_answer_at = big.last_sent_at + 1.0
    flight.begin(log, 0, "adv", "next")
    assert "big" in log.survived


def test_a_connection_freed_mid_flight_is_not_taken_for_the_next_at_its_address():
    """A case that closes one connection and opens another: CPython hands the freed
    object's memory (and so its ``id``) to the next, and keying by ``id`` merged the two
    connections, so the reproducer sent both writes on one."""
    class Conn:
        pass

    log = flight.FlightLog()
    flight.begin(log, 0, "adv", "two-connections")
    first = Conn()
    flight.note_write(b"GET / HTTP/1.1\r\n\r\n", first)
    flight.note_write(b"more", first)
    address = id(first)
    del first
    second = Conn()
    assert id(second) == address  # the premise: the id was reused
    flight.note_write(b"GET /again HTTP/1.1\r\n\r\n", second)
    flight.note_write(b"tail", second)
    assert log.ring[-1].to_wire()["conns"] == [0, 0, 1, 1]


def test_markov_entries_come_from_what_the_walker_already_keeps():
    ctx = _ctx("markov", walker=4)
    ctx.recent.append({"step": 1, "at": 50.0, "state": "list_items", "sent": b"GET /items",
                       "status": 200, "received": b"[]", "latency_us": 2000})
    ctx.recent.append({"step": 2, "at": 51.0, "state": "read_item", "sent": b"GET /items/1",
                       "error": "connect_refused", "sent_at": None})
    failed = {"step": 3, "at": 52.0, "state": "update_item", "sent": b"PUT /items/1",
              "error": "reset", "sent_at": 51.9}
    ctx.recent.append(failed)
    ctx.flight.markov.append(failed)
    entries = flight.markov_entries(ctx, since=0.0)
    by_case = {e["case"]: e for e in entries}
    assert set(by_case) == {"list_items", "update_item"}
    assert by_case["list_items"]["answered_at"] == 50.0
    assert abs(by_case["list_items"]["sent_at"] - 49.998) < 1e-6
    assert by_case["update_item"]["closed_at"] == 52.0
    ctx.tally.record_latency("markov.latency.list_items", 10)
    assert flight.survived([ctx], ctx.tally) == ["markov/list_items"]


# -- wire and collection ----------------------------------------------------------------------

def test_wire_round_trip_and_validation():
    request = wire.InFlightRequest("run", "abc", 12.5)
    report = wire.InFlightReport(2, 7, "abc", [{"walker": 1, "writes": [b"\x00GET"]}],
                                 ["ws/x"], True)
    for message in (request, report):
        assert wire.decode(wire.encode(message)) == message
    import msgpack

    bad = msgpack.packb({"v": 1, "t": "inflight_report", "actor_id": 1, "incarnation": 0,
                         "request_id": "a", "entries": {"not": "a list"}, "survived": []})
    with pytest.raises(wire.WireError):
        wire.decode(bad)


def _attribution(trips: dict, proceeded: list, reports: list[wire.InFlightReport]) -> Attribution:
    holder: list[Attribution] = []

    def publish(frame: bytes) -> None:
        message = wire.decode(frame)
        assert isinstance(message, wire.InFlightRequest)
        for report in reports:
            holder[0].on_report(wire.InFlightReport(
                report.actor_id, 0, message.request_id, report.entries, report.survived))

    made = Attribution(run_id="run", target_url="http://127.0.0.1:1/", health_path="/",
                       target_pid=None, publish=publish, live_actors=lambda: [0, 1],
                       trips=trips, proceed=lambda c, d: proceeded.append(c))
    holder.append(made)
    return made


def test_collect_asks_every_live_actor():
    entries = [{"walker": 1, "slice": "ws", "case": "k", "sent_at": 5.0, "last_sent_at": 5.0,
                "answered_at": None, "writes": [b"x"], "conns": [0]}]
    reports = [wire.InFlightReport(0, 0, "", entries, []),
               wire.InFlightReport(1, 0, "", [], ["markov/list_items"])]
    made = _attribution({}, [], reports)
    collected = trio.run(made.collect, 0.0)
    assert sorted(collected.reports) == [0, 1]
    assert [e.case for e in collected.entries()] == ["k"]
    assert collected.survived() == ["markov/list_items"]


def test_slice_trip_during_an_outage_is_a_consequence_without_incident():
    trips: dict = {}
    proceeded: list = []
    made = _attribution(trips, proceeded, [])
    assert not made.hold("coord.target_down", {"evidence": {"at": 100.0}})
    assert made.hold("h2c.crashed", {"seen_at": 98.0, "evidence": {}})
    assert trips["h2c.crashed"]["consequence_of"] == "I-LIVENESS"
    assert trips["h2c.crashed"]["invariant"] == "I-H2C-CRASHED"
    assert not made.hold("adv.desync", {"seen_at": 99.0})  # not a death's echo
    assert not made.hold("h2c.crashed", {"seen_at": 1.0, "attribution": "checked"})
    assert proceeded == []


def test_held_slice_trip_goes_on_when_the_target_answers():
    trips: dict = {}
    proceeded: list = []

    async def main() -> None:
        async def serve(stream: trio.SocketStream) -> None:
            await stream.receive_some(4096)
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, serve, 0)
            port = listeners[0].socket.getsockname()[1]
            made = Attribution(run_id="run", target_url=f"http://127.0.0.1:{port}/",
                               health_path="/", target_pid=None, publish=lambda f: None,
                               live_actors=lambda: [], trips=trips,
                               proceed=lambda c, d: proceeded.append((c, d)))
            nursery.start_soon(made.serve)
            assert made.hold("ws.hang_no_close", {"seen_at": 5.0})
            assert made.hold("ws.hang_no_close", {"seen_at": 6.0})  # held once
            with trio.fail_after(10):
                while not proceeded:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert [c for c, _ in proceeded] == ["ws.hang_no_close"]
    assert proceeded[0][1]["attribution"] == "checked" and trips == {}


# -- end to end -------------------------------------------------------------------------------

#: The Close cases carrying a code wsproto refuses (the defect exits on those): the grown
#: catalogue has more of them (32768, 4-digit unassigned...), any of which may come first.
KILLERS = {name for name in WS_BY_NAME if re.fullmatch(r"close_code_\d+(_no_reason)?", name)}


@pytest.mark.integration
def test_death_is_attributed_to_the_websocket_case_that_killed_the_target(tmp_path: Path):
    result = assay("run", "--duration", "6s", "--procs", "2", "--concurrency", "10",
                   "--refapp-defect", "crash-on-ws-close-code", "--results", str(tmp_path),
                   "--seed", "9", "--shrink-attempts", "6", "--leak-probes", "off",
                   timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    walkers = {name: block["walkers"] for name, block in document["tier_1"]["slices"].items()}
    assert all(walkers[name] >= 1 for name in ("markov", "adv", "h2c", "ws", "sse")), walkers
    incidents = {i["invariant"]: i for i in document["incidents"]}
    assert "I-LIVENESS" in incidents, result.stdout
    assert set(incidents) <= {"I-LIVENESS"}, (incidents, document["trips"])  # none blames a slice
    top = incidents["I-LIVENESS"]["attribution"]["top"]
    assert top[0]["slice"] == "ws" and top[0]["case"] in KILLERS, json.dumps(top, indent=1)
    dossier = Path(incidents["I-LIVENESS"]["path"])
    candidates = json.loads((dossier / "candidates.json").read_text())
    assert candidates["kind"] == "liveness" and candidates["candidates"][0]["rank"] == 1
    assert candidates["candidates"][0]["case"] in KILLERS
    for counter, trip in document["trips"].items():
        if attr.is_consequence_counter(counter):
            assert trip.get("consequence_of") == "I-LIVENESS", (counter, trip, result.stdout)
    failed = {e["id"]: e for e in document["invariants"]["failed"]}
    if "I-H2C-CRASHED" in failed:
        assert failed["I-H2C-CRASHED"]["consequence_of"] == "I-LIVENESS"
    incident = json.loads((dossier / "incident.json").read_text())
    shrink = incident["stages"]["shrink"]
    assert shrink["mode"] == "crash"
    if shrink.get("status") == "shrunk":  # bounded: a loaded host may run out of budget
        repro = json.loads(Path(shrink["repro"]).read_text())
        assert "ws:close_code_" in json.dumps(repro)
        # The reproducer kills a fresh defective target, and not a correct one.
        launch = "python -m refapp --port {port}"
        bad = assay("replay", shrink["repro"], "--launch",
                    launch + " --defect crash-on-ws-close-code", timeout=60)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        good = assay("replay", shrink["repro"], "--launch", launch, timeout=60)
        assert good.returncode == 0, good.stdout + good.stderr


def test_attribute_writes_candidates_and_without_a_launcher_says_shrink_needs_launch(
        tmp_path: Path):
    from coordinator.attribution import shrink_death
    from coordinator.incident_settings import IncidentSettings
    from coordinator.incidents import Incident, IncidentManager
    from coordinator.invariants import BY_ID

    now = 1_700_000_000.0
    entries = [
        {"walker": 3, "slice": "ws", "case": "close_code_1005", "sent_at": now - 0.05,
         "last_sent_at": now - 0.01, "answered_at": now - 0.04, "closed_at": now,
         "writes": [b"GET /ws HTTP/1.1\r\n\r\n", b"\x88\x82abcd"], "conns": [0, 0]},
        {"walker": 5, "slice": "markov", "case": "list_items", "sent_at": now - 0.02,
         "last_sent_at": now - 0.02, "answered_at": now - 0.001, "writes": [b"GET /items"],
         "conns": [0]},
    ]
    made = _attribution({}, [], [wire.InFlightReport(0, 0, "", entries, []),
                                 wire.InFlightReport(1, 0, "", [], [])])
    manager = IncidentManager(tmp_path, IncidentSettings(), run_id="run",
                              target_url="http://127.0.0.1:1/", target_pid=None,
                              builtin=False)
    root = tmp_path / "incidents" / "x-I-LIVENESS"
    root.mkdir(parents=True)
    incident = Incident("x-I-LIVENESS", "coord.target_down", BY_ID["I-LIVENESS"], root,
                        {"evidence": {"at": now + 1.0}, "via": "health"}, now + 1.0, now + 1.0)

    async def main() -> None:
        await made.attribute(manager, incident)
        assert await shrink_death(manager, incident) is None

    trio.run(main)
    document = json.loads((root / "candidates.json").read_text())
    assert document["kind"] == "liveness" and document["death_at"] == now - 0.001
    assert [c["case"] for c in document["candidates"]] == ["close_code_1005", "list_items"]
    stage = incident.stages["attribution"]
    assert stage["top"][0]["case"] == "close_code_1005" and stage["actors_answered"] == 2
    assert incident.detail["evidence"]["candidates"][0]["case"] == "close_code_1005"
    shrink = incident.stages["shrink"]
    assert shrink["status"] == "not_shrunk" and "--launch" in shrink["reason"]
    assert "--launch" in (root / "shrink" / "NOT_SHRUNK.txt").read_text()
    manager.incidents[incident.counter] = incident
    (entry,) = manager.summary()  # the results' incidents list
    assert entry["attribution"]["top"][0]["case"] == "close_code_1005"


@pytest.mark.integration
@pytest.mark.parametrize("defect", [False, True])
def test_refapp_crash_on_ws_close_code_both_ways(defect: bool):
    import socket
    import time

    from protocols.websocket_frames import (
        Frame,
        Opcode,
        build_handshake,
        close_payload,
        encode_frames,
        make_key,
    )
    from refapp.defects import CRASH_EXIT_STATUS
    from refapp.launch import start_refapp

    process = start_refapp(defects=("crash-on-ws-close-code",) if defect else ())
    try:
        for code in (1000, 1005):  # a valid close never kills; a forbidden one does
            with socket.create_connection((process.host, process.port), timeout=5) as sock:
                sock.sendall(build_handshake("/ws", f"127.0.0.1:{process.port}",
                                             make_key(bytes(16))))
                assert b" 101 " in sock.recv(4096)
                sock.sendall(encode_frames([Frame(Opcode.CLOSE, close_payload(code))],
                                           [b"abcd"]))
                try:
                    sock.recv(4096)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        while defect and process.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if defect:
            assert process.returncode == CRASH_EXIT_STATUS
        else:
            assert process.returncode is None
            with socket.create_connection((process.host, process.port), timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        process.stop()


def test_held_slice_trip_waits_for_the_monitor_when_the_target_is_down():
    import time

    from tests.servers import free_port

    trips: dict = {}
    proceeded: list = []

    async def main() -> None:
        made = Attribution(run_id="run", target_url=f"http://127.0.0.1:{free_port()}/",
                           health_path="/", target_pid=None, publish=lambda f: None,
                           live_actors=lambda: [], trips=trips,
                           proceed=lambda c, d: proceeded.append(c))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(made.serve)
            seen = time.time()
            assert made.hold("ws.hang_no_close", {"seen_at": seen})
            await trio.sleep(0.5)  # probes refused meanwhile: held, not decided
            assert trips == {} and proceeded == []
            # the monitor's verdict comes later than the coincidence window after the trip
            made.hold("coord.target_hung", {"evidence": {"at": seen + 8.0}})
            with trio.fail_after(10):
                while "ws.hang_no_close" not in trips:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert trips["ws.hang_no_close"]["consequence_of"] == "I-HANG" and proceeded == []


def test_confirmation_baseline_is_noted_aside_from_the_case(monkeypatch) -> None:
    """A confirmation round's baseline traffic must not join the case's flight: the
    reproducer and the crash candidates hold the case's bytes only."""
    from actors import adv_confirm
    from actors.adv_baseline import Phase
    from actors.adversarial import Exchange
    from protocols.adversarial_cases import BY_NAME

    ctx = _ctx("adv", walker=3)
    case = BY_NAME["cl-conflicting"]

    async def main() -> None:
        client, _server = trio.testing.memory_stream_pair()
        side, _side_server = trio.testing.memory_stream_pair()

        async def fake_connect(target, timeout):
            return client

        class Baselines:
            async def fresh(self, ctx_, method):
                await net.send_all(side, b"GET /baseline HTTP/1.1\r\n\r\n", 1.0)

            again = fresh

        async def exchange(stream):
            await net.send_all(stream, b"CASE BYTES", 1.0)
            return Exchange(sent=b"CASE BYTES", reply=Phase(b"", "timeout", 1.0))

        monkeypatch.setattr(adv_confirm.net, "connect", fake_connect)
        ctx.begin_case(case.name)
        await adv_confirm.resend(ctx, case, 1.0, Baselines(), exchange)  # type: ignore[arg-type]

    trio.run(main)
    entries, _ = flight.report([ctx], since=0.0)
    writes = {e["case"]: e["writes"] for e in entries}
    assert writes[case.name] == [b"CASE BYTES"]
    assert writes["baseline"] == [b"GET /baseline HTTP/1.1\r\n\r\n"]
