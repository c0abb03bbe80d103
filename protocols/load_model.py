"""The load plan as data: scenarios, executors, request templates, checks and thresholds.

How this works: ``assay load`` turns its flags or a scenario file
(``protocols.load_scenario``) into one ``LoadPlan``; the coordinator sends it to every
actor as plain data (``to_wire`` / ``from_wire``, msgpack-safe), and each actor's load
walker (``actors.load_walker``) runs its share of every scenario. Nothing here does I/O.

Executors mean what k6's executors of the same name mean:

* ``constant-vus`` / ``ramping-vus`` are closed models: a VU sends its next request as
  soon as the last one ended, so the rate follows the server's latency.
* ``constant-arrival-rate`` / ``ramping-arrival-rate`` are open models: request *i* is
  due at a fixed instant whatever the latency (``protocols.load_schedule``); a request
  that finds every one of ``max_vus`` in flight is dropped and counted, never delayed.

Stages ramp linearly from the previous target (``start`` for the first) to ``target``
over ``duration_s``, as k6's ``stages`` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONSTANT_VUS = "constant-vus"
RAMPING_VUS = "ramping-vus"
CONSTANT_ARRIVAL_RATE = "constant-arrival-rate"
RAMPING_ARRIVAL_RATE = "ramping-arrival-rate"
EXECUTORS = (CONSTANT_VUS, RAMPING_VUS, CONSTANT_ARRIVAL_RATE, RAMPING_ARRIVAL_RATE)
OPEN_EXECUTORS = (CONSTANT_ARRIVAL_RATE, RAMPING_ARRIVAL_RATE)


@dataclass(frozen=True)
class Stage:
    """Ramp linearly to ``target`` (VUs, or requests per second) over ``duration_s``."""

    target: float
    duration_s: float


@dataclass(frozen=True)
class Executor:
    """How requests are started. ``rate`` and stage targets are per second (a scenario
    file's ``time_unit`` is applied when it is parsed)."""

    kind: str
    #: closed: the VUs (constant) or the starting VUs (ramping); open: pre-allocated VUs.
    vus: int = 1
    #: open: the most requests in flight at once (k6 ``maxVUs``); closed: unused.
    max_vus: int = 0
    #: constant-arrival-rate: requests per second.
    rate: float = 0.0
    #: ramping-arrival-rate: the rate before the first stage.
    start_rate: float = 0.0
    #: constant executors: how long; ramping executors: the sum of the stages.
    duration_s: float = 0.0
    stages: tuple[Stage, ...] = ()
    #: open: keep-alive connections the requests share (0: as many as ``max_vus``, one
    #: per request in flight, k6's model). Fewer, and a request due while every
    #: connection is busy waits for one (wrk2's model): the wait counts in its latency,
    #: from the due time, not in its service time; it is dropped only if ``max_vus``
    #: requests are already started and unfinished.
    connections: int = 0

    @property
    def is_open(self) -> bool:
        return self.kind in OPEN_EXECUTORS

    @property
    def total_s(self) -> float:
        if self.kind in (RAMPING_VUS, RAMPING_ARRIVAL_RATE):
            return sum(stage.duration_s for stage in self.stages)
        return self.duration_s


@dataclass(frozen=True)
class RequestTemplate:
    """One request, with placeholders (``{seq}``, ``{rand:1..5000}``, ``{uuid}``) allowed
    in the path, header values and a text body (``protocols.load_template``)."""

    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass(frozen=True)
class Check:
    """A check on every response (``protocols.load_checks``): ``kind`` is ``status``
    (``expected`` a list of codes), ``header_equals`` / ``header_contains`` (``name`` a
    header, ``expected`` a string), or ``json_equals`` (``name`` a dotted field path,
    ``expected`` any JSON value). ``label`` names it in the summary."""

    kind: str
    name: str
    expected: Any
    label: str


@dataclass(frozen=True)
class Threshold:
    """A k6 threshold: ``metric{tag:value,...}: aggregation op value``.

    ``aggregation`` is ``p`` (with ``percentile``), ``avg``, ``min``, ``max``, ``med``,
    ``rate`` or ``count``; ``op`` one of ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``.
    ``source`` is the expression as the user wrote it (shown in the summary).
    """

    source: str
    metric: str
    aggregation: str
    op: str
    value: float
    percentile: float | None = None
    tags: tuple[tuple[str, str], ...] = ()
    abort_on_fail: bool = False
    #: How long into the run an abort-on-fail threshold is not yet judged (k6 delayAbortEval).
    delay_abort_s: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    executor: Executor
    request: RequestTemplate
    tags: tuple[tuple[str, str], ...] = ()
    checks: tuple[Check, ...] = ()
    #: Seconds after the load run starts at which this scenario starts.
    start_s: float = 0.0
    #: Latencies of requests due before this many seconds into the scenario are not
    #: recorded (``assay slo``'s warm-up); they are still counted.
    measure_after_s: float = 0.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.executor.total_s


@dataclass(frozen=True)
class LoadPlan:
    scenarios: tuple[Scenario, ...]
    thresholds: tuple[Threshold, ...] = ()
    #: Where the plan came from (a file name, or "flags"), for messages.
    source: str = "flags"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return max((s.end_s for s in self.scenarios), default=0.0)

    def scenario(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise KeyError(name)

    def to_wire(self) -> dict[str, Any]:
        """Plain data for the actors' plan (msgpack carries dicts, lists, str, bytes)."""
        return {
            "source": self.source,
            "notes": list(self.notes),
            "thresholds": [_threshold_wire(t) for t in self.thresholds],
            "scenarios": [{
                "name": s.name,
                "executor": {
                    "kind": s.executor.kind, "vus": s.executor.vus,
                    "max_vus": s.executor.max_vus, "rate": s.executor.rate,
                    "start_rate": s.executor.start_rate,
                    "duration_s": s.executor.duration_s,
                    "stages": [[st.target, st.duration_s] for st in s.executor.stages],
                    "connections": s.executor.connections,
                },
                "request": {
                    "method": s.request.method, "path": s.request.path,
                    "headers": [list(h) for h in s.request.headers], "body": s.request.body,
                },
                "tags": [list(t) for t in s.tags],
                "checks": [[c.kind, c.name, c.expected, c.label] for c in s.checks],
                "start_s": s.start_s,
                "measure_after_s": s.measure_after_s,
            } for s in self.scenarios],
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> LoadPlan:
        scenarios = []
        for s in data["scenarios"]:
            ex = s["executor"]
            req = s["request"]
            scenarios.append(Scenario(
                name=s["name"],
                executor=Executor(
                    kind=ex["kind"], vus=int(ex["vus"]), max_vus=int(ex["max_vus"]),
                    rate=float(ex["rate"]), start_rate=float(ex["start_rate"]),
                    duration_s=float(ex["duration_s"]),
                    stages=tuple(Stage(float(t), float(d)) for t, d in ex["stages"]),
                    connections=int(ex.get("connections", 0))),
                request=RequestTemplate(
                    method=req["method"], path=req["path"],
                    headers=tuple((str(k), str(v)) for k, v in req["headers"]),
                    body=req["body"]),
                tags=tuple((str(k), str(v)) for k, v in s["tags"]),
                checks=tuple(Check(k, n, e, lbl) for k, n, e, lbl in s["checks"]),
                start_s=float(s["start_s"]),
                measure_after_s=float(s["measure_after_s"]),
            ))
        return cls(scenarios=tuple(scenarios),
                   thresholds=tuple(_threshold_from_wire(t) for t in data["thresholds"]),
                   source=data.get("source", "flags"), notes=tuple(data.get("notes", ())))


def _threshold_wire(t: Threshold) -> dict[str, Any]:
    return {"source": t.source, "metric": t.metric, "aggregation": t.aggregation,
            "op": t.op, "value": t.value, "percentile": t.percentile,
            "tags": [list(x) for x in t.tags], "abort_on_fail": t.abort_on_fail,
            "delay_abort_s": t.delay_abort_s}


def _threshold_from_wire(d: dict[str, Any]) -> Threshold:
    return Threshold(source=d["source"], metric=d["metric"], aggregation=d["aggregation"],
                     op=d["op"], value=float(d["value"]), percentile=d.get("percentile"),
                     tags=tuple((str(k), str(v)) for k, v in d.get("tags", ())),
                     abort_on_fail=bool(d.get("abort_on_fail")),
                     delay_abort_s=float(d.get("delay_abort_s", 0.0)))
