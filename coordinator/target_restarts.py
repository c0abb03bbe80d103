"""Target restarts: the server went away and came back. Detected, counted, reported; sans-IO.

How this works: once a second the coordinator's target watch feeds one observation - what
the last health probe saw, whether the tracked pid is still alive, and (when it is not)
which process now listens on the target's port. Two signals open an *episode*: the tracked
process exited, or the probe was refused. The episode closes when the probe is answered
again (and, when a pid is tracked, some process is alive to answer). Closing it records the
time down and classifies it:

- ``restart``: the pid changed (old process gone, another one listening), or no pid is known
  and connections were refused then accepted again;
- ``outage``: the same pid refused connections for a while and then accepted again.

This is deliberately separate from I-LIVENESS, which still fails the run the first time the
target dies or refuses: a restart is a fact worth reporting (supervisors restart crashed
servers silently), not a second verdict. Memory is bounded: at most ``MAX_EPISODES``
episodes are kept in full, the counters keep counting.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_EPISODES = 50


class Probe(enum.Enum):
    #: The health probe got an HTTP response (any status): something is serving.
    UP = "up"
    #: Connection refused: nothing listens on the port.
    REFUSED = "refused"
    #: Timeout, reset, garbage, or no probe yet: says nothing about restarts.
    UNKNOWN = "unknown"


@dataclass
class _Down:
    since: float
    reason: str
    old_pid: int | None


@dataclass
class TargetRestarts:
    """Episode tracker for one target; ``pid`` follows the target across restarts."""

    pid: int | None
    counters: dict[str, int] = field(default_factory=dict)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    _down: _Down | None = None

    def _incr(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    @property
    def down(self) -> bool:
        return self._down is not None

    def observe(self, now: float, probe: Probe, pid_alive: bool | None = None,
                replacement_pid: int | None = None) -> dict[str, Any] | None:
        """Feed one tick; returns the episode that just closed, if any.

        Args:
            now: wall-clock seconds.
            probe: what the latest health probe saw.
            pid_alive: whether ``self.pid`` is alive (None when no pid is tracked).
            replacement_pid: when the tracked pid is dead, the pid now listening on the
                target's port, if one was found.
        """
        tracking = self.pid is not None
        if self._down is None:
            if tracking and pid_alive is False:
                self._down = _Down(now, "target process exited", self.pid)
            elif probe is Probe.REFUSED:
                self._down = _Down(now, "connection refused", self.pid)
            else:
                return None
        live_pid = self.pid if (pid_alive or not tracking) else replacement_pid
        if probe is not Probe.UP or (tracking and live_pid is None):
            return None
        return self._close(now, live_pid)

    def _close(self, now: float, new_pid: int | None) -> dict[str, Any]:
        assert self._down is not None
        down, self._down = self._down, None
        changed = down.old_pid is not None and new_pid is not None and new_pid != down.old_pid
        kind = "restart" if changed or down.old_pid is None else "outage"
        episode = {"kind": kind, "reason": down.reason, "down_at": down.since, "up_at": now,
                   "down_s": round(now - down.since, 3), "old_pid": down.old_pid,
                   "new_pid": new_pid}
        self._incr("coord.target_outages")
        if kind == "restart":
            self._incr("coord.target_restarts")
        self._incr("coord.target_down_ms", int((now - down.since) * 1000))
        if len(self.episodes) < MAX_EPISODES:
            self.episodes.append(episode)
        if new_pid is not None:
            self.pid = new_pid
        return episode

    def report(self, now: float) -> dict[str, Any]:
        """The results section: counters, episodes, and an open episode if down right now."""
        counters = self.counters
        return {
            "restarts": counters.get("coord.target_restarts", 0),
            "outages": counters.get("coord.target_outages", 0),
            "down_s": round(counters.get("coord.target_down_ms", 0) / 1000, 3),
            "current_pid": self.pid,
            "down_now": None if self._down is None else {
                "since": self._down.since, "reason": self._down.reason,
                "for_s": round(now - self._down.since, 3), "old_pid": self._down.old_pid},
            "episodes": list(self.episodes),
            "episodes_truncated": counters.get("coord.target_outages", 0) > len(self.episodes),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Carry counters and episodes over a resume (the open episode, if any, is not)."""
        self.counters.update({k: int(v) for k, v in state.get("counters", {}).items()})
        self.episodes.extend(list(state.get("episodes", []))[:MAX_EPISODES])

    def to_state(self) -> dict[str, Any]:
        return {"counters": dict(self.counters), "episodes": list(self.episodes)}
