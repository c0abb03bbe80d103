"""The proxy slice: this actor's share of ``assay proxy``'s cases, sent through the proxy.

How this works: actor ``rank`` of ``count`` runs cases ``rank, rank + count, ...`` of
``protocols.proxy_catalogue.ALL_CASES`` (its own six and the adversarial catalogue's
framing cases), up to ``PARALLEL`` at a time, each on its own new connection: it sends the
case's bytes, then reads what comes back until the proxy closes, nothing arrives for
``IDLE_S``, or ``CASE_S`` has passed. (One after another, the forty-odd cases would spend
most of a run waiting out ``IDLE_S`` on proxies that keep the connection open; each case's
evidence is its own connection and its marker, so running them side by side changes
nothing the oracle reads.) Each case's bytes, both ways, are one JSON line in
this walker's shard file in the run directory; the coordinator judges them against what
the backends recorded (``protocols.proxy_oracle``). Local actors only, as for watch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import trio

from actors import net
from actors.walker import Target, WalkerContext
from protocols.proxy_cases import ProxyCase
from protocols.proxy_catalogue import ALL_CASES

DONE = "proxy.done"
SENT = "proxy.sent"
ERRORS = "proxy.errors"
IDLE_S = 0.5
CASE_S = 5.0
#: Cases in flight at once per walker.
PARALLEL = 8
READ_SIZE = 65536
MAX_RECEIVED = 256 * 1024


async def exchange(target: Target, data: bytes) -> tuple[bytes, str]:
    """Send ``data`` on a new connection to the proxy (TLS for an https one); what came
    back, and the error if any."""
    received = b""
    with trio.move_on_after(CASE_S):
        try:
            stream = await net.connect(target, CASE_S)
        except net.TransportError as exc:
            return received, exc.cause
        try:
            await stream.send_all(data)
            while len(received) < MAX_RECEIVED:
                with trio.move_on_after(IDLE_S) as idle:
                    chunk = await stream.receive_some(READ_SIZE)
                if idle.cancelled_caught or not chunk:
                    break
                received += chunk
        except (OSError, trio.BrokenResourceError) as exc:
            return received, net.cause_of(exc)
        finally:
            await net.aclose_quietly(stream)
    return received, ""


async def _send_case(ctx: WalkerContext, run_marker: str, case: ProxyCase,
                     shard: TextIO, limiter: trio.CapacityLimiter) -> None:
    async with limiter:
        data = case.bytes_for(run_marker)
        received, error = await exchange(ctx.target, data)
    ctx.tally.incr(SENT)
    if error:
        ctx.tally.incr(ERRORS)
    shard.write(json.dumps({"case": case.name, "sent": data.decode("latin-1"),
                            "received": received.decode("latin-1"), "error": error}) + "\n")
    shard.flush()


async def run(ctx: WalkerContext) -> None:
    settings: dict[str, Any] = dict(ctx.settings["proxy"])
    rank, count, _ = ctx.settings.get("slice_share", (0, 1, 0))
    path = Path(settings["shard_dir"]) / f"actor-{ctx.actor_id}-walker-{ctx.walker_id}.jsonl"
    limiter = trio.CapacityLimiter(PARALLEL)
    with open(path, "a", encoding="utf-8") as shard:
        async with trio.open_nursery() as nursery:
            for case in ALL_CASES[rank::count]:
                nursery.start_soon(_send_case, ctx, settings["run"], case, shard, limiter)
    ctx.tally.incr(DONE)
