"""junit.xml validates against the JUnit schema and says what failed, for every mode."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from coordinator.junit import clean, render_junit

FIXTURES = Path(__file__).parent / "fixtures" / "report"
SCHEMA = xmlschema.XMLSchema(FIXTURES / "junit-10.xsd")
#: Apache Ant's JUnit schema (the stricter ancestor) requires these.
ANT_SUITE_ATTRIBUTES = ("name", "timestamp", "hostname", "tests", "failures", "errors", "time")
ANT_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def checked(document: dict[str, Any]) -> ET.Element:
    text = render_junit(document)
    SCHEMA.validate(text)  # raises XMLSchemaValidationError on any departure
    root = ET.fromstring(text)
    for suite in root.iter("testsuite"):
        for attribute in ANT_SUITE_ATTRIBUTES:
            assert attribute in suite.attrib, (attribute, suite.attrib)
        assert ANT_TIMESTAMP.match(suite.get("timestamp", ""))
        float(suite.get("time", "x"))
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        assert int(suite.get("failures", "-1")) == sum(c.find("failure") is not None
                                                       for c in cases)
        for case in cases:
            assert case.get("classname") and case.get("time") is not None
    return root


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name / "validate-results.json").read_text())


def test_a_failing_run_has_a_suite_per_slice_and_a_failure_with_its_example() -> None:
    root = checked(fixture("failing_run"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert {"adv", "markov", "coord", "res"} <= set(suites)
    desync = next(c for c in suites["adv"] if c.get("name", "").startswith("I-ADV-DESYNC"))
    failure = desync.find("failure")
    assert failure is not None and failure.get("type") == "I-ADV-DESYNC"
    assert failure.get("message", "").startswith("leftover bytes of a malformed request")
    assert "cl-te-smuggle" in (failure.text or "")
    assert "--- sent (" in (failure.text or "") and "Transfer-Encoding: chunked" in failure.text
    skipped = [c for c in suites["res"] if c.find("skipped") is not None]
    assert skipped and "too short" in skipped[0].find("skipped").get("message", "")
    assert root.get("failures") == "2" and int(root.get("tests", "0")) >= 20


def test_load_thresholds_are_testcases() -> None:
    root = checked({"mode": "load", "status": "failed", "exit_code": 1, "elapsed_s": 5.0,
                    "started_at": "2026-12-04T04:00:00.000+00:00",
                    "load": {"thresholds": [
                        {"expr": "p(99)<5", "metric": "http_req_duration", "value": 7.25,
                         "ok": False},
                        {"expr": "rate<0.01", "metric": "http_req_failed", "value": 0.0,
                         "ok": True}]}})
    load = next(s for s in root.iter("testsuite") if s.get("name") == "load")
    assert [c.get("name") for c in load] == ["threshold http_req_duration: p(99)<5",
                                             "threshold http_req_failed: rate<0.01"]
    assert load[0].find("failure").get("message").endswith("failed: value 7.25")
    assert load[1].find("failure") is None


@pytest.mark.parametrize("key", ["hold", "loris"])
def test_a_hold_or_loris_verdict_is_a_testcase(key: str) -> None:
    root = checked({"mode": key, "status": "failed", "exit_code": 1,
                    key: {"ok": False, "reason": "12 of 100 connections dropped"}})
    case = next(root.iter("testcase"))
    assert case.find("failure").get("message") == "12 of 100 connections dropped"


def test_an_unreachable_target_is_an_error_not_an_empty_green_suite() -> None:
    root = checked({"mode": "run", "status": "error", "exit_code": 3,
                    "error": "target unreachable: connection refused"})
    errors = [c.find("error") for c in root.iter("testcase") if c.find("error") is not None]
    assert errors and errors[0].get("message") == "target unreachable: connection refused"
    assert root.get("errors") == "1"


def test_a_matrix_has_a_suite_per_cell() -> None:
    root = checked(fixture("matrix"))
    names = {s.get("name") for s in root.iter("testsuite")}
    assert "refapp-broken.adv" in names and "nginx.adv" in names
    assert "lighttpd<b>.run" in names  # a cell that did not run is an error testcase
    broken = next(s for s in root.iter("testsuite") if s.get("name") == "refapp-broken.adv")
    assert broken.get("failures") == "2"
    assert all(s.get("failures") == "0" for s in root.iter("testsuite")
               if s.get("name", "").startswith("nginx."))


def test_characters_xml_cannot_carry_are_escaped_and_the_file_stays_valid() -> None:
    hostile = "nul\x00 esc\x1b bell\x07 ok\ttab </failure><x>"
    root = checked({"mode": "run", "status": "failed", "exit_code": 1, "invariants": {
        "failed": [{"id": "I-X", "meaning": hostile, "counter": "adv.x", "value": 1}]},
        "tier_1": {"examples": {"adv.x": {"received": {"text": hostile}}}}})
    failure = next(root.iter("failure"))
    assert "nul\\x00 esc\\x1b bell\\x07 ok\ttab </failure><x>" in failure.get("message")
    assert "</failure><x>" in failure.text
    assert clean("a\ud800b") == "a\\xd800b"  # a lone surrogate is not XML either


def test_a_malformed_document_still_gives_valid_junit() -> None:
    checked({"mode": "run", "invariants": {"failed": ["x", {"id": 3}], "passed": "no"},
             "tier_1": [], "elapsed_s": -4, "started_at": "yesterday", "cells": 5})
    checked({"mode": "matrix", "cells": [1, {"name": "c", "invariants": "?"}]})


def test_the_schema_check_rejects_what_ci_would_reject() -> None:
    assert not SCHEMA.is_valid('<testsuites><testsuite name="s" tests="1"><testcase/>'
                               "</testsuite></testsuites>")  # a testcase needs a name
    assert not SCHEMA.is_valid('<testsuites><testsuite name="s" tests="1"><testcase name="c">'
                               '<failure/><skipped/></testcase></testsuite></testsuites>')


def command_documents() -> dict[str, Any]:
    """A failed ``assay watch`` and a failed ``assay proxy`` document (trimmed from real
    runs): their verdicts live in the ``watch`` / ``proxy`` block, not in ``invariants``."""
    return json.loads((FIXTURES / "command_blocks.json").read_text())


def test_a_failed_watch_is_a_failing_i_reconf_fail_testcase() -> None:
    root = checked(command_documents()["watch"])
    watch = next(s for s in root.iter("testsuite") if s.get("name") == "watch")
    names = [c.get("name", "") for c in watch]
    assert names[0].startswith("I-RECONF-FAIL: a request through the proxy failed")
    assert names[1].startswith("keepalive_kept")
    failure = watch[0].find("failure")
    assert failure is not None and failure.get("type") == "I-RECONF-FAIL"
    assert "failed_requests 10" in failure.get("message", "")
    assert "counted: 10" in (failure.text or "")  # the failure window that counted
    assert watch[1].find("failure") is None  # informational: never fails
    assert root.get("failures") == "1"


def test_failed_proxy_invariants_are_testcases_with_their_bytes() -> None:
    root = checked(command_documents()["proxy"])
    proxy = next(s for s in root.iter("testsuite") if s.get("name") == "proxy")
    by_id = {c.get("name", "").split(":", 1)[0]: c for c in proxy}
    assert set(by_id) == {"I-PROXY-DESYNC", "I-PROXY-REWRITE", "I-PROXY-HOP"}
    desync = by_id["I-PROXY-DESYNC"].find("failure")
    assert desync is not None and "findings 2" in desync.get("message", "")
    assert "case: cl_te" in desync.text and "GET /assay-smuggled/" in desync.text
    assert "rfc: RFC 9112 §6.1" in desync.text
    assert "and 1 more" in desync.text and "\\x00" in desync.text
    assert by_id["I-PROXY-REWRITE"].find("failure") is None
    hop = by_id["I-PROXY-HOP"].find("failure")
    assert hop is not None and hop.get("message", "").endswith("does not fail the run")
    assert "does not fail" not in desync.get("message", "")
    assert root.get("failures") == "2"


def test_a_proxy_run_whose_backends_were_not_read_is_an_error_not_green() -> None:
    document = command_documents()["proxy"]
    block = document["proxy"]
    block.update(findings=[], collected=False, fetch_errors={"33101": "TooSlowError()"})
    for verdict in block["verdicts"]:
        verdict.update(status="passed", findings=0)
    root = checked(document)
    errors = [c.find("error").get("message") for c in root.iter("testcase")
              if c.find("error") is not None]
    assert any("before the backends' records were read" in e for e in errors)
    assert any("backend 33101 could not be asked" in e for e in errors)
    assert root.get("errors") == "2" and root.get("failures") == "0"
    proxy = next(s for s in root.iter("testsuite") if s.get("name") == "proxy")
    skipped = [c.get("name", "").split(":")[0] for c in proxy if c.find("skipped") is not None]
    assert skipped == ["I-PROXY-DESYNC", "I-PROXY-REWRITE", "I-PROXY-HOP"]  # not passes


def test_a_watch_block_written_mid_run_adds_no_testcase() -> None:
    root = checked({"mode": "watch", "status": "interrupted", "exit_code": 130,
                    "watch": {"live": "ok 3 failed 0", "final": False},
                    "proxy": {"final": False}})
    assert not any(s.get("name") in ("watch", "proxy") for s in root.iter("testsuite"))


def test_a_failed_run_with_its_verdict_in_an_unknown_block_is_still_red() -> None:
    """A command whose verdict junit does not read yet: exit 1 must not be all green."""
    root = checked({"mode": "tier9", "status": "failed", "exit_code": 1,
                    "invariants": {"passed": [{"id": "I-LIVENESS", "counter": "coord.x",
                                               "value": 0}]},
                    "tier9": {"ok": False}})
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["run verdict"]
    assert "exit code 1" in failures[0].find("failure").get("message", "")
    passed = checked({"mode": "run", "status": "passed", "exit_code": 0})
    assert passed.get("failures") == "0"
    already = checked(command_documents()["proxy"])  # a failure already shown: no extra one
    assert not any(c.get("name") == "run verdict" for c in already.iter("testcase"))
