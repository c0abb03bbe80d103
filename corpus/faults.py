"""Fault segments: each fault as exact steps, followed by the probe that judges recovery.

How this works: a fault builder returns a ``Segment`` of kind ``fault.<name>`` whose steps
inflict the fault, a ``Fault`` schedule entry that says what the target should have seen
(the refapp counts resets, half-closes, aborted bodies and pauses, and a test compares the
counts with the schedule), and a final ``recovery`` probe: a valid request on a fresh
connection that must get an answer that is not a 5xx. Faults are built so that their count
on the target side is exact where the protocol allows it: a half-close follows a partial
request head (the server sees data, then EOF, in order), an aborted upload by FIN arrives
after its partial body, an RST is sent on an idle keep-alive connection whose response was
fully read, so the server is blocked in a read when the reset lands.

Client faults need no privileges. Target faults (pause, open-files limit) need the target's
local pid; without one the executor records the step as not run, with the reason. Network
faults (delay, loss) need a private network namespace created as root with the netem qdisc;
they are planned everywhere (a seed's schedule does not depend on the host) and judged
only where the executor can apply them.
"""

from __future__ import annotations

from corpus.plan import Fault, Profile, Segment
from corpus.rng import SeedRng
from corpus.workload import HOST, REQUEST_TIMEOUT_S, _read, _request, _send
from protocols.program import Action, ReadUntil, Step

#: Share of seeds (per mille) whose upload aborts come as a storm rather than one to three.
ABORT_STORM_PER_MILLE = 80
#: Uploads aborted in a storm: more than a 20-slot pool, so a leak per abort shows.
ABORT_STORM = 24


def _get(path: str, *extra: str) -> bytes:
    return _request("GET", path, extra)


def _recovery(profile: Profile, timeout: float = REQUEST_TIMEOUT_S) -> tuple[str, Step]:
    return ("recovery", Step(Action.PROBE, path=profile.health_path, timeout_s=timeout))


def rst_idle(rng: SeedRng, profile: Profile) -> Segment:
    """A complete exchange, then RST on the idle keep-alive connection."""
    steps = (("request", _send(0, _get(profile.health_path))), ("reply", _read(0)),
             ("rst", Step(Action.RST, 0)), _recovery(profile))
    return Segment("fault.rst_idle", steps, {},
                   (Fault("rst", "client", detail={"resets": 1}),))


def rst_mid_head(rng: SeedRng, profile: Profile) -> Segment:
    """Part of a request head, a moment, then RST."""
    request = _get(profile.health_path)
    cut = rng.between(4, len(request) - 4)
    steps = (("partial", _send(0, request[:cut])),
             ("wait", Step(Action.SLEEP, interval_s=rng.millis(20, 80))),
             ("rst", Step(Action.RST, 0)), _recovery(profile))
    return Segment("fault.rst_mid_head", steps, {"cut": cut},
                   (Fault("rst_mid_head", "client", detail={"resets_at_most": 1}),))


def half_close(rng: SeedRng, profile: Profile) -> Segment:
    """Part of a request head, then FIN; the server should answer or close, not hang."""
    request = _get(profile.health_path)
    cut = rng.between(4, len(request) - 4)
    steps = (("partial", _send(0, request[:cut])), ("fin", Step(Action.FIN, 0)),
             ("after", _read(0, ReadUntil.CLOSE, timeout=2.0)),
             ("close", Step(Action.CLOSE, 0)), _recovery(profile))
    return Segment("fault.half_close", steps, {"cut": cut},
                   (Fault("half_close", "client", detail={"half_closes": 1}),))


def abort_body(rng: SeedRng, profile: Profile) -> Segment:
    """Uploads cut short mid-body, by FIN (after the partial body) or by RST."""
    storm = rng.chance(ABORT_STORM_PER_MILLE)
    count = ABORT_STORM if storm else rng.between(1, 3)
    steps: list[tuple[str, Step]] = []
    by_rst = 0
    for n in range(count):
        length = rng.between(64, 4096)
        sent = rng.between(1, length - 1)
        head = _request("POST", profile.upload_path,
                        ("Content-Type: application/json", f"Content-Length: {length}"))
        steps.append((f"upload{n}", _send(n, head + b"x" * sent)))
        if not storm and rng.chance(500):
            by_rst += 1
            # Give the server time to read the head and the partial body before the reset
            # (an RST discards what it has not read yet, and then there is no body to abort).
            steps.append((f"wait{n}", Step(Action.SLEEP, interval_s=0.05)))
            steps.append((f"rst{n}", Step(Action.RST, n)))
        else:
            steps.append((f"fin{n}", Step(Action.FIN, n)))
            steps.append((f"after{n}", _read(n, ReadUntil.CLOSE, timeout=2.0)))
            steps.append((f"close{n}", Step(Action.CLOSE, n)))
    steps.append(_recovery(profile))
    detail = {"aborted_bodies": count, "by_rst": by_rst, "storm": storm}
    return Segment("fault.abort_body", tuple(steps), {"count": count},
                   (Fault("abort_body", "client", detail=detail),))


