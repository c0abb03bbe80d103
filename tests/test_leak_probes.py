"""Black-box leak probes: pure plans and verdicts, then the probes against real servers.

No pid and no stats page is used anywhere here: the refapps are started by the tests and
reached only through their URL, as a foreign target would be.
"""

from __future__ import annotations

import importlib.util
import socket
import struct
import subprocess
import sys
from pathlib import Path

import h11
import pytest
import trio

from coordinator.leak_probes import probe_connections
from coordinator.sse_slot_probe import probe_sse
from protocols import conn_leak as cl
from protocols import leak_probes as lp
from protocols.conn_leak import BurstOutcome, Departure
from protocols.leak_probes import Open, SseRound
from protocols.outcome import Verdict
from refapp.launch import start_refapp
from tests.assay_cli import assay, invariant_status, only_results
from tests.servers import free_port, nginx, wait_for_port

SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")

ROOT = Path(__file__).resolve().parent.parent


# -- classify_open: bytes in, one Open out -------------------------------------------------

@pytest.mark.parametrize(("data", "ending", "expected"), [
    (SSE_HEAD, "done", Open.ACCEPTED),
    (SSE_HEAD + b"f\r\nretry: 1000\n\n\r\n", "done", Open.ACCEPTED),  # trailing stream bytes
    (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n", "done", Open.FULL),
    (b"HTTP/1.1 429 Too Many Requests\r\n\r\n", "done", Open.RATE_LIMITED),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "done", Open.OTHER_STATUS),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", "done", Open.OTHER_STATUS),
    (b"", "eof", Open.CLOSED),
    (b"HTTP/1.1 200 OK\r\n", "reset", Open.RESET),
    (b"", "timeout", Open.TIMEOUT),
    (b"\x00\x00\x12\x04garbage", "eof", Open.GARBAGE),
])
def test_classify_open(data: bytes, ending: str, expected: Open) -> None:
    assert lp.classify_open(data, ending) is expected


def test_classify_open_byte_by_byte_needs_the_whole_head() -> None:
    for cut in range(len(SSE_HEAD)):
        assert lp.classify_open(SSE_HEAD[:cut], "timeout") is Open.TIMEOUT
    assert lp.classify_open(SSE_HEAD, "done") is Open.ACCEPTED


def test_answered_is_a_complete_head_only() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert cl.answered(head) == 200
    assert all(cl.answered(head[:cut]) is None for cut in range(head.index(b"\r\n\r\n") + 3))
    assert cl.answered(b"SSH-2.0-OpenSSH\r\n\r\n") is None


# -- SSE verdict ------------------------------------------------------------------------

def test_same_count_both_times_passes_even_at_a_server_limit() -> None:
    capped = SseRound(256)
    assert lp.sse_verdict(capped, SseRound(256))[0] is Verdict.PASS
    limited = SseRound(50, {"503": 3}, Open.FULL)
    verdict, reason = lp.sse_verdict(limited, SseRound(50, {"503": 1}, Open.FULL))
    assert verdict is Verdict.PASS and "same both times" in reason


def test_fewer_reopened_is_a_leak_when_the_server_says_full() -> None:
    first = SseRound(256)
    for refusal in (Open.FULL, Open.CLOSED, Open.RESET, Open.TIMEOUT):
        verdict, reason = lp.sse_verdict(first, SseRound(100, {refusal.value: 1}, refusal))
        assert verdict is Verdict.VIOLATION, refusal
        assert "156 fewer" in reason


def test_silence_from_a_server_that_answers_nothing_else_is_not_a_full_broker() -> None:
    second = SseRound(10, {"timeout": 16}, Open.TIMEOUT)
    assert lp.sse_verdict(SseRound(256), second, responsive=False)[0] is Verdict.UNJUDGED
    assert lp.sse_verdict(SseRound(256), second, responsive=True)[0] is Verdict.VIOLATION


def test_deficit_with_rate_limit_or_refused_connect_is_not_judged() -> None:
    for refusal in (Open.RATE_LIMITED, Open.CONNECT_REFUSED, Open.OTHER_STATUS):
        verdict, reason = lp.sse_verdict(SseRound(256), SseRound(10, {}, refusal))
        assert verdict is Verdict.UNJUDGED and reason.startswith("not judged"), refusal


def test_tolerance_absorbs_walkers_subscriptions() -> None:
    second = SseRound(97, {"503": 1}, Open.FULL)
    assert lp.sse_verdict(SseRound(100), second, tolerance=3)[0] is Verdict.PASS
    assert lp.sse_verdict(SseRound(100), second, tolerance=2)[0] is Verdict.VIOLATION


