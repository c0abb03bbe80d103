"""What every walker gets from its actor, and the one signature every slice implements.

How this works: an actor builds one ``WalkerContext`` per walker and runs
``slice_module.run(ctx)`` as a trio task. The walker loops until ``ctx.deadline`` (a trio
clock value) and must not swallow cancellation: the actor cancels all walkers at stop and
then snapshots the tally, so anything a walker recorded before the cancel is kept.

A walker reports through three channels only: counters/latencies in ``ctx.tally`` (shipped
cumulatively every flush), ``ctx.record_exchange`` (a bounded ring of its recent exchanges,
the incident dossier's "what happened just before"), and ``ctx.report_violation`` (sent to
the coordinator at once, for the incident path).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio

from actors import flight as flight_mod
from protocols.tally import Tally, bounded_example

RING_SIZE = 32
RING_BYTES = 2048


@dataclass(frozen=True)
class Target:
    """Where the traffic goes. Built from a URL the coordinator already validated."""

    url: str
    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        return cls(url=url, scheme=parts.scheme, host=parts.hostname or "", port=port,
                   base_path=path)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


ViolationSink = Callable[[int, str, dict[str, Any]], None]


@dataclass
class WalkerContext:
    actor_id: int
    walker_id: int
    slice_name: str
    seed: int
    rng: random.Random
    target: Target
    tally: Tally
    settings: Mapping[str, Any]
    deadline: float
    violation_sink: ViolationSink
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RING_SIZE))
    step: int = 0
    #: Crash attribution (``actors.flight``): cases sent recently and cases seen to
    #: survive, and the Markov walker's request in flight (perf_counter at send, request).
    flight: flight_mod.FlightLog = field(default_factory=flight_mod.FlightLog)
    markov_inflight: tuple[float, Any] | None = None

    def remaining(self) -> float:
        return self.deadline - trio.current_time()

    def expired(self) -> bool:
        return trio.current_time() >= self.deadline

    def record_exchange(self, **exchange: Any) -> None:
        """Append to the walker's ring of recent exchanges (bytes capped, oldest dropped)."""
        self.step += 1
        entry = {"step": self.step, "at": time.time()}
        for key, value in exchange.items():
            if isinstance(value, (bytes, str)) and len(value) > RING_BYTES:
                value = value[:RING_BYTES]
            entry[key] = value
        self.recent.append(entry)

    def begin_case(self, case: str) -> None:
        """Say which case the walker starts now: its writes and answers are noted for crash
        attribution (``actors.flight``) until the next ``begin_case``."""
        flight_mod.begin(self.flight, self.walker_id, self.slice_name, case)

    def aside_case(self, case: str) -> contextlib.AbstractContextManager[Any]:
        """``with ctx.aside_case("baseline"):`` side traffic noted apart from the case."""
        return flight_mod.aside(self.flight, self.walker_id, self.slice_name, case)

    def report_violation(
        self, counter: str, evidence: Mapping[str, Any], count: bool = True
    ) -> None:
        """Count ``counter`` (unless the caller already did) and hand the evidence to the
        incident path immediately, not at the next tally flush."""
        if count:
            self.tally.incr(counter)
            self.tally.keep_example(counter, evidence)
        payload = bounded_example(evidence)
        payload.update(
            walker=self.walker_id,
            slice=self.slice_name,
            seed=self.seed,
            step=self.step,
            recent=list(self.recent),
        )
        self.violation_sink(self.walker_id, counter, payload)


def walker_rng(run_seed: int, actor_id: int, walker_id: int) -> random.Random:
    """A PRNG per walker, derived only from (run seed, actor, walker): runs replay exactly."""
    return random.Random(f"assay/{run_seed}/{actor_id}/{walker_id}")
