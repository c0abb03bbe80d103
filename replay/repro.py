"""Reproducer files: a shrunk program plus everything needed to say what it reproduces.

Format ``assay-repro/1`` (JSON, UTF-8, one object)::

    {
      "format": "assay-repro/1",
      "digest": "<sha256 of the program's canonical steps and check>",
      "program": { "format": "assay-program/1", "steps": [...], "check": {...}, "meta": {...} },
      "predicate": {"id": "I-ADV-DESYNC", "counter": "adv.desync", "meaning": "...",
                    "severity": "HIGH"},
      "target": {"url": "http://127.0.0.1:8080/", "commit": "<sha or null>",
                 "builtin": false, "defects": []},
      "seed": 1234,                       # the run seed (null when unknown)
      "generator": {"name": "assay-incident", "version": "1"},
      "tool": {"name": "assay", "version": "0.1.0"},
      "host": {"arch": "x86_64", "system": "Linux", "python": "3.11.7"},
      "created_at": "2024-01-01T00:00:00Z",
      "shrink": { ...statistics of the shrink that produced it... },
      "notes": ["..."]
    }

Only ``format``, ``digest`` and ``program`` are required to replay; the rest identifies the
failure (predicate, target commit, host arch, seed, generator version). ``load_repro`` checks
all of it and raises ``ReproError`` with one line naming what is wrong: unreadable, not JSON
(a truncated file ends mid-value), another format, a malformed program, an oracle this build
does not know, or a digest that does not match (edited or corrupted steps).

``replay(repro, url)`` runs the program and judges it with its own oracle; the CLI maps the
outcome to exit codes (1 still fails, 0 gone, 2 malformed, 3 target unreachable).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from actors import net
from actors.walker import Target
from protocols.program import Program, ProgramError
from replay import checks

REPRO_FORMAT = "assay-repro/1"
GENERATOR = {"name": "assay-incident", "version": "1"}


class ReproError(ValueError):
    """A repro file that cannot be used; the message is one line saying why."""


class TargetUnreachable(RuntimeError):
    """The target refused or ignored a plain TCP connect before the replay began."""


@dataclass(frozen=True)
class Repro:
    program: Program
    predicate: Mapping[str, Any] = field(default_factory=dict)
    target: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    generator: Mapping[str, Any] = field(default_factory=lambda: dict(GENERATOR))
    tool: Mapping[str, Any] = field(default_factory=dict)
    host: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""
    shrink: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPRO_FORMAT,
            "digest": self.program.digest(),
            "program": self.program.to_json(),
            "predicate": dict(self.predicate),
            "target": dict(self.target),
            "seed": self.seed,
            "generator": dict(self.generator),
            "tool": dict(self.tool) or tool_info(),
            "host": dict(self.host) or host_info(),
            "created_at": self.created_at or _now(),
            "shrink": dict(self.shrink),
            "notes": list(self.notes),
        }


def tool_info() -> dict[str, str]:
    try:
        from importlib.metadata import version

        return {"name": "assay", "version": version("assay")}
    except Exception:
        return {"name": "assay", "version": "0+unknown"}


def host_info() -> dict[str, str]:
    return {"arch": platform.machine(), "system": platform.system(),
            "release": platform.release(), "python": platform.python_version()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def save_repro(repro: Repro, path: Path) -> None:
    """Write atomically (a crash mid-write never leaves a truncated repro behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(repro.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def parse_repro(text: str, source: str = "repro") -> Repro:
    """Validate a repro document; ``ReproError`` names the first problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # JSON that stops mid-document fails at its very end (or inside a string that the
        # end cut open), whatever the last byte happens to be.
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        cut = ", looks truncated" if at_end else ""
        raise ReproError(f"{source}: not valid JSON{cut} ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ReproError(f"{source}: a repro must be a JSON object")
    if data.get("format") != REPRO_FORMAT:
        raise ReproError(f"{source}: format {data.get('format')!r}, expected {REPRO_FORMAT!r}")
    if "program" not in data:
        raise ReproError(f"{source}: no 'program'")
    try:
        program = Program.from_json(data["program"])
    except ProgramError as exc:
        raise ReproError(f"{source}: program: {exc}") from None
    if program.check.oracle not in checks.CHECKS:
        raise ReproError(f"{source}: unknown oracle {program.check.oracle!r} "
                         f"(known: {', '.join(sorted(checks.CHECKS))})")
    digest = data.get("digest")
    if not isinstance(digest, str):
        raise ReproError(f"{source}: no 'digest'")
    if digest != program.digest():
        raise ReproError(f"{source}: digest mismatch (steps edited or corrupted): file says "
                         f"{digest[:12]}, steps hash to {program.digest()[:12]}")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ReproError(f"{source}: 'seed' must be an integer or null")
    plain = {}
    for name in ("predicate", "target", "generator", "tool", "host", "shrink"):
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ReproError(f"{source}: {name!r} must be an object")
        plain[name] = value
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ReproError(f"{source}: 'notes' must be a list of strings")
    return Repro(program, seed=seed, created_at=str(data.get("created_at", "")),
                 notes=tuple(notes), **plain)


def load_repro(path: Path) -> Repro:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReproError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise ReproError(f"{path}: empty file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ReproError(f"{path}: not UTF-8 text") from None
    return parse_repro(text, str(path))


@dataclass(frozen=True)
class ReplayOutcome:
    """One or more runs of a program: whether any still shows the violation, and how."""

    violated: bool
    detail: str
    runs: tuple[dict[str, Any], ...]


async def ensure_reachable(target: Target, timeout: float = 3.0) -> None:
    """A plain TCP connect; raises ``TargetUnreachable`` with the cause."""
    try:
        stream = await net.connect(target, timeout)
    except net.TransportError as exc:
        # A TLS failure says which (OpenSSL's verify reason, and what to do about it).
        detail = str(exc) if exc.cause.startswith("tls_") else exc.cause
        raise TargetUnreachable(f"{target.host}:{target.port}: {detail}") from None
    await net.aclose_quietly(stream)


async def run_program(program: Program, target: Target, *, attempts: int = 1,
                      pid: int | None = None, time_limit_s: float = 60.0,
                      stop_on_violation: bool = True) -> ReplayOutcome:
    """Execute and judge ``program`` up to ``attempts`` times (stops at the first violation
    unless ``stop_on_violation`` is false: then every run must show it)."""
    from replay.executor import execute

    runs: list[dict[str, Any]] = []
    violated_runs = 0
    detail = ""
    for number in range(max(1, attempts)):
        transcript = await execute(program, target, pid=pid, time_limit_s=time_limit_s)
        result = checks.evaluate(program, transcript)
        runs.append({"run": number + 1, "violated": result.violated, "detail": result.detail,
                     "elapsed_s": round(transcript.elapsed_s, 3)})
        detail = result.detail
        if result.violated:
            violated_runs += 1
            if stop_on_violation:
                break
        elif not stop_on_violation:
            break
    violated = violated_runs > 0 if stop_on_violation else violated_runs == len(runs)
    return ReplayOutcome(violated, detail, tuple(runs))


def replay(repro: Repro, url: str, *, attempts: int = 1, pid: int | None = None,
           time_limit_s: float = 120.0) -> ReplayOutcome:
    """Blocking: check reachability, then run and judge (``TargetUnreachable`` first)."""
    target = Target.from_url(url)

    async def main() -> ReplayOutcome:
        await ensure_reachable(target)
        return await run_program(repro.program, target, attempts=attempts, pid=pid,
                                 time_limit_s=time_limit_s)

    return trio.run(main)