def test_a_deficit_the_server_could_not_have_noticed_yet_is_not_judged() -> None:
    first, short = SseRound(50, {"503": 1}, Open.FULL), SseRound(0, {"503": 8}, Open.FULL)
    verdict, reason = lp.sse_verdict(first, short, kept=1, writes_since_left=1)
    assert verdict is Verdict.UNJUDGED and "heartbeat" in reason
    verdict, reason = lp.sse_verdict(first, short, kept=1, writes_since_left=2)
    assert verdict is Verdict.VIOLATION and "49 fewer" in reason
    assert lp.sse_verdict(first, SseRound(49, {"503": 1}, Open.FULL), kept=1,
                          writes_since_left=0)[0] is Verdict.PASS


def test_none_accepted_with_none_of_ours_open() -> None:
    # A broker full of other clients (or of walkers it has not yet noticed leaving) refuses
    # at once: we never held and released a slot of our own, so there is no leak to claim.
    for refusal in (Open.FULL, Open.CLOSED, Open.RESET):
        verdict, reason = lp.sse_verdict(SseRound(0, {refusal.value: 16}, refusal), None)
        assert verdict is Verdict.UNJUDGED and "no slot of ours" in reason, refusal
    for refusal in (Open.RATE_LIMITED, Open.CONNECT_REFUSED, Open.TIMEOUT, Open.OTHER_STATUS):
        assert lp.sse_verdict(SseRound(0, {}, refusal), None)[0] is Verdict.UNJUDGED
    assert lp.sse_verdict(SseRound(5), None)[0] is Verdict.UNJUDGED
    # Mid-run, the run's own subscribers may hold every slot: a full broker, not a leak.
    verdict, reason = lp.sse_verdict(SseRound(0, {"503": 16}, Open.FULL), None, tolerance=3)
    assert verdict is Verdict.UNJUDGED and "run's own subscribers" in reason


def test_abandon_plan_is_half_rst_half_fin() -> None:
    assert lp.abandon_plan(0) == ()
    for count in (1, 2, 7, 256):
        plan = lp.abandon_plan(count)
        assert len(plan) == count and abs(sum(plan) - (count - sum(plan))) <= 1


# -- connection probe: plans ------------------------------------------------------------

def test_burst_plan_has_every_departure_in_equal_share() -> None:
    plan = cl.burst_plan(600)
    assert {d: plan.count(d) for d in Departure} == {d: 100 for d in Departure}
    assert cl.burst_plan(0) == ()


def _parse_request(data: bytes) -> list:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    events = []
    while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
        events.append(event)
    return events


def test_departure_bytes_stop_where_they_say() -> None:
    assert cl.departure_bytes(Departure.CONNECT_RST, "h", "/") == b""
    head = cl.departure_bytes(Departure.MID_HEADER_FIN, "h:1", "/x")
    assert b"\r\n\r\n" not in head and _parse_request(head) == []  # an unfinished head
    body = cl.departure_bytes(Departure.MID_BODY_RST, "h:1", "/x")
    events = _parse_request(body)
    assert isinstance(events[0], h11.Request) and events[0].method == b"POST"
    assert sum(len(e.data) for e in events if isinstance(e, h11.Data)) == cl.BODY_SENT
    assert not any(isinstance(e, h11.EndOfMessage) for e in events)  # the body is cut short


def test_plain_request_is_one_complete_request() -> None:
    data = cl.plain_request("127.0.0.1:8080", "/healthz")
    events = _parse_request(data)
    assert isinstance(events[0], h11.Request) and isinstance(events[-1], h11.EndOfMessage)
    assert events[0].target == b"/healthz"
    conn = h11.Connection(h11.SERVER)  # byte by byte: the same request, nothing before
    seen = []
    for byte in data:
        conn.receive_data(bytes([byte]))
        while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
            seen.append(type(event))
    assert seen == [h11.Request, h11.EndOfMessage]


def test_burst_sizes_grow_to_the_maximum() -> None:
    assert cl.burst_sizes() == (64, 256, 1024)
    assert cl.burst_sizes(100) == (64, 100)
    assert cl.burst_sizes(10) == (10,)
    assert cl.burst_sizes(0) == ()


def test_our_descriptors_bound_the_probes() -> None:
    assert cl.in_flight(1024, 100) == 64
    assert cl.in_flight(256, 100) == 256 - 100 - cl.FD_RESERVE
    assert cl.in_flight(200, 100) == 0
    assert lp.sse_cap(256, 20000, 50) == 256
    assert lp.sse_cap(256, 400, 50) == 400 - 50 - cl.FD_RESERVE


