"""Start a target on a free loopback port, wait until it accepts, and always stop it.

Used by bisect (one build per commit) and by the incident path (a fresh instance per shrink
candidate, when the failure destroyed the live target's state). A launch command is a shell
command with ``{port}`` in it; it runs in its own session (process group), so ``stop`` kills
the whole tree a shell or a build tool may have spawned: SIGTERM to the group, then SIGKILL
after a grace period. Readiness is a plain TCP connect, the only thing every server shares.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol


class LaunchError(RuntimeError):
    """The target did not come up (exited, or never accepted); the message says how."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out (a tiny race with other binders is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Running(Protocol):
    url: str
    pid: int | None

    def stop(self) -> None: ...


class Launcher(Protocol):
    """Something that can start one more instance of the target (blocking)."""

    def start(self) -> Running: ...

    def describe(self) -> str: ...


@dataclass
class LaunchedProcess:
    """A target started from a shell command in its own process group."""

    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the group, wait ``grace``, SIGKILL the group; idempotent.

        The group's id is the shell's pid (``start_new_session``), known without asking:
        ``os.getpgid`` fails once the shell has exited and been reaped, which left its
        children (the server) running. A group with no member left is ProcessLookupError.
        """
        group = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Children may outlive the shell: sweep the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        if self.log is not None:
            self.log.close()
            self.log = None


def launch(command: str, *, cwd: Path | None = None, ready_timeout: float = 20.0,
           log_path: Path | None = None, env: Mapping[str, str] | None = None,
           host: str = "127.0.0.1") -> LaunchedProcess:
    """Run ``command`` with ``{port}`` filled in; return once the port accepts."""
    port = free_port(host)
    argv = command.replace("{port}", str(port))
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    try:
        process = subprocess.Popen(argv, shell=True, cwd=cwd, start_new_session=True,
                                   stdin=subprocess.DEVNULL,
                                   stdout=log or subprocess.DEVNULL,
                                   stderr=log or subprocess.DEVNULL,
                                   env=dict(env) if env is not None else None)
    except OSError as exc:
        if log is not None:
            log.close()
        raise LaunchError(f"cannot start {shlex.split(argv)[:1]}: {exc.strerror}") from None
    running = LaunchedProcess(process, f"http://{host}:{port}/", log)
    wait_accepting(process, host, port, ready_timeout, running.stop)
    return running


def wait_accepting(process: subprocess.Popen, host: str, port: int, ready_timeout: float,
                   stop: Callable[[], object], where: str = "") -> None:
    """Block until ``host:port`` accepts; if ``process`` exits first or ``ready_timeout``
    passes, ``stop()`` what was started and raise a one-line LaunchError (``where`` says
    where its output went)."""
    deadline = time.monotonic() + ready_timeout
    while not accepts(host, port, 0.2):
        status = process.poll()
        if status is not None:
            stop()
            raise LaunchError(f"the launch command exited with status {status} before "
                              f"accepting on port {port}{where}")
        if time.monotonic() >= deadline:
            stop()
            raise LaunchError(f"nothing accepted on {host}:{port} within {ready_timeout:g} s "
                              f"of starting the launch command{where}")
        time.sleep(0.05)


@dataclass(frozen=True)
class CommandLauncher:
    command: str
    cwd: Path | None = None
    ready_timeout: float = 20.0

    def start(self) -> Running:
        return launch(self.command, cwd=self.cwd, ready_timeout=self.ready_timeout)

    def describe(self) -> str:
        return f"command {self.command!r}"


@dataclass
class _Refapp:
    process: object
    url: str
    pid: int | None

    def stop(self) -> None:
        self.process.stop(grace=1.0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefappLauncher:
    """A fresh built-in refapp with the same injected defects as the run's."""

    defects: tuple[str, ...] = ()

    def start(self) -> Running:
        from refapp.launch import RefappStartError, start_refapp

        try:
            process = start_refapp(defects=self.defects, stderr=subprocess.DEVNULL)
        except RefappStartError as exc:
            raise LaunchError(str(exc)) from None
        return _Refapp(process, process.url.rstrip("/") + "/", process.pid)

    def describe(self) -> str:
        return "built-in refapp" + (f" with {', '.join(self.defects)}" if self.defects else "")
