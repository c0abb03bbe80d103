"""``--launch CMD``: assay starts the target itself, knows its pid and stops it.

Why: without a pid the resource oracles and process forensics are blind, and a crash
cannot be shrunk (every hypothesis needs a fresh target). With ``--launch`` the run owns
the target's whole life:

* a free loopback port is picked and put where CMD says ``{port}`` (the convention of
  ``assay bisect --launch``); the target URL is ``http://127.0.0.1:PORT/``;
* CMD runs through the shell in its own session (process group), stdin closed, stdout and
  stderr appended to ``<run>/logs/target.log``; ``stop`` sweeps the whole group: SIGTERM,
  a grace period, SIGKILL. It dies with assay however assay dies: a watchdog (a tiny
  shell polling its parent) SIGKILLs the group once assay is gone, the direct child also
  has ``PR_SET_PDEATHSIG`` (when launched from the main thread), and instances still
  running at interpreter exit are stopped;
* readiness is a TCP connect, bounded by ``ready_timeout`` (exit 3 when it never comes);
* the pid reported is the process that *listens* on the port: a shell wrapper
  (``cd x && python -m app``) or a supervisor forks; the first process of the group, in
  tree order from the shell down, that holds the listening socket is the target;
* a launched target that dies mid-run is not restarted: its death is the run's verdict
  (I-LIVENESS, pinned to its cause), and the crash shrink starts fresh instances of its own.

The process primitives (free port, connect probe, group stop) are ``replay.launcher``'s.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from replay.launcher import LaunchedProcess, LaunchError, free_port, wait_accepting

HOST = "127.0.0.1"
DEFAULT_READY_S = 30.0
#: How long ``listener_pid`` looks for the listening process after the port accepts.
PID_SEARCH_S = 2.0


def check_command(command: str) -> str:
    """One-line ``ValueError`` unless ``command`` is usable as ``--launch``."""
    if not command.strip():
        raise ValueError("--launch needs a command")
    if "{port}" not in command:
        raise ValueError("--launch must contain {port} (the port the target must listen on)")
    return command


def _die_with_assay() -> None:
    """preexec: SIGKILL this child when the thread that forked it dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


#: The watchdog: a tiny shell in its own session that polls its own parent pid (assay's)
#: and SIGKILLs the target's process group once assay is gone, however it died. PDEATHSIG
#: alone reaches only the direct child, and ``sh -c 'a && b'`` forks the server.
_WATCHDOG = ('while :; do read -r _ _ _ p _ < /proc/$$/stat || break; [ "$p" = "$1" ] || '
             'break; sleep 0.5; done; kill -KILL -"$2" 2>/dev/null')


