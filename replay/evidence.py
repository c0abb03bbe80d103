"""Evidence -> Program: turn what a walker saw into a replayable, checkable program.

How this works: ``derive(TripContext)`` dispatches on the tripped counter to one converter
per slice. A converter rebuilds the exchange from the exact bytes in the evidence (falling
back to the pure catalogue builders where the evidence was truncated), prepends the
walker's recent exchanges as an optional prefix (state-dependent bugs need them; the
shrinker drops them when they do not matter), and names the oracle in ``replay.checks``
that re-judges the transcript. The result is a ``Derived``: the program as *units* (the
shrinker deletes whole units: a request with its reads, never half of one) plus two facts
the incident path needs to decide where to shrink:

* ``needs_fresh``: the failure destroys the target's state (a crash, a dead accept loop,
  a saturated broker), so a live target cannot tell a smaller candidate from a bigger one;
  shrink against freshly launched instances or not at all.
* ``stateful``: the bug is intermittent against a shared target (periodic lost writes);
  a candidate must fail on repeated runs to count.
* ``shrink_data``: whether bytes inside a request may be deleted too. Only where the
  oracle judges an outcome that does not depend on what the bytes *mean* (the target died,
  a write was lost): an adversarial case is judged as the catalogue case it was, and a
  request whose smuggling header was shrunk away is a different case that a correct server
  fails just the same (delta debugging's "slippage").

Read-after-write (I-DRV-1) rebuilds the walker's session: ``replay.evidence_drv``. A death
or hang is rebuilt from the inputs in flight at that moment: ``replay.crash_shrink``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.walker import Target
from protocols.adversarial_cases import BY_NAME as ADV_CASES
from protocols.adversarial_cases import baseline_request
from protocols.body_routes import route_of
from protocols.program import Action, Check, Program, ReadUntil, Step
from protocols.websocket_cases import CASES as WS_CASES
from protocols.websocket_cases import HANDSHAKE_CASES, HandshakeCase
from replay.crash_shrink import CandidateFormatError, crash_check, crash_units, parse_candidates

Unit = tuple[Step, ...]
PREFIX_LIMIT = 8
PREFIX_TIMEOUT_S = 1.0


class EvidenceError(ValueError):
    """No replayable program can be built from this evidence; the message says why."""


@dataclass(frozen=True)
class TripContext:
    """Everything the coordinator knows about one trip, as plain data."""

    counter: str
    invariant: str
    evidence: Mapping[str, Any]
    target_url: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)
    target_started_at: float | None = None
    tripped_at: float | None = None


@dataclass(frozen=True)
class Derived:
    units: tuple[Unit, ...]
    check: Check
    meta: Mapping[str, Any]
    needs_fresh: bool = False
    stateful: bool = False
    notes: tuple[str, ...] = ()
    shrink_data: bool = False

    @property
    def program(self) -> Program:
        return program_of(self.units, self.check, self.meta)


def program_of(units: Iterable[Unit], check: Check, meta: Mapping[str, Any]) -> Program:
    return Program(tuple(step for unit in units for step in unit), check, dict(meta))


def derive(ctx: TripContext, *, prefix_limit: int = PREFIX_LIMIT) -> Derived:
    """Build the program for one trip; raises ``EvidenceError`` when none can be built."""
    converter = _CONVERTERS.get(ctx.counter)
    if converter is None:
        raise EvidenceError(f"no evidence converter for counter {ctx.counter}")
    derived = converter(ctx, prefix_limit)
    meta = {"predicate": ctx.invariant, "counter": ctx.counter, "source": "incident",
            **derived.meta}
    return Derived(derived.units, derived.check, meta, derived.needs_fresh, derived.stateful,
                   derived.notes, derived.shrink_data)


def group_units(steps: Sequence[Step]) -> tuple[Unit, ...]:
    """Units for a program of unknown origin: each action that starts something (a send,
    a probe, a pause) opens a unit; reads and hang-ups join the unit before them."""
    starts = {Action.SEND, Action.DRIP, Action.PROBE, Action.SLEEP, Action.BURST,
              Action.PAUSE_TARGET, Action.LIMIT_TARGET_FILES}
    units: list[list[Step]] = []
    for step in steps:
        if step.action in starts or not units:
            units.append([step])
        else:
            units[-1].append(step)
    return tuple(tuple(unit) for unit in units)


# -- shared helpers -------------------------------------------------------------------------


def as_bytes(value: Any) -> bytes:
    """Evidence bytes arrive as bytes (msgpack), ``{"base64": ...}`` (JSON) or text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except ValueError:
            return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return b""


