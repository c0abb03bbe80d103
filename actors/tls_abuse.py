"""The tls slice: TLS-level torture of an https target, and a control request that must
keep being answered through it.

How this works: the walker cycles through ``protocols.tls_cases.CASES`` in an order
shuffled by its PRNG. One case opens a bare TCP connection (``net.connect_tcp``: the case
speaks its own bytes, no TLS library), sends them as the case says (at once, dripped, or
half and then nothing), leaves as the case says (FIN or RST, before or after the server's
first record) and judges that first record (``protocols.tls_judge``). The dripped and
stalled cases hold their connection open while a control request runs beside them: a
fresh TLS connection (``net.connect``, the run's ``--ca-file``/``--insecure``) with a
``GET`` of the health path, which must get a well-formed HTTP answer within
``tls_timeout``. Every case is followed by another control request.

A failed control request is re-checked once after ``tls_pause_s`` (one that failed after
the case just asks again; one that failed during it re-runs the case beside a control, then
asks once more without the case: if that baseline times out too, the server is saturated,
not held by the case, and only ``tls.unconfirmed`` is counted); failing twice is
``tls.control_failed`` (I-TLS-LIVE, HIGH), reported with the case's bytes and every
control's evidence. A ServerHello where RFC 8446 says the connection MUST end is
``tls.must_violation`` (I-TLS-MUST, MED). Our own failure to connect for a case is
``tls.unjudged`` (the control after it still says whether the target lives).

Counters: ``tls.sent``, ``tls.case.<name>.<pass|lenient|violation>``,
``tls.reaction.<kind>``, ``tls.alert.<description>``, ``tls.control``,
``tls.control_rechecks``, ``tls.unconfirmed``, ``tls.control_latency`` (µs).
Settings: ``tls_timeout`` (connect/send/read/control, default 5 s), ``tls_drip_s`` (how
long a drip lasts at most, default 2 s), ``tls_pause_s`` (before the re-check, default
1 s), ``tls_cases`` (names to restrict to, default all).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import trio

from actors import net, tls
from actors.net import Ending, TransportError
from actors.walker import WalkerContext
from protocols.response_head import HEAD_CAP, HeadError, ResponseHead, parse_response_head
from protocols.tls_cases import (
    BY_NAME,
    CASES,
    CaseInput,
    Delivery,
    Leave,
    TlsCase,
    drip_interval,
    dripped_bytes,
)
from protocols.tls_hello import alert_name
from protocols.tls_judge import (
    REPLY_CAP,
    Reaction,
    Transport,
    Verdict,
    judge,
    observe,
    reply_complete,
)

SLICE = "tls"
CONTROL_FAILED = f"{SLICE}.control_failed"
MUST_VIOLATION = f"{SLICE}.must_violation"
#: How long after the case's first bytes the control request beside it starts.
CONTROL_DELAY_S = 0.05
#: Slack on waiting for the control beside a case (it ends by its own deadline).
CONTROL_SLACK_S = 0.5

_TRANSPORT = {Ending.EOF: Transport.EOF, Ending.RESET: Transport.RESET,
              Ending.TIMEOUT: Transport.OPEN, Ending.DONE: Transport.OPEN,
              Ending.CAP: Transport.OPEN}


@dataclass
class _Attack:
    """One run of a case: what went out, what came back, and the control beside it."""

    case: TlsCase
    sent: int = 0
    received: bytes = b""
    transport: Transport = Transport.NOT_READ
    send_error: str | None = None
    connected: bool = False
    during: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def reaction(self) -> Reaction:
        return observe(self.received, self.transport)


async def run(ctx: WalkerContext) -> None:
    """Cases and controls until the walker's deadline."""
    names = ctx.settings.get("tls_cases")
    cases = [BY_NAME[n] for n in names] if names else list(CASES)
    ctx.rng.shuffle(cases)
    for case in itertools.cycle(cases):
        if ctx.expired():
            return
        await run_case(ctx, case)


def _timeout(ctx: WalkerContext) -> float:
    return float(ctx.settings.get("tls_timeout", 5.0))


def _health(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("health_path") or ctx.target.base_path or "/")


