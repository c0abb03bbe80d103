"""Target-side faults for the executor: SIGSTOP/SIGCONT pauses and a lowered open-files limit.

How this works: a fault is a context manager that applies itself on entry and always undoes
itself on exit. Several programs may fault the same target at once (Tier 3 runs seeds in
many walkers, in several actor processes), and a naive "remember the old limit, restore it
later" then leaves the target crippled: A lowers 20000 -> 40, B lowers 40 -> 45 and
remembers 40, A restores 20000, B restores 40. So the state of every fault on a pid lives in
one small JSON file beside a lock (``/tmp/assay-target-faults-<uid>-<pid>.json``, ``flock``):
the first pause sends SIGSTOP, the last one to end sends SIGCONT; the first limit remembers
the true original and the last one restores it. Holders are counted per (process, token), so
an executor that crashed cannot be told apart from one still running, which is the one
leak this design accepts (the next executor that ends a fault on that pid clears the state
of holders whose process no longer exists).

Only local pids can be faulted, and only with the rights this user has; anything else is a
``TargetFaultError`` whose message the executor records as the step's "not judged" reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil


class TargetFaultError(RuntimeError):
    """A target fault that cannot be applied here (no such pid, no permission)."""


def _state_path(pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"assay-target-faults-{os.getuid()}-{pid}.json"


@contextlib.contextmanager
def _locked_state(pid: int) -> Iterator[dict[str, Any]]:
    """The shared fault state of ``pid`` under an exclusive lock; written back on exit."""
    path = _state_path(pid)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                state = json.loads(path.read_text())
                if not isinstance(state, dict):
                    state = {}
            except (OSError, ValueError):
                state = {}
            for key in ("pauses", "limits"):
                holders = state.get(key)
                if not isinstance(holders, list):
                    holders = []
                state[key] = [h for h in holders if _holder_alive(h)]
            yield state
            if not state["pauses"] and not state["limits"] and "nofile" not in state:
                path.unlink(missing_ok=True)  # nothing held: leave no state behind
            else:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state))
                os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _holder_alive(holder: Any) -> bool:
    if not isinstance(holder, str) or ":" not in holder:
        return False
    pid_text = holder.split(":", 1)[0]
    return pid_text.isdigit() and psutil.pid_exists(int(pid_text))


def _process(pid: int) -> psutil.Process:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            raise TargetFaultError(f"target pid {pid} has exited")
        return process
    except psutil.NoSuchProcess:
        raise TargetFaultError(f"no local process with pid {pid}") from None
    except psutil.AccessDenied:
        raise TargetFaultError(f"no permission to inspect pid {pid}") from None


def check_local(pid: int) -> None:
    """Raise ``TargetFaultError`` unless ``pid`` is a live local process we may signal."""
    _process(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise TargetFaultError(f"no local process with pid {pid}") from None
    except PermissionError:
        raise TargetFaultError(f"no permission to signal pid {pid}") from None


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the duration of the block; SIGCONT when the last holder leaves."""
    check_local(pid)
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    with _locked_state(pid) as state:
        state["pauses"].append(token)
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with _locked_state(pid) as state:
            state["pauses"] = [h for h in state["pauses"] if h != token]
            last = not state["pauses"]
        if last:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def files_limited(pid: int, headroom: int) -> Iterator[int]:
    """Lower ``pid``'s RLIMIT_NOFILE soft limit to its open descriptors plus ``headroom``.

    Yields the soft limit that was set. The true original limit is restored when the last
    concurrent holder leaves. Headroom rather than an absolute number, so the fault bites
    the same way whatever the target happens to hold open when it strikes.
    """
    process = _process(pid)
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    try:
        with _locked_state(pid) as state:
            soft, hard = process.rlimit(resource.RLIMIT_NOFILE)
            if not state["limits"] or "nofile" not in state:
                state["nofile"] = [soft, hard]
            original_soft = int(state["nofile"][0])
            wanted = process.num_fds() + max(0, headroom)
            new_soft = min(wanted, original_soft, hard if hard >= 0 else wanted)
            process.rlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            state["limits"].append(token)
    except psutil.AccessDenied:
        raise TargetFaultError(f"no permission to change the limits of pid {pid}") from None
    except psutil.NoSuchProcess:
        raise TargetFaultError(f"target pid {pid} has exited") from None
    try:
        yield new_soft
    finally:
        with _locked_state(pid) as state:
            state["limits"] = [h for h in state["limits"] if h != token]
            if not state["limits"] and "nofile" in state:
                original = state.pop("nofile")
                with contextlib.suppress(psutil.Error, OSError, ValueError):
                    current_hard = process.rlimit(resource.RLIMIT_NOFILE)[1]
                    process.rlimit(resource.RLIMIT_NOFILE, (int(original[0]), current_hard))
