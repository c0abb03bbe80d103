"""The coordinator's plain state: its lifecycle, what the run was given, its books on actors.

Lifecycle (the only place it is defined)::

    HANDSHAKE --all Ready--> RUNNING --deadline--> STOPPING --finals/timeout--> JUDGING
        |                       |  \\--signal / --fail-fast--/
        \\--actor died / no Ready in time (exit 3)---------------------------------^

Separate from ``coordinator.run`` (the trio/ZeroMQ spine that moves through these phases)
because these are data shared by the modules the spine calls (``actor_messages``,
``run_end``, the extensions that check the phase), by ``coordinator.execute`` which
prepares the inputs, and by tests, which build them without starting a run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from coordinator import remote_actors


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    RUNNING = "running"
    STOPPING = "stopping"
    JUDGING = "judging"


TRANSITIONS = {
    Phase.HANDSHAKE: {Phase.RUNNING, Phase.STOPPING},
    Phase.RUNNING: {Phase.STOPPING},
    Phase.STOPPING: {Phase.JUDGING},
    Phase.JUDGING: set(),
}


@dataclass
class RunInputs:
    """Everything prepared before the fleet starts (validated; errors were exit 2)."""

    target_url: str
    label: str
    health_path: str
    target_pid: int | None
    builtin: bool
    settings: dict[str, Any]
    enabled_slices: list[str]
    not_run: dict[str, str]
    walker_plan: Any  # coordinator.planning.WalkerPlan
    seed: int
    notes: list[str] = field(default_factory=list)
    #: CURVE keys for the actors' sockets, loaded (and refused: exit 2) by execute_run.
    security: remote_actors.Security = field(
        default_factory=lambda: remote_actors.Security(None, ()))


@dataclass
class ActorRecord:
    actor_id: int
    pid: int | None = None
    incarnations: int = 1
    walkers: int = 0
    ready: bool = False
    final: bool = False
    bye: bool = False
    exit: str | None = None
    error: str | None = None
    restarts: int = 0  # --restart-actors: incarnations started after a death
    last_exit: str | None = None
    restart_history: list[dict[str, Any]] = field(default_factory=list)
    # Actors on other load hosts (coordinator.remote_actors): not spawned, not reaped.
    remote: bool = False
    host: str | None = None
    live_incarnation: int | None = None
    last_heard: float = 0.0
