"""The sse slice: subscribe to an event stream, then vanish at an awkward moment.

How this works: each round picks a ``SseKillStage`` and a way to leave (FIN, or RST through
SO_LINGER 0) from the walker's PRNG, subscribes with ``GET <sse_path>`` and
``Accept: text/event-stream``, reads the response through h11 (which undoes chunked
encoding) into the WHATWG parser (``protocols.sse``), and leaves: before the headers, right
after them, as soon as stream bytes arrive, or after holding the subscription for 50-1500 ms.

Leaving is legal; what a server must not do is keep the departed subscriber's slot. After
every ``sse_leak_check_every`` kills the walker opens a fresh subscription: it must get
``200`` with ``text/event-stream``. A refusal (5xx, 429, RST, FIN, connect failure) or no
answer, persisting through ``sse_leak_grace_s`` of retries (a server may notice dead peers
only on its next write), is ``sse.leak`` (I-SSE-LEAK). The coordinator's subscriber-count
check (``coordinator.sse_leak_check``) is the finer instrument; this one needs no metrics.

Settings: ``sse_path`` (default ``/events``), ``sse_timeout`` (connect/send/head, seconds,
default 5), ``sse_hold_ms`` ([min, max], default [50, 1500]), ``sse_rst_ratio`` (share of
kills by RST, default 0.5), ``sse_leak_check_every`` (K, default 10), ``sse_leak_grace_s``
(default 10; raise it above the heartbeat interval of a server that only notices departed
clients when it next writes), ``sse_stages`` (stage names to restrict to, default all).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

from actors import confirm, flight, net
from actors.net import TransportError
from actors.response_check import check_raw
from actors.walker import WalkerContext
from protocols.confirmation import Attempt, Confirmed
from protocols.response_head import HEAD_CAP
from protocols.sse import SseKillStage, SseOverflow, SseParser

SLICE = "sse"
CONNECT_BACKOFF_S = 0.2
#: Bytes of a subscription kept for evidence (the tally caps examples anyway).
EVIDENCE_CAP = 4096
RETRY_PAUSE_S = 0.25
#: Pause after a refused subscription, so a 404/503 route does not spin the walker.
REFUSED_BACKOFF_S = 0.1


@dataclass
class _Subscription:
    """One subscription's transcript and state."""

    request: bytes
    conn: h11.Connection
    received: bytearray = field(default_factory=bytearray)
    status: int | None = None
    content_type: bytes = b""
    parser: SseParser = field(default_factory=SseParser)
    ended: str = ""  # why the server side ended, "" while open
    body_bytes: int = 0

    def feed(self, data: bytes) -> None:
        """Feed response bytes (b"" = the server closed)."""
        if len(self.received) < EVIDENCE_CAP:
            self.received += data[: EVIDENCE_CAP - len(self.received)]
        try:
            self.conn.receive_data(data)
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if isinstance(event, h11.Response):
                    self.status = event.status_code
                    for name, value in event.headers:
                        if name == b"content-type":
                            self.content_type = value
                elif isinstance(event, h11.Data):
                    self.body_bytes += len(event.data)
                    for item in self.parser.feed(bytes(event.data)):
                        if isinstance(item, SseOverflow):
                            self.ended = f"stream overflow: {item.reason}"
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    self.ended = "server ended the stream"
                    break
        except h11.RemoteProtocolError as exc:
            self.ended = f"malformed response: {exc}"
        if not data and not self.ended:
            self.ended = "server closed the connection"

    @property
    def established(self) -> bool:
        return self.status == 200 and self.content_type.split(b";")[0].strip().lower() == (
            b"text/event-stream"
        )


