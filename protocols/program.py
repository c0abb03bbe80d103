"""Programs: exact, replayable client behaviour as data — the currency of repro and seeds.

A ``Program`` is a sequence of ``Step`` values over numbered logical connections (a
connection opens on its first step) plus the ``Check`` that re-judges the outcome. The
incident path turns a violation's evidence into a Program and shrinks it; a Tier 3 seed
expands into Programs (workload and faults are both steps). The executor in ``replay/``
runs one against a live target and returns a transcript; ``Check`` names a pure oracle
that reads the transcript. Nothing here does I/O.

The canonical form (``to_json``) is what is hashed for digests and written to files, so a
Program's digest is stable across processes, runs and hosts: bytes are base64, floats are
rounded to microseconds, keys are sorted.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.http1 import ResponseError, ResponseParser

PROGRAM_FORMAT = "assay-program/1"


class Action(enum.Enum):
    """What one step does. Connection-less actions ignore ``conn``."""

    #: Send ``data`` on ``conn`` (opening it first if needed).
    SEND = "send"
    #: Send ``data`` in ``chunk``-byte pieces, ``interval_s`` apart (slow loris, drip write).
    DRIP = "drip"
    #: Read on ``conn`` until ``until`` (see ReadUntil), ``timeout_s`` or ``cap`` bytes;
    #: the executor records what came back under this step's index.
    READ = "read"
    #: Read slowly: ``chunk`` bytes at a time with ``interval_s`` pauses (slow reader).
    SLOW_READ = "slow_read"
    #: Half-close our side (FIN), keep reading possible.
    FIN = "fin"
    #: Abort with RST (SO_LINGER 0).
    RST = "rst"
    #: Plain close.
    CLOSE = "close"
    #: Pause the whole program.
    SLEEP = "sleep"
    #: Open ``count`` extra connections at once and close them (connection burst).
    BURST = "burst"
    #: Health probe on a fresh connection; recorded like a READ.
    PROBE = "probe"
    #: SIGSTOP the target pid for ``interval_s`` then SIGCONT (local pid only).
    PAUSE_TARGET = "pause_target"
    #: Lower the target's open-files soft limit to ``count`` above the descriptors it holds
    #: when the step runs, for ``interval_s`` (prlimit); always restored.
    LIMIT_TARGET_FILES = "limit_target_files"
    #: Impair the network path for ``interval_s``: ``data`` holds ``tc netem`` arguments
    #: (``delay 30ms loss 1%``). Needs a private network namespace the run creates as root;
    #: where there is none the executor records the step as not run, with the reason.
    NETEM = "netem"


class ReadUntil(enum.Enum):
    """When a READ may stop early (it always stops at EOF, reset, timeout or cap)."""

    #: One complete HTTP/1.x response (or the connection ends).
    RESPONSE = "response"
    #: Only when the peer closes, resets, or the timeout passes.
    CLOSE = "close"
    #: As soon as any bytes arrive.
    ANY = "any"
    #: A WebSocket Close frame (or the connection ends).
    WS_CLOSE = "ws_close"


@dataclass(frozen=True)
class Step:
    action: Action
    conn: int = 0
    data: bytes = b""
    delay_s: float = 0.0
    timeout_s: float = 0.0
    cap: int = 65536
    until: ReadUntil = ReadUntil.RESPONSE
    chunk: int = 1
    interval_s: float = 0.0
    count: int = 0
    path: str = ""
    label: str = ""
    #: READ/SLOW_READ/PROBE: bind variables from the response this step received, as
    #: ``(name, source)`` pairs; sources are ``cookie:NAME``, ``header:NAME``,
    #: ``json:dotted.path`` and ``regex:PATTERN`` (first group). See ``Bindings``.
    capture: tuple[tuple[str, str], ...] = ()
    #: SEND/DRIP: ``data`` holds ``{name}`` placeholders for captured variables. Needed
    #: where the target mints values per session (a login cookie, a created id), so a
    #: recorded exchange replays against a fresh target instead of a stale session.
    template: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action.value}
        defaults = _STEP_DEFAULTS
        for name in _STEP_FIELDS:
            value = getattr(self, name)
            if value == defaults[name]:
                continue
            if name == "capture":
                value = [[var, source] for var, source in value]
            elif isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            elif isinstance(value, float):
                value = round(value, 6)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        if not isinstance(data, Mapping):
            raise ProgramError("a step must be an object")
        try:
            action = Action(data["action"])
        except (KeyError, ValueError):
            raise ProgramError(f"unknown or missing step action {data.get('action')!r}") from None
        kwargs: dict[str, Any] = {"action": action}
        for name, value in data.items():
            if name == "action":
                continue
            if name not in _STEP_FIELDS:
                raise ProgramError(f"unknown step field {name!r}")
            kwargs[name] = _convert(name, value)
        return cls(**kwargs)


@dataclass(frozen=True)
class Check:
    """The oracle that decides whether a transcript still shows the violation."""

    oracle: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"oracle": self.oracle, "params": _plain(self.params)}


@dataclass(frozen=True)
class Program:
    steps: tuple[Step, ...]
    check: Check
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": PROGRAM_FORMAT, "steps": [s.to_json() for s in self.steps],
                "check": self.check.to_json(), "meta": _plain(self.meta)}

    def canonical(self) -> bytes:
        body = {"steps": [s.to_json() for s in self.steps], "check": self.check.to_json()}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """sha256 of the canonical steps and check (meta is not part of the identity)."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def with_steps(self, steps: Sequence[Step]) -> Program:
        return Program(tuple(steps), self.check, self.meta)

    @classmethod
    def from_json(cls, data: Any) -> Program:
        if not isinstance(data, Mapping):
            raise ProgramError("a program must be a JSON object")
        if data.get("format") != PROGRAM_FORMAT:
            raise ProgramError(f"format {data.get('format')!r}, expected {PROGRAM_FORMAT!r}")
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ProgramError("'steps' must be a non-empty list")
        check = data.get("check")
        if not isinstance(check, Mapping) or not isinstance(check.get("oracle"), str):
            raise ProgramError("'check' must be an object with an 'oracle' name")
        params = check.get("params", {})
        if not isinstance(params, Mapping):
            raise ProgramError("'check.params' must be an object")
        parsed = []
        for index, step in enumerate(steps):
            try:
                parsed.append(Step.from_json(step))
            except ProgramError as exc:
                raise ProgramError(f"step {index}: {exc}") from None
        meta = data.get("meta", {})
        return cls(tuple(parsed), Check(check["oracle"], dict(params)),
                   dict(meta) if isinstance(meta, Mapping) else {})


