"""Coordinator <-> actor messages, and the only place that touches msgpack.

How this works: every message is a frozen dataclass with a ``TYPE`` tag. ``encode`` turns
one into a msgpack map ``{"v": PROTOCOL_VERSION, "t": TYPE, ...fields}``; ``decode`` does the
reverse and raises ``WireError`` for anything it cannot trust (bad msgpack, other version,
unknown type, missing or mistyped field). Receivers log and drop on ``WireError``: a
malformed message must never take the coordinator down.

Control flows as *repeated state*, not one-shot events: the coordinator re-publishes the
current ``Plan`` / ``Start`` / ``Stop`` every tick, so a late subscriber (ZeroMQ's slow
joiner) or a dropped PUB frame costs one tick, never a hung run. Tallies are cumulative per
(actor, incarnation) with a sequence number, so loss, duplication and reordering are all
repaired by keeping the highest sequence seen (see ``protocols.tally``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import msgpack

PROTOCOL_VERSION = 1


class WireError(ValueError):
    """A message that cannot be trusted: wrong version, unknown type, bad fields."""


@dataclass(frozen=True)
class Hello:
    """Actor -> coordinator, repeated until a Plan arrives: 'I exist, send me the plan'."""

    TYPE: ClassVar[str] = "hello"
    actor_id: int
    incarnation: int
    pid: int
    host: str


@dataclass(frozen=True)
class Plan:
    """Coordinator -> all actors: the run's configuration, identical for every actor.

    ``plan`` is a plain dict (see ``coordinator.planning.ActorPlan.to_wire``) so the wire
    module stays ignorant of slices; each actor derives its own walkers from it.
    """

    TYPE: ClassVar[str] = "plan"
    run_id: str
    plan: dict[str, Any]


@dataclass(frozen=True)
class Ready:
    """Actor -> coordinator: plan parsed, walkers built, waiting for Start."""

    TYPE: ClassVar[str] = "ready"
    actor_id: int
    incarnation: int
    run_id: str
    walkers: int


@dataclass(frozen=True)
class Start:
    """Coordinator -> all actors: begin at ``start_at``, stop by ``deadline`` (unix seconds).

    Re-published every tick while the run is live; it doubles as the coordinator heartbeat.
    """

    TYPE: ClassVar[str] = "start"
    run_id: str
    start_at: float
    deadline: float


#: Ends a Stop reason when the run may be resumed (a soak interrupted or aborted): an actor
#: on another host then exits as if its coordinator had gone silent, so that its launcher
#: starts it again for the resume.
RESUMABLE = "(resumable)"


@dataclass(frozen=True)
class Stop:
    """Coordinator -> all actors: stop now, send the final tally, say Bye."""

    TYPE: ClassVar[str] = "stop"
    run_id: str
    reason: str


@dataclass(frozen=True)
class TallyReport:
    """Actor -> coordinator: cumulative counters and encoded histograms since incarnation start."""

    TYPE: ClassVar[str] = "tally"
    actor_id: int
    incarnation: int
    seq: int
    final: bool
    counters: dict[str, int]
    histograms: dict[str, bytes]
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """Actor -> coordinator, sent the moment a walker sees a HIGH counter move.

    Not folded into the periodic tally: the incident path wants the evidence while the
    target is still in the state that produced it.
    """

    TYPE: ClassVar[str] = "violation"
    actor_id: int
    incarnation: int
    walker: int
    counter: str
    seen_at: float
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ActorFailed:
    """Actor -> coordinator: the actor cannot go on (harness bug or bad plan)."""

    TYPE: ClassVar[str] = "failed"
    actor_id: int
    incarnation: int
    error: str


@dataclass(frozen=True)
class Bye:
    """Actor -> coordinator: final tally sent, exiting."""

    TYPE: ClassVar[str] = "bye"
    actor_id: int
    incarnation: int


@dataclass(frozen=True)
class ForensicsRequest:
    """Coordinator -> forensics agent (REQ/REP): capture the target's process state now.

    ``pid`` 0 means "unknown": the agent uses its own ``--pid`` or whoever listens on
    ``port``. The agent must answer within ``budget_s``.
    """

    TYPE: ClassVar[str] = "forensics_request"
    request_id: str
    pid: int
    port: int
    budget_s: float


@dataclass(frozen=True)
class ForensicsReply:
    """Forensics agent -> coordinator: captured files and, per capture, ok or why not."""

    TYPE: ClassVar[str] = "forensics_reply"
    request_id: str
    pid: int
    files: dict[str, bytes]
    #: capture name -> "ok" or "missing: <reason>"
    status: dict[str, str]


@dataclass(frozen=True)
class InFlightRequest:
    """Coordinator -> all actors, when the target died or hung: 'send me what every walker
    had in flight and sent since ``since`` (unix seconds)'. Answered once per
    ``request_id`` (the coordinator publishes it more than once: PUB may drop a frame)."""

    TYPE: ClassVar[str] = "inflight_request"
    run_id: str
    request_id: str
    since: float


@dataclass(frozen=True)
class InFlightReport:
    """Actor -> coordinator: the answer to an ``InFlightRequest``.

    ``entries`` are ``actors.flight`` entries (walker, slice, case, sent_at, last_sent_at,
    answered_at, writes as bytes, conns, ending); ``survived`` names the ``slice/case`` keys
    this actor saw answered; ``truncated`` says the report's size bounds cut entries off.
    """

    TYPE: ClassVar[str] = "inflight_report"
    actor_id: int
    incarnation: int
    request_id: str
    entries: list
    survived: list
    truncated: bool = False


Message = Union[Hello, Plan, Ready, Start, Stop, TallyReport, Violation, ActorFailed, Bye,  # noqa: UP007
                ForensicsRequest, ForensicsReply, InFlightRequest, InFlightReport]

MESSAGE_TYPES: dict[str, type] = {
    cls.TYPE: cls
    for cls in (Hello, Plan, Ready, Start, Stop, TallyReport, Violation, ActorFailed, Bye,
                ForensicsRequest, ForensicsReply, InFlightRequest, InFlightReport)
}


def encode(message: Message) -> bytes:
    """Serialise one message; field values must already be msgpack-native."""
    body = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    body["v"] = PROTOCOL_VERSION
    body["t"] = message.TYPE
    return msgpack.packb(body, use_bin_type=True)


def decode(frame: bytes) -> Message:
    """Parse and validate one frame; raises WireError for anything untrustworthy."""
    try:
        body = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise WireError(f"not msgpack: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("not a map")
    version = body.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise WireError(f"protocol version {version!r}, expected {PROTOCOL_VERSION}")
    kind = body.pop("t", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown message type {kind!r}")
    hints = _field_types(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in body:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise WireError(f"{kind}: missing field {f.name!r}")
        value = body[f.name]
        if not _conforms(value, hints[f.name]):
            raise WireError(f"{kind}: field {f.name!r} has type {type(value).__name__}")
        values[f.name] = value
    return cls(**values)


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    hints = _HINT_CACHE.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINT_CACHE[cls] = hints
    return hints


def _conforms(value: Any, hint: Any) -> bool:
    """Shallow structural check: top-level type plus key/value types of dicts."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        if not isinstance(value, dict):
            return False
        key_hint, value_hint = typing.get_args(hint)
        return all(_conforms(k, key_hint) and _conforms(v, value_hint) for k, v in value.items())
    if origin in (Union, types.UnionType):
        return any(_conforms(value, arg) for arg in typing.get_args(hint))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True
