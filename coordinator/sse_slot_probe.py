"""The SSE slot probe's I/O: open subscribers until refused, abandon them, reopen them.

How this works: ``probe_sse`` opens subscribers ``OPEN_BATCH`` at a time until the server
refuses or our cap, keeps one open as the witness (it counts the server's writes), abandons
the rest (alternately RST and FIN), then reopens as many, retrying a shortfall through the
grace period and, while the witness has not seen the server write twice, up to
``protocols.leak_probes.WITNESS_WAIT_S``; ``protocols.leak_probes.sse_verdict`` judges.

FIN departures half-close first and wait briefly for the server to close: a plain close
with unread bytes in our receive buffer (an event stream keeps writing) would send RST
instead, and the probe must leave half of its subscribers each way. Its own cleanup leaves
with FIN too, so that it is not one more RST departure for the next probe to find.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Any

import trio

from actors import net
from actors.walker import Target
from coordinator.leak_probes import OP_TIMEOUT_S, fd_budget, plain
from protocols import conn_leak
from protocols import leak_probes as plan
from protocols.leak_probes import Open, SseRound
from protocols.outcome import Verdict
from protocols.response_head import HEAD_CAP, parse_response_head

#: Subscriptions opened concurrently.
OPEN_BATCH = 16
#: Longest one opening round may take.
ROUND_LIMIT_S = 8.0
#: After abandoning subscribers: wait for the server to close FIN'd streams, then settle.
FIN_DRAIN_S = 1.0
SETTLE_S = 0.3


async def _subscribe(target: Target, request: bytes) -> tuple[Open, trio.SocketStream | None]:
    try:
        stream = await net.connect(target, OP_TIMEOUT_S)
    except net.TransportError as exc:
        return (Open.CONNECT_REFUSED if exc.cause == "connect_refused"
                else Open.CONNECT_FAILED), None
    try:
        await net.send_all(stream, request, OP_TIMEOUT_S)
        result = await net.read_until(stream, OP_TIMEOUT_S, HEAD_CAP + 1,
                                      lambda data: parse_response_head(data) is not None)
        kind = plan.classify_open(result.data, result.ending.value)
    except net.TransportError as exc:
        kind = Open.RESET if exc.cause == "reset" else Open.CLOSED
    except BaseException:
        await net.aclose_quietly(stream)
        raise
    if kind is Open.ACCEPTED:
        return kind, stream
    await net.aclose_quietly(stream)
    return kind, None


async def _open_round(target: Target, request: bytes, want: int, held: list[trio.SocketStream],
                      time_limit: float) -> SseRound:
    """Open up to ``want`` subscribers (``OPEN_BATCH`` at a time) until one is refused;
    accepted streams go into ``held`` as they arrive, so a cancelled round loses none."""
    accepted = 0
    refusals: collections.Counter[str] = collections.Counter()
    first: Open | None = None

    async def one() -> None:
        nonlocal accepted, first
        kind, stream = await _subscribe(target, request)
        if stream is not None:
            held.append(stream)
            accepted += 1
        else:
            refusals[kind.value] += 1
            first = first or kind

    with trio.move_on_after(time_limit):
        while accepted < want and first is None:
            async with trio.open_nursery() as nursery:
                for _ in range(min(OPEN_BATCH, want - accepted)):
                    nursery.start_soon(one)
    return SseRound(accepted, dict(refusals), first)


async def _leave_with_fin(stream: trio.SocketStream) -> None:
    """Half-close, read until the server closes (at most ``FIN_DRAIN_S``), then close."""
    await net.half_close(stream)
    with trio.move_on_after(FIN_DRAIN_S), contextlib.suppress(
            trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        while await stream.receive_some(65536):
            pass
    await net.aclose_quietly(stream)


async def _leave_all_with_fin(streams: list[trio.SocketStream]) -> None:
    """The probe's own cleanup: FIN, so that it is not one more RST departure."""
    async with trio.open_nursery() as nursery:
        for stream in streams:
            nursery.start_soon(_leave_with_fin, stream)
    streams.clear()


async def _abandon(streams: list[trio.SocketStream]) -> tuple[int, int]:
    """Leave every subscriber, alternately with RST and FIN; (resets, fins)."""
    resets = fins = 0
    leave_with_fin = _leave_with_fin

    async with trio.open_nursery() as nursery:
        for stream, reset in zip(streams, plan.abandon_plan(len(streams)), strict=True):
            if reset:
                resets += 1
                await net.close_with_reset(stream)
            else:
                fins += 1
                nursery.start_soon(leave_with_fin, stream)
    streams.clear()
    return resets, fins


def _merge(before: SseRound, more: SseRound) -> SseRound:
    refusals = collections.Counter(before.refusals)
    refusals.update(more.refusals)
    # The latest round says why the total stopped where it did.
    return SseRound(before.accepted + more.accepted, dict(refusals), more.first_refusal)


