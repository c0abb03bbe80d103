"""protocols.markov: one walker's session driven against an in-memory API, bytes only.

The fake API answers each PlannedRequest with raw response bytes that go through the real
ResponseParser, so these tests exercise the same path an actor does, minus the socket.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from protocols.errors import HarnessError
from protocols.http1 import Response, ResponseParser
from protocols.markov import LOGIN_STATE, RETRY_AFTER_MAX_S, MarkovSession, PlannedRequest
from protocols.markov_loader import load_model
from protocols.markov_model import MarkovModel
from protocols.openapi import load_spec
from protocols.tally import Tally

MODEL = """\
version: 1
start: list_items
login:
  request: POST /login
  body: {username: walker, password: secret}
states:
  list_items:
    request: GET /items
    expect: [200]
    next: {create_item: 3, list_items: 1, read_item: 2}
  create_item:
    request: POST /items
    expect: [201]
    capture: {item_id: id}
    write: item
    next: {read_item: 2, update_item: 1}
  update_item:
    request: PUT /items/{item_id}
    expect: [200]
    write: item
    next: {read_item: 1}
  read_item:
    request: GET /items/{item_id}
    expect: [200]
    read: item
    next: {list_items: 1, delete_item: 1}
  delete_item:
    request: DELETE /items/{item_id}
    expect: [204]
    forget: [item_id]
    next: {list_items: 1}
"""

SPEC = """\
openapi: 3.0.3
info: {title: t, version: "1"}
components:
  schemas:
    ItemInput:
      type: object
      required: [name, quantity]
      properties:
        name: {type: string, minLength: 1, maxLength: 8}
        quantity: {type: integer, minimum: 0, maximum: 100}
        secret: {type: string, writeOnly: true}
paths:
  /login:
    post: {responses: {"200": {description: ok}}}
  /items:
    get: {responses: {"200": {description: ok}}}
    post:
      requestBody:
        content: {application/json: {schema: {$ref: "#/components/schemas/ItemInput"}}}
      responses: {"201": {description: ok}}
  /items/{id}:
    get: {responses: {"200": {description: ok}}}
    put:
      requestBody:
        content: {application/json: {schema: {$ref: "#/components/schemas/ItemInput"}}}
      responses: {"200": {description: ok}}
    delete: {responses: {"204": {description: ok}}}
