"""The h2c slice: churn through h2c upgrades abandoned at every stage, then check the target.

How this works: the walker cycles through every (``TeardownStage``, FIN|RST) pair in an
order shuffled by its PRNG. One round opens a connection, sends ``GET <path>`` with
``Upgrade: h2c`` (RFC 7540 §3.2), goes as far as the stage says (after a 101: the client
preface, SETTINGS, SETTINGS ACK), classifies what the server answered
(``protocols.h2c.classify_answer``) and walks away with a FIN or an RST. Then a probe on a
fresh connection sends a plain ``GET <path>``: any well-formed HTTP/1.x response means the
target survived. A probe that fails twice (refused, timeout, reset, close, garbage) is
``h2c.crashed`` (I-H2C-CRASHED, HIGH); an upgrade answered with garbage is
``h2c.must_violation`` (I-H2C-MUST, MED); both reported with the exact bytes of the round and
of the probes.

Declining the upgrade is correct (RFC 9113 deprecates it); the stages after a decline still
send their bytes (a partial or full preface on an HTTP/1.1 connection is good torture) but
nothing is judged from them.

Settings: ``h2c_path`` (default: the target URL's path), ``h2c_timeout`` (connect/send/read,
seconds, default 5), ``h2c_probe_pause_s`` (between the two probe attempts, default 1),
``h2c_stages`` (stage names to restrict to, default all).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import trio

from actors import confirm, net
from actors.net import Ending, TransportError
from actors.response_check import check_raw
from actors.walker import WalkerContext
from protocols.confirmation import Attempt, Confirmed
from protocols.h2c import (
    SETTINGS_ACK,
    AnswerKind,
    H2cAnswer,
    TeardownStage,
    Transport,
    build_client_preface,
    build_upgrade_request,
    classify_answer,
    head_complete,
    preface_complete,
    stream_started,
)
from protocols.response_head import HEAD_CAP, HeadError, ResponseHead, parse_response_head

SLICE = "h2c"
READ_CAP = HEAD_CAP + 256 * 1024
CONNECT_BACKOFF_S = 0.2
CRASHED = f"{SLICE}.crashed"
#: A garbage answer to the upgrade (not HTTP/1.x, a 101 without ``Upgrade: h2c``, malformed
#: HTTP/2 frames): a MUST of the answer's grammar missed, MED (I-H2C-MUST). The client stops
#: there, nothing carries on; a target that died with it fails the next round's probes.
GARBAGE = f"{SLICE}.must_violation"

_TRANSPORT = {
    Ending.EOF: Transport.EOF,
    Ending.RESET: Transport.RESET,
    Ending.CAP: Transport.CAP,
    Ending.TIMEOUT: Transport.OPEN,
    Ending.DONE: Transport.OPEN,
}

_COUNTER = {
    AnswerKind.UPGRADED: "upgraded",
    AnswerKind.DECLINED: "declined",
    AnswerKind.SERVER_ERROR: "server_error",
    AnswerKind.GARBAGE: "garbage",
    AnswerKind.HANG: "hang",
    AnswerKind.CLOSED: "closed",
}


@dataclass
class _Round:
    stage: TeardownStage
    mode: str
    sent: bytearray = field(default_factory=bytearray)
    received: bytes = b""
    answer: H2cAnswer | None = None


async def run(ctx: WalkerContext) -> None:
    """Churn and probe until the walker's deadline."""
    combos = _combos(ctx)
    while not ctx.expired():
        stage, mode = next(combos)
        await churn_once(ctx, stage, mode)


def _combos(ctx: WalkerContext) -> Iterator[tuple[TeardownStage, str]]:
    names = ctx.settings.get("h2c_stages")
    stages = [TeardownStage(n) for n in names] if names else list(TeardownStage)
    combos = [(stage, mode) for stage in stages for mode in ("fin", "rst")]
    ctx.rng.shuffle(combos)
    return itertools.cycle(combos)


def _timeout(ctx: WalkerContext) -> float:
    return float(ctx.settings.get("h2c_timeout", 5.0))


def _path(ctx: WalkerContext) -> str:
    return str(ctx.settings.get("h2c_path") or ctx.target.base_path or "/")