def test_burst_fits_the_budget_with_a_grace_period() -> None:
    assert cl.burst_fits(1024, 0.004, 20.0, 10.0)
    assert not cl.burst_fits(1024, 0.004, 12.0, 10.0)


@pytest.mark.parametrize("grace", [0.5, 2.0, 10.0, 60.0])
def test_recovery_schedule_covers_the_grace(grace: float) -> None:
    plan = cl.recovery_schedule(grace)
    total = sum(timeout + pause for timeout, pause in plan)
    assert grace - 1e-9 <= total <= grace + 1e-9
    assert plan[0][0] <= 1.0 and all(t <= 3.0 and p <= 2.0 for t, p in plan)


def _burst(size: int, status: int | None, connected: int | None = None, *,
           drain: float = 0.0, confirm: float = 0.0) -> BurstOutcome:
    if status is None and not confirm:
        confirm = 10.0  # a silence is always confirmed before it is judged
    return BurstOutcome(size, size if connected is None else connected, 0, status, 1, 0.1,
                        "" if status else "timeout", drain, confirm)


def test_conn_verdict() -> None:
    ok = [_burst(64, 200), _burst(256, 200), _burst(1024, 503)]  # an answer is an answer
    assert cl.conn_verdict(200, ok, 10.0)[0] is Verdict.PASS
    verdict, reason, broke = cl.conn_verdict(200, [_burst(64, 200), _burst(256, None)], 10.0)
    assert (verdict, broke) == (Verdict.VIOLATION, 256) and "256" in reason
    assert "confirmed for 10 s" in reason
    assert cl.conn_verdict(None, ok, 10.0)[0] is Verdict.UNJUDGED
    assert cl.conn_verdict(200, [], 10.0)[0] is Verdict.UNJUDGED
    assert cl.conn_verdict(200, [_burst(64, None, connected=0)], 10.0)[0] is Verdict.UNJUDGED


def test_a_silence_longer_than_the_confirmation_could_be_a_slow_drain() -> None:
    """A two-worker server with a slow handler runs every abandoned mid-body request: when
    that work may outlast the confirmation, the silence is not judged."""
    slow = _burst(1024, None, drain=170.0, confirm=cl.CONFIRM_MAX_S)
    verdict, reason, broke = cl.conn_verdict(200, [_burst(64, 200), slow], 10.0)
    assert (verdict, broke) == (Verdict.UNJUDGED, None) and "170 s of work" in reason
    late = _burst(256, 200, drain=20.0, confirm=20.0)
    verdict, reason, _ = cl.conn_verdict(200, [_burst(64, 200), late], 10.0)
    assert verdict is Verdict.PASS and "slow to drain, not leaking" in reason


def test_drain_estimate_counts_only_departures_that_sent_a_whole_head() -> None:
    mid_body = sum(d.stage == "mid-body" for d in cl.burst_plan(600))
    assert mid_body == 200
    assert cl.drain_estimate_s(600, 0.5) == pytest.approx(100.0)
    assert cl.drain_estimate_s(600, -1.0) == 0.0
    assert cl.confirm_window(10.0, 0.2) == 10.0  # at least one more grace
    assert cl.confirm_window(10.0, 25.0) == 25.0
    assert cl.confirm_window(10.0, 1e6) == cl.CONFIRM_MAX_S


# -- against real servers (no pid, no stats page) -----------------------------------------

def _run(fn, *args, **kwargs):
    return trio.run(lambda: fn(*args, **kwargs))


def test_correct_refapp_passes_both_probes() -> None:
    with start_refapp() as proc:
        sse = _run(probe_sse, proc.url, "/events", grace_s=3.0)
        conn = _run(probe_connections, proc.url, "/healthz", grace_s=3.0)
    assert sse["verdict"] == "pass", sse
    assert sse["opened_first"] == 256 and sse["kept"] == 1  # one kept open: the witness
    assert sse["opened_second"] == 255
    assert (sse["abandoned_rst"], sse["abandoned_fin"]) == (128, 127)
    assert conn["verdict"] == "pass", conn
    assert [b["size"] for b in conn["bursts"]] == [64, 256, 1024]


def test_sse_slot_leaked_on_rst_is_caught() -> None:
    with start_refapp(defects=["sse-leak-on-rst-only"]) as proc:
        report = _run(probe_sse, proc.url, "/events", grace_s=1.5)
    assert report["verdict"] == "violation", report
    assert report["opened_first"] == 256 and report["opened_second"] < 256
    assert report["second_refusal"] == "503"


