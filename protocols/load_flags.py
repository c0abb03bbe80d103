"""``assay load``'s flags as a one-scenario ``LoadPlan`` (the scenario is named ``default``).

How this works: the flags pick the executor the way k6's shortcut options and vegeta's
``-rate`` do, then every value goes through the same parsers as a scenario file
(``protocols.load_values``); a problem is a ``LoadInputError`` whose one-line message
starts with the flag, e.g. ``--rate: must be greater than zero (got '0')``.

=====================================  ===============================================
flags                                  plan
=====================================  ===============================================
(none of --rate, --vus, --ramp)        constant-vus, ``DEFAULT_VUS`` VUs (closed model)
``--vus N``                            constant-vus, N VUs
``--rate R``                           constant-arrival-rate R/s (open model)
``--ramp T:D,...`` (± ``--rate R``)    ramping-arrival-rate from R (else 0) through the
                                       stages; targets are rates like ``--rate``
``--vus N --ramp T:D,...``             ramping-vus from N through the stages; targets
                                       are VUs (no ``--rate``: with it, ``--vus`` is the
                                       pre-allocated VUs of the open model)
=====================================  ===============================================

Open model: ``--vus`` is the pre-allocated VUs (default 10, or ``--max-vus`` if lower),
``--max-vus`` the most in flight (default ``max(100, pre-allocated)``); ``--max-vus`` with
a closed model is an error, since there the VUs are the concurrency. ``--duration``
defaults to ``DEFAULT_DURATION``; with ``--ramp`` it is an error, the stages fix the
length. A bare number is seconds (``--duration 30``), as for every assay flag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from protocols.load_errors import LoadInputError
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    RAMPING_ARRIVAL_RATE,
    RAMPING_VUS,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
    Stage,
)
from protocols.load_thresholds import parse_threshold
from protocols.load_values import (
    RequestPartError,
    check_request,
    open_vus,
    parse_duration,
    parse_int,
    parse_rate,
)

SCENARIO = "default"
DEFAULT_VUS = 10
DEFAULT_DURATION = "30s"
_FLAG_OF_PART = {"method": "--method", "path": "--target", "header": "--header",
                 "body": "--body-file"}


def plan_from_flags(*, path: str, rate: str | None, vus: str | None, max_vus: str | None,
                    duration: str | None, ramp: str | None, method: str = "GET",
                    headers: Sequence[str] = (), body: bytes | None = None,
                    thresholds: Sequence[str] = ()) -> LoadPlan:
    """The plan ``assay load --target URL ...`` runs (see the module docstring).

    Args:
        path: the request target from ``--target`` (path and query; placeholders allowed).
        rate, vus, max_vus, duration, ramp: the flags' text, None when not given.
        headers: ``--header 'Name: value'`` as given.

    Raises:
        LoadInputError: ``--flag: what is wrong`` (one line).
    """
    if ramp is not None and duration is not None:
        raise LoadInputError(f"--duration: not allowed with --ramp (the stages fix the "
                             f"duration; got {duration!r})")
    per_s = _flag("--rate", parse_rate, rate) if rate is not None else None
    closed_ramp = ramp is not None and rate is None and vus is not None
    n_vus = None
    if vus is not None:
        n_vus = _flag("--vus", parse_int, vus, minimum=0 if closed_ramp else 1,
                      from_text=True)
    n_max = _flag("--max-vus", parse_int, max_vus, minimum=1, from_text=True) \
        if max_vus is not None else None
    closed = rate is None and (ramp is None or closed_ramp)
    if closed and n_max is not None:
        raise LoadInputError("--max-vus: only with --rate or --ramp (an open model); "
                             "a closed model's concurrency is --vus")
    seconds = _flag("--duration", parse_duration, duration or DEFAULT_DURATION,
                    bare_seconds=True)
    stages = _stages(ramp, whole=closed) if ramp is not None else ()
    if closed:
        executor = (Executor(RAMPING_VUS, vus=n_vus or 0, stages=stages) if closed_ramp
                    else Executor(CONSTANT_VUS, vus=n_vus or DEFAULT_VUS, duration_s=seconds))
    else:
        pre, most = _flag("--max-vus", open_vus, n_vus, n_max)
        if ramp is None:
            executor = Executor(CONSTANT_ARRIVAL_RATE, vus=pre, max_vus=most,
                                rate=per_s or 0.0, duration_s=seconds)
        else:
            if not per_s and all(stage.target == 0 for stage in stages):
                raise LoadInputError(f"--ramp: the rate is 0 throughout, no request would "
                                     f"ever be sent (got {ramp!r})")
            executor = Executor(RAMPING_ARRIVAL_RATE, vus=pre, max_vus=most,
                                start_rate=per_s or 0.0, stages=stages)
    template = RequestTemplate(method=method, path=path,
                               headers=tuple(_header(text) for text in headers), body=body)
    try:
        check_request(template)
    except RequestPartError as exc:
        raise LoadInputError(f"{_FLAG_OF_PART.get(exc.part or '', '--header')}: {exc}") \
            from None
    parsed = tuple(_flag("--threshold", parse_threshold, text) for text in thresholds)
    return LoadPlan(scenarios=(Scenario(SCENARIO, executor, template),),
                    thresholds=parsed, source="flags")


def _flag(flag: str, parser: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    try:
        return parser(*args, **kw)
    except LoadInputError as exc:
        raise LoadInputError(f"{flag}: {exc}") from None


def _stages(text: str, whole: bool) -> tuple[Stage, ...]:
    """``TARGET:DURATION,...``: VUs (``whole``) or rates (``500``, ``30/1m``)."""
    stages = []
    for i, piece in enumerate(text.split(","), 1):
        target, colon, length = (part.strip() for part in piece.partition(":"))
        where = f"--ramp: stage {i} {piece.strip()!r}"
        if not colon or not target or not length:
            raise LoadInputError(f"{where}: expected TARGET:DURATION, e.g. 500:30s")
        if whole:
            value = float(_flag(where, parse_int, target, from_text=True))
        else:
            value = _flag(where, parse_rate, target, allow_zero=True)
        seconds = _flag(where, parse_duration, length, allow_zero=True, bare_seconds=True)
        stages.append(Stage(value, seconds))
    if sum(stage.duration_s for stage in stages) <= 0:
        raise LoadInputError(f"--ramp: the stages last 0s in total (got {text!r})")
    return tuple(stages)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise LoadInputError(f"--header: expected 'Name: value' (got {text!r})")
    return name.strip(), value.strip()
