"""The actor's lifecycle: its phases, the transitions allowed, and the exit status it ends with.

Lifecycle (the only place it is defined)::

    GREETING --Plan--> READY --Start--> RUNNING --deadline/Stop/SIGTERM--> STOPPING --> DONE
        \\______________________ coordinator silent too long ______________/

GREETING repeats Hello until the coordinator's Plan arrives (ZeroMQ's slow-joiner problem
makes a single Hello unreliable). While RUNNING, the coordinator re-publishes Start every
tick; if it goes silent for ``actors.actor.COORDINATOR_SILENCE_S`` the actor assumes it died
and stops, so no actor outlives its coordinator even across hosts. Stopping cancels the
walkers, then sends the final cumulative tally with a patient send, then Bye.

Separate from ``actors.actor`` (the trio and ZeroMQ shell that drives these moves) because
the table and the state are plain data: pure, and testable without sockets.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from protocols import wire
from protocols.tally import Tally

SILENT_COORDINATOR = "coordinator silent"
#: Exit status when the actor stopped without the coordinator's Stop - it went silent (died,
#: or the network failed) or came back in a new handshake (a resumed soak) - or with a Stop
#: that says the run may be resumed (``wire.RESUMABLE``). A launcher that
#: re-launches remote actors (systemd-free-launch/actor-host) tries again, so that a
#: resumed coordinator gets its actors back. 0 is a normal end.
EXIT_COORDINATOR_LOST = 4


class Phase(enum.Enum):
    GREETING = "greeting"
    READY = "ready"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.GREETING: frozenset({Phase.READY, Phase.DONE}),
    Phase.READY: frozenset({Phase.RUNNING, Phase.STOPPING, Phase.DONE}),
    Phase.RUNNING: frozenset({Phase.STOPPING}),
    Phase.STOPPING: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}


def exit_status(stop_reason: str | None) -> int:
    """0 for a run that ended; ``EXIT_COORDINATOR_LOST`` when the coordinator never said
    Stop (see ``Actor._await_coordinator_stop``), went silent, or said the run may be
    resumed (``wire.RESUMABLE``)."""
    if stop_reason in (None, SILENT_COORDINATOR) or (
            stop_reason is not None and stop_reason.endswith(wire.RESUMABLE)):
        return EXIT_COORDINATOR_LOST
    return 0


class ActorAbort(Exception):
    """The actor cannot go on (no plan in time, bad plan); exit non-zero."""


@dataclass
class ActorState:
    actor_id: int
    incarnation: int
    run_id: str | None = None
    phase: Phase = Phase.GREETING
    plan: dict[str, Any] | None = None
    start_at: float | None = None
    deadline: float | None = None
    stop_reason: str | None = None
    last_control: float = field(default_factory=time.monotonic)
    tally: Tally = field(default_factory=Tally)
    seq: int = 0

    def move(self, new: Phase) -> None:
        if new not in TRANSITIONS[self.phase]:
            raise AssertionError(f"actor phase {self.phase.value} -> {new.value} is not allowed")
        self.phase = new