@dataclass
class _Config:
    path: str
    timeout: float
    hold_ms: tuple[float, float]
    rst_ratio: float
    check_every: int
    grace_s: float
    stages: tuple[SseKillStage, ...]

    @classmethod
    def from_settings(cls, settings: Any) -> _Config:
        low, high = settings.get("sse_hold_ms", (50, 1500))
        names = settings.get("sse_stages")
        stages = tuple(SseKillStage(n) for n in names) if names else tuple(SseKillStage)
        return cls(
            path=str(settings.get("sse_path", "/events")),
            timeout=float(settings.get("sse_timeout", 5.0)),
            hold_ms=(float(low), float(high)),
            rst_ratio=float(settings.get("sse_rst_ratio", 0.5)),
            check_every=max(1, int(settings.get("sse_leak_check_every", 10))),
            grace_s=float(settings.get("sse_leak_grace_s", 10.0)),
            stages=stages,
        )


class Outcome(enum.Enum):
    """How one subscription round ended."""

    KILLED = "killed"
    #: No 200 text/event-stream (status, garbage or no head in time).
    REFUSED = "refused"
    #: The server ended the stream before we left.
    ENDED = "ended"
    #: Connect or send failed.
    ERROR = "error"


async def run(ctx: WalkerContext) -> None:
    """Subscribe and kill until the walker's deadline, checking for leaks every K kills.

    A refusal after we have left subscriptions triggers the check at once: a leaking server
    starts refusing between two scheduled checks, and then no more kills happen. After a
    failed check, refusals are only counted until a subscription is accepted again.
    """
    cfg = _Config.from_settings(ctx.settings)
    kills = 0
    left_any = False
    leak_reported = False
    while not ctx.expired():
        stage = ctx.rng.choice(cfg.stages)
        mode = "rst" if ctx.rng.random() < cfg.rst_ratio else "fin"
        hold = ctx.rng.uniform(*cfg.hold_ms) / 1000
        outcome = await subscribe_and_kill(ctx, cfg, stage, mode, hold)
        if outcome is Outcome.KILLED:
            kills += 1
            left_any = True
            leak_reported = False
        refused_after_kills = outcome is Outcome.REFUSED and left_any and not leak_reported
        if kills >= cfg.check_every or refused_after_kills:
            kills = 0
            leak_reported = not await leak_check(ctx, cfg)
        elif outcome is Outcome.REFUSED:
            await trio.sleep(REFUSED_BACKOFF_S)


def _request(ctx: WalkerContext, cfg: _Config) -> tuple[h11.Connection, bytes]:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_CAP)
    request = conn.send(
        h11.Request(
            method="GET",
            target=cfg.path,
            headers=[
                ("Host", ctx.target.host_header),
                ("Accept", "text/event-stream"),
                ("Cache-Control", "no-cache"),
            ],
        )
    )
    return conn, request or b""


async def _open(ctx: WalkerContext, cfg: _Config) -> tuple[trio.SocketStream, _Subscription]:
    """Connect and send the subscription request; TransportError on failure."""
    conn, request = _request(ctx, cfg)
    stream = await net.connect(ctx.target, cfg.timeout)
    try:
        await net.send_all(stream, request, cfg.timeout)
    except TransportError:
        await net.aclose_quietly(stream)
        raise
    return stream, _Subscription(request=request, conn=conn)