def slow_read(rng: SeedRng, profile: Profile) -> Segment:
    """Pipelined requests read back slowly through a small receive buffer."""
    count = rng.between(8, 48)
    request = _get(profile.health_path)
    last = _get(profile.health_path, "Connection: close")
    chunk, interval = rng.between(64, 1024), rng.millis(2, 20)
    steps = (("requests", _send(0, request * (count - 1) + last)),
             ("slow", Step(Action.SLOW_READ, 0, until=ReadUntil.CLOSE, chunk=chunk,
                           interval_s=interval, timeout_s=3.0, cap=1 << 20)),
             ("close", Step(Action.CLOSE, 0)), _recovery(profile))
    detail = {"requests": count, "chunk": chunk, "interval_s": interval}
    return Segment("fault.slow_read", steps, {"pipelined": count},
                   (Fault("slow_read", "client", detail=detail),))


def drip_write(rng: SeedRng, profile: Profile) -> Segment:
    """A valid request written a few bytes at a time; it must still be answered."""
    request = _get(profile.health_path)
    chunk = rng.between(1, 8)
    pieces = -(-len(request) // chunk)
    interval = min(rng.millis(2, 30), 0.6 / max(1, pieces))
    steps = (("drip", Step(Action.DRIP, 0, request, template=True, chunk=chunk,
                           interval_s=round(interval, 3))),
             ("reply", _read(0)), ("close", Step(Action.CLOSE, 0)), _recovery(profile))
    return Segment("fault.drip_write", steps, {},
                   (Fault("drip_write", "client", detail={"chunk": chunk}),))


def burst(rng: SeedRng, profile: Profile) -> Segment:
    """Many connections opened at once, held a moment, closed."""
    count = rng.between(16, 96)
    hold = rng.millis(0, 200)
    steps = (("burst", Step(Action.BURST, count=count, interval_s=hold)), _recovery(profile))
    return Segment("fault.burst", steps, {"count": count},
                   (Fault("burst", "client", detail={"connections": count}),))


def pause(rng: SeedRng, profile: Profile) -> Segment:
    """SIGSTOP the target; a request sent meanwhile must be answered after SIGCONT."""
    seconds = rng.millis(100, 400)
    steps = (("pause", Step(Action.PAUSE_TARGET, interval_s=seconds)),
             ("request", _send(0, _get(profile.health_path))),
             ("reply", _read(0, timeout=seconds + REQUEST_TIMEOUT_S)),
             ("close", Step(Action.CLOSE, 0)), _recovery(profile))
    return Segment("fault.pause", steps, {"seconds": seconds},
                   (Fault("pause", "target", detail={"pauses": 1, "seconds": seconds}),))


def fd_limit(rng: SeedRng, profile: Profile) -> Segment:
    """Lower the target's open-files limit, open a burst of connections, then recover."""
    headroom, seconds = rng.between(0, 6), rng.millis(200, 500)
    count = rng.between(8, 32)
    steps = (("limit", Step(Action.LIMIT_TARGET_FILES, count=headroom, interval_s=seconds)),
             ("burst", Step(Action.BURST, count=count)),
             _recovery(profile, seconds + REQUEST_TIMEOUT_S))
    detail = {"headroom": headroom, "seconds": seconds, "connections": count}
    return Segment("fault.fd_limit", steps, {"seconds": seconds},
                   (Fault("fd_limit", "target", detail=detail),))


def network(rng: SeedRng, profile: Profile) -> Segment:
    """Delay and loss on the path (``tc netem`` in a private namespace), then a request."""
    delay_ms, loss_pm = rng.between(5, 80), rng.between(0, 50)
    seconds = rng.millis(1000, 2000)
    netem = f"delay {delay_ms}ms loss {loss_pm / 10:g}%".encode("ascii")
    steps = (("netem", Step(Action.NETEM, data=netem, interval_s=seconds)),
             ("request", _send(0, _get(profile.health_path))),
             ("reply", _read(0, timeout=seconds + REQUEST_TIMEOUT_S)),
             ("close", Step(Action.CLOSE, 0)), _recovery(profile))
    detail = {"delay_ms": delay_ms, "loss_per_mille": loss_pm, "seconds": seconds}
    return Segment("fault.network", steps, {"seconds": seconds},
                   (Fault("network", "network", detail=detail),))


#: name -> (builder, weight in the schedule)
FAULTS = {
    "rst_idle": (rst_idle, 14),
    "rst_mid_head": (rst_mid_head, 8),
    "half_close": (half_close, 12),
    "abort_body": (abort_body, 16),
    "slow_read": (slow_read, 10),
    "drip_write": (drip_write, 10),
    "burst": (burst, 10),
    "pause": (pause, 12),
    "fd_limit": (fd_limit, 8),
}
#: Share of seeds (per mille) that also plan a network fault.
NETWORK_PER_MILLE = 150

__all__ = ["FAULTS", "HOST", "NETWORK_PER_MILLE", "network"]
