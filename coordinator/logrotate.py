"""Size-bounded logs for runs that last a weekend: rotate at ``MAX_BYTES``, keep ``BACKUPS``.

How this works, per kind of log:

- The coordinator's own log in soak mode (``<run>/logs/coordinator.log``, structlog JSON
  lines) is written through ``RotatingFile``: after each complete line, if the file passed
  ``max_bytes`` it is renamed to ``.1`` (older backups shift to ``.2`` ...), and a fresh
  file is opened. Lines are never split across files.
- Actor logs (``<run>/logs/actor-N.log``) are the raw stderr of the child, written by the
  child itself through an ``O_APPEND`` descriptor that the coordinator cannot reopen, so
  they rotate by copy-and-truncate: copy the file to ``.1``, then truncate it to zero; the
  child's next append lands at the new start. Bytes written in the microseconds between
  the copy and the truncation can be lost - acceptable for stderr, which actors barely use,
  and far better than a pipe through the coordinator that a busy coordinator could stall.

Either way a log costs at most ``max_bytes * (backups + 1)`` bytes of disk, forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, TextIO

import trio

from coordinator import logs

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 2
CHECK_EVERY_S = 5.0


def _shift(path: Path, backups: int) -> None:
    """path.(n-1) -> path.n ... path.1 -> path.2; the oldest falls off."""
    for index in range(backups, 1, -1):
        older = path.with_name(f"{path.name}.{index - 1}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index}"))


class RotatingFile:
    """A text file that rotates by size at line boundaries (rotation checked on flush)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, text: str) -> int:
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()
        if self._file.tell() >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        self._file.close()
        if self.backups > 0:
            _shift(self.path, self.backups)
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self._file.close()


def copytruncate(path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> bool:
    """Rotate a file another process appends to, if it reached ``max_bytes``; True if done."""
    try:
        if path.stat().st_size < max_bytes:
            return False
        if backups > 0:
            _shift(path, backups)
            shutil.copyfile(path, path.with_name(f"{path.name}.1"))
        with open(path, "r+b") as handle:
            handle.truncate(0)
    except OSError:
        return False
    return True


async def watch_actor_logs(log_dir: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS,
                           every_s: float = CHECK_EVERY_S) -> None:
    """Forever: copy-truncate any ``actor-N.log`` past ``max_bytes``."""
    while True:
        await trio.sleep(every_s)
        with contextlib.suppress(OSError):
            for path in log_dir.glob("actor-*.log"):
                copytruncate(path, max_bytes, backups)


class _Tee:
    """structlog processor: write the event as one JSON line to a file, pass it on."""

    def __init__(self, sink: RotatingFile) -> None:
        self.sink = sink

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        try:
            self.sink.write(json.dumps(event, default=str) + "\n")
            self.sink.flush()
        except (OSError, ValueError):
            pass  # a full disk must not take the run down; the console still has the line
        return event


def log_to_file(path: Path, console_format: str, max_bytes: int = MAX_BYTES,
                backups: int = BACKUPS, level: int = logging.INFO) -> RotatingFile:
    """Reconfigure structlog: JSON lines to ``path`` (rotated) and the usual console output.

    Called once the run directory exists (soak mode), so everything from then on is in the
    run's own log whatever happens to the terminal the soak was started from.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = RotatingFile(path, max_bytes, backups)
    logs.configure(console_format, level, tee=_Tee(sink))
    return sink