def _recent(ctx: TripContext, limit: int) -> list[Mapping[str, Any]]:
    """The walker's exchanges before the violating one (the ring includes it last)."""
    ring = ctx.evidence.get("recent") or []
    step = ctx.evidence.get("step")
    entries = [e for e in ring if isinstance(e, Mapping)]
    if isinstance(step, int):
        entries = [e for e in entries if isinstance(e.get("step"), int) and e["step"] < step]
    return entries[-limit:] if limit > 0 else []


def _prefix_units(entries: Iterable[Mapping[str, Any]], first_conn: int = 1000) -> list[Unit]:
    units = []
    for offset, entry in enumerate(entries):
        sent = as_bytes(entry.get("sent"))
        if not sent:
            continue
        conn = first_conn + offset
        hang_up = Action.RST if entry.get("mode") == "rst" else Action.CLOSE
        units.append((
            Step(Action.SEND, conn=conn, data=sent, label="prefix"),
            Step(Action.READ, conn=conn, timeout_s=PREFIX_TIMEOUT_S, until=ReadUntil.RESPONSE,
                 label="prefix.reply"),
            Step(hang_up, conn=conn),
        ))
    return units


def _target(ctx: TripContext) -> Target:
    url = ctx.evidence.get("target")
    return Target.from_url(url if isinstance(url, str) and "://" in url else ctx.target_url)


def _setting(ctx: TripContext, name: str, default: float) -> float:
    value = ctx.settings.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else default


# -- adversarial ----------------------------------------------------------------------------


def _adv(ctx: TripContext, limit: int) -> Derived:
    ev = ctx.evidence
    case = ADV_CASES.get(str(ev.get("case")))
    if case is None:
        raise EvidenceError(f"adversarial case {ev.get('case')!r} is not in this catalogue")
    target = _target(ctx)
    sent = as_bytes(ev.get("sent"))
    host = target.host_header
    path = route_of(case, sent, tuple(ctx.settings.get("adv_body_paths") or ()),
                    target.base_path)  # a body case and its baseline went to a body route
    if not sent or ev.get("sent_truncated"):
        sent = case.build(host, path)
    timeout = _setting(ctx, "adv_timeout", 3.0)
    grace = _setting(ctx, "adv_grace", 0.3)
    units: list[Unit] = _prefix_units(_recent(ctx, limit))
    units.append((
        Step(Action.SEND, conn=1, data=baseline_request(case.method, host, path),
             label="adv.baseline_sent"),
        Step(Action.READ, conn=1, timeout_s=timeout, label="adv.baseline"),
        Step(Action.READ, conn=1, timeout_s=grace, until=ReadUntil.CLOSE, label="adv.baseline"),
        Step(Action.CLOSE, conn=1),
    ))
    units.append((*_send_case(case, sent, ctx),
                  Step(Action.READ, conn=0, timeout_s=timeout, label="adv.reply"),
                  Step(Action.READ, conn=0, timeout_s=grace, until=ReadUntil.CLOSE,
                       label="adv.grace")))
    canary = as_bytes(ev.get("canary_sent"))
    if canary:
        units.append((
            Step(Action.SEND, conn=0, data=canary, label="adv.canary"),
            Step(Action.READ, conn=0, timeout_s=timeout, label="adv.canary_reply"),
            Step(Action.READ, conn=0, timeout_s=grace, until=ReadUntil.CLOSE,
                 label="adv.canary_grace"),
        ))
    units.append((Step(Action.CLOSE, conn=0),))
    params: dict[str, Any] = {"case": case.name, "counter": ctx.counter}
    if isinstance(ev.get("baseline_status"), int):
        params["baseline_status"] = ev["baseline_status"]
    return Derived(tuple(units), Check("adv_case", params),
                   {"case": case.name, "rfc": case.rfc})