async def _read_until(
    stream: trio.SocketStream, sub: _Subscription, seconds: float, stop: Any
) -> None:
    """Read into ``sub`` until ``stop(sub)``, the server ends, or ``seconds`` pass."""
    with trio.move_on_after(seconds):
        while not sub.ended and not stop(sub):
            try:
                data = await stream.receive_some(net.READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                sub.ended = "connection reset by the server"
                break
            flight.note_read(data)  # crash attribution: the server answered
            sub.feed(data)


async def subscribe_and_kill(
    ctx: WalkerContext, cfg: _Config, stage: SseKillStage, mode: str, hold: float
) -> Outcome:
    """One subscription, left at ``stage`` with a FIN or an RST."""
    ctx.begin_case(f"{stage.value}/{mode}")  # crash attribution (actors.flight)
    tally = ctx.tally
    try:
        stream, sub = await _open(ctx, cfg)
    except TransportError as exc:
        tally.incr(f"{SLICE}.errors")
        tally.incr(f"{SLICE}.connect_{exc.cause}")
        ctx.record_exchange(slice=SLICE, stage=stage.value, error=exc.cause)
        await trio.sleep(CONNECT_BACKOFF_S)
        return Outcome.ERROR
    tally.incr(f"{SLICE}.sent")
    started = trio.current_time()
    killed = False
    try:
        if stage is not SseKillStage.BEFORE_HEADERS:
            await _read_until(stream, sub, cfg.timeout, lambda s: s.status is not None)
            check_raw(ctx, sub.request, bytes(sub.received), stream=True)
            if sub.status is None or not sub.established:
                _handshake_failed(ctx, sub, stage)
                return Outcome.REFUSED
            tally.incr(f"{SLICE}.established")
            tally.record_latency(f"{SLICE}.latency", (trio.current_time() - started) * 1e6)
            if stage is SseKillStage.MID_EVENT:
                await _read_until(stream, sub, hold, lambda s: s.body_bytes > 0)
            elif stage is SseKillStage.IDLE:
                await _read_until(stream, sub, hold, lambda s: False)
            if sub.parser.events:
                tally.incr(f"{SLICE}.events_read", sub.parser.events)
            if sub.ended:
                tally.incr(f"{SLICE}.server_closed_early")
                tally.keep_example(f"{SLICE}.server_closed_early", _evidence(ctx, sub, stage))
                return Outcome.ENDED
        killed = True
    finally:
        if killed and mode == "rst":
            await net.close_with_reset(stream)
        else:
            await net.aclose_quietly(stream)
    tally.incr(f"{SLICE}.killed")
    tally.incr(f"{SLICE}.kill.{stage.value}.{mode}")
    ctx.record_exchange(slice=SLICE, stage=stage.value, mode=mode, sent=sub.request,
                        received=bytes(sub.received), status=sub.status,
                        events=sub.parser.events)
    return Outcome.KILLED


def _handshake_failed(ctx: WalkerContext, sub: _Subscription, stage: SseKillStage) -> None:
    counter = f"{SLICE}.handshake_failed"
    ctx.tally.incr(counter)
    ctx.tally.keep_example(counter, _evidence(ctx, sub, stage))
    ctx.record_exchange(slice=SLICE, stage=stage.value, sent=sub.request,
                        received=bytes(sub.received), status=sub.status, problem=sub.ended)


def _evidence(ctx: WalkerContext, sub: _Subscription, stage: SseKillStage | None) -> dict:
    return {
        "path": str(ctx.settings.get("sse_path", "/events")),
        "stage": None if stage is None else stage.value,
        "status": sub.status,
        "content_type": sub.content_type,
        "ended": sub.ended,
        "sent": sub.request,
        "received": bytes(sub.received),
    }


async def leak_check(ctx: WalkerContext, cfg: _Config) -> bool:
    """A fresh subscriber must still be accepted; retried for ``grace_s`` before blaming.

    Returns False only when a leak was reported. A 429 is rate limiting (our own churn can
    cause it), not a held slot: if every attempt got 429 the check is not judged.
    """
    ctx.begin_case("leak_check")  # crash attribution (actors.flight)
    tally = ctx.tally
    tally.incr(f"{SLICE}.leak_checks")
    if tally.counters.get(f"{SLICE}.established", 0) == 0:
        tally.incr(f"{SLICE}.leak_unjudged")  # never subscribed: nothing could leak
        return True
    attempts: list[dict[str, Any]] = []
    give_up = trio.current_time() + cfg.grace_s
    while True:
        ok, attempt = await _fresh_subscriber(ctx, cfg)
        if ok:
            return True
        attempts.append(attempt)
        if trio.current_time() + RETRY_PAUSE_S >= give_up:
            break
        await trio.sleep(RETRY_PAUSE_S)
    if all(a.get("status") == 429 for a in attempts):
        tally.incr(f"{SLICE}.leak_unjudged")
        tally.incr(f"{SLICE}.rate_limited")
        return True
    with ctx.aside_case("baseline"):
        answers = await _answers_plain_request(ctx, cfg)
    if not answers:
        # A target that refuses or ignores every request is a liveness/hang failure, which
        # the coordinator judges itself; blaming held SSE slots for it would be wrong.
        tally.incr(f"{SLICE}.leak_unjudged")
        tally.incr(f"{SLICE}.target_unresponsive")
        return True
    evidence = {
        **attempts[-1],
        "attempts": len(attempts),
        "grace_s": cfg.grace_s,
        "kills_before": tally.counters.get(f"{SLICE}.killed", 0),
        "reasons": [a["reason"] for a in attempts][:8],
    }
    if confirm.enabled(ctx):
        decision = await confirm.confirm(ctx, SLICE, "leak_check", _refused(attempts[-1]),
                                         lambda _: _recheck(ctx, cfg), evidence)
        if not isinstance(decision, Confirmed):
            return True
        evidence.update(confirm.confirmation_note(decision))
    ctx.report_violation(f"{SLICE}.leak", evidence)
    return False


def _refused(attempt: dict[str, Any], baseline: bool | None = None) -> Attempt:
    """A refused fresh subscriber as a leak attempt; no response head at all is a hang."""
    return Attempt(violation=True, key=f"{SLICE}.leak", hang=attempt.get("status") is None,
                   baseline_answered=baseline, detail=str(attempt.get("reason", "")))


async def _recheck(ctx: WalkerContext, cfg: _Config) -> Attempt:
    """One confirmation round: a fresh subscriber alone; when it gets no answer at all, a
    plain request in the same round tells a held slot from a saturated server."""
    ok, attempt = await _fresh_subscriber(ctx, cfg)
    if ok:
        return Attempt(violation=False, detail="a fresh subscriber was accepted")
    if attempt.get("status") == 429:
        return Attempt(violation=False, detail="429: rate limited, not a held slot")
    refused = _refused(attempt)
    if not refused.hang:
        return refused
    with ctx.aside_case("baseline"):  # the reproducer holds the case's bytes only
        answers = await _answers_plain_request(ctx, cfg)
    return _refused(attempt, baseline=answers)


async def _answers_plain_request(ctx: WalkerContext, cfg: _Config) -> bool:
    """Whether a plain GET of the health path gets any HTTP response on a fresh connection."""
    path = str(ctx.settings.get("health_path") or ctx.target.base_path or "/")
    request = (f"GET {path} HTTP/1.1\r\nHost: {ctx.target.host_header}\r\n"
               "Connection: close\r\n\r\n").encode()
    try:
        stream = await net.connect(ctx.target, cfg.timeout)
    except TransportError:
        return False
    try:
        await net.send_all(stream, request, cfg.timeout)
        result = await net.read_until(stream, cfg.timeout, 16384,
                                      lambda data: b"\r\n" in data)
    except TransportError:
        return False
    finally:
        await net.aclose_quietly(stream)
    return result.data.startswith(b"HTTP/")


async def _fresh_subscriber(ctx: WalkerContext, cfg: _Config) -> tuple[bool, dict[str, Any]]:
    try:
        stream, sub = await _open(ctx, cfg)
    except TransportError as exc:
        return False, {"reason": f"connect/send failed: {exc.cause}", "path": cfg.path}
    try:
        await _read_until(stream, sub, cfg.timeout, lambda s: s.status is not None)
    finally:
        await net.aclose_quietly(stream)
    evidence = _evidence(ctx, sub, None)
    if sub.established:
        return True, evidence
    if sub.status is not None:
        reason = f"status {sub.status} ({sub.content_type.decode('latin-1')[:40]})"
    else:
        reason = sub.ended or f"no response head within {cfg.timeout} s"
    return False, {**evidence, "reason": reason}
