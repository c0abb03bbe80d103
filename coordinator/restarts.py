"""Actor restarts: when a dead actor comes back, and when restarting has become the problem.

How this works: with ``--restart-actors`` (on by default in ``assay soak``) an actor process
that dies while the run is live is started again with the same actor id - hence the same
walkers and PRNG streams - and the next incarnation number. Nothing measured is lost: tallies
are cumulative per (actor, incarnation), so what the dead incarnation last reported stays in
the merge and the new one adds on top (``protocols.tally``).

Restarting forever would hide a real problem (an actor that crashes every few seconds is a
harness bug or a host in trouble) and would make the numbers meaningless, so restarts are
rate-limited: more than ``max_per_hour`` in any sliding hour is a *restart storm* and ends
the run as an infrastructure failure (exit 3). The window holds at most ``max_per_hour + 1``
timestamps, so memory is bounded however long the soak.

This module decides and keeps the books; ``coordinator.run`` does the respawning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

DEFAULT_MAX_PER_HOUR = 10
WINDOW_S = 3600.0
#: Restart reasons kept per actor in the results (first ones are the most telling; the
#: count keeps growing).
HISTORY_PER_ACTOR = 20


class RestartPolicy:
    """Sliding-window limit on actor restarts across the whole fleet."""

    def __init__(self, max_per_hour: int = DEFAULT_MAX_PER_HOUR,
                 window_s: float = WINDOW_S) -> None:
        if max_per_hour < 0:
            raise ValueError("max_per_hour must be >= 0")
        self.max_per_hour = max_per_hour
        self.window_s = window_s
        self._recent: deque[float] = deque(maxlen=max_per_hour + 1)
        self.total = 0

    def allow(self, now: float) -> bool:
        """Record a restart wanted at ``now`` (wall seconds); False means a storm: stop."""
        self._recent.append(now)
        self.total += 1
        return self.in_window(now) <= self.max_per_hour

    def in_window(self, now: float) -> int:
        return sum(1 for t in self._recent if now - t < self.window_s)

    def storm_message(self, actor_id: int, why: str, now: float) -> str:
        return (f"actor restart storm: actor {actor_id} died ({why}); {self.in_window(now)} "
                f"restarts within an hour exceed --max-restarts-per-hour {self.max_per_hour}")

    def to_state(self) -> dict[str, Any]:
        return {"recent": list(self._recent), "total": self.total}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue a resumed run's window: restarts before the crash still count."""
        for stamp in state.get("recent", []):
            self._recent.append(float(stamp))
        self.total = int(state.get("total", 0))


def begin_incarnation(record: Any, why: str, now: float) -> int:
    """Reset an ``ActorRecord`` for its next incarnation; returns the incarnation number.

    ``record.incarnations`` counts incarnations including the live one, so the live
    incarnation number is always ``incarnations - 1``.
    """
    record.incarnations += 1
    record.restarts += 1
    history = record.restart_history
    if len(history) < HISTORY_PER_ACTOR:
        history.append({"at": now, "incarnation": record.incarnations - 1, "previous": why})
    record.last_exit = why
    record.exit = None
    record.error = None
    record.final = False
    record.bye = False
    record.ready = False
    return record.incarnations - 1