class ProgramError(ValueError):
    """A program document is malformed; the message says where."""


_STEP_FIELDS = ("conn", "data", "delay_s", "timeout_s", "cap", "until", "chunk",
                "interval_s", "count", "path", "label", "capture", "template")
_STEP_DEFAULTS = {name: Step.__dataclass_fields__[name].default for name in _STEP_FIELDS}


def _convert(name: str, value: Any) -> Any:
    default = _STEP_DEFAULTS[name]
    try:
        if name == "capture":
            return _convert_capture(value)
        if name == "template":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if name == "data":
            return base64.b64decode(value, validate=True)
        if name == "until":
            return ReadUntil(value)
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError
            return float(value)
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError
            return value
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, TypeError):
        raise ProgramError(f"field {name!r} has an invalid value {value!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


# -- variables: captures from responses, placeholders in later sends -----------------------

#: ``{name}`` in a template step's data; JSON (``{"a": 1}``) never matches this.
_PLACEHOLDER = re.compile(rb"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
CAPTURE_SOURCES = ("cookie", "header", "json", "regex")


def _convert_capture(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise ValueError
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError
        var, source = item
        if not isinstance(var, str) or not _VARIABLE.match(var) or not isinstance(source, str):
            raise ValueError
        kind, sep, arg = source.partition(":")
        if not sep or kind not in CAPTURE_SOURCES or not arg:
            raise ValueError
        if kind == "regex":
            try:
                re.compile(arg)
            except re.error:
                raise ValueError(arg) from None
        pairs.append((var, source))
    return tuple(pairs)


def render(data: bytes, variables: Mapping[str, str]) -> bytes:
    """Replace ``{name}`` with bound values; unbound placeholders stay literal.

    Literal, not an error: a shrunk program may have lost the step that captured a value,
    and sending the placeholder is then just another request the target answers.
    """

    def value(match: re.Match[bytes]) -> bytes:
        bound = variables.get(match.group(1).decode("ascii"))
        return match.group(0) if bound is None else bound.encode("latin-1", "replace")

    return _PLACEHOLDER.sub(value, data)


def capture_values(pairs: Sequence[tuple[str, str]], received: bytes) -> dict[str, str]:
    """The values ``pairs`` select from one received response (absent ones are skipped)."""
    if not pairs:
        return {}
    response = _first_response(received)
    found: dict[str, str] = {}
    for var, source in pairs:
        kind, _, arg = source.partition(":")
        value: str | None = None
        if kind == "regex":
            match = re.search(arg, received.decode("latin-1"))
            if match is not None:
                value = match.group(1) if match.groups() else match.group(0)
        elif response is not None:
            value = _from_response(response, kind, arg)
        if value is not None:
            found[var] = value
    return found


def _first_response(received: bytes) -> Any:
    parser = ResponseParser()
    parser.feed(received)
    parser.feed_eof()
    try:
        return parser.next_response()
    except ResponseError:
        return None


def _from_response(response: Any, kind: str, arg: str) -> str | None:
    if kind == "header":
        raw = response.header(arg.lower().encode("latin-1"))
        return None if raw is None else raw.decode("latin-1").strip()
    if kind == "cookie":
        for raw in response.header_values(b"set-cookie"):
            pair = raw.decode("latin-1").split(";", 1)[0]
            name, eq, value = pair.partition("=")
            if eq and name.strip() == arg:
                return value.strip()
        return None
    try:
        node: Any = json.loads(response.body)
    except (ValueError, RecursionError):
        return None
    for part in arg.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, bool) or not isinstance(node, (str, int, float)):
        return None
    return str(node)


class Bindings:
    """The variables one execution of a program has captured so far.

    The executor owns one per run: ``outgoing(step)`` gives the bytes to send for a
    SEND/DRIP step, ``incoming(step, received)`` applies a read step's captures.
    """

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(initial or {})

    def outgoing(self, step: Step) -> bytes:
        return render(step.data, self.values) if step.template else step.data

    def incoming(self, step: Step, received: bytes) -> dict[str, str]:
        captured = capture_values(step.capture, received)
        self.values.update(captured)
        return captured
