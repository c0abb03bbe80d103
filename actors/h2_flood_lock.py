"""One HTTP/2 flood at a time against a target, across every actor process on this host.

Why: a flood's verdict compares control requests before and during it. A second flood
running beside it (another walker of the same actor, or a walker of another actor: a run
has one actor per core) would inflate the first one's baseline, or lend it its harm, so a
harmless class would be reported for what another class did. Walkers of one actor share a
trio lock; actors share an advisory ``flock`` on a file named after the target, polled so
that a waiting walker stays cancellable (the actor cancels it at the run's end).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from actors.walker import Target

#: How often a walker whose target is being flooded by another process looks again.
POLL_S = 0.05

_LOCKS: weakref.WeakKeyDictionary[object, trio.Lock] = weakref.WeakKeyDictionary()


def _process_lock() -> trio.Lock:
    """The lock of this trio run (one per actor process)."""
    root = trio.lowlevel.current_root_task()
    lock = _LOCKS.get(root)
    if lock is None:
        lock = _LOCKS[root] = trio.Lock()
    return lock


def lock_path(target: Target) -> Path:
    key = hashlib.sha256(f"{target.host}:{target.port}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"assay-h2flood-{key}.lock"


@contextlib.asynccontextmanager
async def host_lock(target: Target) -> AsyncIterator[None]:
    """Hold the host-wide flood lock of ``target`` (waits, cancellably, while another
    process holds it; released when the holder exits, even if it is killed)."""
    fd = os.open(lock_path(target), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await trio.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def one_flood_at_a_time(target: Target) -> AsyncIterator[None]:
    async with _process_lock(), host_lock(target):
        yield