async def churn_once(ctx: WalkerContext, stage: TeardownStage, mode: str) -> bool:
    """One abandoned upgrade and a survival probe; returns whether the target survived.

    A crash verdict is re-run alone first (``actors.confirm``): the same stage and way of
    leaving, then the probes; a crash seen as probes timing out also needs a plain request
    to the health route answered in that round, or it is saturation, not a crash.
    """
    ctx.begin_case(f"{stage.value}/{mode}")  # crash attribution (actors.flight)
    rnd, connected = await _churn(ctx, stage, mode, count=True)
    answer = rnd.answer
    if answer is not None and answer.kind is AnswerKind.GARBAGE:
        first = Attempt(violation=True, key=GARBAGE, detail=f"garbage: {answer.detail}")
        evidence = {**_round_evidence(ctx, rnd), "reason": f"garbage answer: {answer.detail}"}
    else:
        survived, probes = await _probe_twice(ctx)
        if survived:
            if not connected:
                await trio.sleep(CONNECT_BACKOFF_S)
            return True
        first = _probe_attempt(probes)
        evidence = {
            **_round_evidence(ctx, rnd),
            "reason": "the target stopped answering after the churn: "
            + "; ".join(p["reason"] for p in probes),
            "probes": probes,
        }
    if confirm.enabled(ctx):
        decision = await confirm.confirm(ctx, SLICE, f"{stage.value}.{mode}", first,
                                         lambda _: _resend(ctx, stage, mode), evidence)
        if not isinstance(decision, Confirmed):
            return True
        evidence.update(confirm.confirmation_note(decision))
    ctx.report_violation(first.key, evidence)  # h2c.crashed, or h2c.must_violation (MED)
    return first.key != CRASHED


async def _churn(
    ctx: WalkerContext, stage: TeardownStage, mode: str, count: bool
) -> tuple[_Round, bool]:
    """One abandoned upgrade; (the round, whether we connected). Counts only if ``count``."""
    tally = ctx.tally
    timeout = _timeout(ctx)
    rnd = _Round(stage, mode)
    started = trio.current_time()
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        if count:
            tally.incr(f"{SLICE}.errors")
            tally.incr(f"{SLICE}.connect_{exc.cause}")
        ctx.record_exchange(slice=SLICE, stage=stage.value, mode=mode, error=exc.cause)
        return rnd, False
    try:
        if count:
            tally.incr(f"{SLICE}.sent")
        await _drive(ctx, stream, rnd, timeout)
    except TransportError:
        pass  # the server hung up on us mid-round; the probe tells whether it survived
    finally:
        if mode == "rst":
            await net.close_with_reset(stream)
        else:
            await net.aclose_quietly(stream)
    answer = rnd.answer
    if count:
        tally.incr(f"{SLICE}.stage.{stage.value}.{mode}")
        tally.record_latency(f"{SLICE}.latency", (trio.current_time() - started) * 1e6)
        if answer is not None:
            tally.incr(f"{SLICE}.{_COUNTER[answer.kind]}")
    ctx.record_exchange(slice=SLICE, stage=stage.value, mode=mode, sent=bytes(rnd.sent),
                        received=rnd.received, confirm_round=not count,
                        answer=None if answer is None else answer.kind.value)
    return rnd, True


def _probe_attempt(probes: list[dict[str, Any]], baseline: bool | None = None) -> Attempt:
    """Failed probes as a crash attempt; a hang when every failure was a timeout."""
    reasons = [p["reason"] for p in probes]
    return Attempt(violation=True, key=CRASHED, hang=all("timeout" in r for r in reasons),
                   baseline_answered=baseline, detail="; ".join(reasons))


async def _resend(ctx: WalkerContext, stage: TeardownStage, mode: str) -> Attempt:
    """One confirmation round: the same churn alone, the probes, and for a hang the baseline
    (a plain request to the health route)."""
    rnd, _ = await _churn(ctx, stage, mode, count=False)
    answer = rnd.answer
    if answer is not None and answer.kind is AnswerKind.GARBAGE:
        return Attempt(violation=True, key=GARBAGE, detail=f"garbage: {answer.detail}")
    survived, probes = await _probe_twice(ctx, count=False)
    if survived:
        return Attempt(violation=False, detail="the target answered the probe")
    attempt = _probe_attempt(probes)
    if not attempt.hang:
        return attempt
    health = str(ctx.settings.get("health_path") or ctx.target.base_path or "/")
    answered, _ = await probe(ctx, path=health)
    return _probe_attempt(probes, baseline=answered)


