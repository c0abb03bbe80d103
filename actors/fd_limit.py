"""The open-file limit of an actor that holds many sockets (load, hold, loris walkers).

Every VU, held or slow connection is a descriptor, and the default soft limit (1024 on
most systems) is far below what one actor can hold; the hard limit is what an
unprivileged process may raise it to. ``raise_to_hard`` does that once per actor, and
says how many more sockets the actor can then open, so a walker can count what it
cannot hold instead of failing on EMFILE.
"""

from __future__ import annotations

import contextlib
import resource

import psutil

#: Descriptors kept back for the actor itself (ZeroMQ, logs, trio's wakeup pipe, ...).
FD_RESERVE = 64


def raise_to_hard() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one where it is lower; (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


def capacity(soft: int, reserve: int = FD_RESERVE) -> int:
    """Sockets this process can still open under a soft limit of ``soft``, keeping
    ``reserve`` back for the actor itself and its other walkers."""
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    try:
        open_now = psutil.Process().num_fds()
    except (psutil.Error, OSError, AttributeError):
        open_now = 32
    return max(0, soft - open_now - reserve)
