"""The state one server process shares between its connections.

Connections get one ``ServerState`` and reach everything through it: configuration,
counters, the routes, the SSE broker, and the two switches that defects flip at run time
(``hanging`` for ``hang-after`` and ``stop_accepting`` for ``h2c-crash``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from refapp.app import App
from refapp.config import ServerConfig
from refapp.defects import BODY_POOL_SIZE, CONNECTION_SLOTS, WORKER_POOL_SIZE
from refapp.sse import Broker
from refapp.stats import Stats


def _noop() -> None:
    return None


@dataclass(slots=True)
class ServerState:
    config: ServerConfig
    stats: Stats
    app: App
    broker: Broker
    #: Set by ``hang-after``: every request from now on waits forever.
    hanging: bool = False
    #: Kills the accept loop (``h2c-crash``); replaced by the runtime once it is listening.
    stop_accepting: Callable[[], None] = field(default=_noop)
    #: ``fd-leak-mid-header``: connection slots, and the sockets that leaked theirs.
    connection_slots: trio.Semaphore | None = None
    leaked_streams: list[trio.SocketStream] = field(default_factory=list)
    #: ``worker-pool-starvation``: the workers a connection holds while its request is read.
    worker_pool: trio.Semaphore | None = None

    @classmethod
    def build(cls, config: ServerConfig) -> ServerState:
        stats = Stats()
        broker = Broker(leak_on_disconnect=config.has("sse-leak-on-reset"),
                        leak_on_reset=config.has("sse-leak-on-rst-only"))
        app = App(config, stats, lambda: broker.subscribers)
        slots = trio.Semaphore(CONNECTION_SLOTS) if config.has("fd-leak-mid-header") else None
        workers = (trio.Semaphore(WORKER_POOL_SIZE) if config.has("worker-pool-starvation")
                   else None)
        return cls(config, stats, app, broker, connection_slots=slots, worker_pool=workers)

    @property
    def body_pool_exhausted(self) -> bool:
        """``leak-on-reset-mid-body``: the pool of body slots has leaked dry."""
        return self.stats.leaked_body_slots >= BODY_POOL_SIZE
