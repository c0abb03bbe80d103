"""The pre-flight GET: is the target reachable, and does it answer like an HTTP server?

How this works: ``preflight`` sends one plain ``GET <health path>`` (``Connection: close``)
on a fresh connection, feeds the answer to the sans-IO ``protocols.preflight.AnswerWatcher``
and repeats, within a time budget, until the target answers, or has been broken on
``BROKEN_CONFIRMATIONS`` probes in a row, or the budget runs out. It separates three cases:

* **answered**: a complete, well-formed response of any status: the run goes on;
* **unreachable**: nothing listens (refused), the connect timed out, the name did not
  resolve: an infrastructure failure, exit 3, as before;
* **broken**: the connection was accepted but the answer was garbage, nothing, or never
  ended: a verdict about the target (exit 1), kept with the evidence bytes and timings.

Why two broken probes and not one: a server still starting may reset one early
connection; two in a row, a quarter of a second apart, is the target's behaviour. Why a
deadline per probe and caps in the watcher: a hostile target (endless headers, a body that
never ends, a socket that never answers) costs at most a few seconds and ~70 KiB.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import trio

from actors import net
from actors.walker import Target
from protocols.http1 import build_request
from protocols.preflight import AnswerWatcher, Behaviour, Ending, Finding

#: Deadline of one probe (connect, send, whole answer).
PROBE_TIMEOUT_S = 3.0
#: Broken probes in a row that make the verdict.
BROKEN_CONFIRMATIONS = 2
_READ_CHUNK = 65536


@dataclass(frozen=True)
class Attempt:
    """One probe: either the connect failed (``cause``) or a ``finding`` on the answer."""

    cause: str
    finding: Finding | None
    at: float
    connect_s: float | None
    first_byte_s: float | None
    elapsed_s: float

    @property
    def answered(self) -> bool:
        return self.finding is not None and self.finding.behaviour is Behaviour.ANSWERED

    @property
    def broken(self) -> bool:
        return self.finding is not None and self.finding.behaviour is not Behaviour.ANSWERED

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at": self.at, "connect_s": _r(self.connect_s),
                                "first_byte_s": _r(self.first_byte_s),
                                "elapsed_s": _r(self.elapsed_s)}
        if self.finding is None:
            return {**data, "outcome": "unreachable", "cause": self.cause}
        f = self.finding
        return {**data, "outcome": f.behaviour.value, "detail": f.detail, "status": f.status,
                "received_bytes": f.received, "evidence": f.evidence}


@dataclass(frozen=True)
class Preflight:
    attempts: tuple[Attempt, ...]
    elapsed_s: float
    budget_s: float

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def broken_run(self) -> tuple[Attempt, ...]:
        """The broken attempts at the end (empty unless the target ended broken)."""
        run: list[Attempt] = []
        for attempt in reversed(self.attempts):
            if not attempt.broken:
                break
            run.append(attempt)
        return tuple(reversed(run))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def probe_answer(target: Target, path: str, timeout: float) -> Attempt:
    """One GET on a fresh connection, judged by ``AnswerWatcher``; never raises on the
    target's behaviour."""
    at = time.time()
    started = trio.current_time()
    try:
        stream = await net.connect(target, timeout)
    except net.TransportError as exc:
        return Attempt(str(exc), None, at, None, None, trio.current_time() - started)
    connect_s = trio.current_time() - started
    watcher = AnswerWatcher()
    first_byte: float | None = None
    ending = Ending.DEADLINE
    request = build_request("GET", path, target.host_header,
                            [("Connection", "close"), ("User-Agent", "assay-preflight")])
    try:
        with trio.move_on_after(max(0.0, timeout - connect_s)):
            try:
                await stream.send_all(request)
                while not watcher.decided:
                    chunk = await stream.receive_some(_READ_CHUNK)
                    if not chunk:
                        ending = Ending.EOF
                        break
                    if first_byte is None:
                        first_byte = trio.current_time() - started
                    watcher.feed(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                ending = Ending.RESET
    finally:
        await net.aclose_quietly(stream)
    elapsed = trio.current_time() - started
    finding = watcher.finish(ending, elapsed - connect_s)
    return Attempt("", finding, at, connect_s, first_byte, elapsed)


async def preflight(target: Target, path: str, budget_s: float,
                    probe_timeout_s: float = PROBE_TIMEOUT_S) -> Preflight:
    """Probe until answered, broken ``BROKEN_CONFIRMATIONS`` times in a row, or out of
    ``budget_s`` (at least one probe is always made).

    Every probe gets the full ``probe_timeout_s`` (the run's request timeout, at least
    ``PROBE_TIMEOUT_S``): a probe cut short by the budget's end could call a slow but correct
    target broken. The budget bounds the retries while nothing accepts the connection; once
    a probe found the target broken, the confirming probes run even past it (at most
    ``BROKEN_CONFIRMATIONS`` probes more), so a verdict of "broken" always rests on that
    many full-length probes in a row.
    """
    started = trio.current_time()
    deadline = started + budget_s
    attempts: list[Attempt] = []
    broken = 0
    while not attempts or trio.current_time() < deadline or 0 < broken < BROKEN_CONFIRMATIONS:
        attempt = await probe_answer(target, path, probe_timeout_s)
        attempts.append(attempt)
        if attempt.answered or attempt.cause.startswith("tls_verify"):
            break  # an untrusted certificate does not become trusted by asking again
        broken = broken + 1 if attempt.broken else 0
        if broken >= BROKEN_CONFIRMATIONS:
            break
        await trio.sleep(min(0.25, max(0.0, deadline - trio.current_time())))
    return Preflight(tuple(attempts), trio.current_time() - started, budget_s)
