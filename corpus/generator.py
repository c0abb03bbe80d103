"""Seed expansion: (seed, generator version, profile) -> one exact plan of traffic and faults.

How this works: ``expand`` keys a ``SeedRng`` with the generator version and the seed (nothing
else: no clock, no ``hash()``, no process state), draws how many segments of each kind the
plan gets (every Tier 1 slice at least once, then three to six faults from the weighted
schedule, sometimes a network fault), builds each segment from its own forked stream,
shuffles their order, and ends with a liveness probe. ``SeedPlan.program`` is a single
``Program`` (see ``corpus.plan`` for how segments are laid out and labelled) checked by the
composite ``seed`` oracle in ``corpus.oracles``.

A failure is identified by (seed, generator version, target commit, host arch). Changing
what any seed sends, for whatever reason (a new fault, a different case list, a catalogue
whose builder changed), is done by bumping ``GENERATOR_VERSION``; the pinned digests in
``tests/test_generator.py`` fail until that is done on purpose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corpus import faults, workload
from corpus.plan import DEFAULT_PROFILE, Fault, Profile, Segment, label
from corpus.rng import SeedRng
from protocols.program import Check, Program, Step

GENERATOR_VERSION = 1
#: The name the composite oracle is registered under (``replay.checks``).
SEED_ORACLE = "seed"
SEED_MAX = (1 << 64) - 1
#: Deadline of the final liveness probe.
LIVENESS_TIMEOUT_S = 5.0

#: slice -> (least, most) segments per seed.
_WORKLOAD_COUNTS = {"markov": (2, 4), "adv": (1, 3), "h2c": (1, 1), "ws": (1, 2), "sse": (1, 1)}
_FAULT_COUNT = (3, 6)


class SeedError(ValueError):
    """A seed outside the u64 range, or text that is not a seed."""


def parse_seed(text: str | int) -> int:
    """A u64 from decimal or 0x-hex text (or an int); SeedError otherwise."""
    try:
        value = text if isinstance(text, int) else int(str(text).strip(), 0)
    except ValueError:
        raise SeedError(f"not a seed: {text!r} (a u64, decimal or 0x hex)") from None
    if not 0 <= value <= SEED_MAX:
        raise SeedError(f"seed {value} is outside 0..2^64-1")
    return value


@dataclass(frozen=True)
class SeedPlan:
    """A seed's plan: the program to run and the fault schedule it contains."""

    seed: int
    version: int
    profile: Profile
    program: Program
    schedule: tuple[Fault, ...]

    def identity(self) -> dict[str, Any]:
        return {"generator": self.version, "seed": self.seed, "profile": self.profile.to_json()}

    def canonical(self) -> bytes:
        body = {**self.identity(), "program": self.program.digest(),
                "schedule": [f.to_json() for f in self.schedule]}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """sha256 over generator version, seed, profile, program bytes and fault schedule."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def segments(self) -> list[dict[str, Any]]:
        """The segments' oracle parameters, in plan order (from the program's check)."""
        table = self.program.check.params.get("segments", {})
        return [dict(table[key], id=int(key)) for key in sorted(table, key=int)]

    def describe(self) -> str:
        """A human-readable listing of the plan (what ``--dry-run`` prints)."""
        lines = [f"seed {self.seed} (generator v{self.version}), profile "
                 f"{json.dumps(self.profile.to_json(), sort_keys=True)}"]
        for segment in self.segments():
            extra = {k: v for k, v in segment.items() if k not in ("id", "kind", "requests")}
            if "requests" in segment:
                extra["requests"] = [r["state"] for r in segment["requests"]]
            lines.append(f"  segment {segment['id']:02d} {segment['kind']:<18} "
                         f"{json.dumps(extra, sort_keys=True)}")
        lines.append("fault schedule:")
        for fault in self.schedule:
            lines.append(f"  segment {fault.segment:02d} {fault.side:<7} {fault.kind:<13} "
                         f"{json.dumps(dict(fault.detail), sort_keys=True)}")
        lines.append(f"steps: {len(self.program.steps)}   program digest: "
                     f"{self.program.digest()}")
        lines.append(f"plan digest: {self.digest()}")
        return "\n".join(lines)


def _workload(rng: SeedRng, profile: Profile) -> list[Segment]:
    segments = []
    for kind, (least, most) in _WORKLOAD_COUNTS.items():
        for n in range(rng.between(least, most)):
            segments.append(workload.BUILDERS[kind](rng.fork(f"{kind}{n}"), profile))
    return segments


def _faults(rng: SeedRng, profile: Profile) -> list[Segment]:
    names = [(name, weight) for name, (_, weight) in faults.FAULTS.items()]
    segments = []
    for n in range(rng.between(*_FAULT_COUNT)):
        name = rng.weighted(names)
        segments.append(faults.FAULTS[name][0](rng.fork(f"fault{n}"), profile))
    if rng.chance(faults.NETWORK_PER_MILLE):
        segments.append(faults.network(rng.fork("network"), profile))
    return segments


def _liveness(profile: Profile) -> Segment:
    probe = Step(workload.Action.PROBE, path=profile.health_path, timeout_s=LIVENESS_TIMEOUT_S)
    return Segment("liveness", (("probe", probe),), {})


def assemble(segments: list[Segment], check_params: Mapping[str, Any]) -> tuple[Program,
                                                                               list[Fault]]:
    """Lay segments out as one program: fresh connection numbers, labelled steps."""
    steps: list[Step] = []
    table: dict[str, Any] = {}
    schedule: list[Fault] = []
    next_conn = 0
    for index, segment in enumerate(segments):
        conns = {step.conn for _, step in segment.steps}
        for role, step in segment.steps:
            steps.append(Step(**{**_fields(step), "conn": step.conn + next_conn,
                                 "label": label(index, segment.kind, role)}))
        next_conn += max(conns) + 1 if conns else 0
        table[str(index)] = {"kind": segment.kind, **segment.params}
        schedule += [Fault(f.kind, f.side, index, f.detail) for f in segment.faults]
    program = Program(tuple(steps), Check(SEED_ORACLE, {**check_params, "segments": table}),
                      dict(check_params))
    return program, schedule


def _fields(step: Step) -> dict[str, Any]:
    return {name: getattr(step, name) for name in step.__dataclass_fields__}


def expand(seed: int, profile: Profile = DEFAULT_PROFILE,
           version: int = GENERATOR_VERSION) -> SeedPlan:
    """The plan of ``seed``: same seed, version and profile -> the same plan, anywhere."""
    seed = parse_seed(seed)
    if version != GENERATOR_VERSION:
        raise SeedError(f"this build expands generator v{GENERATOR_VERSION} only, not v{version}")
    rng = SeedRng(f"assay-seed/v{version}/{seed}")
    segments = _workload(rng.fork("workload"), profile) + _faults(rng.fork("faults"), profile)
    ordered = [*rng.fork("order").shuffled(segments), _liveness(profile)]
    program, schedule = assemble(ordered, {"generator": version, "seed": seed})
    return SeedPlan(seed, version, profile, program, tuple(schedule))
