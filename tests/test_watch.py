"""``assay watch``'s pure parts: records, shards, CSV, failure windows, health, verdicts."""

from __future__ import annotations

import json

from protocols import watch_records, watch_report
from protocols.watch_records import NONE, WatchPlan, WatchRecord
from protocols.watch_report import BackendHealth, HealthSample


def _rec(at: int, client: int, result: str = "200", front: int = 1000, backend: int = 1,
         back: int = 2000, seq: int = 0) -> WatchRecord:
    return WatchRecord(at, client, seq or at, result, front, backend, back)


def test_shards_merge_in_time_order_and_skip_a_cut_line() -> None:
    a = [watch_records.shard_line(_rec(30, 0)), watch_records.shard_line(_rec(10, 0))]
    b = [watch_records.shard_line(_rec(20, 1, "eof", NONE, NONE, NONE)), '[1, 2, "2']
    merged = watch_records.merge([a, b])
    assert [r.at_us for r in merged] == [10, 20, 30]
    assert merged[1] == _rec(20, 1, "eof", NONE, NONE, NONE)
    line = watch_records.csv_line(merged[0], 4)
    assert line == "6,0,10,200,1000,1,2000,0\n"
    assert watch_records.CSV_HEADER.count(",") == line.count(",")


def test_answer_of_reads_the_backend_json_or_the_header() -> None:
    body = json.dumps({"backend": 3, "client_port": 5555}).encode()
    assert watch_records.answer_of(body, None) == (3, 5555)
    assert watch_records.answer_of(b"<html>502</html>", b"4") == (4, NONE)
    assert watch_records.answer_of(b"", None) == (NONE, NONE)


def test_plan_splits_clients_and_rate() -> None:
    plan = WatchPlan(clients=5, rate_per_s=50.0, duration_s=1.0, path="/", timeout_s=1.0,
                     shard_dir="x", backend_ports=(1, 2))
    assert [list(plan.client_ids(r, 2)) for r in range(2)] == [[0, 2, 4], [1, 3]]
    assert plan.interval_s() == 0.1 and plan.offset_s(4) == 0.08
    assert WatchPlan.from_wire(plan.to_wire()) == plan
    request = watch_records.build_request("/p", "h:1", 3, 9)
    assert b"X-Assay-Client: 3\r\n" in request and b"X-Assay-Seq: 9\r\n" in request


def test_windows_close_at_a_success_and_excuse_failures_with_no_backend_up() -> None:
    records = [_rec(1, 0), _rec(2, 1, "502", backend=NONE, back=NONE),
               _rec(3, 0, "eof", NONE, NONE, NONE), _rec(4, 1), _rec(10, 0, "refused"),
               _rec(11, 1)]
    # Both backends down from 9 to 12: the failure at 10 is not the proxy's.
    health = BackendHealth((1, 2), [HealthSample(0, 1, True), HealthSample(9, 1, False),
                                    HealthSample(5, 2, False), HealthSample(12, 1, True)])
    windows = watch_report.failure_windows(records, health)
    assert [(w.start_us, w.end_us, w.count, w.counted) for w in windows] == [
        (2, 3, 2, 2), (10, 10, 1, 0)]
    assert windows[0].causes == {"502": 1, "eof": 1}
    block = watch_report.report(records, health, 0)
    assert (block["failed"], block["failed_counted"], block["ok"]) == (3, 2, 3)
    assert block["verdicts"][0]["status"] == "failed" and not block["ok_verdict"]
    quiet = watch_report.report([r for r in records if r.at_us >= 10], health, 0)
    assert quiet["ok_verdict"] and quiet["failed_while_no_backend_up"] == 1


def test_health_without_ports_or_probes_never_excuses() -> None:
    assert BackendHealth((), []).any_up(5)
    assert BackendHealth((7,), []).any_up(5)
    before_first = BackendHealth((7,), [HealthSample(10, 7, False)])
    assert not before_first.any_up(5)
    # Down seen 50 µs after the request, within the probe's 100 µs blind spot: not up.
    died = BackendHealth((7,), [HealthSample(0, 7, True), HealthSample(150, 7, False)], 100)
    assert died.any_up(10) and not died.any_up(60) and not died.any_up(200)


def test_changes_and_backends_over_time() -> None:
    records = [_rec(0, 0, front=1, back=5), _rec(1, 1, front=2, back=6),
               _rec(2, 0, front=1, back=7, backend=2),
               _rec(3, 0, "eof", NONE, NONE, NONE), _rec(1_500_000, 0, front=3, back=7)]
    assert watch_report.changes(records) == (1, 1)
    assert watch_report.backends_over_time(records, 0) == [
        {"from_s": 0.0, "backends": {"1": 2, "2": 1}}, {"from_s": 1.0, "backends": {"1": 1}}]
    block = watch_report.report(records, BackendHealth((), []), 0)
    assert block["backends"]["2"] == {"requests": 1, "share": 0.2, "first_us": 2,
                                      "last_us": 2}
    assert block["verdicts"][1]["status"] == "reconnected"
    assert any("backend 2" in line for line in watch_report.render(block))


def test_live_line() -> None:
    line = watch_report.live_line({"watch.ok": 3, "watch.failed": 1, "watch.backend.0": 1,
                                   "watch.backend.1": 3, "watch.front_changed": 2})
    assert line == "ok 3  failed 1  front changed 2  back changed 0  | 0: 25%  1: 75%"


def test_shard_tail_reads_whole_lines_once(tmp_path) -> None:
    from coordinator.watch_run import ShardTail

    shard = tmp_path / "actor-0-walker-0.jsonl"
    first, second = (watch_records.shard_line(_rec(at, 0)) for at in (5, 6))
    shard.write_text(first + second[:7])
    tail = ShardTail(tmp_path)
    assert [r.at_us for r in tail.read()] == [5]
    with open(shard, "a") as more:
        more.write(second[7:])
    assert [r.at_us for r in tail.read()] == [6] and tail.read() == []
