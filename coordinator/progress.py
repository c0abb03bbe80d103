"""Live progress: one line redrawn in place on a terminal, one line per interval otherwise."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from actors.slices import SLICES


class Progress:
    def __init__(self, budget_s: float, interval_s: float, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.budget_s = budget_s
        self.interval_s = interval_s if not self.tty else 1.0
        self._last_exchanges = 0
        self._last_elapsed = 0.0
        self._drawn = False

    def line(self, elapsed: float, counters: Mapping[str, int], verdicts: str) -> str:
        exchanges = sum(counters.get(SLICES[s][2], 0) for s in SLICES)
        errors = sum(counters.get(SLICES[s][3], 0) for s in SLICES)
        span = elapsed - self._last_elapsed
        rate = (exchanges - self._last_exchanges) / span if span > 0 else 0.0
        self._last_exchanges, self._last_elapsed = exchanges, elapsed
        return (f"[{elapsed:6.1f}/{self.budget_s:.0f}s] {rate:8.0f}/s  "
                f"exchanges {exchanges}  errors {errors}  {verdicts}")

    def show(self, elapsed: float, counters: Mapping[str, int], verdicts: str) -> None:
        text = self.line(elapsed, counters, verdicts)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