async def _subscribe_and_leave(port: int, count: int, reset: bool) -> int:
    """Open ``count`` subscriptions and leave them all one way; then how many reopen."""
    socks = []
    for _ in range(count):
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", port))
        await sock.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await sock.recv(4096)).startswith(b"HTTP/1.1 200")
        socks.append(sock)
    for sock in socks:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)
        sock.close()
    await trio.sleep(0.5)
    sock = trio.socket.socket()
    with sock:
        await sock.connect(("127.0.0.1", port))
        await sock.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        return int((await sock.recv(4096)).split(b" ", 2)[1])


def test_rst_only_defect_releases_slots_on_fin() -> None:
    with start_refapp(defects=["sse-leak-on-rst-only"]) as proc:
        assert trio.run(_subscribe_and_leave, proc.port, 80, False) == 200
        assert trio.run(_subscribe_and_leave, proc.port, 80, True) == 503


def test_descriptor_leak_on_mid_header_departures_is_caught() -> None:
    with start_refapp(defects=["fd-leak-mid-header"]) as proc:
        report = _run(probe_connections, proc.url, "/healthz", grace_s=2.0)
    assert report["verdict"] == "violation", report
    assert report["baseline_status"] == 200
    assert report["broke_at"] in (256, 1024)  # a third of a burst leaves mid-header


def test_nginx_stays_silent(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _):
        conn = _run(probe_connections, url, "/", grace_s=3.0)
        sse = _run(probe_sse, url, "/events", grace_s=0.5)
    assert conn["verdict"] == "pass", conn
    assert sse["verdict"] == "unjudged" and "another status" in sse["reason"], sse


def test_a_slow_sync_server_that_drains_its_backlog_is_not_a_leak() -> None:
    """gunicorn, one sync worker, a 0.1 s handler: the burst's mid-body clients queue about
    2 s of handler runs, longer than the 1 s grace. Slow, not leaking: the confirmation
    keeps asking and the probe passes (before it, this was a false I-CONN-LEAK)."""
    if importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}",
                             "-w", "1", "--log-level", "error",
                             "tests.conformance_apps:slow_wsgi_app"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 20)
        report = _run(probe_connections, f"http://127.0.0.1:{port}/", "/", grace_s=1.0,
                      max_burst=64)
    finally:
        proc.terminate()
        proc.wait(10)
    assert report["verdict"] == "pass", report
    burst = report["bursts"][0]
    assert burst["waited_s"] > 1.0 and burst["confirm_s"] >= 1.0, report


# -- end to end: `assay run --target` of a refapp we started (no pid, no stats) ------------

@pytest.mark.integration
def test_run_catches_descriptor_leak_without_pid_or_stats(tmp_path: Path) -> None:
    with start_refapp(defects=["fd-leak-mid-header"]) as proc:
        result = assay("run", "--target", f"{proc.url}/healthz", "--duration", "4s",
                       "--procs", "1", "--concurrency", "6", "--slices", "markov,sse",
                       "--leak-probe-grace", "2s", "--results", str(tmp_path), "--no-shrink")
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert document["target"]["pid"] is None
    assert invariant_status(document, "I-CONN-LEAK") == "failed"
    assert invariant_status(document, "I-SSE-LEAK") != "failed"  # this defect leaks no slot
    probes = document["leak_probes"]
    assert probes["conn"]["verdict"] == "violation" and probes["sse"]["verdict"] == "pass"
    assert probes["counters"]["probe.conn_leak"] == 1
    assert probes["runs"][0]["conn"]["broke_at"] in (256, 1024)
    assert "I-CONN-LEAK" in result.stdout


