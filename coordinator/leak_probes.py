"""The black-box leak probes' I/O (connections / descriptors here, SSE slots in
``coordinator.sse_slot_probe``), with deadlines.

How this works: ``probe_connections`` and ``coordinator.sse_slot_probe.probe_sse`` send what
``protocols.leak_probes`` plans and hand what they saw to its verdict functions; they return
a JSON-ready report (what ran, sizes, counts, verdict, reason). Neither needs the target's
pid or a stats page. Every connect, send and read has its own timeout, every round is
bounded in count and in time by the caller's ``budget_s``, and every socket we open is
closed (shielded) on the way out, so a cancelled probe leaves nothing of ours on the target.
"""

from __future__ import annotations

import os
import resource
from typing import Any

import trio

from actors import net
from actors.walker import Target
from protocols import conn_leak as plan
from protocols.conn_leak import BurstOutcome, Departure
from protocols.outcome import Verdict
from protocols.response_head import HEAD_CAP

#: Deadline of one connect / send / response head.
OP_TIMEOUT_S = 2.0
#: A burst client waits this long between its bytes and its departure, so that the server
#: reads them first (an RST can overtake unread bytes).
DWELL_S = 0.02
#: First guess of a burst client's cost, until a burst has been measured.
FIRST_GUESS_S_PER_CLIENT = 0.004


def fd_budget() -> tuple[int, int]:
    """(soft open-files limit, descriptors open now) of this process."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 256
    return int(limit), open_now


async def plain(target: Target, request: bytes, timeout: float) -> tuple[int | None, str]:
    """One plain request on a fresh connection: (status or None, what went wrong)."""
    with trio.move_on_after(timeout):
        try:
            stream = await net.connect(target, timeout)
        except net.TransportError as exc:
            return None, exc.cause
        try:
            await net.send_all(stream, request, timeout)
            result = await net.read_until(stream, timeout, HEAD_CAP + 1,
                                          lambda data: plan.answered(data) is not None)
        except net.TransportError as exc:
            return None, exc.cause
        finally:
            await net.aclose_quietly(stream)
        status = plan.answered(result.data)
        return status, "" if status is not None else result.ending.value
    return None, "timeout"


async def _recover(target: Target, request: bytes, grace_s: float
                   ) -> tuple[int | None, int, float, str]:
    """Retry the plain request through the grace period: (status, attempts, waited, last)."""
    started = trio.current_time()
    problem = ""
    attempts = 0
    for timeout, pause in plan.recovery_schedule(grace_s):
        attempts += 1
        status, problem = await plain(target, request, timeout)
        if status is not None:
            return status, attempts, trio.current_time() - started, ""
        await trio.sleep(pause)
    return None, attempts, trio.current_time() - started, problem


async def _burst(target: Target, departures: tuple[Departure, ...],
                 payloads: dict[Departure, bytes], concurrency: int) -> tuple[int, int]:
    """Send every departure, ``concurrency`` at a time; (connected, failed to connect)."""
    connected = failed = 0
    gate = trio.Semaphore(concurrency)

    async def client(departure: Departure) -> None:
        nonlocal connected, failed
        try:
            try:
                stream = await net.connect(target, OP_TIMEOUT_S)
            except net.TransportError:
                failed += 1
                return
            connected += 1
            try:
                if payloads[departure]:
                    await net.send_all(stream, payloads[departure], OP_TIMEOUT_S)
                await trio.sleep(DWELL_S)
            except net.TransportError:
                pass
            finally:
                if departure.reset:
                    net.arm_reset(stream)
                await net.aclose_quietly(stream)
        finally:
            gate.release()

    async with trio.open_nursery() as nursery:
        for departure in departures:
            await gate.acquire()
            nursery.start_soon(client, departure)
    return connected, failed


async def probe_connections(target_url: str, path: str, *,
                            max_burst: int = plan.DEFAULT_MAX_BURST,
                            grace_s: float = plan.DEFAULT_GRACE_S,
                            budget_s: float = 30.0) -> dict[str, Any]:
    """Growing bursts of departing clients, each followed by a plain request that must be
    answered: the report's ``verdict`` is I-CONN-LEAK's, ``broke_at`` the burst size."""
    target = Target.from_url(target_url)
    budget_end = trio.current_time() + budget_s
    request = plan.plain_request(target.host_header, path)
    payloads = {d: plan.departure_bytes(d, target.host_header, path) for d in plan.DEPARTURES}
    limit, open_now = fd_budget()
    concurrency = plan.in_flight(limit, open_now)
    report: dict[str, Any] = {"path": path, "grace_s": grace_s, "in_flight": concurrency,
                              "departures": [d.value for d in plan.DEPARTURES]}
    asked = trio.current_time()
    baseline, problem = await plain(target, request, OP_TIMEOUT_S)
    if baseline is None:  # one retry: a plain request may meet a momentary hiccup
        await trio.sleep(0.5)
        asked = trio.current_time()
        baseline, problem = await plain(target, request, OP_TIMEOUT_S)
    baseline_s = trio.current_time() - asked
    report["baseline_status"] = baseline
    report["baseline_s"] = round(baseline_s, 4)
    bursts: list[BurstOutcome] = []
    skipped: list[int] = []
    per_client = FIRST_GUESS_S_PER_CLIENT
    if baseline is not None and concurrency > 0:
        for size in plan.burst_sizes(max_burst):
            remaining = budget_end - trio.current_time()
            if not plan.burst_fits(size, per_client, remaining, grace_s):
                skipped.append(size)
                continue
            began = trio.current_time()
            connected, failed = await _burst(target, plan.burst_plan(size), payloads,
                                             concurrency)
            per_client = max(per_client, (trio.current_time() - began) / size)
            status, attempts, waited, last = await _recover(target, request, grace_s)
            drain = confirm = 0.0
            if status is None and connected:  # silence is confirmed before it counts
                drain = plan.drain_estimate_s(size, baseline_s)
                confirm = plan.confirm_window(grace_s, drain)
                status, more, extra, last = await _recover(target, request, confirm)
                attempts, waited = attempts + more, waited + extra
            bursts.append(BurstOutcome(size, connected, failed, status, attempts,
                                       round(waited, 3), last, round(drain, 3),
                                       round(confirm, 3)))
            if status is None:
                break
    elif baseline is None:
        report["baseline_problem"] = problem
    verdict, reason, broke_at = plan.conn_verdict(baseline, bursts, grace_s)
    if skipped and verdict is Verdict.PASS:
        reason += f"; burst(s) of {', '.join(map(str, skipped))} skipped: not enough budget"
    report.update(verdict=verdict.value, reason=reason, broke_at=broke_at,
                  skipped=skipped, bursts=[vars(b) for b in bursts])
    return report
