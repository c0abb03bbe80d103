"""The ``crash-on-long-header-line`` defect: exit when a request-head line passes 16 KiB.

Real servers that copy a header line into a fixed-size buffer without a bound check die
this way (a segfault, an abort). The check sees the raw bytes before the parser, so the
parser's own 431 for oversized heads never gets the chance to answer.
"""

from __future__ import annotations

import os
import sys

from refapp.defects import CRASH_EXIT_STATUS, LONG_LINE_LIMIT


def line_run(run: int, data: bytes, limit: int = LONG_LINE_LIMIT) -> tuple[int, bool]:
    """(length of the unfinished line after ``data``, whether any line passed ``limit``);
    ``run`` is the unfinished line's length before ``data``."""
    pieces = data.split(b"\n")
    lengths = [run + len(pieces[0]), *(len(p) for p in pieces[1:])]
    return lengths[-1], max(lengths) > limit


class LongLineCrash:
    """Per connection: feed it every chunk of a request head; it exits the process."""

    def __init__(self) -> None:
        self.run = 0

    def feed(self, data: bytes) -> None:
        self.run, too_long = line_run(self.run, data)
        if too_long:
            sys.stderr.write("refapp: crash-on-long-header-line: header line over "
                             f"{LONG_LINE_LIMIT} bytes, exiting\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_STATUS)