class _Witness:
    """One first-round subscriber kept open: counts the server's writes after the others
    left (arrivals 0.2 s apart count as separate writes; TCP may split or merge them)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.alive = True
        self.writes = 0
        self._since: float | None = None
        self._last = -1.0

    def start_counting(self) -> None:
        self._since = self._last = trio.current_time()
        self.writes = 0

    def waiting(self) -> bool:
        """Still worth waiting for: alive and fewer than ``WITNESS_WRITES`` writes seen."""
        return self.alive and self.writes < plan.WITNESS_WRITES

    async def run(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            while await self.stream.receive_some(65536):
                now = trio.current_time()
                if self._since is not None and now - self._last >= 0.2:
                    self.writes += 1
                    self._last = now
        self.alive = False


async def _fill(target: Target, request: bytes, want: int, held: list[trio.SocketStream],
                grace_s: float, budget_end: float, witness: _Witness | None = None
                ) -> tuple[SseRound, int]:
    """A round, retried with backoff through ``grace_s`` while it falls short of ``want``
    (a server may notice departed subscribers only at its next write), and up to
    ``WITNESS_WAIT_S`` while the witness has not seen that write; (round, tries)."""
    now = trio.current_time()
    give_up = min(now + grace_s, budget_end)
    wait_cap = min(now + max(grace_s, plan.WITNESS_WAIT_S), budget_end)
    result = await _open_round(target, request, want, held,
                               min(ROUND_LIMIT_S, max(0.5, budget_end - trio.current_time())))
    tries, pause = 1, 0.25

    def more_time() -> bool:
        end = wait_cap if witness is not None and witness.waiting() else give_up
        return trio.current_time() + pause < end

    while result.accepted < want and more_time():
        await trio.sleep(pause)
        pause = min(pause * 2, 2.0)
        more = await _open_round(target, request, want - result.accepted, held,
                                 min(ROUND_LIMIT_S, max(0.5, budget_end - trio.current_time())))
        result = _merge(result, more)
        tries += 1
    return result, tries


async def probe_sse(target_url: str, path: str, *, cap: int = plan.DEFAULT_SSE_CAP,
                    grace_s: float = conn_leak.DEFAULT_GRACE_S, tolerance: int = 0,
                    budget_s: float = 30.0, plain_path: str = "/") -> dict[str, Any]:
    """Open subscribers to ``path`` until refused or ``cap``, abandon them (half RST, half
    FIN), then reopen as many: the report's ``verdict`` is I-SSE-LEAK's."""
    target = Target.from_url(target_url)
    request = plan.subscribe_request(target.host_header, path)
    budget_end = trio.current_time() + budget_s
    limit, open_now = fd_budget()
    effective_cap = plan.sse_cap(cap, limit, open_now)
    report: dict[str, Any] = {"path": path, "cap": effective_cap, "tolerance": tolerance}
    held: list[trio.SocketStream] = []
    held_witness: list[trio.SocketStream] = []
    second: SseRound | None = None
    responsive: bool | None = None
    try:
        if effective_cap <= 0:
            report.update(verdict=Verdict.UNJUDGED.value,
                          reason="not judged: no file descriptors to spare for subscribers")
            return report
        first = await _open_round(target, request, effective_cap, held,
                                  min(ROUND_LIMIT_S, budget_s))
        first_tries = 1
        if first.accepted == 0 and first.first_refusal in plan.REFUSING:
            # Walkers' subscriptions may still be held for a moment: retry before judging,
            # and once one is accepted, fill up to the cap as the first round would have.
            # (Silence or a refused connect is not retried: a dead target is not judged.)
            first, first_tries = await _fill(target, request, 1, held, grace_s, budget_end)
            if held:
                more = await _open_round(target, request, effective_cap - len(held), held,
                                         min(ROUND_LIMIT_S, max(0.5, budget_end
                                                                - trio.current_time())))
                first = _merge(first, more)
        report.update(opened_first=first.accepted, refusals_first=first.refusals,
                      first_refusal=_name(first.first_refusal), first_tries=first_tries)
        witness = _Witness(held.pop()) if first.accepted >= 2 else None
        if witness is not None:
            held_witness.append(witness.stream)
        async with trio.open_nursery() as nursery:
            if witness is not None:
                nursery.start_soon(witness.run)
            if first.accepted:
                resets, fins = await _abandon(held)
                if witness is not None:
                    witness.start_counting()
                report.update(abandoned_rst=resets, abandoned_fin=fins,
                              kept=1 if witness else 0)
                await trio.sleep(SETTLE_S)
                second, tries = await _fill(target, request, resets + fins, held, grace_s,
                                            budget_end, witness)
                report.update(opened_second=second.accepted, refusals_second=second.refusals,
                              second_refusal=_name(second.first_refusal), second_tries=tries)
                if witness is not None:
                    report["witness_writes"] = witness.writes
                if second.accepted < resets + fins and second.first_refusal is Open.TIMEOUT:
                    status, _ = await plain(target, conn_leak.plain_request(target.host_header,
                                                                        plain_path), OP_TIMEOUT_S)
                    report["plain_status"] = status
                    responsive = status is not None
            nursery.cancel_scope.cancel()
        verdict, reason = plan.sse_verdict(
            first, second, tolerance=tolerance, cap=effective_cap,
            kept=1 if witness else 0,
            writes_since_left=witness.writes if witness is not None else None,
            responsive=responsive)
        report.update(verdict=verdict.value, reason=reason)
        return report
    finally:
        with trio.CancelScope(shield=True):
            await _leave_all_with_fin(held + held_witness)


def _name(kind: Open | None) -> str | None:
    return None if kind is None else kind.value
