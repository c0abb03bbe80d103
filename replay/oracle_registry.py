"""The oracle registry: oracles by name, ``evaluate``, and the helpers oracles share.

How this works: a ``Program`` names its oracle in ``check.oracle`` with ``check.params``;
``evaluate(program, transcript)`` looks the name up in ``CHECKS`` and calls it with the
params plus the program itself under ``PROGRAM_KEY`` (oracles find their evidence by step
*label*, never by index, because the shrinker deletes steps and indices move). Modules
register oracles with ``@register("name")``: the built-in ones are ``replay.checks`` (import
it before evaluating), the seed corpus and the response rules add theirs. Separate from the
oracles so that a module can add one without importing all the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protocols.http1 import ResponseError, ResponseParser
from protocols.program import Program, Step
from protocols.response_head import ResponseHead, parse_response_head

#: Key under which ``evaluate`` passes the program to an oracle.
PROGRAM_KEY = "_program"


class StepResultLike(Protocol):
    index: int
    action: str
    data: bytes
    ending: str
    elapsed_s: float
    error: str


class TranscriptLike(Protocol):
    """What ``replay.executor.Transcript`` offers (kept structural: no import cycle)."""

    results: tuple[Any, ...]
    elapsed_s: float

    def of_step(self, index: int) -> Any: ...


@dataclass(frozen=True)
class CheckResult:
    violated: bool
    detail: str


Oracle = Callable[[Mapping[str, Any], TranscriptLike], CheckResult]
CHECKS: dict[str, Oracle] = {}


class UnknownOracle(KeyError):
    """A program names an oracle nobody registered (a malformed or newer repro file)."""


def register(name: str) -> Callable[[Oracle], Oracle]:
    """Register an oracle under ``name``; registering a different function twice is a bug."""

    def decorate(oracle: Oracle) -> Oracle:
        held = CHECKS.get(name)
        if held is not None and held is not oracle and held.__qualname__ != oracle.__qualname__:
            raise ValueError(f"oracle {name!r} is already registered")
        CHECKS[name] = oracle
        return oracle

    return decorate


def evaluate(program: Program, transcript: TranscriptLike) -> CheckResult:
    """Judge ``transcript`` (of ``program``) with the program's own check."""
    oracle = CHECKS.get(program.check.oracle)
    if oracle is None:
        raise UnknownOracle(program.check.oracle)
    return oracle({**program.check.params, PROGRAM_KEY: program}, transcript)


# -- helpers for oracles ----------------------------------------------------------------------


def labelled(params: Mapping[str, Any], transcript: TranscriptLike,
             label: str) -> list[tuple[Step, Any]]:
    """(step, result) for every executed step carrying ``label``, in program order."""
    program: Program = params[PROGRAM_KEY]
    found = []
    for index, step in enumerate(program.steps):
        if step.label == label:
            result = transcript.of_step(index)
            if result is not None:
                found.append((step, result))
    return found


def first(params: Mapping[str, Any], transcript: TranscriptLike, label: str) -> Any:
    hits = labelled(params, transcript, label)
    return hits[0][1] if hits else None


def ending(result: Any) -> str:
    """The executor's ending in the slices' vocabulary (eof/reset/timeout/cap/done)."""
    value = getattr(result, "ending", "error")
    return {"ok": "done", "error": "reset"}.get(value, value)


def answered(data: bytes) -> ResponseHead | None:
    """The response head when ``data`` starts with a well-formed HTTP/1.x response."""
    head = parse_response_head(data.lstrip(b"\r\n"))
    return head if isinstance(head, ResponseHead) else None


def responses(data: bytes) -> list[Any]:
    """Complete responses in ``data`` (a keep-alive read), tolerant of anything after."""
    parser = ResponseParser()
    parser.feed(data)
    parser.feed_eof()
    found = []
    try:
        while (response := parser.next_response()) is not None:
            found.append(response)
    except ResponseError:
        pass
    return found


def join_results(results: Iterable[Any]) -> tuple[bytes, str]:
    """The data of several reads in order, and the ending of the last (``timeout`` if none)."""
    data, last = b"", "timeout"
    for result in results:
        data += result.data
        last = ending(result)
    return data, last
