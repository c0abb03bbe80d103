"""The watch slice: this actor's share of an ``assay watch`` run's clients.

How this works: the coordinator plans one watch walker per actor; actor ``rank`` of
``count`` runs clients ``rank, rank + count, ...`` (``WatchPlan.client_ids``), each its own
task with one keep-alive connection to the proxy (``actors.keepalive``). A client sends
``GET path`` with ``X-Assay-Client``/``X-Assay-Seq`` every ``clients / rate`` seconds
(staggered across clients; a client that falls behind skips to now rather than bursting),
reads the backend's JSON answer for the backend id and the proxy's source port toward it,
and knows its own local port. A request gets ``timeout_s`` in all; a failure closes the
connection and the next request opens a new one. A reused connection found closed
before any byte of the answer (the proxy closed it while idle, as a reload does) is
retried once on a new one, as HTTP clients do (RFC 9112 §9.3.1), and marked ``retried``.

Per-request records are the hot path's only output besides counters: a line appended to
a list, written to this walker's shard file in ``shard_dir`` every ``FLUSH_S`` (one
buffered write), so no per-request message crosses ZeroMQ. The coordinator merges the
shards in time order at the end (``protocols.watch_records.merge``). The shards need a
filesystem shared with the coordinator: local actors only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from actors import net
from actors.keepalive import Connection, begin, complete, failure_cause, open_connection
from actors.walker import WalkerContext
from protocols import watch_report as names
from protocols.http1 import ResponseProtocolError, ResponseTooLarge
from protocols.watch_records import (
    NONE,
    WatchPlan,
    WatchRecord,
    answer_of,
    build_request,
    shard_line,
)

FLUSH_S = 0.5
STALE_CAUSES = frozenset({"eof", "reset"})
_FAILURES = (net.TransportError, OSError, ResponseProtocolError, ResponseTooLarge)


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    settings["watch_plan"] = WatchPlan.from_wire(settings["watch"])
    return settings


class _Client:
    """One watch client: its id, its connection, its last ports."""

    def __init__(self, ctx: WalkerContext, plan: WatchPlan, client: int,
                 lines: list[str]) -> None:
        self.ctx, self.plan, self.client, self.lines = ctx, plan, client, lines
        self.conn: Connection | None = None
        self.last_front: int | None = None
        self.last_back: int | None = None

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    async def run(self, t0: float, end: float) -> None:
        interval = self.plan.interval_s()
        due = t0 + self.plan.offset_s(self.client)
        seq = 0
        try:
            while due < end:
                await trio.sleep_until(due)
                seq += 1
                self._count(await self._request(seq))
                due = max(due + interval, trio.current_time())
        finally:
            self._drop()

    async def _request(self, seq: int) -> WatchRecord:
        at_us = time.time_ns() // 1000
        data = build_request(self.plan.path, self.ctx.target.host_header, self.client, seq)
        result, front, retried = "timeout", NONE, False
        backend = back = NONE
        with trio.move_on_after(self.plan.timeout_s) as scope:
            for attempt in (0, 1):
                reused = self.conn is not None
                try:
                    if self.conn is None:
                        self.conn = await open_connection(self.ctx.target)
                    front = int(self.conn.sock.getsockname()[1])
                    begin(self.conn, data, "GET")
                    response = await complete(self.conn)
                except _FAILURES as exc:
                    result = failure_cause(exc)
                    stale = (reused and attempt == 0 and result in STALE_CAUSES
                             and self.conn is not None and not self.conn.parser.buffered_bytes)
                    self._drop()
                    if stale:
                        retried = True
                        continue
                    break
                result = str(response.status)
                backend, back = answer_of(response.body, response.header("x-assay-backend"))
                if not response.keep_alive:
                    self._drop()
                break
        if scope.cancelled_caught:  # mid-exchange: the connection's state is unknown
            result, backend, back = "timeout", NONE, NONE
            self._drop()
        return WatchRecord(at_us, self.client, seq, result, front, backend, back, retried)

    def _count(self, record: WatchRecord) -> None:
        tally = self.ctx.tally
        tally.incr(names.REQUESTS)
        if record.ok:
            tally.incr(names.OK)
        else:
            tally.incr_each((names.FAILED, names.CAUSE_PREFIX + record.result))
        if record.retried:
            tally.incr(names.RETRIED)
        if record.backend != NONE:
            tally.incr(f"{names.BACKEND_PREFIX}{record.backend}")
        if record.front_port != NONE:
            if self.last_front not in (None, record.front_port):
                tally.incr(names.FRONT_CHANGED)
            self.last_front = record.front_port
        if record.back_port != NONE:
            if self.last_back not in (None, record.back_port):
                tally.incr(names.BACK_CHANGED)
            self.last_back = record.back_port
        self.lines.append(shard_line(record))


def _flush(path: Path, lines: list[str]) -> None:
    if lines:
        with open(path, "a", encoding="utf-8") as shard:
            shard.write("".join(lines))
        lines.clear()


async def _flusher(path: Path, lines: list[str]) -> None:
    while True:
        await trio.sleep(FLUSH_S)
        _flush(path, lines)


async def run(ctx: WalkerContext) -> None:
    plan: WatchPlan = ctx.settings["watch_plan"]
    rank, count, _ = ctx.settings.get("slice_share", (0, 1, 0))
    path = Path(plan.shard_dir) / f"actor-{ctx.actor_id}-walker-{ctx.walker_id}.jsonl"
    lines: list[str] = []
    t0 = trio.current_time()
    end = t0 + plan.duration_s
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_flusher, path, lines)
            async with trio.open_nursery() as clients:
                for client in plan.client_ids(rank, count):
                    clients.start_soon(_Client(ctx, plan, client, lines).run, t0, end)
            nursery.cancel_scope.cancel()
    finally:
        _flush(path, lines)
    ctx.tally.incr(names.DONE)
