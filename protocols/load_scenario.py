"""Building a ``LoadPlan`` from a k6-style scenario file (TOML or YAML), or from flags.

How this works: ``load_scenario_file`` parses the file into plain data that remembers
lines (``protocols.load_source``), then ``_Builder`` walks it field by field, checking
each against the executor's k6 fields, and builds the frozen plan
(``protocols.load_model``). The first problem ends the walk with a one-line
``LoadInputError``: ``FILE:LINE: dotted.field: what is wrong``. Unknown keys are errors,
and so are fields of another executor (``rate`` on ``constant-vus``), as in k6: a
misspelt ``max_vu`` silently falling back to a default would change the test without a
word. ``plan_from_flags`` (``protocols.load_flags``) is re-exported here: one import for
the CLI.

The shape is k6's ``options`` in snake_case; k6's camelCase spellings (``preAllocatedVUs``,
``maxVUs``, ``startVUs``, ``startRate``, ``timeUnit``, ``startTime``, ``abortOnFail``,
``delayAbortEval``) are accepted as aliases, so a k6 options block mostly pastes in.
``gracefulStop`` / ``gracefulRampDown`` are accepted and ignored with a note (assay lets a
request in flight finish); ``exec`` is refused: a scenario is one request template.

Defaults: ``time_unit`` 1s; ``start_vus`` 1 and ``start_rate`` 0 (k6's); open executors
pre-allocate 10 VUs and allow ``max(100, pre_allocated_vus)`` (``load_values.open_vus``);
``request`` is ``GET /``; ``connections`` (open executors; assay's own field, the
keep-alive connections the requests share) 0, one per request in flight. With
``sequence = true`` each scenario starts when the one before it ends, in file order,
and ``start_time`` is refused.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from protocols.load_checks import build_checks
from protocols.load_errors import LoadInputError
from protocols.load_flags import plan_from_flags
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    EXECUTORS,
    RAMPING_ARRIVAL_RATE,
    RAMPING_VUS,
    Check,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
    Stage,
    Threshold,
)
from protocols.load_source import FieldPath, FieldReader, SourceDoc, Table, dotted, parse_source
from protocols.load_thresholds import parse_threshold
from protocols.load_values import (
    RequestPartError,
    check_request,
    open_vus,
    parse_duration,
    parse_int,
    parse_number,
    type_name,
)

__all__ = ["load_scenario_file", "plan_from_flags"]

_KINDS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ALIASES = {
    "preAllocatedVUs": "pre_allocated_vus", "maxVUs": "max_vus", "startVUs": "start_vus",
    "startRate": "start_rate", "timeUnit": "time_unit", "startTime": "start_time",
    "gracefulStop": "graceful_stop", "gracefulRampDown": "graceful_ramp_down",
    "abortOnFail": "abort_on_fail", "delayAbortEval": "delay_abort_eval",
}
_COMMON = ("executor", "start_time", "tags", "request", "checks", "thresholds",
           "graceful_stop")
_FIELDS: dict[str, tuple[str, ...]] = {
    CONSTANT_VUS: ("vus", "duration"),
    RAMPING_VUS: ("start_vus", "stages", "graceful_ramp_down"),
    CONSTANT_ARRIVAL_RATE: ("rate", "time_unit", "duration", "pre_allocated_vus", "max_vus",
                            "connections"),
    RAMPING_ARRIVAL_RATE: ("start_rate", "time_unit", "stages", "pre_allocated_vus",
                           "max_vus", "connections"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    CONSTANT_VUS: ("vus", "duration"), RAMPING_VUS: ("stages",),
    CONSTANT_ARRIVAL_RATE: ("rate", "duration"), RAMPING_ARRIVAL_RATE: ("stages",),
}
_IGNORED_NOTE = "accepted for k6 compatibility and ignored (assay lets a request in flight finish)"


def load_scenario_file(path: Path) -> LoadPlan:
    """Read and validate a scenario file; ``body_file`` is read relative to its folder.

    Raises:
        LoadInputError: one line, ``FILE:LINE: field: what is wrong`` (``FILE: ...`` when
            the file cannot be read at all).
    """
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        raise LoadInputError(f"{path}: a scenario file must end in .toml, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LoadInputError(f"{path}: not UTF-8 text") from None
    return _Builder(parse_source(text, str(path), kind), path.parent).plan()


class _Builder(FieldReader):
    aliases = _ALIASES

    def __init__(self, doc: SourceDoc, folder: Path) -> None:
        super().__init__(doc)
        self.folder = folder
        self.notes: list[str] = []

    # --- the file -----------------------------------------------------------------------

    def plan(self) -> LoadPlan:
        top = self.table(self.doc.data, (), ("sequence", "thresholds", "scenarios"))
        sequence = self.boolean(top, "sequence")
        thresholds = self.thresholds(top, ())
        named = top.values.get("scenarios")
        if named is None or named == {}:
            raise self.fail(top.at("scenarios"), "no scenarios: add at least one "
                            "[scenarios.NAME] table")
        if not isinstance(named, dict):
            raise self.fail(top.at("scenarios"), f"expected a table of scenarios by name, "
                            f"got {type_name(named)}")
        scenarios: list[Scenario] = []
        for name, value in named.items():
            scenario, more = self.scenario(name, value, (*top.at("scenarios"), name), sequence)
            if sequence and scenarios:
                scenario = replace(scenario, start_s=scenarios[-1].end_s)
            scenarios.append(scenario)
            thresholds += more
        return LoadPlan(scenarios=tuple(scenarios), thresholds=tuple(thresholds),
                        source=self.doc.name, notes=tuple(self.notes))

    def scenario(self, name: Any, value: Any, path: FieldPath, sequence: bool
                 ) -> tuple[Scenario, list[Threshold]]:
        """One scenario, and its thresholds (tagged ``scenario:NAME``)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.doc.error(path, f"scenario name {name!r} must be 1-64 letters, "
                                 "digits, '_' or '-'", shown=(*path[:-1], str(name)))
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table, got {type_name(value)}")
        if "executor" not in value:
            raise self.fail((*path, "executor"), f"missing (one of: {', '.join(EXECUTORS)})")
        kind = value["executor"]
        if kind not in EXECUTORS:
            raise self.fail((*path, "executor"), f"unknown executor {kind!r} (one of: "
                            f"{', '.join(EXECUTORS)})")
        table = self.table(value, path, _COMMON + _FIELDS[kind],
                           lambda key: _misplaced(kind, key))
        for field in _REQUIRED[kind]:
            if field not in table.values:
                raise self.fail(table.at(field), f"missing ({kind} needs "
                                f"{' and '.join(_REQUIRED[kind])})")
        for field in ("graceful_stop", "graceful_ramp_down"):
            if field in table.values:
                self.parse(table.at(field), parse_duration, table.values[field],
                           allow_zero=True)
                self.notes.append(f"{dotted(table.at(field))}: {_IGNORED_NOTE}")
        start = 0.0
        if "start_time" in table.values:
            if sequence:
                raise self.fail(table.at("start_time"), "not allowed with sequence = true "
                                "(each scenario starts when the one before it ends)")
            start = self.parse(table.at("start_time"), parse_duration,
                               table.values["start_time"], allow_zero=True)
        tags = self.strings(table.values["tags"], table.at("tags")) if "tags" in table.values \
            else ()
        scenario = Scenario(name=name, executor=self.executor(kind, table),
                            request=self.request(table), tags=tags,
                            checks=self.checks(table), start_s=start)
        return scenario, self.thresholds(table, (("scenario", name),))

    def executor(self, kind: str, table: Table) -> Executor:
        def number(field: str, default: float, **kw: Any) -> float:
            value = table.values.get(field, default)
            return self.parse(table.at(field), parse_number, value, **kw)

        def count(field: str, default: int | None, minimum: int) -> int | None:
            if field not in table.values:
                return default
            return self.parse(table.at(field), parse_int, table.values[field],
                              minimum=minimum)

        if kind == CONSTANT_VUS:
            return Executor(kind, vus=count("vus", 1, 1) or 1,
                            duration_s=self.duration(table, "duration"))
        if kind == RAMPING_VUS:
            return Executor(kind, vus=count("start_vus", 1, 0) or 0,
                            stages=self.stages(table, 1.0, whole=True))
        unit = self.duration(table, "time_unit", "1s")
        pre, most = count("pre_allocated_vus", None, 0), count("max_vus", None, 1)
        pre, most = self.parse(table.at("max_vus"), open_vus, pre, most)
        connections = count("connections", 0, 1) or 0
        if kind == CONSTANT_ARRIVAL_RATE:
            return Executor(kind, vus=pre, max_vus=most,
                            rate=number("rate", 0.0, strict=True) / unit,
                            duration_s=self.duration(table, "duration"),
                            connections=connections)
        start_rate = number("start_rate", 0.0) / unit
        stages = self.stages(table, unit, whole=False)
        if start_rate == 0 and all(stage.target == 0 for stage in stages):
            raise self.fail(table.at("stages"), "the rate is 0 throughout: no request "
                            "would ever be sent")
        return Executor(kind, vus=pre, max_vus=most, start_rate=start_rate, stages=stages,
                        connections=connections)

    def duration(self, table: Table, field: str, default: str | None = None) -> float:
        return self.parse(table.at(field), parse_duration, table.values.get(field, default))

    def stages(self, table: Table, unit: float, whole: bool) -> tuple[Stage, ...]:
        """``[{duration, target}, ...]``; targets are VUs (``whole``) or rates per unit."""
        path, items = table.at("stages"), table.values["stages"]
        if not isinstance(items, list) or not items:
            raise self.fail(path, f"expected a non-empty list of {{duration, target}}, got "
                            f"{type_name(items)}")
        stages = []
        for i, item in enumerate(items):
            stage = self.table(item, (*path, i), ("duration", "target"))
            for field in ("duration", "target"):
                if field not in stage.values:
                    raise self.fail(stage.at(field), "missing (a stage needs duration and "
                                    "target)")
            seconds = self.parse(stage.at("duration"), parse_duration,
                                 stage.values["duration"], allow_zero=True)
            parser = parse_int if whole else parse_number
            target = self.parse(stage.at("target"), parser, stage.values["target"])
            stages.append(Stage(target / unit, seconds))
        if sum(stage.duration_s for stage in stages) <= 0:
            raise self.fail(path, "the stages last 0s in total")
        return tuple(stages)

    def request(self, scenario: Table) -> RequestTemplate:
        if "request" not in scenario.values:
            return RequestTemplate()
        table = self.table(scenario.values["request"], scenario.at("request"),
                           ("method", "path", "headers", "body", "body_file"))
        headers = (self.strings(table.values["headers"], table.at("headers"))
                   if "headers" in table.values else ())
        body: bytes | None = None
        if "body" in table.values and "body_file" in table.values:
            raise self.fail(table.at("body_file"), "give body or body_file, not both")
        if "body" in table.values:
            body = self.string(table, "body").encode("utf-8")
        elif "body_file" in table.values:
            name = self.string(table, "body_file")
            try:
                body = (self.folder / name).read_bytes()
            except OSError as exc:
                raise self.fail(table.at("body_file"),
                                f"cannot read {name!r}: {exc.strerror or exc}") from None
        template = RequestTemplate(method=self.string(table, "method", "GET"),
                                   path=self.string(table, "path", "/"),
                                   headers=headers, body=body)
        try:
            check_request(template)
        except RequestPartError as exc:
            where = {"method": table.at("method"), "path": table.at("path"),
                     "body": table.at("body" if "body" in table.values else "body_file"),
                     }.get(exc.part or "", table.at("headers"))
            if exc.part == "header":
                where = (*table.at("headers"), headers[exc.index][0])
            raise self.fail(where, str(exc)) from None
        return template

    def checks(self, scenario: Table) -> tuple[Check, ...]:
        if "checks" not in scenario.values:
            return ()
        value, path = scenario.values["checks"], scenario.at("checks")
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table of checks, got {type_name(value)}")
        try:
            for key, item in value.items():  # one at a time first: the error gets its line
                path = (*scenario.at("checks"), key)
                build_checks({key: item})
            return build_checks(value)
        except LoadInputError as exc:  # its message names the check: show the scenario
            raise self.doc.error(path, str(exc), shown=scenario.path) from None

    def thresholds(self, table: Table, tags: tuple[tuple[str, str], ...]
                   ) -> list[Threshold]:
        """``metric{tags} = [expr | {threshold, abort_on_fail, delay_abort_eval}, ...]``."""
        if "thresholds" not in table.values:
            return []
        path = table.at("thresholds")
        value = table.values["thresholds"]
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a table of metric = [expressions], got "
                            f"{type_name(value)}")
        out = []
        for metric, items in value.items():
            if not isinstance(items, list):
                raise self.fail((*path, metric), f"expected a list of threshold "
                                f"expressions, got {type_name(items)}")
            for i, item in enumerate(items):
                out.append(self.threshold(str(metric), item, (*path, metric, i), tags))
        return out

    def threshold(self, metric: str, item: Any, path: FieldPath,
                  tags: tuple[tuple[str, str], ...]) -> Threshold:
        abort, delay = False, 0.0
        if isinstance(item, dict):
            table = self.table(item, path, ("threshold", "abort_on_fail", "delay_abort_eval"))
            if "threshold" not in table.values:
                raise self.fail(table.at("threshold"), "missing (the expression, e.g. "
                                "'p(99)<500')")
            abort = self.boolean(table, "abort_on_fail")
            if "delay_abort_eval" in table.values:
                delay = self.parse(table.at("delay_abort_eval"), parse_duration,
                                   table.values["delay_abort_eval"], allow_zero=True)
            text = self.string(table, "threshold")
            path = table.at("threshold")
        elif isinstance(item, str):
            text = item
        else:
            raise self.fail(path, f"expected an expression or a table, got "
                            f"{type_name(item)}")
        return self.parse(path, parse_threshold, text, metric=metric, tags=tags,
                          abort_on_fail=abort, delay_abort_s=delay)


def _misplaced(kind: str, key: str) -> str:
    if key == "exec":
        return ("not supported: a scenario runs its [request] template, there is no "
                "script to call")
    owners = [other for other, fields in _FIELDS.items() if key in fields]
    if owners:
        return f"not a field of {kind} (it belongs to {' and '.join(owners)})"
    return (f"unknown key (fields of {kind}: "
            f"{', '.join(sorted(_COMMON + _FIELDS[kind]))})")

