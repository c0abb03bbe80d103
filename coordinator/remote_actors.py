"""Actors on other load hosts: where the coordinator listens, who may connect, and how an
actor the coordinator did not spawn is followed.

Why this shape: one machine rarely saturates a serious server, so a run may add load hosts
(``--remote-actors N``). The coordinator plans their walkers like its own (actor ids after
the local ones), publishes the same Plan, and waits for them at the handshake; the operator
starts them with the command written to ``fleet.json`` (the ``systemd-free-launch/actor-host``
script does it over ssh). Everything else is the local path: the same tallies, merged by
(actor, incarnation, sequence), so a remote actor's counts are as safe as a local one's.

What differs, and is handled here:

* **Binding.** ``--bind tcp://HOST:PORT`` puts the tally (PULL) socket on PORT and control
  (PUB) on PORT+1 (PORT 0: two free ports). Off loopback both sockets are CURVE servers
  and ZAP admits only the public keys in ``--curve-authorized-keys``; without keys such a
  bind is refused (exit 2), since anyone able to connect could forge tallies.
* **Liveness.** There is no pid to reap. A remote actor that has said nothing (tallies go
  out every 250 ms) for ``REMOTE_SILENCE_S`` is lost: exit 3 in a run; in a soak
  (``--restart-actors``) its counts are kept and the run waits for it to rejoin.
* **Incarnations.** A remote actor numbers its own incarnations (``--incarnation auto``:
  milliseconds since the epoch, so a re-launch always counts higher). A Hello from a higher
  incarnation is a rejoin, counted like a local restart and subject to the same storm
  limit; frames from lower ones are late and ignored by the merge.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from actors import curve
from coordinator.config import ConfigError, RunConfig
from coordinator.restarts import begin_incarnation

REMOTE_SILENCE_S = 10.0
FLEET_FILE = "fleet.json"
WILDCARD_HOSTS = frozenset({"*", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class Security:
    """The coordinator's CURVE secret and the actors' public keys; both None on loopback
    without keys (plain TCP)."""

    secret: bytes | None
    clients: tuple[bytes, ...]

    @property
    def public(self) -> str | None:
        return None if self.secret is None else zmq.curve_public(self.secret).decode("ascii")


def load_security(config: RunConfig) -> Security:
    """Load the keys the bind needs; ConfigError (exit 2) when they are unusable or missing."""
    try:
        secret = curve.load_key(config.curve_secret_key, secret=True)
        clients = curve.load_authorized(config.curve_authorized_keys)
    except curve.CurveKeyError as exc:
        raise ConfigError(f"CURVE keys: {exc}") from None
    if (secret is None) != (not clients):
        raise ConfigError("CURVE needs both --curve-secret-key (the coordinator's) and "
                          "--curve-authorized-keys (a directory of the actors' public keys)")
    host, _ = split_bind(config.bind)
    if secret is None and (host in WILDCARD_HOSTS or not curve.host_is_loopback(host)):
        raise ConfigError(f"refusing to bind {config.bind} (not loopback) without CURVE keys: "
                          "give --curve-secret-key and --curve-authorized-keys "
                          "(make them with `assay keygen`)")
    return Security(secret, tuple(clients))


def split_bind(bind: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (as ``config_values.parse_bind`` accepts it) -> (HOST, PORT)."""
    host, port = bind.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


@dataclass(frozen=True)
class Endpoints:
    pull_url: str  # as bound, with the real port
    pub_url: str
    advertised_pull: str  # as a remote actor must dial it
    advertised_pub: str


