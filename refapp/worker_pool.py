"""``worker-pool-starvation``: the fixed worker pool of a thread-per-connection server.

How this works: many servers (Apache prefork/worker, Tomcat's blocking connector, a
hand-rolled ``ThreadPoolExecutor`` server) give each connection a thread from a fixed
pool and let it block in ``read`` until the request is in. With this defect refapp does
the same: a connection takes a worker before its request is read (from the accept on,
for the first request) and gives it back only once the head and the body are read, and
while it holds one no read has a deadline (no header timeout, no body timeout). Once
every worker is held by a client that sends slowly, a new connection is accepted by the
kernel but waits, unread and unanswered, for a worker: slowloris starves the server
with a few dozen connections, and ``assay loris``'s control traffic times out.

The pool is a ``trio.Semaphore`` (first come, first served, so a waiting slow
connection is not overtaken either); each connection's claim is a ``Worker``, which is
idempotent so that every exit path can give it back.
"""

from __future__ import annotations

import trio


class Worker:
    """One connection's claim on the pool: at most one worker, given back exactly once."""

    __slots__ = ("held", "pool")

    def __init__(self, pool: trio.Semaphore) -> None:
        self.pool = pool
        self.held = False

    async def take(self) -> None:
        """Wait (with no deadline: the defect) for a free worker, unless one is held."""
        if not self.held:
            await self.pool.acquire()
            self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.pool.release()
