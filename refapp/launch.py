"""Start refapp as a child process and wait until it accepts: for the coordinator and tests.

The child is a plain child of the caller (same process group), so a Ctrl-C at the terminal
reaches both and the caller decides what to do; ``stop`` always reaps it, escalating from
SIGTERM to SIGKILL. Its stdout is drained by a daemon thread after the ready line, so the
child can never block on a full pipe; its stderr is inherited unless told otherwise.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from refapp.config import READY_PREFIX

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def stop_child(popen: subprocess.Popen[Any], sig: int = signal.SIGTERM,
               grace: float = 3.0) -> int:
    """Send ``sig``, wait up to ``grace`` seconds, then SIGKILL; returns the exit status.

    Safe to call more than once and on a child that already exited.
    """
    if popen.poll() is None:
        try:
            popen.send_signal(sig)
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            popen.kill()
    return popen.wait()


class RefappStartError(RuntimeError):
    """refapp exited or stayed silent before announcing that it listens."""


class RefappProcess:
    """A running refapp child: where it listens and how to stop it."""

    def __init__(self, popen: subprocess.Popen[bytes], url: str) -> None:
        self.popen = popen
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def stop(self, grace: float = 3.0) -> int:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns the exit status
        (``stop_child``)."""
        return stop_child(self.popen, grace=grace)

    def __enter__(self) -> RefappProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RefappProcess(pid={self.pid}, url={self.url!r})"


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    """Hand the first line over, then drain the rest of stdout until EOF."""
    first = True
    with stream:
        for line in iter(stream.readline, b""):
            if first:
                lines.put(line)
                first = False
    if first:
        lines.put(None)


def start_refapp(
    host: str = "127.0.0.1",
    port: int = 0,
    defects: Iterable[str] = (),
    extra_args: Iterable[str] = (),
    timeout: float = 10.0,
    **popen_kwargs: Any,
) -> RefappProcess:
    """Launch ``python -m refapp`` and return once it prints its ready line.

    Args:
        host, port: where to listen (port 0 lets the kernel choose; read ``.port``).
        defects: defect names, each passed as ``--defect NAME``.
        extra_args: further command-line arguments (e.g. ``["--rate-limit", "5"]``).
        timeout: seconds to wait for the ready line.
        popen_kwargs: passed to ``subprocess.Popen`` (e.g. ``stderr=subprocess.DEVNULL``).

    Raises:
        RefappStartError: the child exited, or printed something else, or stayed silent
            past ``timeout`` (it is killed and reaped in that case).
    """
    argv = [sys.executable, "-m", "refapp", "--host", host, "--port", str(port)]
    for name in defects:
        argv += ["--defect", name]
    argv += list(extra_args)
    env = dict(popen_kwargs.pop("env", None) or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, **popen_kwargs)
    assert popen.stdout is not None
    lines: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_pump, args=(popen.stdout, lines), daemon=True).start()
    process = RefappProcess(popen, "")
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        process.stop(grace=1.0)
        raise RefappStartError(f"refapp did not report listening within {timeout} s") from None
    except BaseException:  # e.g. Ctrl-C while waiting: never leave the child behind
        process.stop(grace=1.0)
        raise
    text = (line or b"").decode("utf-8", "replace").strip()
    if not text.startswith(READY_PREFIX):
        status = process.stop(grace=1.0)
        raise RefappStartError(f"refapp failed to start (exit status {status}): {text!r}")
    return RefappProcess(popen, text[len(READY_PREFIX) :])