def bind_sockets(context: zmq.Context, pull: zmq.Socket, pub: zmq.Socket, config: RunConfig,
                 security: Security) -> tuple[Endpoints, Any, bytes | None]:
    """Bind tally and control sockets as ``config.bind`` says. Returns the endpoints, the ZAP
    authenticator (None without CURVE; the caller stops it) and, with CURVE, the secret key
    of a keypair made for this run's local actors (admitted alongside the remote ones, and
    handed to them in their environment, never on a command line). ConfigError when the
    address cannot be bound (in use, not ours)."""
    authenticator = None
    local_secret = None
    if security.secret is not None:
        local_public, local_secret = zmq.curve_keypair()
        authenticator = curve.start_authenticator(context, [*security.clients, local_public])
        for sock in (pull, pub):
            curve.make_server(sock, security.secret)
    host, port = split_bind(config.bind)
    try:
        if port == 0:
            pull_port = pull.bind_to_random_port(f"tcp://{host}")
            pub_port = pub.bind_to_random_port(f"tcp://{host}")
        else:
            pull.bind(f"tcp://{host}:{port}")
            pub.bind(f"tcp://{host}:{port + 1}")
            pull_port, pub_port = port, port + 1
    except zmq.ZMQError as exc:
        if authenticator is not None:
            authenticator.stop()
        raise ConfigError(f"cannot bind {config.bind} (and the port after it): {exc}") from None
    local_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    public_host = advertised_host() if host in WILDCARD_HOSTS else host
    return Endpoints(
        f"tcp://{local_host}:{pull_port}", f"tcp://{local_host}:{pub_port}",
        f"tcp://{public_host}:{pull_port}", f"tcp://{public_host}:{pub_port}",
    ), authenticator, local_secret


SECRET_PLACEHOLDER = "ACTOR_SECRET_KEY_FILE"


def advertised_host() -> str:
    """The name load hosts should dial when the coordinator listens on every interface:
    the fully qualified host name, unless it resolves only to loopback (common in
    containers and cloud images), then the address of the interface with the default route
    (a UDP connect picks it from the routing table and sends nothing)."""
    name = socket.getfqdn()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        addresses = set()
    if addresses and not all(curve.host_is_loopback(a) for a in addresses):
        return name
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed like any remote, never sent to
        address = probe.getsockname()[0]
        if not curve.host_is_loopback(address):
            return address
    return name


def advertises_loopback(config: RunConfig, endpoints: Endpoints) -> bool:
    """A wildcard bind whose advertised name still means this machine: no load host can use
    fleet.json as written."""
    host, _ = split_bind(config.bind)
    return host in WILDCARD_HOSTS and curve.endpoint_is_loopback(endpoints.advertised_pull)


def actor_args(endpoints: Endpoints, actor_id: int, security: Security) -> list[str]:
    """``python -m actors`` flags for one remote actor (its secret key as a placeholder)."""
    args = ["--pull", endpoints.advertised_pull, "--pub", endpoints.advertised_pub,
            "--actor-id", str(actor_id), "--incarnation", "auto"]
    if security.public is not None:
        args += ["--server-key", security.public, "--secret-key", SECRET_PLACEHOLDER]
    return args


def actor_command(endpoints: Endpoints, actor_id: int, security: Security) -> list[str]:
    """What to run on a load host for one remote actor."""
    return ["python", "-m", "actors", *actor_args(endpoints, actor_id, security)]