async def _drive(
    ctx: WalkerContext, stream: trio.SocketStream, rnd: _Round, timeout: float
) -> None:
    """Send and read as far as ``rnd.stage`` goes; leaves the classification in ``rnd``."""
    stage = rnd.stage
    request = build_upgrade_request(_path(ctx), ctx.target.host_header)
    if stage is TeardownStage.MID_HEADERS:
        await _send(stream, rnd, request[: ctx.rng.randrange(1, len(request) - 3)], timeout)
        return
    await _send(stream, rnd, request, timeout)
    if stage is TeardownStage.REQUEST_SENT:
        return
    result = await net.read_until(stream, timeout, READ_CAP, head_complete)
    rnd.received = result.data
    check_raw(ctx, request, result.data, stream=True)  # response rules on the answer's head
    rnd.answer = classify_answer(result.data, _TRANSPORT[result.ending], preface_sent=False)
    if stage is TeardownStage.AFTER_RESPONSE or rnd.answer.kind not in (
        AnswerKind.UPGRADED, AnswerKind.DECLINED, AnswerKind.SERVER_ERROR
    ):
        return
    preface = build_client_preface()
    if stage is TeardownStage.PARTIAL_PREFACE:
        await _send(stream, rnd, preface[: ctx.rng.randrange(1, len(preface))], timeout)
        return
    await _send(stream, rnd, preface, timeout)
    if rnd.answer.kind is not AnswerKind.UPGRADED:
        return  # declined: the rest of the h2 dance has no meaning on HTTP/1.1
    await _read_more(stream, rnd, timeout, preface_complete)
    if stage is TeardownStage.AFTER_SETTINGS:
        return
    await _send(stream, rnd, SETTINGS_ACK, timeout)
    await _read_more(stream, rnd, timeout, stream_started)


async def _read_more(
    stream: trio.SocketStream, rnd: _Round, timeout: float, enough: Any
) -> None:
    if enough(rnd.received):
        ending = Ending.DONE
    else:
        prior = rnd.received
        result = await net.read_until(stream, timeout, READ_CAP - len(prior),
                                      lambda data: enough(prior + data))
        rnd.received = prior + result.data
        ending = result.ending
    rnd.answer = classify_answer(rnd.received, _TRANSPORT[ending], preface_sent=True)


async def _send(stream: trio.SocketStream, rnd: _Round, data: bytes, timeout: float) -> None:
    rnd.sent += data
    await net.send_all(stream, data, timeout)


def _round_evidence(ctx: WalkerContext, rnd: _Round) -> dict[str, Any]:
    answer = rnd.answer
    return {
        "stage": rnd.stage.value,
        "mode": rnd.mode,
        "path": _path(ctx),
        "sent": bytes(rnd.sent),
        "received": rnd.received,
        "answer": None if answer is None else answer.kind.value,
        "answer_detail": None if answer is None else answer.detail,
    }


async def _probe_twice(
    ctx: WalkerContext, count: bool = True
) -> tuple[bool, list[dict[str, Any]]]:
    """Two chances for a plain request to get a well-formed answer: (survived, failures)."""
    tally = ctx.tally
    pause = float(ctx.settings.get("h2c_probe_pause_s", 1.0))
    probes: list[dict[str, Any]] = []
    for attempt in range(2):
        if count:
            tally.incr(f"{SLICE}.probes")
        ok, evidence = await probe(ctx)
        if ok:
            if count and evidence.get("status", 0) >= 500:
                tally.incr(f"{SLICE}.probe_5xx")
            return True, probes
        probes.append(evidence)
        if attempt == 0:
            await trio.sleep(pause)
    return False, probes


async def probe(ctx: WalkerContext, path: str | None = None) -> tuple[bool, dict[str, Any]]:
    """A plain ``GET <path>`` on a fresh connection: (answered well-formed?, evidence)."""
    with ctx.aside_case("survival_probe"):  # crash attribution: not part of the round
        return await _probe(ctx, path)


async def _probe(ctx: WalkerContext, path: str | None) -> tuple[bool, dict[str, Any]]:
    timeout = _timeout(ctx)
    request = (
        f"GET {path or _path(ctx)} HTTP/1.1\r\nHost: {ctx.target.host_header}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    evidence: dict[str, Any] = {"sent": request}
    try:
        stream = await net.connect(ctx.target, timeout)
    except TransportError as exc:
        return False, {**evidence, "reason": f"connect failed: {exc.cause}"}
    try:
        try:
            await net.send_all(stream, request, timeout)
        except TransportError as exc:
            return False, {**evidence, "reason": f"send failed: {exc.cause}"}
        result = await net.read_until(stream, timeout, HEAD_CAP + 1,
                                      lambda data: parse_response_head(data) is not None)
    finally:
        await net.aclose_quietly(stream)
    evidence["received"] = result.data
    head = parse_response_head(result.data)
    if isinstance(head, ResponseHead):
        return True, {**evidence, "status": head.status}
    if isinstance(head, HeadError):
        return False, {**evidence, "reason": f"garbage: {head.reason}"}
    return False, {**evidence, "reason": f"no response ({result.ending.value})"}
