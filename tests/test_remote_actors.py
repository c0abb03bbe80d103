"""Actors on other load hosts: binding, CURVE, planning, joining, loss, rejoin and resume.

"Other hosts" are simulated on loopback: the coordinator is told to plan actors it does not
spawn, and they are started by hand or through ``systemd-free-launch/remote-actors`` with a
stand-in for ssh that runs the command here. CURVE is exercised on loopback by giving keys.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
import zmq.auth

from actors import curve
from coordinator import remote_actors
from coordinator.config import ConfigError, RunConfig, build_config
from coordinator.planning import plan_walkers
from coordinator.restarts import RestartPolicy
from coordinator.run_state import ActorRecord
from protocols import wire
from protocols.tally import TallyMerger
from tests.assay_cli import ROOT, assay
from tests.servers import free_port
from tests.test_soak_launch import launch, launcher_env, requests, wait_for, wait_gone

WEIGHTS = {"markov": 60, "adv": 20, "h2c": 10, "ws": 5, "sse": 5}


# -- configuration --------------------------------------------------------------------------
@pytest.mark.parametrize("bind", ["tcp://127.0.0.1:0", "tcp://0.0.0.0:5555", "tcp://*:7000",
                                  "tcp://[::1]:0", "tcp://loadgen.example:9000"])
def test_bind_accepts_tcp_host_port(bind: str):
    assert build_config({"bind": bind}, None, {}).bind == bind


@pytest.mark.parametrize("bind", ["127.0.0.1:5555", "tcp://127.0.0.1", "ipc:///tmp/x",
                                  "tcp://127.0.0.1:65535", "tcp://a b:1", "tcp://h:port"])
def test_bind_rejects_anything_else(bind: str):
    with pytest.raises(ConfigError, match="--bind"):
        build_config({"bind": bind}, None, {})


def test_remote_actor_count_must_not_be_negative():
    assert build_config({}, None, {"ASSAY_REMOTE_ACTORS": "3"}).remote_actors == 3
    with pytest.raises(ConfigError, match="--remote-actors must be 0 or more"):
        build_config({"remote_actors": "-1"}, None, {})


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    coordinator_public, coordinator_secret = curve.generate(tmp_path / "coord", "coordinator")
    _, actor_secret = curve.generate(tmp_path / "actors", "loadhost1")
    _, stranger_secret = curve.generate(tmp_path / "other", "stranger")
    return {"coordinator": coordinator_secret, "coordinator_public": coordinator_public,
            "authorized": tmp_path / "actors", "actor": actor_secret,
            "stranger": stranger_secret}


@pytest.mark.parametrize("bind", ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.1.2.3:0",
                                  "tcp://[::]:0"])
def test_a_bind_off_loopback_needs_curve_keys(bind: str):
    with pytest.raises(ConfigError, match=r"not loopback.*without CURVE keys"):
        remote_actors.load_security(RunConfig(bind=bind))


def test_loopback_without_keys_is_plain_tcp():
    security = remote_actors.load_security(RunConfig())
    assert security.secret is None and security.public is None


def test_keys_off_loopback_are_loaded(keys: dict[str, Path]):
    config = RunConfig(bind="tcp://0.0.0.0:5555", curve_secret_key=str(keys["coordinator"]),
                       curve_authorized_keys=keys["authorized"])
    security = remote_actors.load_security(config)
    public, _ = zmq.auth.load_certificate(str(keys["coordinator_public"]))
    assert security.public == public.decode()
    assert len(security.clients) == 1


def test_half_the_keys_is_refused(keys: dict[str, Path]):
    with pytest.raises(ConfigError, match="needs both"):
        remote_actors.load_security(RunConfig(curve_secret_key=str(keys["coordinator"])))
    with pytest.raises(ConfigError, match=r"CURVE keys: .*not a directory"):
        remote_actors.load_security(RunConfig(curve_secret_key=str(keys["coordinator"]),
                                              curve_authorized_keys=keys["actor"]))
    with pytest.raises(ConfigError, match="neither a certificate file nor"):
        remote_actors.load_security(RunConfig(curve_secret_key="not-a-key",
                                              curve_authorized_keys=keys["authorized"]))


def test_a_z85_secret_is_not_written_to_the_results(keys: dict[str, Path]):
    _, secret = zmq.curve_keypair()
    as_text = RunConfig(curve_secret_key=secret.decode()).to_json()
    assert secret.decode() not in json.dumps(as_text)
    as_file = RunConfig(curve_secret_key=str(keys["coordinator"])).to_json()
    assert as_file["curve_secret_key"] == str(keys["coordinator"])


def test_keygen_writes_a_private_secret_and_never_overwrites(tmp_path: Path):
    made = assay("keygen", str(tmp_path), "--name", "coord", timeout=30)
    assert made.returncode == 0, made.stderr
    secret = tmp_path / "coord.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    again = assay("keygen", str(tmp_path), "--name", "coord", timeout=30)
    assert again.returncode == 2 and "not overwriting" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


# -- planning ---------------------------------------------------------------------------------
def test_remote_actors_get_ids_after_the_local_ones_and_their_share_of_walkers():
    plan = plan_walkers(12, 2, list(WEIGHTS), WEIGHTS, remote=2)
    assert plan.remote == (2, 3)
    assert plan.local == [0, 1]
    assert sorted(plan.per_actor) == [0, 1, 2, 3]
    assert all(len(walkers) == 3 for walkers in plan.per_actor.values())


def test_too_few_walkers_drops_local_actors_first_and_never_all():
    plan = plan_walkers(5, 8, list(WEIGHTS), WEIGHTS, remote=2)
    assert plan.remote == (3, 4) and plan.local == [0, 1, 2]
    with pytest.raises(ValueError, match="remote actors but only 5 walkers"):
        plan_walkers(5, 1, list(WEIGHTS), WEIGHTS, remote=6)
    with pytest.raises(ValueError, match="no walker for the coordinator's own actor"):
        plan_walkers(5, 1, list(WEIGHTS), WEIGHTS, remote=5)


def test_tier3_seeds_stay_on_local_actors():
    from coordinator import tier3

    plan = plan_walkers(10, 1, list(WEIGHTS), WEIGHTS, remote=1)
    with_seeds, _ = tier3.plan("pr", 4, plan, url="http://127.0.0.1:1/", builtin=True,
                               target_pid=None, health_path=None, ws_path=None, sse_path=None)
    assert with_seeds.remote == (1,)
    assert not any(name == "tier3" for _, name in with_seeds.per_actor[1])
    assert sum(name == "tier3" for _, name in with_seeds.per_actor[0]) == 4


# -- joining, loss and rejoin (the coordinator's bookkeeping) ---------------------------------
class FakeCoordinator:
    def __init__(self, restart_actors: bool = True, max_per_hour: int = 10) -> None:
        self.phase = SimpleNamespace(value="running")
        self.deadline = time.time() + 3600
        self.config = SimpleNamespace(restart_actors=restart_actors)
        self.restart_policy = RestartPolicy(max_per_hour)
        self.actors = {0: ActorRecord(0), 1: ActorRecord(1, remote=True),
                       2: ActorRecord(2, remote=True)}
        self.merger = TallyMerger()
        self.aborted: str | None = None
        self.log = SimpleNamespace(warning=lambda *a, **k: None)

    def abort(self, message: str) -> None:
        self.aborted = self.aborted or message  # as Coordinator.abort: the first cause wins


def test_a_higher_incarnation_is_a_counted_rejoin_and_a_lower_one_is_ignored():
    coord = FakeCoordinator()
    record = coord.actors[1]
    now = time.time()
    assert remote_actors.accept_hello(coord, record, 1000, "loadhost1", now)
    record.ready, record.last_heard = True, now
    assert remote_actors.accept_hello(coord, record, 1000, "loadhost1", now)  # repeated Hello
    assert record.restarts == 0
    assert not remote_actors.accept_hello(coord, record, 999, "loadhost1", now)  # stale
    assert remote_actors.accept_hello(coord, record, 2000, "loadhost2", now)
    assert (record.restarts, record.live_incarnation, record.host) == (1, 2000, "loadhost2")
    assert not record.ready and record.restart_history[0]["incarnation"] == 1
    assert remote_actors.live_incarnation(record) == 2000
    assert remote_actors.live_incarnation(coord.actors[0]) == 0


def test_a_plain_run_treats_a_rejoin_as_a_death():
    coord = FakeCoordinator(restart_actors=False)
    record = coord.actors[1]
    now = time.time()
    assert remote_actors.accept_hello(coord, record, 1000, "loadhost1", now)
    record.last_heard = now
    assert not remote_actors.accept_hello(coord, record, 2000, "loadhost1", now)
    assert coord.aborted is not None
    assert "remote actor 1 on loadhost1 was restarted" in coord.aborted
    assert "--restart-actors" in coord.aborted


def test_the_first_greeting_after_a_resume_is_not_a_restart():
    coord = FakeCoordinator()
    record = coord.actors[1]
    record.live_incarnation = 1000  # restored from the checkpoint; never heard since
    assert remote_actors.accept_hello(coord, record, 5000, "loadhost1", time.time())
    assert record.restarts == 0 and record.live_incarnation == 5000


def test_rejoins_count_towards_the_restart_storm_limit():
    coord = FakeCoordinator(max_per_hour=1)
    record = coord.actors[1]
    now = time.time()
    remote_actors.accept_hello(coord, record, 1, "h", now)
    record.last_heard = now
    assert remote_actors.accept_hello(coord, record, 2, "h", now)
    assert not remote_actors.accept_hello(coord, record, 3, "h", now)
    assert coord.aborted is not None and "restart" in coord.aborted


def test_a_silent_remote_actor_ends_a_run_with_its_host_named():
    coord = FakeCoordinator(restart_actors=False)
    record = coord.actors[1]
    record.ready, record.host, record.pid, record.live_incarnation = True, "loadhost1", 4242, 1
    now = time.time()
    record.last_heard = now - 2
    remote_actors.check_silence(coord, now)
    assert coord.aborted is None
    record.last_heard = now - remote_actors.REMOTE_SILENCE_S - 1
    remote_actors.check_silence(coord, now)
    assert coord.aborted is not None
    assert "remote actor 1 on loadhost1 (pid 4242) went silent" in coord.aborted


def test_a_silent_remote_actor_in_a_soak_is_waited_for_with_its_counts_kept():
    coord = FakeCoordinator(restart_actors=True)
    record = coord.actors[1]
    record.ready, record.host, record.live_incarnation = True, "loadhost1", 1
    record.last_heard = time.time() - 60
    remote_actors.check_silence(coord, time.time())
    assert coord.aborted is None and record.exit is not None and "silent" in record.exit


def test_silence_counts_from_the_start_not_from_an_early_ready():
    """Ready actors say nothing until Start; the last may join long after the first."""
    coord = FakeCoordinator(restart_actors=False)
    now = time.time()
    early, late = coord.actors[1], coord.actors[2]
    for record, ready_at in ((early, now - 90), (late, now - 0.5)):
        record.ready, record.live_incarnation, record.last_heard = True, 1, ready_at
    remote_actors.on_start(coord, now)
    remote_actors.check_silence(coord, now + remote_actors.REMOTE_SILENCE_S - 1)
    assert coord.aborted is None
    remote_actors.check_silence(coord, now + remote_actors.REMOTE_SILENCE_S + 1)
    assert coord.aborted is not None and "remote actor 1" in coord.aborted


def test_a_rejoiner_that_never_becomes_ready_is_lost_too():
    coord = FakeCoordinator(restart_actors=True)
    record = coord.actors[1]
    record.ready, record.live_incarnation = False, 5
    record.last_heard = time.time() - remote_actors.REMOTE_SILENCE_S - 1
    remote_actors.check_silence(coord, time.time())
    assert record.exit is not None and "silent" in record.exit


def test_a_remote_actor_with_no_final_tally_is_a_loss_not_a_warning():
    """A local actor dying in the last seconds is reaped and fails the run; a remote one
    can only be noticed by its missing final tally."""
    coord = FakeCoordinator(restart_actors=False)
    coord.phase = SimpleNamespace(value="stopping")
    coord.actors[1].final = True
    coord.actors[2].host = "loadhost2"
    remote_actors.judge_missing_finals(coord)
    assert coord.aborted == "remote actor 2 on loadhost2 sent no final tally"
    soak = FakeCoordinator(restart_actors=True)
    remote_actors.judge_missing_finals(soak)
    assert soak.aborted is None and soak.actors[1].exit == "sent no final tally"


def test_silence_in_the_last_second_is_left_to_the_finals():
    coord = FakeCoordinator(restart_actors=False)
    record = coord.actors[1]
    record.ready, record.live_incarnation, record.last_heard = True, 1, time.time() - 60
    coord.deadline = time.time() + 0.5
    remote_actors.check_silence(coord, time.time())
    assert coord.aborted is None


def test_tallies_count_only_from_an_admitted_incarnation():
    coord = FakeCoordinator()
    record = coord.actors[1]
    record.live_incarnation = 2000
    assert remote_actors.known_incarnation(coord, record, 2000)
    assert not remote_actors.known_incarnation(coord, record, 1500)  # never greeted
    assert not remote_actors.known_incarnation(coord, record, 3000)  # not greeted yet
    coord.merger.accept(1, 1500, 1, {"markov.requests": 5}, {})
    assert remote_actors.known_incarnation(coord, record, 1500)  # late frames of a known one


@pytest.mark.parametrize(("reason", "status"), [
    ("deadline", 0), ("interrupted", 0), ("SIGTERM", 0), (None, 4),
    ("coordinator silent", 4), (f"interrupted {wire.RESUMABLE}", 4),
    (f"aborted {wire.RESUMABLE}", 4)])
def test_an_actor_exits_4_when_its_launcher_should_start_it_again(reason: str | None,
                                                                  status: int):
    from actors.actor_lifecycle import exit_status

    assert exit_status(reason) == status


# -- the ssh plan -----------------------------------------------------------------------------
def fleet_doc(curve_key: str | None = None) -> dict[str, Any]:
    def args(n: int) -> list[str]:
        found = ["--pull", "tcp://coord:5555", "--pub", "tcp://coord:5556", "--actor-id", str(n),
                 "--incarnation", "auto"]
        if curve_key:
            found += ["--server-key", curve_key, "--secret-key",
                      remote_actors.SECRET_PLACEHOLDER]
        return found
    return {"actor_args": {"2": args(2), "3": args(3), "4": args(4)},
            "curve_server_key": curve_key}


def test_ssh_plan_deals_actors_round_robin_with_the_key_filled_in():
    plan = remote_actors.ssh_plan(fleet_doc("k" * 40), ["a", "b"], secret_key="/keys/x secret",
                                  remote_repo="/opt/assay/", respawn=3, home="h",
                                  python="/opt/py/bin/python")
    assert [host for host, _ in plan] == ["a", "b", "a"]
    command = plan[1][1]
    assert command.startswith("/opt/assay/systemd-free-launch/actor-host start --home h "
                              "--respawn 3 --python /opt/py/bin/python --pull tcp://coord:5555")
    assert "--actor-id 3" in command and "'/keys/x secret'" in command
    assert remote_actors.SECRET_PLACEHOLDER not in command


def test_ssh_plan_refuses_what_cannot_work():
    with pytest.raises(remote_actors.FleetFileError, match="give --secret-key"):
        remote_actors.ssh_plan(fleet_doc("k" * 40), ["a"], secret_key=None, remote_repo="/r",
                               respawn=1, home="h")
    with pytest.raises(remote_actors.FleetFileError, match="lists no remote actors"):
        remote_actors.ssh_plan({}, ["a"], secret_key=None, remote_repo="/r", respawn=1,
                               home="h")
    with pytest.raises(remote_actors.FleetFileError, match="at least one load host"):
        remote_actors.ssh_plan(fleet_doc(), [], secret_key=None, remote_repo="/r", respawn=1,
                               home="h")


# -- an actor started by hand -----------------------------------------------------------------
def python_actors(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in (curve.SERVER_KEY_ENV, curve.SECRET_KEY_ENV):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "actors", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_an_actor_refuses_a_remote_coordinator_without_keys(keys: dict[str, Path]):
    # Refused before any socket is made: nothing is sent to 10.0.0.1.
    done = python_actors("--pull", "tcp://10.0.0.1:5555", "--pub", "tcp://10.0.0.1:5556",
                         "--actor-id", "1")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("give --server-key and --secret-key")
    half = python_actors("--pull", "tcp://127.0.0.1:1", "--pub", "tcp://127.0.0.1:2",
                         "--actor-id", "1", "--secret-key", str(keys["actor"]))
    assert half.returncode == 2 and "needs both" in half.stderr


def test_an_actor_with_no_coordinator_gives_up_in_one_line():
    done = python_actors("--pull", f"tcp://127.0.0.1:{free_port()}", "--pub",
                         f"tcp://127.0.0.1:{free_port()}", "--actor-id", "1",
                         "--greeting-timeout", "1")
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1] == \
        "actor 1: no plan from the coordinator within 1 s"
    assert "Traceback" not in done.stderr


def free_port_pair() -> int:
    """A port P with P+1 free too (the coordinator binds both)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair")