@pytest.mark.integration
def test_run_with_probes_off_says_why_not_judged(tmp_path: Path) -> None:
    with start_refapp() as proc:
        result = assay("run", "--target", f"{proc.url}/healthz", "--duration", "2s",
                       "--procs", "1",
                       "--concurrency", "2", "--slices", "markov", "--leak-probes", "off",
                       "--results", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert invariant_status(document, "I-CONN-LEAK") == "not_judged"
    reasons = {e["id"]: e["reason"] for e in document["invariants"]["not_judged"]}
    assert "--leak-probes off" in reasons["I-CONN-LEAK"]
    assert document["leak_probes"]["runs"] == []


def test_periodic_probes_run_while_walkers_would_and_record_each_run() -> None:
    from types import SimpleNamespace

    from coordinator.leak_probe_runs import LeakProbes

    config = SimpleNamespace(leak_probes=True, leak_probe_interval_s=0.3, leak_probe_sse_cap=16,
                             leak_probe_grace_s=1.0, leak_probe_max_burst=64, mode="soak")
    counters: dict[str, int] = {}
    trips: list[str] = []
    with start_refapp() as proc:
        inputs = SimpleNamespace(target_url=proc.url, health_path="/healthz",
                                 settings={"sse_path": "/events"}, not_run={},
                                 walker_plan=SimpleNamespace(per_slice={"sse": 2, "markov": 4}))
        probes = LeakProbes(config, inputs, counters, {}, lambda c, d: trips.append(c))
        assert probes.not_judged()["probe"].startswith("the leak probes have not run")

        async def soak_for_a_moment() -> None:
            with trio.move_on_after(4.0):
                await probes.periodic()

        trio.run(soak_for_a_moment)
    section = probes.section()
    assert section["runs_total"] >= 1 and trips == []
    assert all(run["when"] == "periodic" for run in section["runs"])
    finished = [run for run in section["runs"] if not run.get("cut_short")]
    assert len(finished) == section["runs_total"]
    assert section["runs"][0]["sse"]["tolerance"] == 2  # the sse walkers' own subscriptions
    assert section["conn"]["verdict"] == "pass" and probes.not_judged() == {}
    # (the soak's end may cut a run short after its SSE probe was counted)
    assert counters["probe.conn.judged"] >= section["runs_total"]
    assert section["counters"]["probe.sse.opened_first"] >= 16 * section["runs_total"]


def test_a_target_that_is_down_is_not_probed_at_the_end() -> None:
    """A dead target cannot answer: its death has its own verdict (I-LIVENESS), and probing
    it would only wait out every grace period."""
    from types import SimpleNamespace

    from coordinator.leak_probe_runs import LeakProbes

    config = SimpleNamespace(leak_probes=True, leak_probe_interval_s=None, leak_probe_sse_cap=16,
                             leak_probe_grace_s=10.0, leak_probe_max_burst=64, mode="run")
    inputs = SimpleNamespace(target_url="http://127.0.0.1:9/", health_path="/",
                             settings={}, not_run={},
                             walker_plan=SimpleNamespace(per_slice={"sse": 1}))
    probes = LeakProbes(config, inputs, {}, {}, lambda c, d: None)

    async def end() -> float:
        began = trio.current_time()
        await probes.end_of_run(lambda: False, lambda: "target process 7 has exited")
        return trio.current_time() - began

    assert trio.run(end) < 1.0
    section = probes.section()
    assert section["runs_total"] == 0
    for probe in ("sse", "conn"):
        assert section[probe]["verdict"] == "unjudged"
        assert "the target is down (target process 7 has exited)" in section[probe]["reason"]
    assert probes.not_judged()["probe"].startswith("the target is down")


def test_soak_probes_every_ten_minutes_by_default_and_run_never() -> None:
    from types import SimpleNamespace

    from coordinator.leak_probe_runs import LeakProbes

    inputs = SimpleNamespace(target_url="http://127.0.0.1:1", health_path="/", settings={},
                             not_run={"sse": "not judged: no /events route (404)"},
                             walker_plan=SimpleNamespace(per_slice={"markov": 1}))

    def probes(mode: str, interval: float | None) -> LeakProbes:
        config = SimpleNamespace(leak_probes=True, leak_probe_interval_s=interval,
                                 leak_probe_sse_cap=256, leak_probe_grace_s=10.0,
                                 leak_probe_max_burst=1024, mode=mode)
        return LeakProbes(config, inputs, {}, {}, lambda c, d: None)

    assert probes("soak", None).interval_s == 600.0
    assert probes("run", None).interval_s is None
    assert probes("soak", 0.0).interval_s is None  # --leak-probe-interval off
    assert probes("run", 120.0).interval_s == 120.0
    assert probes("run", None).section()["sse"]["reason"] == "not judged: no /events route (404)"


def test_leak_probe_settings_parse_and_refuse_bad_values() -> None:
    from coordinator.config import ConfigError, build_config

    def cfg(**flags: str):
        return build_config(flags, None, {})

    assert cfg(leak_probe_interval="off").leak_probe_interval_s == 0.0
    assert cfg(leak_probe_interval="10m").leak_probe_interval_s == 600.0
    assert cfg(leak_probes="off").leak_probes is False
    assert build_config({}, None, {"ASSAY_LEAK_PROBE_GRACE": "3s"}).leak_probe_grace_s == 3.0
    for bad in ({"leak_probe_sse_cap": "0"}, {"leak_probe_sse_cap": "99999"},
                {"leak_probe_grace": "10m"}, {"leak_probe_interval": "soon"},
                {"leak_probe_max_burst": "lots"}, {"leak_probes": "maybe"}):
        with pytest.raises(ConfigError):
            cfg(**bad)