"""


def raw_response(status: int, body: object = None, headers: tuple[str, ...] = ()) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X", *headers]
    if status != 204:
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def parse_one(data: bytes, method: str = "GET") -> Response:
    parser = ResponseParser()
    parser.expect(method)
    parser.feed(data)
    response = parser.next_response()
    assert response is not None
    return response


class FakeApi:
    """In-memory /login + /items, optionally with a defect."""

    def __init__(self, *, stale_reads: bool = False, lose_items: bool = False) -> None:
        self.items: dict[str, dict] = {}
        self.history: dict[str, list[dict]] = {}
        self.sessions: set[str] = set()
        self.next_id = 1
        self.logins = 0
        self.stale_reads = stale_reads
        self.lose_items = lose_items

    def __call__(self, planned: PlannedRequest) -> Response:
        return parse_one(self.answer(planned), planned.method)

    def answer(self, planned: PlannedRequest) -> bytes:
        headers = dict(planned.headers)
        cookies = dict(part.split("=", 1) for part in headers.get("Cookie", "").split("; ") if part)
        path = planned.target
        if path == "/login":
            self.logins += 1
            token = f"s{self.logins}"
            self.sessions.add(token)
            return raw_response(200, {"user": "walker"}, (f"Set-Cookie: session={token}; Path=/",))
        if cookies.get("session") not in self.sessions:
            return raw_response(401, {"error": "login"})
        body = json.loads(planned.body) if planned.body else None
        if path == "/items":
            if planned.method == "GET":
                return raw_response(200, {"items": list(self.items.values())})
            item_id = str(self.next_id)
            self.next_id += 1
            stored = {k: v for k, v in body.items() if k != "secret"}
            self.items[item_id] = {"id": item_id, **stored}
            self.history[item_id] = [dict(self.items[item_id])]
            return raw_response(201, self.items[item_id])
        item_id = path.rsplit("/", 1)[1]
        if item_id not in self.items:
            return raw_response(404, {"error": "no such item"})
        if planned.method == "GET":
            if self.lose_items:
                return raw_response(404, {"error": "no such item"})
            if self.stale_reads and len(self.history[item_id]) > 1:
                return raw_response(200, self.history[item_id][-2])
            return raw_response(200, self.items[item_id])
        if planned.method == "PUT":
            stored = {k: v for k, v in body.items() if k != "secret"}
            self.items[item_id] = {"id": item_id, **stored}
            self.history[item_id].append(dict(self.items[item_id]))
            return raw_response(200, self.items[item_id])
        del self.items[item_id]
        return raw_response(204)


def make_session(seed: int = 1, *, spec: bool = True, model: str = MODEL) -> MarkovSession:
    return MarkovSession(
        load_model(model, "m.yaml"),
        load_spec(SPEC, "s.yaml") if spec else None,
        random.Random(seed),
        host="127.0.0.1:8080",
    )


def walk(session: MarkovSession, api: FakeApi, tally: Tally, steps: int) -> list[bytes]:
    wires = []
    for _ in range(steps):
        planned = session.next_request()
        wires.append(planned.wire)
        session.on_response(planned, api(planned), tally)
    return wires


def test_login_first_then_cookie_on_every_request():
    session, tally = make_session(), Tally()
    planned = session.next_request()
    assert planned.is_login and planned.state == LOGIN_STATE
    assert planned.wire.startswith(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert planned.body == b'{"username":"walker","password":"secret"}'
    assert ("Content-Type", "application/json") in planned.headers
    api = FakeApi()
    session.on_response(planned, api(planned), tally)
    assert session.cookies == {"session": "s1"}
    planned = session.next_request()
    assert planned.state == "list_items" and not planned.is_login
    assert planned.wire == (
        b"GET /items HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nCookie: session=s1\r\n\r\n"
    )


def test_walk_is_deterministic_for_a_seed():
    first = walk(make_session(7), FakeApi(), Tally(), 300)
    again = walk(make_session(7), FakeApi(), Tally(), 300)
    other = walk(make_session(8), FakeApi(), Tally(), 300)
    assert first == again
    assert first != other


def test_correct_server_has_checks_and_no_mismatch():
    tally = Tally()
    session = make_session(3)
    walk(session, FakeApi(), tally, 2000)
    counters = tally.counters
    assert counters["markov.requests"] == 2000
    assert counters["markov.read_after_write_checks"] > 100
    assert counters.get("markov.read_after_write_mismatch", 0) == 0
    assert counters.get("markov.unexpected_status", 0) == 0
    assert counters["markov.status_2xx"] == 2000


def test_every_state_is_visited_and_bodies_follow_the_schema():
    session, api, tally = make_session(5), FakeApi(), Tally()
    seen: Counter[str] = Counter()
    for _ in range(500):
        planned = session.next_request()
        seen[planned.state] += 1
        if planned.method in ("POST", "PUT") and not planned.is_login:
            body = json.loads(planned.body)
            assert 1 <= len(body["name"]) <= 8 and 0 <= body["quantity"] <= 100
            assert ("Content-Type", "application/json") in planned.headers
            seen["with_secret"] += "secret" in body
        session.on_response(planned, api(planned), tally)
    # the writeOnly "secret" is sent but never echoed back, and that is no mismatch
    assert seen.pop("with_secret") > 0
    assert tally.counters.get("markov.read_after_write_mismatch", 0) == 0
    assert set(seen) == {
        LOGIN_STATE,
        "list_items",
        "create_item",
        "update_item",
        "read_item",
        "delete_item",
    }


def test_stale_read_is_a_read_after_write_mismatch():
    tally = Tally()
    walk(make_session(3), FakeApi(stale_reads=True), tally, 1000)
    assert tally.counters["markov.read_after_write_mismatch"] > 0
    example = tally.examples["markov.read_after_write_mismatch"]
    assert example["invariant"] == "I-DRV-1"
    assert example["state"] == "read_item"
    assert example["target"].startswith("/items/")
    assert example["mismatched_fields"]
    expected = json.loads(example["expected"])
    actual = json.loads(example["actual_body"])
    assert any(expected[f] != actual.get(f) for f in example["mismatched_fields"])
    assert "secret" not in expected  # writeOnly fields are never checked


def test_vanished_item_is_a_mismatch():
    tally = Tally()
    walk(make_session(3), FakeApi(lose_items=True), tally, 300)
    assert tally.counters["markov.read_after_write_mismatch"] > 0
    assert tally.examples["markov.read_after_write_mismatch"]["status"] == 404


def _logged_in(seed: int = 1) -> tuple[MarkovSession, FakeApi, Tally]:
    session, api, tally = make_session(seed), FakeApi(), Tally()
    planned = session.next_request()
    session.on_response(planned, api(planned), tally)
    return session, api, tally


def _goto(session: MarkovSession, api: FakeApi, tally: Tally, state: str) -> PlannedRequest:
    for _ in range(500):
        planned = session.next_request()
        if planned.state == state:
            return planned
        session.on_response(planned, api(planned), tally)
    raise AssertionError(f"never reached {state}")


def test_failed_write_is_not_checked_afterwards():
    session, api, tally = _logged_in()
    planned = _goto(session, api, tally, "update_item")
    item_id = planned.target.rsplit("/", 1)[1]
    assert session.records  # the create was recorded
    session.on_response(planned, parse_one(raw_response(500, {"error": "x"}), "PUT"), tally)
    assert ("item", (item_id,)) not in session.records
    api.items[item_id]["name"] = "changed-behind-our-back"
    walk(session, api, tally, 50)
    assert tally.counters.get("markov.read_after_write_mismatch", 0) == 0
    assert tally.counters["markov.unexpected_status"] == 1
    assert tally.examples["markov.unexpected_status"]["status"] == 500
    assert tally.examples["markov.unexpected_status"]["expected"] == ["200"]


def test_relogin_after_401():
    session, api, tally = _logged_in()
    planned = _goto(session, api, tally, "read_item")
    session.on_response(planned, api(planned), tally)
    assert session.bindings
    api.sessions.clear()  # the server forgets every session
    planned = session.next_request()
    session.on_response(planned, api(planned), tally)
    assert tally.counters["markov.relogin"] == 1
    assert tally.counters.get("markov.unexpected_status", 0) == 0
    assert session.bindings == {} and session.records == {}
    planned = session.next_request()
    assert planned.is_login
    session.on_response(planned, api(planned), tally)
    assert session.cookies == {"session": "s2"}
    assert session.next_request().state == "list_items"


def test_failed_login_is_counted_and_retried():
    session, tally = make_session(), Tally()
    planned = session.next_request()
    session.on_response(planned, parse_one(raw_response(403, {"e": 1}), "POST"), tally)
    assert tally.counters["markov.login_failed"] == 1
    assert tally.counters["markov.unexpected_status"] == 1
    assert session.next_request().is_login


def test_capture_missing_unbinds_and_skips_dependent_states():
    session, api, tally = _logged_in()
    planned = _goto(session, api, tally, "create_item")
    session.on_response(planned, parse_one(raw_response(201, {"no_id": 1}), "POST"), tally)
    assert tally.counters["markov.capture_missing"] == 1
    assert "item_id" not in session.bindings
    assert session.state == "list_items"  # read/update need {item_id}: back to start
    assert session.records == {}


def test_rate_limit_waits_and_repeats_the_state():
    session, api, tally = _logged_in()
    planned = session.next_request()
    for header, expected in [
        ("Retry-After: 1", 1.0),
        ("Retry-After: 120", RETRY_AFTER_MAX_S),
        ("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT", 0.1),
    ]:
        session.on_response(planned, parse_one(raw_response(429, {"e": 1}, (header,))), tally)
        assert session.retry_after_s == expected
        again = session.next_request()
        assert again.state == planned.state and again.wire == planned.wire
        planned = again
    assert tally.counters["markov.rate_limited"] == 3
    assert "markov.unexpected_status" not in tally.counters
    session.on_response(planned, api(planned), tally)
    assert session.retry_after_s == 0.0


def test_transport_error_counts_and_returns_to_start():
    session, api, tally = _logged_in()
    planned = _goto(session, api, tally, "read_item")
    session.on_transport_error(planned, "reset", tally)
    assert tally.counters["markov.errors"] == 1
    assert tally.counters["markov.error.reset"] == 1
    assert session.state == "list_items"
    planned = session.next_request()
    with pytest.raises(HarnessError):
        session.on_transport_error(planned, "gremlins", tally)


def test_outcomes_must_match_the_outstanding_request():
    session, api, tally = _logged_in()
    planned = session.next_request()
    with pytest.raises(HarnessError):
        session.next_request()
    session.on_response(planned, api(planned), tally)
    with pytest.raises(HarnessError):
        session.on_response(planned, api(planned), tally)


def test_cookie_jar():
    session, tally = make_session(spec=False), Tally()
    date = "Date: Sat, 22 Nov 2025 03:00:00 GMT"
    steps = [
        (("Set-Cookie: a=1; Path=/; HttpOnly", "Set-Cookie: b=2"), {"a": "1", "b": "2"}),
        (("Set-Cookie: a=3",), {"a": "3", "b": "2"}),
        (("Set-Cookie: b=; Max-Age=0",), {"a": "3"}),
        # Max-Age wins over Expires (RFC 6265 §5.3 step 3)
        (
            ("Set-Cookie: c=4; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",),
            {"a": "3", "c": "4"},
        ),
        # Expires before the response's own Date: deleted
        ((date, "Set-Cookie: c=5; Expires=Fri, 21 Nov 2025 00:00:00 GMT"), {"a": "3"}),
        ((date, "Set-Cookie: d=6; Expires=Sun, 23 Nov 2025 00:00:00 GMT"), {"a": "3", "d": "6"}),
        (("Set-Cookie: c=7; Expires=Thu, 01 Jan 1970 00:00:00 GMT",), {"a": "3", "d": "6"}),
        # malformed or non-ASCII cookies are ignored
        (
            ("Set-Cookie: bad name=1", "Set-Cookie: noequals", "Set-Cookie: e=caf\xe9"),
            {"a": "3", "d": "6"},
        ),
    ]
    for headers, jar in steps:
        planned = session.next_request()
        data = raw_response(200, {}, headers).decode("utf-8").encode("latin-1")
        session.on_response(planned, parse_one(data), tally)
        assert dict(session.cookies) == jar, headers
    assert ("Cookie", "a=3; d=6") in session.next_request().headers


def test_unbound_edges_are_skipped_and_dead_ends_go_to_start():
    model = (
        "version: 1\nstart: a\nstates:\n"
        "  a:\n    request: POST /i\n    capture: {id: id}\n    next: {b: 1}\n"
        "  b:\n    request: GET /i/{id}\n    next: {b: 5, c: 1}\n"
        "  c:\n    request: DELETE /i/{id}\n    forget: [id]\n    next: {b: 1}\n"
    )
    session, tally = make_session(spec=False, model=model), Tally()
    states = []
    for _ in range(200):
        planned = session.next_request()
        states.append(planned.state)
        if planned.state == "a":
            response = raw_response(201, {"id": "x/y 1"})
        else:
            response = raw_response(204 if planned.state == "c" else 200, {})
        session.on_response(planned, parse_one(response, planned.method), tally)
        if planned.state == "b":
            assert planned.target == "/i/x%2Fy%201"  # captured values are path-safe
    # after c forgets {id}, b is impossible: the walker must restart at a
    for prev, nxt in itertools.pairwise(states):
        if prev == "c":
            assert nxt == "a"
    assert {"a", "b", "c"} <= set(states)


def test_base_path_and_latency_and_status_classes():
    model = "version: 1\nstart: a\nstates:\n  a: {request: GET /x, expect: [2xx]}\n"
    session = MarkovSession(
        load_model(model, "m.yaml"), None, random.Random(1), host="h", base_path="/api/"
    )
    tally = Tally()
    for status in (200, 302, 404, 503):
        planned = session.next_request()
        assert planned.target == "/api/x"
        session.on_response(planned, parse_one(raw_response(status, {})), tally, latency_us=1500)
    for name in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
        assert tally.counters[f"markov.{name}"] == 1
    assert tally.counters["markov.unexpected_status"] == 3
    histograms = tally.histograms()
    assert histograms["markov.latency"].get_total_count() == 4
    assert histograms["markov.latency.a"].get_total_count() == 4
    with pytest.raises(HarnessError):
        MarkovSession(load_model(model, "m.yaml"), None, random.Random(1), "h", "/a b")


def test_session_speed_report():
    """Requests planned + responses accounted per second (GET loop); run with -s to see."""
    model: MarkovModel = load_model(
        "version: 1\nstart: a\nstates:\n  a: {request: GET /a, next: {a: 1, b: 1}}\n"
        "  b: {request: GET /b, next: {a: 1}}\n",
        "m.yaml",
    )
    session, tally = MarkovSession(model, None, random.Random(1), "h"), Tally()
    response = parse_one(raw_response(200, {"ok": True}, ("Set-Cookie: s=1",)))
    count = 20_000
    started = time.perf_counter()
    for _ in range(count):
        planned = session.next_request()
        session.on_response(planned, response, tally, 100.0)
    elapsed = time.perf_counter() - started
    assert tally.counters["markov.requests"] == count
    print(f"\nmarkov session: {count / elapsed:,.0f} steps/s ({elapsed / count * 1e6:.1f} us each)")


def test_refapp_model_walks_a_conforming_api_cleanly():
    root = Path(__file__).resolve().parent.parent / "refapp"
    if not ((root / "markov.yaml").exists() and (root / "openapi.yaml").exists()):
        pytest.skip("refapp/markov.yaml or refapp/openapi.yaml not written yet")
    model = load_model((root / "markov.yaml").read_text(), "refapp/markov.yaml")
    spec = load_spec((root / "openapi.yaml").read_text(), "refapp/openapi.yaml")
    session, api, tally = MarkovSession(model, spec, random.Random(2), "h"), FakeApi(), Tally()
    walk(session, api, tally, 1000)
    assert tally.counters.get("markov.unexpected_status", 0) == 0, tally.examples
    assert tally.counters.get("markov.read_after_write_mismatch", 0) == 0
    assert tally.counters["markov.read_after_write_checks"] > 50
