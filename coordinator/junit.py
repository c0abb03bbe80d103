"""``junit.xml``: a run's verdicts in the format every CI reads.

How this works: one ``<testsuite>`` per slice (the prefix of an invariant's counter:
``adv``, ``markov``, ``coord``, ``res`` ...) or per command (``load`` thresholds, the
``hold`` / ``loris`` verdict), and for a matrix one per cell; one ``<testcase>`` per
invariant (per threshold for ``assay load``). A failed invariant carries a ``<failure>``
whose ``message`` is the one-line meaning and whose text is the first example (case, RFC,
reason, bytes sent and received); a not-judged one is ``<skipped>`` with the reason; a run
that could not be judged at all (exit 2 or 3) adds an ``<error>`` testcase, so CI shows red
for an unreachable target instead of an empty green suite.

The elements and attributes are those of the Jenkins/Ant JUnit schema (``junit-10.xsd``):
``testsuite`` has ``name``, ``tests``, ``failures``, ``errors``, ``skipped``, ``time``,
``timestamp`` (ISO 8601 without a zone, as the Ant schema's pattern wants) and ``hostname``;
``testcase`` has ``name``, ``classname`` and ``time``; children in schema order. Characters
XML 1.0 cannot carry (NUL and other C0 controls, from a hostile target) are written as
``\\xNN``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from coordinator import report_data as data
from coordinator.report_command_verdicts import command_errors, command_verdicts

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Text of a failure body, at most (a large received body must not bloat the CI file).
MAX_BODY = 8192


def clean(value: Any) -> str:
    """``value`` as text XML 1.0 can carry: forbidden characters become ``\\xNN``."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def render_junit(document: Mapping[str, Any]) -> str:
    """The JUnit XML of a results document (a run of any mode, or a matrix)."""
    root = ET.Element("testsuites", name=clean(_title(document)))
    if document.get("mode") == "matrix":
        for cell in data.as_list(document.get("cells")):
            if isinstance(cell, dict):
                run = {"started_at": document.get("started_at"),
                       "environment": document.get("environment"), **cell,
                       "tier_1": {"failing_cases": cell.get("failing_cases")}}
                _run_suites(root, run, prefix=f"{cell.get('name', '?')}.", whole=False)
    else:
        _run_suites(root, document, prefix="", whole=True)
    totals = {k: sum(int(s.get(k, "0")) for s in root) for k in
              ("tests", "failures", "errors", "skipped")}
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(document.get("elapsed_s")))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"


def _run_suites(root: ET.Element, run: Mapping[str, Any], prefix: str, whole: bool) -> None:
    """The suites of one run (the top document, or one matrix cell)."""
    mode = str(run.get("mode") or ("matrix-cell" if not whole else "run"))
    time_s = _seconds(run.get("elapsed_s"))
    stamp = _timestamp(run.get("started_at"))
    host = clean(data.as_dict(run.get("environment")).get("host") or "localhost")
    suites: dict[str, ET.Element] = {}

    def suite(name: str) -> ET.Element:
        if name not in suites:
            suites[name] = ET.SubElement(root, "testsuite", name=clean(prefix + name),
                                         timestamp=stamp, hostname=host, time=time_s)
        return suites[name]

    examples = data.as_dict(data.as_dict(run.get("tier_1")).get("examples"))
    verdicts = data.as_dict(run.get("invariants"))
    for status in ("failed", "not_judged", "passed"):
        for entry in data.as_list(verdicts.get(status)):
            if not isinstance(entry, dict):
                continue
            counter = str(entry.get("counter") or "run")
            case = _case(suite(counter.split(".", 1)[0]), f"assay.{mode}", entry)
            if status == "failed":
                failure = ET.SubElement(case, "failure", type=clean(entry.get("id", "?")),
                                        message=clean(_message(entry)))
                failure.text = clean(_example_text(examples.get(counter)
                                                   or _first_case(run, counter)))
            elif status == "not_judged":
                ET.SubElement(case, "skipped", message=clean(entry.get("reason") or
                                                             "not judged"))
    _command_cases(suite, run, mode)
    if run.get("status") in ("error",) or run.get("exit_code") in (2, 3):
        case = ET.SubElement(suite("run"), "testcase", name="run completed",
                             classname=f"assay.{mode}", time=time_s)
        ET.SubElement(case, "error", type="infrastructure",
                      message=clean(run.get("error") or f"exit code {run.get('exit_code')}"))
    failed_run = run.get("status") == "failed" or run.get("exit_code") == 1
    red = ("testcase/failure", "testcase/error")
    if failed_run and not any(s.find(path) is not None for s in suites.values() for path in red):
        # A verdict kept where this module does not look (a command added later): CI must
        # still see red for a run that exited 1, not an all-green suite.
        case = ET.SubElement(suite("run"), "testcase", name="run verdict",
                             classname=f"assay.{mode}", time=time_s)
        ET.SubElement(case, "failure", type="run",
                      message=clean(f"the run failed (status {run.get('status')}, exit code "
                                    f"{run.get('exit_code')}); see validate-results.json"))
    if not suites:  # nothing judged at all (an early failure): say so rather than be empty
        case = ET.SubElement(suite("run"), "testcase", name="run judged",
                             classname=f"assay.{mode}", time=time_s)
        ET.SubElement(case, "skipped", message=f"status {run.get('status')}: no verdicts")
    for element in suites.values():
        cases = list(element.iter("testcase"))
        element.set("tests", str(len(cases)))
        element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
        element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))


