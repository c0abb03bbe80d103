"""Trailer fields merged into the header section (RFC 9112 §7.1.2), seen through an echo.

Unit tests of ``protocols.trailer_merge.judge_merge`` on the echo shapes real frameworks
produce, of the oracle's use of it, and the integration claim: refapp with the
``merge-trailers`` defect is caught on every ``trailer-merge-*`` case, refapp without it
passes them with the merge observed apart, and nginx (no echo route) passes them unobserved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from protocols.adversarial_cases import BY_NAME
from protocols.adversarial_oracle import judge_case, observe
from protocols.cases_chunked import MERGE
from protocols.outcome import Verdict
from protocols.trailer_merge import MAX_BODY, MAX_DEPTH, Merge, judge_merge
from protocols.wire_problems import UNOBSERVABLE_MERGE
from refapp.launch import start_refapp
from tests.conformance_sweep import SETTINGS, sweep
from tests.servers import nginx

#: The walker's settings with refapp's echo route as the body route (``--body-path /echo``).
ECHO = {**SETTINGS, "adv_body_paths": ["/echo"]}
HEADER = (b"X-Assay-Echo", b"hdr-x")
TRAILER = (b"Host", b"assay-trailer.invalid")


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize("doc", [
    {"headers": [["x-assay-echo", "hdr-x"], ["host", "a"], ["host", "assay-trailer.invalid"]]},
    {"headers": {"X-Assay-Echo": "hdr-x", "Host": "a, assay-trailer.invalid"}},
    {"headers": {"X-Assay-Echo": ["hdr-x"], "Host": ["a", "assay-trailer.invalid"]}},
    {"environ": {"HTTP_X_ASSAY_ECHO": "hdr-x", "HTTP_HOST": "assay-trailer.invalid"}},
    [{"name": "x-assay-echo", "value": "hdr-x"},
     {"name": "Host", "value": "assay-trailer.invalid"}],
    {"raw": ["X-Assay-Echo: hdr-x", "Host: assay-trailer.invalid"]},
])
def test_merged_in_every_echo_shape(doc: object) -> None:
    assert judge_merge(body(doc), HEADER, TRAILER) is Merge.MERGED


@pytest.mark.parametrize("doc", [
    {"headers": [["x-assay-echo", "hdr-x"], ["host", "127.0.0.1"]]},
    {"headers": {"X-Assay-Echo": "hdr-x"}, "trailers": {"Host": "assay-trailer.invalid"}},
    # the value elsewhere (the echoed body) is not a reflected field
    {"headers": {"X-Assay-Echo": "hdr-x"}, "body": "Host: assay-trailer.invalid"},
    # the right value under another name is not the field
    {"headers": {"X-Assay-Echo": "hdr-x", "X-Forwarded-Host": "assay-trailer.invalid"}},
])
def test_kept_apart(doc: object) -> None:
    assert judge_merge(body(doc), HEADER, TRAILER) is Merge.APART


@pytest.mark.parametrize("raw", [
    b"", b"<html>hello</html>", b"{not json", b"\xff\xfe{}", b'{"a": 1}',
    body({"headers": {"Host": "assay-trailer.invalid"}}),  # no header marker: nothing seen
    b"[" * 100_000 + b"]" * 100_000,  # recursion: refused, not raised
    b"[" + b" " * MAX_BODY + b"]",  # too long to parse
])
def test_unobservable(raw: bytes) -> None:
    assert judge_merge(raw, HEADER, TRAILER) is Merge.UNOBSERVABLE


def test_deep_marker_is_not_searched_forever() -> None:
    doc: object = {"X-Assay-Echo": "hdr-x"}
    for _ in range(MAX_DEPTH + 5):
        doc = [doc]
    assert judge_merge(body(doc), HEADER, TRAILER) is Merge.UNOBSERVABLE


def _response(doc: object) -> bytes:
    payload = body(doc)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode() + b"\r\n\r\n" + payload)


BASELINE = observe(_response({"ok": True}), "open")


def test_oracle_turns_a_merge_into_a_must_violation() -> None:
    case = BY_NAME["trailer-merge-host"]
    header, trailer = case.forbid_merge or ((b"", b""), (b"", b""))
    merged = _response({"headers": [[header[0].decode(), header[1].decode()],
                                    [trailer[0].decode(), trailer[1].decode()]]})
    verdict = judge_case(case, observe(merged, "open"), BASELINE)
    assert verdict.verdict is Verdict.VIOLATION
    assert "adv.trailer_merged" in verdict.counters


def test_oracle_passes_an_unobservable_merge_and_says_so() -> None:
    case = BY_NAME["trailer-merge-host"]
    verdict = judge_case(case, observe(_response({"ok": True}), "open"), BASELINE)
    assert verdict.verdict is Verdict.PASS
    assert UNOBSERVABLE_MERGE in verdict.counters


def test_oracle_passes_a_refusal_whatever_its_body() -> None:
    case = BY_NAME["trailer-merge-content-length"]
    refusal = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    assert judge_case(case, observe(refusal, "closed"), BASELINE).verdict is Verdict.PASS


@pytest.mark.integration
def test_merge_trailers_defect_is_caught_and_refapp_is_not() -> None:
    names = {case.name for case in MERGE}
    # h11 refuses a trailer Transfer-Encoding other than chunked (501) before the app sees
    # it: a refusal, correct under §7.1.2, so the defect can show on the other three only.
    refused = "trailer-merge-transfer-encoding"
    with start_refapp(defects=["merge-trailers"], stderr=subprocess.DEVNULL) as app:
        bad = sweep(app.url, MERGE, ECHO, concurrency=4)
    assert set(bad.with_verdict("violation")) == names - {refused}
    assert bad.verdicts[refused] == "pass"
    assert bad.tally.counters["adv.trailer_merged"] == len(MERGE) - 1
    with start_refapp(stderr=subprocess.DEVNULL) as app:
        good = sweep(app.url, MERGE, ECHO, concurrency=4)
    assert set(good.with_verdict("pass")) == names
    assert not good.tally.counters.get(UNOBSERVABLE_MERGE)  # refapp echoes: merge seen apart


@pytest.mark.integration
def test_nginx_passes_merge_cases_unobserved(tmp_path: Path) -> None:
    with nginx(tmp_path) as (url, _proc):
        result = sweep(url, MERGE, concurrency=4)
    assert result.with_verdict("violation") == []
