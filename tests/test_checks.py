"""Oracles on synthetic transcripts, and the Program extension they rely on (captures and
templates): pure, bytes only, no sockets."""

from __future__ import annotations

import json

import pytest

from protocols.adversarial_cases import BY_NAME as ADV
from protocols.program import (
    Action,
    Bindings,
    Check,
    Program,
    ProgramError,
    ReadUntil,
    Step,
    capture_values,
    render,
)
from protocols.websocket_frames import accept_for
from replay import checks
from replay.executor import StepResult, Transcript


def run(program: Program, **data: tuple[bytes, str]) -> checks.CheckResult:
    """Judge ``program`` as if every step labelled L had received ``data[L]``."""
    results = []
    for index, step in enumerate(program.steps):
        received, ending = data.get(step.label.replace(".", "_").replace(":", "_"),
                                    (b"", "ok"))
        results.append(StepResult(index, step.action.value, received, ending, 0.01))
    return checks.evaluate(program, Transcript(tuple(results), 0.1))


def response(status: int, body: bytes = b"", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


# -- Program: captures and templates ---------------------------------------------------------


def test_capture_and_template_fields_round_trip_and_keep_old_digests():
    plain = Program((Step(Action.SEND, data=b"GET / HTTP/1.1\r\n\r\n"),), Check("probes_fail"))
    assert "capture" not in json.dumps(plain.to_json())  # defaults are omitted: old digests
    step = Step(Action.READ, capture=(("sid", "cookie:session"), ("id", "json:item.id")))
    send = Step(Action.SEND, data=b"GET /items/{id} HTTP/1.1\r\n\r\n", template=True)
    program = Program((send, step), Check("read_after_write"))
    again = Program.from_json(json.loads(json.dumps(program.to_json())))
    assert again == program and again.digest() == program.digest()
    assert again.digest() != Program((send.__class__(Action.SEND, data=send.data), step),
                                     program.check).digest()


@pytest.mark.parametrize("bad", [
    {"action": "read", "capture": [["1x", "cookie:a"]]},
    {"action": "read", "capture": [["x", "body:a"]]},
    {"action": "read", "capture": [["x", "regex:("]]},
    {"action": "read", "capture": "x"},
    {"action": "send", "template": 1},
])
def test_malformed_capture_or_template_is_a_program_error(bad):
    with pytest.raises(ProgramError):
        Step.from_json(bad)


def test_captures_from_a_response():
    received = response(201, b'{"item": {"id": "a1b2"}, "n": 3}',
                        "Set-Cookie: session=s3cr3t; Path=/; HttpOnly\r\nX-Trace: t-9\r\n")
    pairs = (("sid", "cookie:session"), ("id", "json:item.id"), ("n", "json:n"),
             ("trace", "header:x-trace"), ("code", r"regex:HTTP/1.1 (\d+)"),
             ("absent", "cookie:nope"))
    assert capture_values(pairs, received) == {"sid": "s3cr3t", "id": "a1b2", "n": "3",
                                               "trace": "t-9", "code": "201"}


def test_render_replaces_bound_names_only_and_leaves_json_alone():
    data = b'PUT /items/{id} HTTP/1.1\r\nCookie: s={sid}\r\n\r\n{"name": "{unbound}"}'
    out = render(data, {"id": "42", "sid": "abc"})
    assert out == b'PUT /items/42 HTTP/1.1\r\nCookie: s=abc\r\n\r\n{"name": "{unbound}"}'
    bindings = Bindings()
    read = Step(Action.READ, capture=(("id", "json:id"),))
    bindings.incoming(read, response(200, b'{"id": 7}'))
    send = Step(Action.SEND, data=b"GET /x/{id}", template=True)
    assert bindings.outgoing(send) == b"GET /x/7"
    assert bindings.outgoing(Step(Action.SEND, data=b"GET /x/{id}")) == b"GET /x/{id}"


# -- registry --------------------------------------------------------------------------------


def test_unknown_oracle_raises_and_registration_is_guarded():
    program = Program((Step(Action.PROBE),), Check("no-such-oracle"))
    with pytest.raises(checks.UnknownOracle):
        checks.evaluate(program, Transcript((), 0.0))

    @checks.register("test-only-oracle")
    def first(params, transcript):
        return checks.CheckResult(True, "x")

    with pytest.raises(ValueError):
        @checks.register("test-only-oracle")
        def second(params, transcript):
            return checks.CheckResult(False, "y")

    checks.CHECKS.pop("test-only-oracle")


# -- adversarial -----------------------------------------------------------------------------


def _adv_program(case: str, counter: str) -> Program:
    return Program((
        Step(Action.SEND, conn=0, data=ADV[case].build("h", "/"), label="adv.case"),
        Step(Action.READ, conn=0, label="adv.reply"),
        Step(Action.READ, conn=0, until=ReadUntil.CLOSE, label="adv.grace"),
        Step(Action.SEND, conn=0, data=b"GET /?assay-canary=1 HTTP/1.1\r\n\r\n",
             label="adv.canary"),
        Step(Action.READ, conn=0, label="adv.canary_reply"),
    ), Check("adv_case", {"case": case, "counter": counter, "baseline_status": 404}))


def test_adv_accepted_conflicting_content_length():
    program = _adv_program("cl-conflicting", "adv.wrong_accepted")
    accepted = run(program, adv_reply=(response(404), "done"), adv_grace=(b"", "timeout"),
                   adv_canary_reply=(response(404), "done"))
    assert accepted.violated and "accepted" in accepted.detail
    rejected = run(program, adv_reply=(response(400, extra="Connection: close\r\n"), "done"),
                   adv_grace=(b"", "eof"))
    assert not rejected.violated


def test_adv_desync_is_a_surplus_response():
    program = _adv_program("cl-te-smuggle", "adv.desync")
    smuggled = run(program, adv_reply=(response(404) + response(404), "done"),
                   adv_grace=(b"", "timeout"), adv_canary_reply=(response(400), "done"))
    assert smuggled.violated and "hidden" in smuggled.detail
    clean = run(program, adv_reply=(response(400), "done"), adv_grace=(b"", "eof"))
    assert not clean.violated


def test_adv_case_without_the_case_sent_is_not_a_violation():
    program = Program((Step(Action.PROBE, label="probe"),),
                      Check("adv_case", {"case": "cl-conflicting"}))
    assert not run(program).violated
    unknown = Program((Step(Action.PROBE),), Check("adv_case", {"case": "nope"}))
    assert "unknown" in run(unknown).detail


# -- WebSocket -------------------------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (f"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
SWITCHED = (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_for(KEY)}\r\n\r\n").encode()


def _ws_program(case: str, counter: str) -> Program:
    return Program((
        Step(Action.SEND, data=HANDSHAKE, label="ws.request"),
        Step(Action.READ, label="ws.handshake"),
        Step(Action.SEND, data=b"\x81\x00", label="ws.frames"),
        Step(Action.READ, until=ReadUntil.WS_CLOSE, label="ws.answer"),
    ), Check("ws_case", {"case": case, "counter": counter}))


def test_ws_accepted_unmasked_frame_and_hang():
    program = _ws_program("unmasked_text", "ws.accepted_bad_frame")
    echo = b"\x81\x0eassay-unmasked"
    assert run(program, ws_handshake=(SWITCHED, "done"), ws_answer=(echo, "timeout")).violated
    close_1002 = b"\x88\x02\x03\xea"
    assert not run(program, ws_handshake=(SWITCHED, "done"),
                   ws_answer=(close_1002, "done")).violated
    hang = _ws_program("reserved_opcode_5", "ws.hang_no_close")
    assert run(hang, ws_handshake=(SWITCHED, "done"), ws_answer=(b"", "timeout")).violated
    refused = run(hang, ws_handshake=(response(404), "done"), ws_answer=(b"", "eof"))
    assert not refused.violated and "handshake" in refused.detail


# -- h2c, liveness, SSE ----------------------------------------------------------------------


def _probes(oracle: str, params: dict) -> Program:
    return Program((Step(Action.PROBE, label="probe"), Step(Action.SLEEP, label="hold"),
                    Step(Action.PROBE, label="probe")), Check(oracle, params))


def test_probe_oracles_down_and_hung():
    down = _probes("h2c_crashed", {})
    assert run(down, probe=(b"", "reset")).violated
    assert not run(down, probe=(response(404), "done")).violated
    hung = _probes("probes_fail", {"how": "hung"})
    assert run(hung, probe=(b"", "timeout")).violated
    refused = run(hung, probe=(b"", "reset"))
    assert not refused.violated and "none timed out" in refused.detail
    assert not run(Program((Step(Action.SLEEP),), Check("probes_fail"))).violated


def test_h2c_garbage_answer():
    program = Program((Step(Action.SEND, data=b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
                       Step(Action.READ, label="h2c.answer"), Step(Action.PROBE, label="probe")),
                      Check("h2c_crashed", {"garbage": True, "preface": False}))
    assert run(program, h2c_answer=(b"\x00\x01garbage\r\n\r\n", "eof"),
               probe=(response(200), "done")).violated


def test_sse_leak_by_count_and_by_refusal():
    count = Program((Step(Action.PROBE, label="sse.stats_before"),
                     Step(Action.PROBE, label="sse.stats_after")),
                    Check("sse_leak", {"mode": "count", "field": "sse_subscribers"}))
    before = response(200, b'{"sse_subscribers": 2}')
    after = response(200, b'{"sse_subscribers": 3}')
    assert run(count, sse_stats_before=(before, "done"), sse_stats_after=(after, "done")).violated
    assert not run(count, sse_stats_before=(after, "done"),
                   sse_stats_after=(after, "done")).violated
    assert checks.stats_count(b'# HELP x\nsse_subscribers{a="1"} 2\nsse_subscribers{a="2"} 3\n',
                              "sse_subscribers") == 5
    refused = Program((Step(Action.SEND, data=b"GET /events HTTP/1.1\r\n\r\n"),
                       Step(Action.READ, label="sse.check")),
                      Check("sse_leak", {"mode": "refused"}))
    assert run(refused, sse_check=(response(503), "timeout")).violated
    assert not run(refused, sse_check=(response(429), "timeout")).violated
    stream = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: hi\n\n"
    assert not run(refused, sse_check=(stream, "timeout")).violated


# -- read after write ------------------------------------------------------------------------


def _raw(method: str, path: str, role: str, key: str, body: bytes = b"") -> Step:
    head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return Step(Action.SEND, data=head + body, label=f"raw:{role}:{key}")


def test_read_after_write_mismatch_and_delete():
    write = _raw("PUT", "/items/1", "write", "/items/{id}", b'{"name": "new", "n": 1}')
    read = _raw("GET", "/items/1", "read", "/items/{id}")
    program = Program((write, Step(Action.READ, label="w"), read, Step(Action.READ, label="r")),
                      Check("read_after_write"))
    wrote = (response(200), "done")
    ok = run(program, w=wrote, r=(response(200, b'{"name":"new","n":1}'), "done"))
    assert not ok.violated and "1 read-after-write" in ok.detail
    lost = run(program, w=wrote, r=(response(200, b'{"name":"old","n":1}'), "done"))
    assert lost.violated and "name" in lost.detail
    gone = run(program, w=(response(200), "done"), r=(response(404), "done"))
    assert gone.violated
    failed_write = run(program, w=(response(500), "done"), r=(response(200, b"{}"), "done"))
    assert not failed_write.violated
    delete = _raw("DELETE", "/items/1", "delete", "/items/{id}")
    deleted = Program((write, Step(Action.READ, label="w"), delete, Step(Action.READ, label="d"),
                       read, Step(Action.READ, label="r")), Check("read_after_write"))
    assert not run(deleted, w=(response(200), "done"), d=(response(204), "done"),
                   r=(response(404), "done")).violated


def test_same_json_is_subset_equality():
    assert checks.same_json({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}], "d": 0})
    assert not checks.same_json({"a": 1}, {"a": True})
    assert not checks.same_json({"a": [1, 2]}, {"a": [1]})
    assert checks.same_json(1, 1.0) and not checks.same_json("1", 1)
