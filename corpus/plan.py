"""What a seed expands into: segments of steps, a fault schedule, and the profile they target.

How this works: a seed plan is built from *segments*. A segment is one self-contained piece
of work (a Markov session, one adversarial case with its baseline and canary, an h2c
upgrade abandoned at a stage, a WebSocket session, an SSE subscription killed mid-stream,
or one fault followed by its recovery probe) with its own oracle parameters. The generator
lays segments out in order, renumbers their connections so no two segments share one, and
labels every step ``"<segment>/<kind>/<role>"``. The result is one ``Program`` whose check is
the composite ``seed`` oracle: segments are found again by their labels, so a program that
the shrinker has cut down still judges what is left of each segment.

The profile is the target-dependent input (paths and which session model applies). Bytes
carry ``{host}`` instead of the Host value, filled in by the executor, so the same seed is
the same bytes against any port; the default profile (the refapp's routes) is what the
pinned digests are computed for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from protocols.program import Step

#: Session model of a profile: the refapp-style login + CRUD walk, or GETs of one path.
MODELS = ("refapp", "get")


@dataclass(frozen=True)
class Profile:
    """The routes a plan aims at. Part of a plan's identity (it is in the digest)."""

    model: str = "refapp"
    #: Path of plain requests (adversarial cases, h2c upgrades, GET-model sessions).
    path: str = "/"
    health_path: str = "/healthz"
    ws_path: str = "/ws"
    sse_path: str = "/events"
    #: Where aborted uploads go (POST): the refapp's item collection, or ``path``.
    upload_path: str = "/items"

    def to_json(self) -> dict[str, str]:
        return {"model": self.model, "path": self.path, "health_path": self.health_path,
                "ws_path": self.ws_path, "sse_path": self.sse_path,
                "upload_path": self.upload_path}

    @classmethod
    def for_target(cls, path: str, *, builtin: bool, health_path: str | None = None,
                   ws_path: str | None = None, sse_path: str | None = None) -> Profile:
        """The refapp profile for the built-in target, else GETs of the target URL's path."""
        if builtin:
            return replace(DEFAULT_PROFILE, **{k: v for k, v in (
                ("health_path", health_path), ("ws_path", ws_path), ("sse_path", sse_path))
                if v})
        path = path or "/"
        return cls(model="get", path=path, health_path=health_path or path,
                   ws_path=ws_path or "/ws", sse_path=sse_path or "/events", upload_path=path)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        known = {k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        profile = cls(**known)
        if profile.model not in MODELS:
            raise ValueError(f"unknown session model {profile.model!r}")
        return profile


DEFAULT_PROFILE = Profile()


@dataclass(frozen=True)
class Fault:
    """One entry of the fault schedule: what is done to whom, in which segment."""

    kind: str
    #: "client" (no privileges), "target" (needs the local pid), "network" (needs a
    #: private network namespace).
    side: str
    segment: int = -1
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "side": self.side, "segment": self.segment,
                "detail": dict(self.detail)}


@dataclass(frozen=True)
class Segment:
    """One self-contained piece of a plan; ``conn`` numbers and roles are local to it."""

    kind: str
    #: (role, step) pairs; the role names the step for the oracle.
    steps: tuple[tuple[str, Step], ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()

    @property
    def slice(self) -> str:
        """The Tier 1 slice this segment exercises ("fault" for fault segments)."""
        return self.kind.split(".", 1)[0]


def label(segment: int, kind: str, role: str) -> str:
    return f"{segment:02d}/{kind}/{role}"


def parse_label(text: str) -> tuple[int, str, str] | None:
    """(segment, kind, role) of a step label written by ``label``, else None."""
    parts = text.split("/", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1], parts[2]
