"""The program steps that fault the target or the network: PAUSE_TARGET,
LIMIT_TARGET_FILES and NETEM, started by their step and held in the run's nursery.

How this works: a step applies its fault and returns at once; the fault is held in the
background for ``interval_s`` while the following steps go on, because what matters is how
the target treats the clients that arrive while it is stopped, out of descriptors or behind
an impaired path. Undo is always run (``_hold_fault``: synchronous enter and exit, so the
cancellation that ends the program cannot interrupt it). Separate from ``replay.executor``
because faults outlive their step; the fault mechanics themselves are
``replay.executor_faults`` and ``replay.executor_netns``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from protocols.program import Action
from replay import executor_faults, executor_netns

if TYPE_CHECKING:
    from protocols.program import Step
    from replay.executor import Run


async def target_fault(run: Run, step: Step) -> tuple[bytes, str, str]:
    """PAUSE_TARGET / LIMIT_TARGET_FILES: applied before the step returns, held after it."""
    pid = run.pid
    if pid is None:
        return b"", "error", "no local target pid: target-side faults need --target-pid " \
            "or the built-in refapp"
    if step.action is Action.PAUSE_TARGET:
        manager = functools.partial(executor_faults.paused, pid)
        detail = f"paused pid {pid} for {step.interval_s:.3f} s"
    else:
        manager = functools.partial(executor_faults.files_limited, pid, step.count)
        detail = f"RLIMIT_NOFILE of pid {pid} lowered for {step.interval_s:.3f} s"
    applied = trio.Event()
    failure: list[str] = []
    run.nursery.start_soon(_hold_fault, manager, step.interval_s, applied, failure)
    await applied.wait()
    if failure:
        return b"", "error", failure[0]
    return detail.encode("ascii"), "ok", ""


async def network(run: Run, step: Step) -> tuple[bytes, str, str]:
    """NETEM: connections opened while ``run.impairing`` is set cross the impaired path."""
    reason = await trio.to_thread.run_sync(executor_netns.unavailable)
    if reason:
        return b"", "error", reason
    args = step.data.decode("ascii", "replace")
    path = executor_netns.ImpairedPath((run.target.host, run.target.port), args)
    try:
        await path.start(run.nursery)
    except (OSError, RuntimeError) as exc:
        return b"", "error", f"network fault not applied: {exc}"
    run.paths.append(path)
    run.impairing = path
    run.nursery.start_soon(_lift_after, run, path, step.interval_s)
    return f"netem {args} for {step.interval_s:.3f} s".encode("ascii", "replace"), "ok", ""


async def _lift_after(run: Run, path: executor_netns.ImpairedPath, seconds: float) -> None:
    """New connections go direct again; the path itself closes (or is closed at the end)."""
    await trio.sleep(seconds)
    if run.impairing is path:
        run.impairing = None
    await path.lift()


async def _hold_fault(manager: Callable[[], contextlib.AbstractContextManager[object]],
                      seconds: float, applied: trio.Event, failure: list[str]) -> None:
    """Apply a target fault, keep it ``seconds`` (or until cancelled), always undo it.

    Entering and leaving are synchronous (a signal, a prlimit, a locked file), so the undo
    cannot be interrupted by the cancellation that ends the program.
    """
    try:
        context = manager()
        context.__enter__()
    except Exception as exc:  # not applied: the step is "not judged" with this reason
        failure.append(str(exc) or type(exc).__name__)
        applied.set()
        return
    applied.set()
    try:
        await trio.sleep(seconds)
    finally:
        context.__exit__(None, None, None)
