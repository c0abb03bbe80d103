"""Long-run pieces without processes: restart policy, target restarts, checkpoints and resume,
log rotation, merger retirement, the fast latency summary."""

from __future__ import annotations

import gc
import json
import os
import random
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from hdrh.histogram import HdrHistogram

from coordinator import checkpoint, longrun, run_document
from coordinator.config import RunConfig
from coordinator.logrotate import RotatingFile, copytruncate
from coordinator.planning import plan_walkers
from coordinator.resources import TargetWatch
from coordinator.restarts import RestartPolicy
from coordinator.run import Coordinator
from coordinator.run_state import ActorRecord, Phase, RunInputs
from coordinator.soak import announce
from coordinator.target_restarts import MAX_EPISODES, Probe, TargetRestarts
from protocols.tally import Tally, TallyMerger, latency_summary, new_histogram


# -- restart policy -------------------------------------------------------------------------
def test_restarts_are_allowed_up_to_the_limit_per_sliding_hour():
    policy = RestartPolicy(max_per_hour=2)
    assert policy.allow(0.0) and policy.allow(10.0)
    assert not policy.allow(20.0)  # third within the hour: storm
    later = RestartPolicy(max_per_hour=2)
    assert later.allow(0.0) and later.allow(10.0)
    assert later.allow(3601.0)  # the first one left the window
    assert later.in_window(3601.0) == 2


def test_restart_window_survives_a_resume():
    policy = RestartPolicy(max_per_hour=2)
    policy.allow(100.0)
    policy.allow(200.0)
    resumed = RestartPolicy(max_per_hour=2)
    resumed.restore(json.loads(json.dumps(policy.to_state())))
    assert not resumed.allow(300.0) and resumed.total == 3
    assert "max-restarts-per-hour 2" in resumed.storm_message(0, "killed by SIGKILL", 300.0)


# -- target restarts ------------------------------------------------------------------------
def test_pid_change_is_a_restart():
    tracker = TargetRestarts(pid=100)
    assert tracker.observe(0.0, Probe.UP, pid_alive=True) is None
    assert tracker.observe(1.0, Probe.UP, pid_alive=False) is None  # dead, nobody listens
    assert tracker.down
    assert tracker.observe(2.0, Probe.REFUSED, pid_alive=False) is None
    episode = tracker.observe(3.5, Probe.UP, pid_alive=False, replacement_pid=200)
    assert episode is not None
    assert episode["kind"] == "restart" and episode["old_pid"] == 100
    assert episode["new_pid"] == 200 and episode["down_s"] == 2.5
    assert tracker.pid == 200 and not tracker.down
    assert tracker.counters == {"coord.target_outages": 1, "coord.target_restarts": 1,
                                "coord.target_down_ms": 2500}


def test_refused_then_back_on_the_same_pid_is_an_outage():
    tracker = TargetRestarts(pid=100)
    tracker.observe(0.0, Probe.REFUSED, pid_alive=True)
    episode = tracker.observe(2.0, Probe.UP, pid_alive=True)
    assert episode["kind"] == "outage" and tracker.counters.get("coord.target_restarts") is None


def test_without_a_pid_refused_then_back_counts_as_a_restart():
    tracker = TargetRestarts(pid=None)
    tracker.observe(0.0, Probe.UNKNOWN)
    tracker.observe(1.0, Probe.REFUSED)
    tracker.observe(2.0, Probe.UNKNOWN)  # timeouts say nothing
    assert tracker.down
    episode = tracker.observe(3.0, Probe.UP)
    assert episode["kind"] == "restart" and episode["old_pid"] is None


def test_episodes_are_bounded_but_counted():
    tracker = TargetRestarts(pid=None)
    for i in range(MAX_EPISODES + 10):
        tracker.observe(2.0 * i, Probe.REFUSED)
        tracker.observe(2.0 * i + 1, Probe.UP)
    report = tracker.report(1e6)
    assert report["restarts"] == MAX_EPISODES + 10
    assert len(report["episodes"]) == MAX_EPISODES and report["episodes_truncated"]


