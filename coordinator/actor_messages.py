"""The coordinator's handlers for what actors send: one function per message type.

``handlers`` is the table ``Coordinator._receive_loop`` dispatches through (message type ->
handler). Each handler updates the coordinator's books on the sending actor
(``ActorRecord``): greeting, readiness, merged tallies, violations, failures and Bye. They
are the Coordinator's own code, split out of ``coordinator.run`` by concept, so they use
its internal fields (the ready/final events, the published Plan, ``_trip``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.zmq_io import send_nowait
from coordinator import remote_actors
from coordinator.run_state import ActorRecord, Phase
from protocols import wire

if TYPE_CHECKING:
    from coordinator.run import Coordinator


def handlers(coord: Coordinator) -> dict[type, Callable[[Any], None]]:
    """Message type -> handler, for one coordinator."""
    return {
        wire.Hello: lambda message: on_hello(coord, message),
        wire.Ready: lambda message: on_ready(coord, message),
        wire.TallyReport: lambda message: on_tally(coord, message),
        wire.Violation: lambda message: on_violation(coord, message),
        wire.ActorFailed: lambda message: on_failed(coord, message),
        wire.Bye: lambda message: on_bye(coord, message),
        wire.InFlightReport: coord.attribution.on_report,
    }


def _record(coord: Coordinator, actor_id: int, incarnation: int) -> ActorRecord | None:
    record = coord.actors.get(actor_id)
    if record is None:
        coord.dropped_frames += 1
        coord.log.warning("message from unknown actor", actor=actor_id)
    elif record.remote and incarnation == record.live_incarnation:
        record.last_heard = time.time()
        if record.exit is not None and record.exit.startswith("went silent"):
            record.exit = None  # it was only slow: it counts as alive again
    return record


def on_hello(coord: Coordinator, message: wire.Hello) -> None:
    record = _record(coord, message.actor_id, message.incarnation)
    if record is not None:
        if record.remote:
            now = time.time()
            if not remote_actors.accept_hello(coord, record, message.incarnation,
                                              message.host, now):
                return
            record.last_heard = now
        record.pid = message.pid
        if coord.phase is Phase.RUNNING and coord._plan_message is not None:
            # A restarted actor greets mid-run: control state is Start by now, so hand
            # it the Plan (once per Hello; it stops greeting when the Plan arrives).
            send_nowait(coord._pub, wire.encode(coord._plan_message))


def on_ready(coord: Coordinator, message: wire.Ready) -> None:
    record = _record(coord, message.actor_id, message.incarnation)
    if record is None or message.run_id != coord.run_id:
        return
    if record.remote and message.incarnation != record.live_incarnation and \
            not remote_actors.accept_hello(coord, record, message.incarnation,
                                           record.host or "?", time.time()):
        return
    record.ready = True
    record.walkers = message.walkers
    if all(r.ready for r in coord.actors.values()):
        coord._all_ready.set()


def on_tally(coord: Coordinator, message: wire.TallyReport) -> None:
    record = _record(coord, message.actor_id, message.incarnation)
    if record is None:
        return
    if record.remote and not remote_actors.known_incarnation(coord, record,
                                                             message.incarnation):
        coord.dropped_frames += 1  # a process no Hello admitted (stale, or a duplicate id)
        return
    fresh = coord.merger.accept(message.actor_id, message.incarnation, message.seq,
                                message.counters, message.histograms, message.examples)
    if message.final and message.incarnation == remote_actors.live_incarnation(record):
        record.final = True  # (a dead incarnation's late final says nothing of the live one)
        coord._check_all_final()
    if fresh:
        coord._check_high_counters()


def on_violation(coord: Coordinator, message: wire.Violation) -> None:
    coord._trip(message.counter, {
        "actor": message.actor_id, "incarnation": message.incarnation,
        "walker": message.walker, "seen_at": message.seen_at,
        "received_at": time.time(), "evidence": message.evidence,
    })


def on_failed(coord: Coordinator, message: wire.ActorFailed) -> None:
    record = _record(coord, message.actor_id, message.incarnation)
    if record is not None:
        record.error = message.error
        coord.log.error("actor failed", actor=message.actor_id, error=message.error)
        if record.remote and message.incarnation == record.live_incarnation:
            remote_actors.lost(coord, record, f"failed: {message.error}")


def on_bye(coord: Coordinator, message: wire.Bye) -> None:
    record = _record(coord, message.actor_id, message.incarnation)
    if record is not None:
        record.bye = True
        coord._check_all_final()