async def run_case(ctx: WalkerContext, case: TlsCase) -> bool:
    """One case, its verdict and the control after it; True unless the control failed."""
    tally = ctx.tally
    ctx.begin_case(case.name)  # crash attribution (actors.flight)
    attack = await _attack(ctx, case, count=True)
    after = await control(ctx)
    if attack.connected:
        _judge(ctx, attack)
    failed = [c for c in (attack.during, after) if c is not None and not c["ok"]]
    if not failed:
        return True
    tally.incr(f"{SLICE}.control_rechecks")
    await trio.sleep(float(ctx.settings.get("tls_pause_s", 1.0)))
    held = attack.during is not None and not attack.during["ok"]
    rechecks = await _recheck(ctx, case, held)
    if rechecks is None:
        return True  # one slow answer, or a saturated server: not a verdict
    tally.incr(f"{SLICE}.case.{case.name}.{Verdict.VIOLATION.value}")
    ctx.report_violation(CONTROL_FAILED, {
        **_evidence(ctx, attack),
        "reason": "the control request failed "
        + ("while the case held its connection" if held else "after the case") + ", twice: "
        + "; ".join(c["reason"] for c in (*failed, *rechecks) if not c["ok"]),
        "controls": [*failed, *rechecks],
    })
    return False


async def _recheck(ctx: WalkerContext, case: TlsCase, held: bool) -> list[dict[str, Any]] | None:
    """The controls that confirm a failure, or None when it did not hold.

    A control that failed after the case is asked again: failing again, the server is down
    or wedged. One that failed while the case held its connection is re-run beside the
    case; failing again, a control right after the case is the baseline: answered, or
    refused (the server died of it), the case is to blame; timed out too, the server is
    merely saturated and nothing is counted but ``tls.unconfirmed``."""
    if not held:
        again = await control(ctx)
        return None if again["ok"] else [again]
    rerun = await _attack(ctx, case, count=False)
    during = rerun.during or {"ok": True}
    if during["ok"]:
        return None
    baseline = await control(ctx)
    if not baseline["ok"] and baseline.get("hang"):
        ctx.tally.incr_each((f"{SLICE}.unconfirmed", f"{SLICE}.case.{case.name}.unconfirmed"))
        ctx.tally.keep_example(f"{SLICE}.unconfirmed", {
            "case": case.name, "reason": "the control beside the re-run and the baseline "
            "after it both timed out: saturation", "controls": [during, baseline]})
        return None
    return [during, {**baseline, "role": "baseline"}]


def _judge(ctx: WalkerContext, attack: _Attack) -> None:
    tally = ctx.tally
    case = attack.case
    reaction = attack.reaction()
    judgement = judge(case, reaction)
    tally.incr(f"{SLICE}.reaction.{reaction.kind.value}")
    if reaction.alert_description is not None:
        tally.incr(f"{SLICE}.alert.{alert_name(reaction.alert_description)}")
    tally.incr(f"{SLICE}.case.{case.name}.{judgement.verdict.value}")
    if judgement.verdict is Verdict.LENIENT:
        tally.keep_example(f"{SLICE}.case.{case.name}.lenient",
                           {**_evidence(ctx, attack), "reason": judgement.reason})
    if judgement.verdict is Verdict.VIOLATION:
        ctx.report_violation(MUST_VIOLATION, {**_evidence(ctx, attack),
                                              "reason": judgement.reason})


def _evidence(ctx: WalkerContext, attack: _Attack) -> dict[str, Any]:
    return {"case": attack.case.name, "rfc": attack.case.rfc, "quote": attack.case.quote,
            "sent_bytes": attack.sent, "received": attack.received,
            "transport": attack.transport.value, "reaction": attack.reaction().describe(),
            "send_error": attack.send_error, "control_during": attack.during,
            "health_path": _health(ctx)}


async def _attack(ctx: WalkerContext, case: TlsCase, count: bool) -> _Attack:
    """Send the case, leave as it says, with the control request beside it if it holds."""
    attack = _Attack(case)
    timeout = _timeout(ctx)
    name = tls.server_hostname(ctx.target)
    data = case.build(CaseInput(None if tls.is_address(name) else name,
                                ctx.target.host_header, _health(ctx), ctx.rng))
    try:
        stream = await net.connect_tcp(ctx.target, timeout)
    except TransportError as exc:
        if count:
            ctx.tally.incr_each((f"{SLICE}.unjudged", f"{SLICE}.connect_{exc.cause}"))
        attack.notes.append(f"connect failed: {exc.cause}")
        return attack
    attack.connected = True
    if count:
        ctx.tally.incr(f"{SLICE}.sent")
    done = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            if case.control_during:
                nursery.start_soon(_control_beside, ctx, attack, done)
            else:
                done.set()
            await _play(ctx, stream, attack, data, done, timeout)
    finally:
        if case.leave.resets:
            await net.close_with_reset(stream)
        else:
            await net.aclose_quietly(stream)
    ctx.record_exchange(slice=SLICE, case=case.name, sent=attack.sent, received=attack.received,
                        transport=attack.transport.value, confirm_round=not count,
                        during=None if attack.during is None else attack.during["ok"])
    return attack