# -- target watch (no process reads) --------------------------------------------------------
def test_resource_oracles_say_why_they_are_not_judged():
    health = SimpleNamespace(last=None)
    no_pid = TargetWatch(health, None, 80)  # type: ignore[arg-type]
    assert "pid unknown" in no_pid.not_judged()["res"]
    short = TargetWatch(health, os.getpid(), 80, warmup_s=60, bucket_s=60)  # type: ignore[arg-type]
    short.tick()
    assert "too short" in short.not_judged()["res"]
    assert short.report()["judged"] is False and short.samples == 1


def test_resource_oracle_trips_once_on_a_growing_metric():
    health = SimpleNamespace(last=None)
    now = [0.0]
    watch = TargetWatch(health, os.getpid(), 80, warmup_s=1, bucket_s=1,  # type: ignore[arg-type]
                        clock=lambda: now[0])
    tripped = []
    hoard = []
    for second in range(20):
        now[0] = float(second)
        hoard.extend(os.open(os.devnull, os.O_RDONLY) for _ in range(10))
        watch.tick(lambda counter, detail: tripped.append(counter))
    for fd in hoard:
        os.close(fd)
    assert tripped == ["res.fds_growing"]
    assert watch.counters["res.fds_growing"] == 1 and watch.not_judged() == {}


# -- checkpoints and resume -----------------------------------------------------------------
def make_coordinator(tmp_path: Path, config: RunConfig | None = None) -> Coordinator:
    plan = plan_walkers(2, 2, ["markov"], {"markov": 60})
    inputs = RunInputs(target_url="http://127.0.0.1:9/", label="t", health_path="/",
                       target_pid=None, builtin=False, settings={"markov": {"x": 1}},
                       enabled_slices=["markov"], not_run={}, walker_plan=plan, seed=1)
    return Coordinator(config or RunConfig(mode="soak", seed=1, procs=2, duration_s=3600),
                       inputs, tmp_path)


def test_config_round_trips_through_its_json():
    config = RunConfig(mode="soak", seed=9, procs=3, slices=("markov", "adv"),
                       spec=Path("s.yaml"), duration_s=3600, restart_actors=True)
    assert checkpoint.config_from_json(json.loads(json.dumps(config.to_json()))) == config


def test_conflicts_name_the_flag_and_ignore_cosmetic_settings():
    stored = RunConfig(mode="soak", seed=9, procs=2, duration_s=3600)
    cosmetic = replace(stored, log_format="json", progress_interval_s=1, target_pid=5,
                       results_dir=Path("/elsewhere"), checkpoint_interval_s=5)
    assert checkpoint.conflicts(stored, cosmetic) == []
    assert checkpoint.config_digest(stored) == checkpoint.config_digest(cosmetic)
    found = checkpoint.conflicts(stored, replace(stored, duration_s=7200, concurrency=99))
    assert found[0].startswith("--concurrency 99 conflicts") and "--duration 7200" in found[1]


def test_checkpoint_then_resume_adds_new_incarnations_on_top(tmp_path: Path):
    first = make_coordinator(tmp_path)
    first.merger.accept(0, 0, 5, {"markov.requests": 100}, {})
    first.merger.accept(1, 0, 5, {"markov.requests": 50}, {})
    first.health.counters["coord.health_probes"] = 12
    first.trips["adv.desync"] = {"invariant": "I-ADV-DESYNC"}
    first.actors[0].incarnations, first.actors[0].restarts = 2, 1
    first.restart_policy.allow(1.0)
    first.run_started = 1000.0
    document = {"status": "running", "exit_code": None, "elapsed_s": 42.5}
    data = json.loads(json.dumps(checkpoint.build(first, document), default=str))

    second = make_coordinator(tmp_path)
    checkpoint.resume_into(second, data, tmp_path)
    assert second.run_id == first.run_id and second.elapsed_before == 42.5
    assert second.counters()["markov.requests"] == 150
    assert second.counters()["coord.health_probes"] == 12
    assert "adv.desync" in second.trips
    # actor 0 had incarnations 0 and 1: the resumed process is incarnation 2
    assert second.actors[0].incarnations - 1 == 2 and second.actors[0].restarts == 1
    assert second.actors[1].incarnations - 1 == 1
    second.merger.accept(0, 2, 1, {"markov.requests": 7}, {})
    assert second.counters()["markov.requests"] == 157  # on top, never instead
    resume = second.resumes[-1]
    assert resume["elapsed_at_resume_s"] == 42.5
    assert resume["remaining_s"] == pytest.approx(3600 - 42.5)
    assert resume["run_started_at"] == 1000.0
    sections = longrun.sections(second, 0.0)
    assert sections["resume"]["resumed"] and sections["soak"]["remaining_s"] > 0
    assert second.restart_policy.total == 1


