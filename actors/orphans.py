"""No orphans: a child started by assay dies with the process that started it."""

from __future__ import annotations

import os
import signal


def die_with_parent(parent_pid: int | None) -> None:
    """Linux: get SIGTERM when the parent dies, so a SIGKILLed coordinator leaves no orphan."""
    if parent_pid is None:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
