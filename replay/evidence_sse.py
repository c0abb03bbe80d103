"""SSE leak evidence (I-SSE-LEAK) -> a program that abandons subscriptions, then checks.

With a stats page the repro compares the subscriber count before and after the departures
(``stateful``: it must fail on repeated runs); without one it abandons more subscriptions
than the run did and expects a fresh one to be refused (``needs_fresh``). Called through
``replay.evidence.derive``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from actors.walker import Target
from protocols.program import Action, Check, ReadUntil, Step
from replay.evidence import Derived, TripContext, Unit, _recent, _target, as_bytes

#: Most SSE subscriptions a refusal-mode repro opens before its check.
SSE_KILL_CAP = 300



def derive_sse(ctx: TripContext, limit: int) -> Derived:
    """The I-SSE-LEAK converter (see the module docstring)."""
    ev = ctx.evidence
    target = _target(ctx)
    sse_path = str(ev.get("path") or ctx.settings.get("sse_path") or "/events")
    request = as_bytes(ev.get("sent")) or (
        f"GET {sse_path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode("latin-1")
    kills = [e for e in _recent(ctx, 10_000) if e.get("stage") and as_bytes(e.get("sent"))]
    stats_path = _same_origin_path(ctx.settings.get("stats_url"), target)
    field_name = ctx.settings.get("stats_field")
    if stats_path and isinstance(field_name, str):
        chosen = kills[-limit:] or [{"stage": "after_headers", "mode": "rst"}] * 4
        units = [(Step(Action.PROBE, path=stats_path, timeout_s=2.0, label="sse.stats_before"),)]
        units += [_sse_kill(entry, request, 1000 + i) for i, entry in enumerate(chosen)]
        units.append((Step(Action.SLEEP, interval_s=1.0, label="hold"),))
        units.append((Step(Action.PROBE, path=stats_path, timeout_s=2.0,
                           label="sse.stats_after"),))
        return Derived(tuple(units), Check("sse_leak", {"mode": "count", "field": field_name,
                                                        "min_leaked": 1}),
                       {"mode": "count"}, stateful=True)
    # Every subscription that left may hold a slot (the walker's own leak checks too), and
    # the run spread them over actors: over-approximate, the shrinker finds the threshold.
    seen = max(int(ctx.counters.get("sse.sent", 0)), int(ev.get("kills_before", 0) or 0))
    total = min(SSE_KILL_CAP, 2 * seen + 8)
    pattern = kills or [{"stage": "after_headers", "mode": "rst"}]
    units = [_sse_kill(pattern[i % len(pattern)], request, 1000 + i) for i in range(total)]
    units.append((Step(Action.SLEEP, interval_s=0.5, label="hold"),))
    units.append((Step(Action.SEND, conn=0, data=request, label="sse.subscribe"),
                  Step(Action.READ, conn=0, timeout_s=1.5, until=ReadUntil.CLOSE,
                       label="sse.check"),
                  Step(Action.CLOSE, conn=0)))
    return Derived(tuple(units), Check("sse_leak", {"mode": "refused"}), {"mode": "refused"},
                   needs_fresh=True,
                   notes=(f"no stats URL: the repro abandons {total} subscriptions and then "
                          "expects a fresh one to be refused",))


def _sse_kill(entry: Mapping[str, Any], request: bytes, conn: int) -> Unit:
    hang_up = Step(Action.RST if entry.get("mode") != "fin" else Action.CLOSE, conn=conn)
    send = Step(Action.SEND, conn=conn, data=request, label="sse.kill")
    if entry.get("stage") == "before_headers":
        return (send, hang_up)
    return (send, Step(Action.READ, conn=conn, timeout_s=2.0, until=ReadUntil.ANY,
                       label="sse.kill.head"), hang_up)


def _same_origin_path(url: Any, target: Target) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    if "://" not in url:
        return url if url.startswith("/") else "/" + url
    parts = urlsplit(url)
    if parts.hostname == target.host and (parts.port or 80) == target.port:
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return None