def _command_cases(suite: Any, run: Mapping[str, Any], mode: str) -> None:
    """Load thresholds as testcases; the hold/loris verdict as one testcase; each watch /
    proxy verdict as a testcase, and an error testcase when the proxy's backends could not
    be read (its verdicts then judged nothing)."""
    load = run.get("load")
    if isinstance(load, dict):
        for entry in data.as_list(load.get("thresholds")):
            if not isinstance(entry, dict):
                continue
            name = f"threshold {entry.get('metric', '?')}: {entry.get('expr', '?')}"
            case = ET.SubElement(suite("load"), "testcase", name=clean(name),
                                 classname=f"assay.{mode}.thresholds", time="0")
            if not entry.get("ok"):
                failure = ET.SubElement(case, "failure", type="threshold",
                                        message=clean(f"{name} failed: value "
                                                      f"{entry.get('value')}"))
                failure.text = clean(json.dumps(entry, default=str))
    for key in ("hold", "loris"):
        block = run.get(key)
        if isinstance(block, dict):
            case = ET.SubElement(suite(key), "testcase", name=f"{key} verdict",
                                 classname=f"assay.{mode}", time=_seconds(run.get("elapsed_s")))
            if not block.get("ok", False) and run.get("status") != "interrupted":
                failure = ET.SubElement(case, "failure", type=key,
                                        message=clean(block.get("reason") or f"{key} failed"))
                failure.text = clean(json.dumps(block, default=str)[:MAX_BODY])
    for verdict in command_verdicts(run):  # watch / proxy: verdicts in their own blocks
        case = ET.SubElement(suite(verdict.block), "testcase",
                             name=clean(f"{verdict.id}: {verdict.meaning}"),
                             classname=f"assay.{mode}", time="0")
        if verdict.failed:
            failure = ET.SubElement(case, "failure", type=clean(verdict.id),
                                    message=clean(f"{verdict.meaning} ({verdict.detail})"
                                                  + (f"; {verdict.note}" if verdict.note
                                                     else "")))
            more = len(verdict.examples) - 1
            failure.text = clean(_example_text(verdict.examples[0] if verdict.examples
                                               else None)
                                 + (f"\nand {more} more (see validate-results.json)"
                                    if more > 0 else ""))
        elif verdict.status == "not_judged":
            ET.SubElement(case, "skipped", message="not judged: the backends' records were "
                                                   "not all read")
    for block_name, message in command_errors(run):
        case = ET.SubElement(suite(block_name), "testcase", name=f"{block_name} judged",
                             classname=f"assay.{mode}", time="0")
        ET.SubElement(case, "error", type="not_judged", message=clean(message))


def _case(suite: ET.Element, classname: str, entry: Mapping[str, Any]) -> ET.Element:
    name = f"{entry.get('id', '?')}: {entry.get('meaning', '')}".strip()
    return ET.SubElement(suite, "testcase", name=clean(name), classname=clean(classname),
                         time="0")


def _message(entry: Mapping[str, Any]) -> str:
    """The one-line meaning, with the counter that moved and how far."""
    text = f"{entry.get('meaning', entry.get('id'))} ({entry.get('counter')}={entry.get('value')})"
    if entry.get("consequence_of"):
        text += f"; a consequence of {entry['consequence_of']}"
    return text


def _first_case(run: Mapping[str, Any], counter: str) -> Any:
    """The first violation of the counter's slice, when the counter kept no example."""
    slice_name = counter.split(".", 1)[0]
    cases = data.as_list(data.as_dict(data.as_dict(run.get("tier_1")).get("failing_cases"))
                         .get(slice_name))
    for case in cases:
        if isinstance(case, dict) and case.get("verdict") == "violation":
            return case.get("example") or case
    return None


def _example_text(example: Any) -> str:
    """The first example as lines a CI log shows well: facts first, then the bytes."""
    if not isinstance(example, dict) or not example:
        return "no example kept (see validate-results.json)"
    lines, wires = [], []
    for key, value in example.items():
        text = data.wire_text(value) if isinstance(value, dict) else None
        if text is not None:
            wires.append(f"--- {key} ({len(text)} bytes) ---\n{text[:MAX_BODY // 2]}")
        elif isinstance(value, (dict, list)):
            lines.append(f"{key}: {json.dumps(value, default=str)[:400]}")
        else:
            lines.append(f"{key}: {value}")
    return ("\n".join(lines + wires))[:MAX_BODY]


def _title(document: Mapping[str, Any]) -> str:
    return f"assay {document.get('mode', '?')} {document.get('label') or ''}".strip()


def _seconds(value: Any) -> str:
    number = data.number(value)
    return f"{number:.3f}" if number is not None and number >= 0 else "0"


def _timestamp(iso_text: Any) -> str:
    at = data.epoch(iso_text)
    moment = datetime.fromtimestamp(at if at is not None else 0, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