def test_resume_refuses_changed_inputs(tmp_path: Path):
    first = make_coordinator(tmp_path)
    data = json.loads(json.dumps(checkpoint.build(first, {"status": "running",
                                                          "elapsed_s": 1.0}), default=str))
    second = make_coordinator(tmp_path)
    second.inputs.settings["markov"] = {"x": 2}
    with pytest.raises(checkpoint.ResumeError, match="changed since the soak started"):
        checkpoint.resume_into(second, data, tmp_path)


def test_only_soaks_write_checkpoints(tmp_path: Path):
    plain = make_coordinator(tmp_path, RunConfig(seed=1, procs=2))
    longrun.on_results_write(plain, {"status": "running", "elapsed_s": 0})
    assert not (tmp_path / checkpoint.CHECKPOINT_FILE).exists()
    soak = make_coordinator(tmp_path)
    longrun.on_results_write(soak, {"status": "running", "elapsed_s": 0})
    assert checkpoint.load(tmp_path)["mode"] == "soak"


# -- actor restart glue ---------------------------------------------------------------------
class FakeFleet:
    def __init__(self) -> None:
        self.spawned: list[tuple[int, int]] = []

    def spawn(self, actor_id: int, incarnation: int = 0) -> SimpleNamespace:
        self.spawned.append((actor_id, incarnation))
        return SimpleNamespace(pid=4242)


def dead(actor_id: int) -> SimpleNamespace:
    return SimpleNamespace(actor_id=actor_id, expected_exit=False, returncode=-9, pid=1)


def test_a_dead_actor_comes_back_as_its_next_incarnation(tmp_path: Path):
    coord = make_coordinator(tmp_path, RunConfig(mode="soak", seed=1, procs=2,
                                                 restart_actors=True, max_restarts_per_hour=1))
    coord.fleet = FakeFleet()  # type: ignore[assignment]
    coord.phase = Phase.RUNNING
    record = coord.actors[0]
    record.exit, record.final, record.bye = "killed by SIGKILL", True, True
    assert longrun.restart_actor(coord, dead(0))
    assert coord.fleet.spawned == [(0, 1)]
    assert (record.incarnations, record.restarts, record.exit, record.final) == (2, 1, None,
                                                                                False)
    assert record.restart_history[0]["previous"] == "killed by SIGKILL"
    coord.actors[1].exit = "exit status 1"
    assert longrun.restart_actor(coord, dead(1))  # the second in an hour: a storm
    assert coord.failure is not None and "restart storm" in coord.failure
    assert coord.fleet.spawned == [(0, 1)]


def test_restarts_are_off_unless_asked(tmp_path: Path):
    coord = make_coordinator(tmp_path, RunConfig(seed=1, procs=2))
    coord.phase = Phase.RUNNING
    coord.actors[0].exit = "killed by SIGKILL"
    assert not longrun.restart_actor(coord, dead(0))


def test_actor_record_counts_incarnations_from_one():
    assert ActorRecord(0).incarnations - 1 == 0


# -- merger retirement ----------------------------------------------------------------------
def _snap(requests: int, latency_us: int) -> tuple[dict, dict, dict]:
    tally = Tally()
    tally.incr("markov.requests", requests)
    for _ in range(requests):
        tally.record_latency("markov.latency", latency_us)
    tally.keep_example("markov.requests", {"n": requests})
    return tally.snapshot()


def test_a_restarted_incarnation_retires_its_predecessor_without_losing_counts():
    merger = TallyMerger()
    merger.accept(0, 0, 3, *_snap(10, 1000))
    merger.accept(1, 0, 3, *_snap(5, 1000))
    merger.accept(0, 1, 1, *_snap(4, 2000))
    assert list(merger.sources()) == [(1, 0), (0, 1)]  # (0, 0) folded
    assert merger.counters()["markov.requests"] == 19
    assert merger.counters_of_actor(0)["markov.requests"] == 14
    assert merger.histograms()["markov.latency"].get_total_count() == 19
    assert merger.examples()["markov.requests"] == {"n": 10}
    assert not merger.accept(0, 0, 4, {"markov.requests": 999}, {})  # late, dead: ignored
    assert merger.late_frames == 1 and merger.seq_of(0, 0) == 3
    clone = TallyMerger.from_state(json.loads(json.dumps(merger.to_state())))
    assert clone.counters() == merger.counters()
    assert clone.incarnations_of(0) == [0, 1]
    assert clone.histograms()["markov.latency"].get_total_count() == 19