async def _control_beside(ctx: WalkerContext, attack: _Attack, done: trio.Event) -> None:
    await trio.sleep(CONTROL_DELAY_S)
    attack.during = await control(ctx)
    done.set()


async def _play(ctx: WalkerContext, stream: trio.SocketStream, attack: _Attack, data: bytes,
                done: trio.Event, timeout: float) -> None:
    """Deliver, leave, read: every step under ``timeout``; a hang-up while sending is an
    observation (the server ended it), not an error."""
    case = attack.case
    try:
        await _deliver(ctx, stream, attack, data, done, timeout)
    except TransportError as exc:
        attack.send_error = exc.cause
    if case.leave is Leave.FIN_AFTER_SEND:
        await net.half_close(stream)
    if case.leave.reads:
        result = await net.read_until(stream, timeout, REPLY_CAP, reply_complete)
        attack.received, attack.transport = result.data, _TRANSPORT[result.ending]
    with trio.move_on_after(timeout + CONTROL_DELAY_S + CONTROL_SLACK_S):
        await done.wait()  # the control beside the case is bounded by its own timeouts


async def _deliver(ctx: WalkerContext, stream: trio.SocketStream, attack: _Attack,
                   data: bytes, done: trio.Event, timeout: float) -> None:
    delivery = attack.case.delivery
    if delivery is Delivery.STALL:
        await _send(stream, attack, data[: len(data) // 2], timeout)
        with trio.move_on_after(timeout + CONTROL_DELAY_S + CONTROL_SLACK_S):
            await done.wait()
        return
    if delivery is Delivery.DRIP:
        drip_s = float(ctx.settings.get("tls_drip_s", 2.0))
        interval = drip_interval(len(data), drip_s)
        count = dripped_bytes(len(data), drip_s)
        for at in range(count):
            await _send(stream, attack, data[at:at + 1], timeout)
            await trio.sleep(interval)
        data = data[count:]
    if data:
        await _send(stream, attack, data, timeout)


async def _send(stream: trio.SocketStream, attack: _Attack, data: bytes, timeout: float) -> None:
    await net.send_all(stream, data, timeout)
    attack.sent += len(data)


async def control(ctx: WalkerContext) -> dict[str, Any]:
    """A ``GET`` of the health path on a fresh TLS connection: {"ok", "reason", ...}."""
    ctx.tally.incr(f"{SLICE}.control")
    started = trio.current_time()
    timeout = _timeout(ctx)
    evidence: dict[str, Any] = {"ok": False, "reason": f"no answer within {timeout:.1f} s",
                                "hang": True}
    with ctx.aside_case("control"), trio.move_on_after(timeout):  # one deadline for it all
        evidence = await _control(ctx, timeout)
    elapsed = trio.current_time() - started
    evidence["elapsed_s"] = round(elapsed, 3)
    if evidence["ok"]:
        ctx.tally.record_latency(f"{SLICE}.control_latency", elapsed * 1e6)
    return evidence


async def _control(ctx: WalkerContext, timeout: float) -> dict[str, Any]:
    request = (f"GET {_health(ctx)} HTTP/1.1\r\nHost: {ctx.target.host_header}\r\n"
               "Connection: close\r\n\r\n").encode("latin-1")
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        return {"ok": False, "reason": f"connect failed: {exc}",
                "hang": exc.cause in ("connect_timeout", "tls_timeout")}
    try:
        try:
            await net.send_all(stream, request, timeout)
        except TransportError as exc:
            return {"ok": False, "reason": f"send failed: {exc.cause}"}
        result = await net.read_until(stream, timeout, HEAD_CAP + 1,
                                      lambda data: parse_response_head(data) is not None)
    finally:
        await net.aclose_quietly(stream)
    head = parse_response_head(result.data)
    if isinstance(head, ResponseHead):
        return {"ok": True, "status": head.status}
    if isinstance(head, HeadError):
        return {"ok": False, "reason": f"garbage: {head.reason}", "received": result.data}
    return {"ok": False, "reason": f"no response ({result.ending.value})",
            "received": result.data, "hang": result.ending is Ending.TIMEOUT}