def _send_case(case: Any, sent: bytes, ctx: TripContext) -> Unit:
    if case.drip is None:
        return (Step(Action.SEND, conn=0, data=sent, label="adv.case"),)
    drip_max = _setting(ctx, "adv_drip_max", 6.0)
    start = 0
    if case.drip_body_only and b"\r\n\r\n" in sent:
        start = sent.index(b"\r\n\r\n") + 4
    dripped = sent[start:start + max(1, int(drip_max / case.drip))]
    steps = [Step(Action.SEND, conn=0, data=sent[:start], label="adv.case")] if start else []
    steps.append(Step(Action.DRIP, conn=0, data=dripped, chunk=1, interval_s=case.drip,
                      label="adv.case"))
    return tuple(steps)


# -- WebSocket ------------------------------------------------------------------------------

_WS_BY_NAME: dict[str, Any] = {c.name: c for c in (*WS_CASES, *HANDSHAKE_CASES)}


def _ws(ctx: TripContext, limit: int) -> Derived:
    ev = ctx.evidence
    case = _WS_BY_NAME.get(str(ev.get("case")))
    if case is None:
        raise EvidenceError(f"WebSocket case {ev.get('case')!r} is not in this catalogue")
    sent = as_bytes(ev.get("sent"))
    if not sent or ev.get("sent_truncated"):
        raise EvidenceError("the WebSocket evidence lost its bytes (truncated); the frames "
                            "were masked with keys only the walker knew")
    timeout = _setting(ctx, "ws_timeout", 5.0)
    case_timeout = _setting(ctx, "ws_case_timeout", 5.0)
    units: list[Unit] = _prefix_units(_recent(ctx, limit))
    if isinstance(case, HandshakeCase):
        units.append((Step(Action.SEND, conn=0, data=sent, label="ws.request"),
                      Step(Action.READ, conn=0, timeout_s=case_timeout, label="ws.answer"),
                      Step(Action.CLOSE, conn=0)))
    else:
        split = sent.find(b"\r\n\r\n")
        if split < 0:
            raise EvidenceError("WebSocket evidence has no complete opening handshake")
        handshake, frames = sent[:split + 4], sent[split + 4:]
        units.append((Step(Action.SEND, conn=0, data=handshake, label="ws.request"),
                      Step(Action.READ, conn=0, timeout_s=timeout, label="ws.handshake")))
        units.append((Step(Action.SEND, conn=0, data=frames, label="ws.frames"),
                      Step(Action.READ, conn=0, timeout_s=case_timeout, cap=4 * 1024 * 1024,
                           until=ReadUntil.WS_CLOSE, label="ws.answer")))
        units.append((Step(Action.CLOSE, conn=0),))
    return Derived(tuple(units), Check("ws_case", {"case": case.name, "counter": ctx.counter}),
                   {"case": case.name, "rfc": case.rfc})


# -- h2c ------------------------------------------------------------------------------------

_EARLY_STAGES = {"mid_headers", "request_sent"}


def _h2c(ctx: TripContext, limit: int) -> Derived:
    ev = ctx.evidence
    target = _target(ctx)
    path = str(ev.get("path") or target.base_path or "/")
    timeout = _setting(ctx, "h2c_timeout", 5.0)
    probe_timeout = min(timeout, 2.0)
    pause = min(_setting(ctx, "h2c_probe_pause_s", 1.0), 0.5)
    units: list[Unit] = []
    for offset, entry in enumerate(_recent(ctx, limit)):
        units.append(_h2c_round(entry, 1000 + offset, timeout))
    sent = as_bytes(ev.get("sent"))
    if sent:
        units.append(_h2c_round(ev, 0, timeout, label="h2c.answer"))
    # A server may take a moment to die (refapp's defect peeks 50 ms for a preface): the
    # walker's probes came after a whole round trip, so the repro waits a little too.
    units.append((Step(Action.SLEEP, interval_s=0.25),))
    units.append((Step(Action.PROBE, path=path, timeout_s=probe_timeout, label="probe"),))
    units.append((Step(Action.SLEEP, interval_s=pause, label="hold"),))
    units.append((Step(Action.PROBE, path=path, timeout_s=probe_timeout, label="probe"),))
    garbage = str(ev.get("reason", "")).startswith("garbage answer")
    params = {"garbage": garbage, "preface": ev.get("stage") not in _EARLY_STAGES | {
        "after_response"}}
    return Derived(tuple(units), Check("h2c_crashed", params),
                   {"stage": ev.get("stage"), "mode": ev.get("mode")}, needs_fresh=True,
                   shrink_data=True)