def write_fleet_file(run_dir: Path, endpoints: Endpoints, remote_ids: tuple[int, ...],
                     security: Security, run_id: str) -> Path:
    """``fleet.json``: what a launcher needs to start the remote actors of this run (the
    coordinator's public key only; no secret is ever written)."""
    data = {
        "run_id": run_id,
        "pull": endpoints.advertised_pull,
        "pub": endpoints.advertised_pub,
        "curve_server_key": security.public,
        "remote_actor_ids": list(remote_ids),
        "actor_args": {str(a): actor_args(endpoints, a, security) for a in remote_ids},
        "commands": {str(a): shlex.join(actor_command(endpoints, a, security))
                     for a in remote_ids},
        "written_at": time.time(),
    }
    path = run_dir / FLEET_FILE
    tmp = path.with_name(f".{FLEET_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def announce(coord: Any, endpoints: Endpoints, security: Security) -> None:
    """Remote actors are planned: write ``fleet.json`` and tell the operator how to start
    them (and which ``--bind`` would keep them from finding this coordinator)."""
    remote = coord.inputs.walker_plan.remote
    path = write_fleet_file(coord.run_dir, endpoints, remote, security, coord.run_id)
    if coord.config.mode == "soak" and coord.config.bind.endswith(":0"):
        coord.log.warning("remote actors and --bind port 0: a resumed soak will listen on "
                          "other ports, so its remote actors cannot find it; give --bind "
                          "tcp://HOST:PORT")
    if advertises_loopback(coord.config, endpoints):
        coord.log.warning("fleet.json tells load hosts to dial a loopback address; give "
                          "--bind tcp://ADDRESS:PORT with this host's address",
                          advertised=endpoints.advertised_pull)
    coord.log.warning("waiting for remote actors: start them on the load hosts",
                      actors=list(remote), fleet_file=str(path),
                      timeout_s=coord.config.remote_ready_timeout_s,
                      example=" ".join(actor_command(endpoints, remote[0], security)))


def live_incarnation(record: Any) -> int | None:
    """The incarnation whose final tally ends an actor's part in the run."""
    return record.live_incarnation if record.remote else record.incarnations - 1


def accept_hello(coord: Any, record: Any, incarnation: int, host: str, now: float) -> bool:
    """A remote actor greets: first contact, the live incarnation again, a rejoin (a higher
    incarnation: counted as a restart, storm-limited), or a stale process (False: ignore)."""
    record.host = host
    first_contact = record.last_heard == 0.0  # the first greeting this coordinator hears
    if (record.live_incarnation is None or incarnation == record.live_incarnation
            or (first_contact and incarnation > record.live_incarnation)):
        # (a resumed soak's actors come back as new incarnations: not restarts)
        record.live_incarnation = incarnation
        return True
    if incarnation < record.live_incarnation:
        coord.log.warning("greeting from an older incarnation of a remote actor: ignored",
                          actor=record.actor_id, incarnation=incarnation,
                          live=record.live_incarnation)
        return False
    why = record.exit or "re-launched"
    if coord.phase.value == "running":
        if not coord.config.restart_actors:  # a plain run: a restart is a death, as locally
            coord.abort(f"remote actor {record.actor_id} on {host} was restarted as a new "
                        f"incarnation ({why}); restarts need --restart-actors (soak: on)")
            return False
        if not coord.restart_policy.allow(now):
            coord.abort(coord.restart_policy.storm_message(record.actor_id, why, now))
            return False
    begin_incarnation(record, why, now)
    record.live_incarnation = incarnation
    coord.log.warning("remote actor rejoined", actor=record.actor_id, host=host,
                      incarnation=incarnation, previous=why)
    return True


def on_start(coord: Any, start_at: float) -> None:
    """The run starts: silence is counted from now, not from an actor's Ready (actors that
    are ready say nothing until Start, and the last one may join minutes after the first)."""
    for record in coord.actors.values():
        if record.remote:
            record.last_heard = max(record.last_heard, start_at)


def known_incarnation(coord: Any, record: Any, incarnation: int) -> bool:
    """Tallies count only from the incarnation a Hello admitted, or one the merge already
    holds (late frames of an earlier one): not from a stale process of another run on the
    same port, nor from a second process started with the same id."""
    return (incarnation == record.live_incarnation
            or coord.merger.seq_of(record.actor_id, incarnation) is not None)


def lost(coord: Any, record: Any, why: str) -> None:
    """A remote actor is gone: exit 3 in a plain run; in a soak its counts are kept and the
    run waits for it to rejoin (actor-host re-launches it)."""
    where = f"on {record.host or 'an unknown host'}" + (
        f" (pid {record.pid})" if record.pid else "")
    record.exit = why
    if coord.config.restart_actors:
        coord.log.warning("remote actor lost; its counts are kept, waiting for it to rejoin",
                          actor=record.actor_id, host=record.host, why=why)
    else:
        coord.abort(f"remote actor {record.actor_id} {where} {why}")


def check_silence(coord: Any, now: float) -> None:
    """While running, a remote actor silent for ``REMOTE_SILENCE_S`` is lost (see module doc).
    The last second before the deadline is left to ``judge_missing_finals``."""
    if coord.phase.value != "running":
        return
    if coord.deadline is not None and now >= coord.deadline - 1.0:
        return
    for record in coord.actors.values():
        if not record.remote or record.exit is not None or record.live_incarnation is None:
            continue
        silent = now - record.last_heard
        if silent >= REMOTE_SILENCE_S:
            lost(coord, record, f"went silent for {silent:.0f} s")


def judge_missing_finals(coord: Any) -> None:
    """After the finals were awaited: a remote actor that sent none died near the end (a
    local one would have been reaped), so its last interval is missing: the same verdict
    as silence mid-run."""
    for record in coord.actors.values():
        if record.remote and not record.final and record.exit is None:
            lost(coord, record, "sent no final tally")


def describe_missing(coord: Any) -> str:
    """Which remote actors never became ready (for the handshake's abort message)."""
    missing = [r for r in coord.actors.values() if r.remote and not r.ready]
    if not missing:
        return ""
    for record in missing:
        record.exit = record.exit or "never joined"
    ids = ", ".join(str(r.actor_id) for r in missing)
    return (f"; remote actor(s) {ids} never reported ready: start them with the commands in "
            f"{FLEET_FILE}")


class FleetFileError(ValueError):
    """fleet.json missing or not one of ours; one line."""


def ssh_plan(fleet: dict[str, Any], hosts: list[str], *, secret_key: str | None,
             remote_repo: str, respawn: int, home: str,
             python: str | None = None) -> list[tuple[str, str]]:
    """(host, remote shell command) per remote actor: ids dealt round-robin over ``hosts``,
    each started by ``systemd-free-launch/actor-host`` on that host (detached, re-launched
    when its coordinator goes away, up to ``respawn`` times)."""
    if not hosts:
        raise FleetFileError("give at least one load host")
    args_by_id = fleet.get("actor_args")
    if not isinstance(args_by_id, dict) or not args_by_id:
        raise FleetFileError("fleet file lists no remote actors (was the run started with "
                             "--remote-actors N?)")
    needs_key = fleet.get("curve_server_key") is not None
    if needs_key and not secret_key:
        raise FleetFileError("the coordinator speaks CURVE: give --secret-key (the actors' "
                             "secret key file, as a path on the load hosts)")
    plan = []
    for n, actor_id in enumerate(sorted(args_by_id, key=int)):
        args = [secret_key if a == SECRET_PLACEHOLDER else a for a in args_by_id[actor_id]]
        launcher = [f"{remote_repo.rstrip('/')}/systemd-free-launch/actor-host", "start",
                    "--home", home, "--respawn", str(respawn),
                    *(["--python", python] if python else []), *args]
        plan.append((hosts[n % len(hosts)], shlex.join(launcher)))
    return plan


def main(argv: list[str] | None = None) -> int:
    """``python -m coordinator.remote_actors FLEET --hosts a,b ...``: print one line per
    remote actor, ``HOST<TAB>COMMAND``, for ``systemd-free-launch/remote-actors`` to run
    over ssh (kept in Python so that quoting is done once, by ``shlex``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m coordinator.remote_actors")
    parser.add_argument("fleet", type=Path, help="a run's fleet.json")
    parser.add_argument("--hosts", required=True, help="comma-separated load hosts")
    parser.add_argument("--secret-key", help="actors' CURVE secret key file on the load hosts")
    parser.add_argument("--remote-repo", required=True, help="assay checkout on the load hosts")
    parser.add_argument("--respawn", type=int, default=10)
    parser.add_argument("--home", default="assay-actors",
                        help="actor-host state directory on the load hosts")
    parser.add_argument("--python", help="python on the load hosts (default: actor-host's)")
    args = parser.parse_args(argv)
    try:
        fleet = json.loads(args.fleet.read_text())
        if not isinstance(fleet, dict):
            raise FleetFileError(f"{args.fleet} is not a fleet file")
        plan = ssh_plan(fleet, [h for h in args.hosts.split(",") if h.strip()],
                        secret_key=args.secret_key, remote_repo=args.remote_repo,
                        respawn=args.respawn, home=args.home, python=args.python)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"remote-actors: {exc}\n")
        return 2
    for host, command in plan:
        print(f"{host}\t{command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