def _watchdog(group: int) -> subprocess.Popen[bytes] | None:
    if not Path("/proc/self/stat").exists():
        return None
    try:
        return subprocess.Popen(["/bin/sh", "-c", _WATCHDOG, "assay-watchdog",
                                 str(os.getpid()), str(group)], start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


#: Every instance started and not yet stopped: swept at interpreter exit (a shrink thread
#: abandoned by a cancelled incident cannot leave a target behind on a normal exit).
_LIVE: set[LaunchedTarget] = set()


@atexit.register
def _sweep() -> None:
    for target in list(_LIVE):
        with contextlib.suppress(Exception):
            target.stop(grace=1.0)


def listener_process(root: int, port: int) -> psutil.Process | None:
    """The first process in ``root``'s tree (root first, then children breadth-first) that
    holds a listening TCP socket on ``port``; None when none does (yet).

    The ``psutil.Process`` itself, not its pid: it remembers the process's start time, so
    signalling it later refuses a pid the kernel has since given to another process."""
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except psutil.Error:
        return None
    for process in tree:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return process
        except psutil.Error:
            continue
    return None


def listener_pid(root: int, port: int) -> int | None:
    """``listener_process``'s pid."""
    process = listener_process(root, port)
    return None if process is None else process.pid


@dataclass(eq=False)
class LaunchedTarget:
    """One running instance: the shell/process group we started and the listening pid."""

    process: LaunchedProcess
    port: int
    listener: int | None
    watchdog: subprocess.Popen[bytes] | None = None
    #: The listening process as found (see ``listener_process``): what ``alive`` and
    #: ``stop`` look at, so that neither acts on a reused pid.
    listening: psutil.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The listening process (the shell itself when it exec'd, or no listener found)."""
        return self.listener or self.process.pid

    def alive(self) -> bool:
        if self.listening is None:  # no listener found: the shell is all we know
            return self.process.process.poll() is None
        try:
            return self.listening.is_running() and \
                self.listening.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def stop(self, grace: float = 3.0) -> None:
        """The group (TERM, grace, KILL), then the listener itself should it have left the
        group (a daemonizing server); returns once the listener is gone or ``grace`` ends."""
        _LIVE.discard(self)
        self.process.stop(grace)
        if self.watchdog is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.watchdog.kill()
                self.watchdog.wait(timeout=grace)
            self.watchdog = None
        if self.listening is None or self.listening.pid == self.process.process.pid:
            return
        with contextlib.suppress(psutil.Error):  # NoSuchProcess also when the pid was reused
            self.listening.kill()
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)


def start(command: str, *, port: int | None = None, log_path: Path | None = None,
          ready_timeout: float = DEFAULT_READY_S, cwd: Path | None = None) -> LaunchedTarget:
    """Run ``command`` with ``{port}`` filled in; return once the port accepts.

    Raises ``LaunchError`` (one line, naming the log) when the command exits first or
    nothing accepts within ``ready_timeout``."""
    port = port or free_port(HOST)
    shell = command.replace("{port}", str(port))
    log: IO[bytes] | None = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 (closed by LaunchedProcess.stop)
    # PDEATHSIG follows the forking *thread*: only ask for it from the main thread, where
    # the thread's end is assay's end (a worker thread would kill the target when idle).
    preexec = _die_with_assay if threading.current_thread() is threading.main_thread() \
        else None
    try:
        popen = subprocess.Popen(shell, shell=True, cwd=cwd, start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=log or subprocess.DEVNULL,
                                 stderr=log or subprocess.DEVNULL, preexec_fn=preexec)
    except OSError as exc:
        if log is not None:
            log.close()
        raise LaunchError(f"cannot start the launch command: {exc.strerror or exc}") from None
    process = LaunchedProcess(popen, f"http://{HOST}:{port}/", log)
    launched = LaunchedTarget(process, port, None, _watchdog(popen.pid))
    _LIVE.add(launched)
    where = f" (output: {log_path})" if log_path is not None else ""
    wait_accepting(popen, HOST, port, ready_timeout, launched.stop, where)
    listening = None
    search_until = time.monotonic() + PID_SEARCH_S
    while listening is None and time.monotonic() < search_until:
        listening = listener_process(popen.pid, port)
        if listening is None:
            time.sleep(0.05)
    launched.listening = listening
    launched.listener = None if listening is None else listening.pid
    return launched


@dataclass
class TargetLauncher:
    """A ``replay.launcher.Launcher`` over ``start``: a fresh instance per call (crash
    shrinking, ``assay replay --launch``), each on its own free port."""

    command: str
    log_path: Path | None = None
    ready_timeout: float = DEFAULT_READY_S
    cwd: Path | None = None

    def start(self) -> LaunchedTarget:
        return start(self.command, log_path=self.log_path, ready_timeout=self.ready_timeout,
                     cwd=self.cwd)

    def describe(self) -> str:
        return f"command {self.command!r}"


@dataclass
class ManagedTarget:
    """The run's own target: started once, stopped at the end."""

    command: str
    log_path: Path | None = None
    ready_timeout: float = DEFAULT_READY_S
    current: LaunchedTarget | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LaunchedTarget:
        with self._lock:
            if self.current is None:
                self.current = start(self.command, log_path=self.log_path,
                                     ready_timeout=self.ready_timeout)
            return self.current

    @property
    def url(self) -> str:
        assert self.current is not None
        return self.current.url

    @property
    def pid(self) -> int | None:
        return self.current.pid if self.current is not None else None

    def stop(self) -> None:
        with self._lock:
            if self.current is not None:
                with contextlib.suppress(OSError):
                    self.current.stop()
                self.current = None


def exited_status(target: LaunchedTarget) -> int | None:
    """The launch command's exit status when it has exited (the shell's, for a wrapper)."""
    return target.process.process.poll()



def launch_for_run(command: str, run_dir: Path,
                   ready_timeout: float = DEFAULT_READY_S) -> ManagedTarget | str:
    """Start the run's target (output in ``<run>/logs/target.log``); the one-line reason
    (exit 3) when it does not come up."""
    from coordinator.logs import get_logger

    managed = ManagedTarget(command, log_path=run_dir / "logs" / "target.log",
                            ready_timeout=ready_timeout)
    try:
        running = managed.start()
    except LaunchError as exc:
        return f"--launch target did not come up: {exc}"
    get_logger("assay").info("target launched", url=running.url, pid=running.pid,
                             log=str(managed.log_path))
    return managed