def _h2c_round(entry: Mapping[str, Any], conn: int, timeout: float,
               label: str = "h2c.prefix") -> Unit:
    sent = as_bytes(entry.get("sent"))
    hang_up = Step(Action.RST if entry.get("mode") == "rst" else Action.CLOSE, conn=conn)
    split = sent.find(b"\r\n\r\n")
    if entry.get("stage") in _EARLY_STAGES or split < 0:
        return (Step(Action.SEND, conn=conn, data=sent, label="h2c.sent"), hang_up)
    request, rest = sent[:split + 4], sent[split + 4:]
    steps = [Step(Action.SEND, conn=conn, data=request, label="h2c.sent"),
             Step(Action.READ, conn=conn, timeout_s=timeout, label=label)]
    if rest:
        steps += [Step(Action.SEND, conn=conn, data=rest, label="h2c.sent"),
                  Step(Action.READ, conn=conn, timeout_s=min(timeout, 1.0),
                       until=ReadUntil.ANY, label=label + ".more")]
    return (*steps, hang_up)


# -- SSE: in replay.evidence_sse -----------------------------------------------------------


def _sse(ctx: TripContext, limit: int) -> Derived:
    from replay.evidence_sse import derive_sse

    return derive_sse(ctx, limit)


# -- liveness and hang: the inputs in flight at the moment of death ------------------------


def _liveness(ctx: TripContext, limit: int) -> Derived:
    """A death or hang is reproduced only by what caused it: the candidates (inputs every
    actor had in flight, ``replay.crash_shrink``) carried in ``evidence["candidates"]``.
    Waiting for the target's uptime and probing reproduces nothing, so there is no such
    fallback: without candidates this trip cannot be derived."""
    kind = "hang" if ctx.counter == "coord.target_hung" else "liveness"
    raw = ctx.evidence.get("candidates")
    if isinstance(raw, Mapping):
        raw = raw.get("candidates")
    if not raw:
        raise EvidenceError("a death or hang is reproduced from the inputs in flight at the "
                            "moment of death (candidates.json); this trip carries none")
    try:
        _, candidates = parse_candidates({"kind": kind, "candidates": raw})
    except CandidateFormatError as exc:
        raise EvidenceError(f"candidates: {exc}") from None
    if not candidates:
        raise EvidenceError("no input in flight at the moment of death carried bytes")
    target = _target(ctx)
    path = str(ctx.evidence.get("path") or ctx.settings.get("health_path") or target.base_path)
    units = crash_units(candidates, probe_path=path)
    return Derived(units, crash_check(kind),
                   {"kind": kind, "candidates": [c.describe() for c in candidates]},
                   needs_fresh=True,
                   notes=("the inputs in flight at the moment of death, replayed against a "
                          "fresh target and then probed",))


# -- read after write (I-DRV-1): in replay.evidence_drv -------------------------------------


def _drv1(ctx: TripContext, limit: int) -> Derived:
    from replay.evidence_drv import derive_drv1

    return derive_drv1(ctx, limit)


def _resp(ctx: TripContext, limit: int) -> Derived:
    """A response-rule framing trip: the request re-sent alone (``replay.resp_repro``)."""
    from replay import resp_repro  # registers the resp_rule oracle

    try:
        units, check, meta = resp_repro.derive(ctx.evidence, as_bytes(ctx.evidence.get("sent")),
                                               _setting(ctx, "request_timeout_s", 5.0))
    except ValueError as exc:
        raise EvidenceError(str(exc)) from None
    return Derived(units, check, meta)


_CONVERTERS: dict[str, Callable[[TripContext, int], Derived]] = {
    "adv.wrong_accepted": _adv,
    "adv.desync": _adv,
    "ws.accepted_bad_frame": _ws,
    "ws.hang_no_close": _ws,
    "h2c.crashed": _h2c,
    "sse.leak": _sse,
    "markov.read_after_write_mismatch": _drv1,
    "coord.target_down": _liveness,
    "coord.target_hung": _liveness,
    "resp.framing_violation": _resp,
}
