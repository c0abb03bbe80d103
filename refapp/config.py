"""Server configuration: one frozen value built by the CLI and read everywhere else.

Limits that a client can observe (header cap, body cap, timeouts) live here, next to each
other, so that a test or the OpenAPI spec can quote them instead of repeating numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Start of the one line ``python -m refapp`` prints on stdout once it accepts.
READY_PREFIX = "assay-refapp listening on "
#: Largest request head h11 may buffer before answering 431 (h11 ``max_incomplete_event_size``).
MAX_HEAD_BYTES = 16 * 1024
#: Largest request body accepted; larger ones get 413 and a close.
MAX_BODY_BYTES = 1024 * 1024
#: Largest WebSocket message (all fragments together); larger ones get close code 1009.
MAX_WS_MESSAGE_BYTES = 1024 * 1024
#: Bytes asked of the kernel per read.
RECV_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``python -m refapp`` can be told.

    Timeouts are seconds. ``header_timeout`` bounds the time from a connection (or the first
    byte of a keep-alive request) to a complete request head, which is what drops slow-loris
    clients; ``idle_timeout`` bounds the silence between keep-alive requests.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    defects: frozenset[str] = field(default_factory=frozenset)
    rate_limit: float = 2000.0
    defect_after: float = 5.0
    idle_timeout: float = 30.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    send_timeout: float = 10.0
    ws_idle_timeout: float = 60.0
    backlog: int = 1024

    def has(self, defect: str) -> bool:
        """Whether the named defect is switched on."""
        return defect in self.defects