# -- fast latency summary -------------------------------------------------------------------
def _slow_summary(hist: HdrHistogram) -> dict[str, float]:
    return {"count": hist.get_total_count(),
            "p50_ms": hist.get_value_at_percentile(50) / 1000,
            "p90_ms": hist.get_value_at_percentile(90) / 1000,
            "p99_ms": hist.get_value_at_percentile(99) / 1000,
            "p99_9_ms": hist.get_value_at_percentile(99.9) / 1000,
            "max_ms": hist.get_max_value() / 1000,
            "min_ms": hist.get_min_value() / 1000,
            "mean_ms": round(hist.get_mean_value() / 1000, 3)}


def test_latency_summary_matches_hdrh_on_random_histograms():
    rng = random.Random(11)
    for _ in range(10):
        hist = new_histogram()
        for _ in range(rng.randint(1, 500)):
            hist.record_value(max(1, int(rng.lognormvariate(8, 2))), rng.randint(1, 4))
        for candidate in (hist, HdrHistogram.decode(hist.encode())):
            assert latency_summary(candidate) == _slow_summary(candidate)


# -- logs -----------------------------------------------------------------------------------
def test_rotating_file_keeps_at_most_backups_plus_one_files(tmp_path: Path):
    path = tmp_path / "coordinator.log"
    sink = RotatingFile(path, max_bytes=100, backups=2)
    for i in range(50):
        sink.write(f"line {i:03d} " + "x" * 30 + "\n")
        sink.flush()
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["coordinator.log", "coordinator.log.1", "coordinator.log.2"]
    for name in files:
        text = (tmp_path / name).read_text()
        assert len(text) <= 100 + 41 and all(line.startswith("line ") for line in
                                             text.splitlines())
    assert "line 049" in (tmp_path / "coordinator.log").read_text() + (
        tmp_path / "coordinator.log.1").read_text()


def test_copytruncate_rotates_a_file_another_writer_appends_to(tmp_path: Path):
    path = tmp_path / "actor-0.log"
    with open(path, "ab") as writer:  # the actor's O_APPEND descriptor
        writer.write(b"a" * 200)
        writer.flush()
        assert not copytruncate(path, max_bytes=1000, backups=2)
        assert copytruncate(path, max_bytes=100, backups=2)
        writer.write(b"after\n")
        writer.flush()
    assert path.read_bytes() == b"after\n"
    assert (tmp_path / "actor-0.log.1").read_bytes() == b"a" * 200


def test_announce_writes_the_run_dir_for_launchers(tmp_path: Path):
    target = tmp_path / "home" / "run-dir"
    announce(tmp_path / "results" / "x", {"ASSAY_RUN_DIR_FILE": str(target)})
    assert target.read_text().strip() == str(tmp_path / "results" / "x")
    announce(tmp_path, {})  # unset: nothing to do


def test_results_writes_do_not_accumulate_histogram_garbage(tmp_path: Path):
    """hdrh histograms sit in reference cycles; each results write must free its own."""
    coord = make_coordinator(tmp_path)
    tally = Tally()
    for state in range(8):
        for value in range(1, 20_000, 97):
            tally.record_latency(f"markov.latency.s{state}", value)
    counters, histograms, _ = tally.snapshot()
    process = psutil.Process()
    gc.collect()
    gc.disable()  # only the explicit collection may free anything
    try:
        for seq in range(1, 31):
            for actor in (0, 1):  # a new seq makes the merger decode every histogram again
                coord.merger.accept(actor, 0, seq, counters, histograms)
            coord._write(run_document.build(coord, final=False))
            if seq == 5:
                baseline = process.memory_info().rss
        grown = process.memory_info().rss - baseline
    finally:
        gc.enable()
    # Without the collection: 25 writes x (16 decoded + 8 merged) x ~170 KiB = ~100 MiB.
    assert grown < 20 * 1024 * 1024, grown / 1e6
