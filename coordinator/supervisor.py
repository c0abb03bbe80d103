"""Actor processes: spawn, watch, and make sure none outlives the coordinator.

Three layers keep orphans away: actors get ``--parent-pid`` and arm PR_SET_PDEATHSIG
(they die if the coordinator is SIGKILLed), they stop when the coordinator's control
stream goes silent (covers actors on other hosts), and ``Fleet.stop`` terminates, waits,
then kills whatever is left (covers everything else on normal exit, Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import actors
from actors.curve import SECRET_KEY_ENV, SERVER_KEY_ENV

PROJECT_ROOT = Path(actors.__file__).resolve().parent.parent


@dataclass
class ActorProcess:
    actor_id: int
    incarnation: int
    popen: subprocess.Popen[bytes]
    log: IO[bytes] | None
    started: float = field(default_factory=time.time)
    returncode: int | None = None
    expected_exit: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class Fleet:
    def __init__(self, pull_url: str, pub_url: str, log_dir: Path | None,
                 curve_keys: tuple[str | None, bytes | None] = (None, None)) -> None:
        """``curve_keys``: the coordinator's public key and the local actors' secret key,
        when the coordinator's sockets speak CURVE (``coordinator.remote_actors``)."""
        self.pull_url = pull_url
        self.pub_url = pub_url
        self.log_dir = log_dir
        self.curve_keys = curve_keys
        self.actors: dict[int, ActorProcess] = {}

    def spawn(self, actor_id: int, incarnation: int = 0) -> ActorProcess:
        command = [
            sys.executable, "-m", "actors",
            "--pull", self.pull_url, "--pub", self.pub_url,
            "--actor-id", str(actor_id), "--incarnation", str(incarnation),
            "--parent-pid", str(os.getpid()),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        server_key, secret_key = self.curve_keys
        for name in (SERVER_KEY_ENV, SECRET_KEY_ENV):
            env.pop(name, None)
        if server_key is not None and secret_key is not None:
            env[SERVER_KEY_ENV] = server_key
            env[SECRET_KEY_ENV] = secret_key.decode("ascii")
        log = None
        if self.log_dir is not None:
            log = open(self.log_dir / f"actor-{actor_id}.log", "ab")  # noqa: SIM115
        popen = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log or subprocess.DEVNULL,
            stderr=log or subprocess.DEVNULL, env=env, close_fds=True,
        )
        process = ActorProcess(actor_id, incarnation, popen, log)
        previous = self.actors.get(actor_id)
        if previous is not None and previous.log is not None:
            previous.log.close()  # a restart replaces the entry: no descriptor per restart
            previous.log = None
        self.actors[actor_id] = process
        return process

    def reap(self) -> list[ActorProcess]:
        """Actors that exited since the last call (expected or not)."""
        exited = []
        for process in self.actors.values():
            if process.returncode is None:
                code = process.popen.poll()
                if code is not None:
                    process.returncode = code
                    exited.append(process)
        return exited

    def alive(self) -> list[ActorProcess]:
        return [p for p in self.actors.values() if p.popen.poll() is None]

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM, wait up to ``grace_s``, SIGKILL; always reaps. Safe to call twice."""
        for process in self.alive():
            process.expected_exit = True
            _signal(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.actors.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                process.popen.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal(process.popen, signal.SIGKILL)
                process.popen.wait()
            if process.returncode is None:
                process.returncode = process.popen.returncode
            if process.log is not None:
                process.log.close()
                process.log = None


def _signal(popen: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signum)