# -- end to end -------------------------------------------------------------------------------
def start_coordinator(results: Path, *flags: str, mode: str = "run") -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "coordinator", mode, "--results",
                             str(results), *flags], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def fleet_file(results: Path) -> dict[str, Any]:
    found = wait_for(lambda: list(results.glob("*/fleet.json")), 60, "fleet.json")
    return json.loads(found[0].read_text())


def fake_ssh(tmp_path: Path) -> str:
    """Stands in for ssh: runs the remote command here (argument 1 is the host), in a clean
    environment as an ssh session would (no ASSAY_* variables, no PYTHONPATH)."""
    script = tmp_path / "fake-ssh"
    script.write_text('#!/bin/sh\necho "fake-ssh to $1" >&2\nshift\n'
                      'exec env -i PATH="$PATH" HOME="$HOME" sh -c "$1"\n')
    script.chmod(0o755)
    return str(script)


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"coordinator did not finish:\n{out[-3000:]}") from None
    return process.returncode, out


def only_run_dir(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.integration
def test_curve_admits_the_authorized_remote_actor_and_nobody_else(tmp_path: Path,
                                                                  keys: dict[str, Path]):
    results = tmp_path / "results"
    coordinator = start_coordinator(
        results, "--procs", "1", "--remote-actors", "1", "--concurrency", "6", "--duration",
        "6s", "--remote-ready-timeout", "60s", "--curve-secret-key", str(keys["coordinator"]),
        "--curve-authorized-keys", str(keys["authorized"]))
    try:
        fleet = fleet_file(results)
        assert fleet["curve_server_key"] and fleet["remote_actor_ids"] == [1]
        args = [keys["stranger"] if a == remote_actors.SECRET_PLACEHOLDER else a
                for a in fleet["actor_args"]["1"]]
        stranger = python_actors(*map(str, args), "--greeting-timeout", "3")
        assert stranger.returncode == 3, stranger.stderr  # ZAP never let it in
        assert "no plan from the coordinator" in stranger.stderr
        env = launcher_env(tmp_path / "home")
        env["ASSAY_SSH"] = fake_ssh(tmp_path)
        env["ASSAY_REMOTE_HOME"] = str(tmp_path / "actor-home")
        started = launch("remote-actors", "--hosts", "loadhost1", "--fleet",
                         str(only_run_dir(results) / "fleet.json"), "--secret-key",
                         str(keys["actor"]), "--python", sys.executable, env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "actor 1 started" in started.stdout
        code, out = finish(coordinator, 90)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    assert code == 0, out[-3000:]
    document = json.loads((only_run_dir(results) / "validate-results.json").read_text())
    local, remote = document["actors"]
    assert not local["remote"] and local["final"]  # the local actor spoke CURVE too
    assert remote["remote"] and remote["final"] and remote["bye"] and remote["host"]
    assert remote["live_incarnation"] > 10**12  # --incarnation auto: milliseconds
    assert requests(document) > 0
    secret_text = keys["coordinator"].read_text()
    assert secret_text.split('secret-key = "')[1][:40] not in json.dumps(document)
    # actor-host saw its actor end normally and did not re-launch it
    wait_for(lambda: not list((tmp_path / "actor-home").glob("actor-*.pid")), 20,
             "actor-host to finish")
    log = (tmp_path / "actor-home" / "actor-1.log").read_text()
    assert log.count("actor exited with status 0") == 1


@pytest.mark.integration
def test_a_remote_actor_that_never_comes_ends_the_run_with_exit_3(tmp_path: Path):
    results = tmp_path / "results"
    coordinator = start_coordinator(results, "--procs", "1", "--remote-actors", "2",
                                    "--concurrency", "6", "--duration", "5s",
                                    "--remote-ready-timeout", "2s")
    code, out = finish(coordinator, 60)
    assert code == 3, out[-3000:]
    document = json.loads((only_run_dir(results) / "validate-results.json").read_text())
    assert "remote actor(s) 1, 2 never reported ready" in document["error"]
    assert "fleet.json" in document["error"]


@pytest.mark.integration
def test_a_remote_actor_killed_mid_run_is_reported_and_ends_the_run(tmp_path: Path):
    results = tmp_path / "results"
    coordinator = start_coordinator(results, "--procs", "1", "--remote-actors", "1",
                                    "--concurrency", "6", "--duration", "60s")
    actor = None
    try:
        fleet = fleet_file(results)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        actor = subprocess.Popen([sys.executable, "-m", "actors", *fleet["actor_args"]["1"]],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        run_dir = only_run_dir(results)
        wait_for(lambda: requests(json.loads((run_dir / "validate-results.json")
                                             .read_text())) > 0, 40, "traffic")
        os.kill(actor.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        code, out = finish(coordinator, 60)
        took = time.monotonic() - killed_at
    finally:
        for process in (coordinator, actor):
            if process is not None and process.poll() is None:
                process.kill()
    assert code == 3, out[-3000:]
    assert took < remote_actors.REMOTE_SILENCE_S + 15
    document = json.loads((run_dir / "validate-results.json").read_text())
    assert f"remote actor 1 on {socket.gethostname()} (pid {actor.pid}) went silent" \
        in document["error"]
    assert requests(document) > 0  # what was measured before the loss is kept


@pytest.mark.integration
def test_soak_with_a_remote_actor_survives_its_kill_and_the_coordinator_resume(
        tmp_path: Path):
    """kill -9 the remote actor: actor-host re-launches it and it rejoins, counted as a
    restart; kill -9 the coordinator and resume it 7 s later: the actor notices the silence,
    exits 4, is re-launched, and greets the resumed coordinator on the same port; counts stay
    continuous throughout. The target runs on its own (as a real one would): the built-in
    refapp would die with the coordinator while the remote actor keeps sending."""
    from refapp.launch import start_refapp

    target = start_refapp(stderr=subprocess.DEVNULL)
    home = tmp_path / "home"
    env = launcher_env(home)
    env["ASSAY_SSH"] = fake_ssh(tmp_path)
    env["ASSAY_REMOTE_HOME"] = str(tmp_path / "actor-home")
    port = free_port_pair()
    started = launch("start", "--duration", "40s", "--procs", "1", "--remote-actors", "1",
                     "--concurrency", "6", "--bind", f"tcp://127.0.0.1:{port}",
                     "--checkpoint-interval", "1s", "--remote-ready-timeout", "60s",
                     "--target", target.url, "--spec", str(ROOT / "refapp" / "openapi.yaml"),
                     "--markov", str(ROOT / "refapp" / "markov.yaml"), "--health-path",
                     "/healthz", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    run_dir = Path((home / "run-dir").read_text().strip())
    coordinator = int((home / "assay.pid").read_text())
    second = None
    try:
        on_hosts = launch("remote-actors", "--hosts", "loadhost1", "--python", sys.executable,
                          env=env)
        assert on_hosts.returncode == 0, on_hosts.stdout + on_hosts.stderr

        def document() -> dict[str, Any]:
            return json.loads((run_dir / "validate-results.json").read_text())

        wait_for(lambda: requests(document()) > 0 and document()["actors"][1]["ready"], 60,
                 "the remote actor's traffic")
        before = requests(document())
        remote_pid = document()["actors"][1]["pid"]
        os.kill(remote_pid, signal.SIGKILL)
        rejoined = wait_for(lambda: (d := document())["actors"][1]["restarts"] == 1
                            and d["actors"][1]["ready"] and d, 40, "the remote actor rejoining")
        assert requests(rejoined) >= before
        assert rejoined["actors"][1]["pid"] != remote_pid

        os.kill(coordinator, signal.SIGKILL)
        wait_gone(coordinator)
        at_kill = requests(document())
        time.sleep(10)  # well past the actor's patience with a silent coordinator (5 s)
        resumed = launch("start", "--resume", str(run_dir), env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        second = int((home / "assay.pid").read_text())
        wait_gone(second, timeout=120)
    finally:
        for pid in (coordinator, second):
            if pid and psutil.pid_exists(pid) and \
                    psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                os.kill(pid, signal.SIGKILL)
        launch("actor-host", "stop", "--home", str(tmp_path / "actor-home"), env=env)
        target.stop()
    final = document()
    assert final["status"] == "passed", final.get("error")
    assert requests(final) > at_kill >= requests(rejoined)
    remote = final["actors"][1]
    assert remote["final"] and remote["restarts"] == 1  # the resume itself is not a restart
    log = (tmp_path / "actor-home" / "actor-1.log").read_text()
    assert "actor exited with status 137" in log or "status 9" in log  # the kill -9
    assert "actor exited with status 4" in log  # coordinator lost, re-launched
    assert log.rstrip().endswith("actor exited with status 0")


def test_actor_host_refuses_what_it_cannot_do(tmp_path: Path):
    env = launcher_env(tmp_path / "home")
    home = ["--home", str(tmp_path / "actor-home")]
    stray = launch("actor-host", "stop", *home, "3", env=env)
    assert stray.returncode == 2 and "stop takes only" in stray.stderr
    no_id = launch("actor-host", "start", *home, "--pull", "tcp://127.0.0.1:1", env=env)
    assert no_id.returncode == 2 and "--actor-id" in no_id.stderr
    no_python = launch("actor-host", "start", *home, "--python", "/nonexistent/python",
                       "--actor-id", "1", env=env)
    assert no_python.returncode == 2 and "no python at /nonexistent/python" in no_python.stderr
    nothing = launch("actor-host", "status", *home, env=env)
    assert nothing.returncode == 0 and "no actor running" in nothing.stdout
