"""What the server has seen, as plain counters served by ``GET /stats``.

Gauges (open connections, SSE subscribers, WebSocket sessions) let a client check that the
server released what a disconnect should release; the fault counters let a fault-injecting
client check that the server noticed the fault it injected. Counters are bumped inline on the
event loop (one thread), so they need no locks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Faults:
    """Client misbehaviour observed at the transport level."""

    #: Connections reset by the peer (ECONNRESET/EPIPE) at any point.
    resets: int = 0
    #: Peers that sent EOF in the middle of a request head, or before their response was sent.
    half_closes: int = 0
    #: Request bodies that ended (EOF or reset) before their declared framing said they would.
    aborted_bodies: int = 0
    #: Times the process was continued (SIGCONT) after being stopped: a paused server.
    pauses: int = 0
    #: accept() calls refused for lack of descriptors (EMFILE/ENFILE), e.g. a lowered limit.
    accept_exhausted: int = 0


@dataclass(slots=True)
class Stats:
    """Process-wide counters; ``snapshot`` is the body of ``GET /stats``."""

    started: float = field(default_factory=time.monotonic)
    connections: int = 0
    connections_total: int = 0
    requests: int = 0
    ws_sessions: int = 0
    faults: Faults = field(default_factory=Faults)
    #: Slots leaked by the ``leak-on-reset-mid-body`` defect (always 0 without it).
    leaked_body_slots: int = 0

    def snapshot(self, sse_subscribers: int, defects: frozenset[str]) -> dict[str, Any]:
        """The JSON document of ``GET /stats``: contract keys first, extras after."""
        return {
            "sse_subscribers": sse_subscribers,
            "ws_sessions": self.ws_sessions,
            "connections": self.connections,
            "requests": self.requests,
            "faults": {
                "resets": self.faults.resets,
                "half_closes": self.faults.half_closes,
                "aborted_bodies": self.faults.aborted_bodies,
                "pauses": self.faults.pauses,
                "accept_exhausted": self.faults.accept_exhausted,
            },
            "connections_total": self.connections_total,
            "leaked_body_slots": self.leaked_body_slots,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "defects": sorted(defects),
        }
