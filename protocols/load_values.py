"""Values that ``assay load``'s flags and scenario files share: durations, rates, counts.

How this works: each parser takes the raw value and returns seconds, a per-second rate or
an int, raising ``LoadInputError`` with a message that says only what is wrong with the
value (``'3x' is not a duration (...)``); the caller prefixes the flag (``--duration: ``)
or the file position (``plan.toml:7: scenarios.a.duration: ``), so the same check reads
right in both places. The VU defaults of open executors live here for the same reason.

Bare numbers as durations: a flag's ``--duration 30`` is 30 seconds, as with every other
assay flag (``coordinator.config_values.parse_duration``); a scenario file must write a unit,
because k6 reads a bare number there as milliseconds and a file copied from k6 would
otherwise run a thousand times longer than meant.
"""

from __future__ import annotations

import math
import re
from typing import Any

from protocols.load_errors import LoadInputError
from protocols.load_model import RequestTemplate
from protocols.load_template import compile_request

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h)")
_BARE = re.compile(rf"(?:{_NUMBER})\Z")
_RATE = re.compile(rf"\s*({_NUMBER})\s*(?:/\s*((?:{_NUMBER})?)\s*(ms|s|m|h))?\s*\Z")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_EXAMPLES = "examples: 30s, 500ms, 10m, 1h30m"

#: Open executors: pre-allocated VUs when none are given (k6 requires the field; assay
#: picks a small pool that grows on demand up to ``max_vus``).
DEFAULT_PRE_ALLOCATED_VUS = 10
#: Open executors: ``max_vus`` is at least this when not given.
DEFAULT_MIN_MAX_VUS = 100


def parse_duration(value: Any, *, allow_zero: bool = False, bare_seconds: bool = False
                   ) -> float:
    """Seconds in ``30s``, ``500ms``, ``10m``, ``1h30m`` (a sum of number+unit parts).

    Args:
        allow_zero: accept 0 (a start time, a stage that jumps at once); otherwise the
            duration must be greater than zero.
        bare_seconds: accept a plain number as seconds (flags; files need a unit).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise LoadInputError(f"expected a duration string ({DURATION_EXAMPLES}), "
                             f"got {type_name(value)}")
    raw = str(value).strip()
    if isinstance(value, (int, float)) or _BARE.match(raw):
        if not bare_seconds:
            raise LoadInputError(f"{value!r} needs a unit: ms, s, m or h "
                                 f"({DURATION_EXAMPLES})")
        seconds = float(raw) if isinstance(value, str) else float(value)
    else:
        parts = _PART.findall(raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise LoadInputError(f"{value!r} is not a duration ({DURATION_EXAMPLES})")
        seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise LoadInputError(f"{value!r} is not a duration ({DURATION_EXAMPLES})")
    if seconds == 0 and not allow_zero:
        raise LoadInputError(f"must be greater than zero (got {value!r})")
    return seconds


def parse_rate(text: str, *, allow_zero: bool = False) -> float:
    """Requests per second from ``500``, ``500/s``, ``500/1s``, ``30/1m``, ``5/500ms``.

    The vegeta form: a count per time unit. It must be greater than zero unless
    ``allow_zero`` (a ramp's target); vegeta's "0 means unlimited" is not supported, an
    unbounded open model would only measure the load generator.
    """
    match = _RATE.fullmatch(text)
    if not match:
        raise LoadInputError(f"{text!r} is not a rate (examples: 500, 500/1s, 30/1m, 5/500ms)")
    count = float(match[1])
    per = (float(match[2]) if match[2] else 1.0) * _UNIT_S[match[3] or "s"]
    if per <= 0:
        raise LoadInputError(f"the time unit of {text!r} must be greater than zero")
    if count == 0 and not allow_zero:
        raise LoadInputError(f"must be greater than zero (got {text!r})")
    return count / per


def parse_number(value: Any, *, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite int or float (not a bool), ``>= minimum`` (``> minimum`` when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LoadInputError(f"expected a number, got {type_name(value)}")
    if not math.isfinite(value):
        raise LoadInputError(f"expected a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        relation = "greater than" if strict else "at least"
        raise LoadInputError(f"must be {relation} {_fmt(minimum)} (got {_fmt(value)})")
    return float(value)


def parse_int(value: Any, *, minimum: int = 0, from_text: bool = False) -> int:
    """A whole number ``>= minimum``; with ``from_text`` a string of digits (a flag)."""
    if from_text and isinstance(value, str):
        if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            raise LoadInputError(f"{value!r} is not a whole number")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoadInputError(f"expected a whole number, got {type_name(value)}")
    if value < minimum:
        raise LoadInputError(f"must be at least {minimum} (got {value})")
    return value


def open_vus(pre_allocated: int | None, max_vus: int | None) -> tuple[int, int]:
    """(pre-allocated VUs, max VUs) of an open executor, defaults applied.

    pre-allocated: as given, else ``DEFAULT_PRE_ALLOCATED_VUS`` (capped at ``max_vus``);
    max: as given, else ``max(DEFAULT_MIN_MAX_VUS, pre-allocated)``.

    Raises:
        LoadInputError: ``max_vus`` below ``pre_allocated`` (the message names neither
            flag nor field: the caller knows which spelling the user wrote).
    """
    if pre_allocated is None:
        pre_allocated = DEFAULT_PRE_ALLOCATED_VUS
        if max_vus is not None:
            pre_allocated = min(pre_allocated, max_vus)
    if max_vus is None:
        max_vus = max(DEFAULT_MIN_MAX_VUS, pre_allocated)
    if max_vus < pre_allocated:
        raise LoadInputError(f"must be at least the {pre_allocated} pre-allocated VUs "
                             f"(got {max_vus})")
    return pre_allocated, max_vus


class RequestPartError(LoadInputError):
    """A request template is wrong in ``part``: ``method``, ``path``, ``header`` (then
    ``index`` is the header's position), ``body``, or ``None`` when only the parts
    together are wrong (a Content-Length that does not match the body: the headers'
    fault, as the body is what the user meant to send)."""

    def __init__(self, message: str, part: str | None, index: int = 0) -> None:
        super().__init__(message)
        self.part, self.index = part, index


def check_request(template: RequestTemplate) -> None:
    """Validate ``template`` (``protocols.load_template.compile_request``) part by part.

    Compiling each part alone first is what lets a message point at the flag or the line
    that is wrong, not only at "the request".

    Raises:
        RequestPartError: the first problem, with the part it is in.
    """
    parts: list[tuple[str, int, RequestTemplate]] = [
        ("method", 0, RequestTemplate(method=template.method)),
        ("path", 0, RequestTemplate(path=template.path)),
        # Content-Length and Transfer-Encoding only mean something beside the body: the
        # check of the whole template judges them.
        *(("header", i, RequestTemplate(headers=(header,)))
          for i, header in enumerate(template.headers)
          if header[0].lower() not in ("content-length", "transfer-encoding")),
        ("body", 0, RequestTemplate(method="POST", body=template.body)),
    ]
    for part, index, alone in parts:
        try:
            compile_request(alone, "h")
        except LoadInputError as exc:
            raise RequestPartError(str(exc), part, index) from None
    try:
        compile_request(template, "h")
    except LoadInputError as exc:
        raise RequestPartError(str(exc), None) from None


def type_name(value: Any) -> str:
    """How a message names a value's type: the file's words, not Python's."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_fmt(value)})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _fmt(number: float) -> str:
    return f"{number:g}"
