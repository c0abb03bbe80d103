"""The adversarial oracle on canned server bytes: classification, routing trap, desync, fuzz."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.adversarial_cases import BY_NAME, CASES
from protocols.adversarial_oracle import (
    Observation,
    assess,
    detect_desync,
    judge_case,
    observe,
    read_enough,
)
from protocols.outcome import Reaction, Verdict

R = Reaction
ENDINGS = ("eof", "reset", "timeout", "cap", "done")


def response(status: int, body: bytes = b"", *extra: str) -> bytes:
    fields = "".join(f"{line}\r\n" for line in extra)
    return (f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{fields}\r\n").encode() + body


BAD = response(400, b"bad", "Connection: close")
OK = response(200, b"ok")
NOT_FOUND = response(404, b"nope")


def obs(data: bytes, ending: str = "timeout") -> Observation:
    return observe(data, ending)


def base(status: int, closed: bool = False) -> Observation:
    reaction = R.ACCEPTED if status < 400 else R.REJECTED_KEPT_ALIVE
    return Observation(reaction=reaction, statuses=(status,), closed=closed)


# -- observe -------------------------------------------------------------------------------

CLASSIFY = [
    (BAD, "eof", R.REJECTED_CLOSED, (400,)),
    (BAD, "reset", R.REJECTED_CLOSED, (400,)),
    (BAD, "timeout", R.REJECTED_CLOSED, (400,)),  # announced close counts as closed
    (response(400), "timeout", R.REJECTED_KEPT_ALIVE, (400,)),
    (response(400), "eof", R.REJECTED_CLOSED, (400,)),
    (response(431, b"", "Connection: close"), "eof", R.REJECTED_CLOSED, (431,)),
    (b"", "eof", R.SILENT_CLOSE, ()),
    (b"", "reset", R.RESET, ()),
    (b"", "timeout", R.HANG, ()),
    (OK, "timeout", R.ACCEPTED, (200,)),
    (OK, "eof", R.ACCEPTED, (200,)),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00", "timeout",
     R.ACCEPTED, (101,)),
    (response(500, b"oops"), "eof", R.SERVER_ERROR, (500,)),
    (response(501), "eof", R.SERVER_ERROR, (501,)),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + response(400), "eof", R.REJECTED_CLOSED, (400,)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "timeout",
     R.ACCEPTED, (200,)),
    (b"HTTP/1.0 200 OK\r\n\r\nclose-delimited body", "eof", R.ACCEPTED, (200,)),
    (b"SSH-2.0-OpenSSH_9.0\r\n", "timeout", R.GARBAGE, ()),
    (b"\x00\x00\x12\x04\x00\x00\x00\x00\x00", "eof", R.GARBAGE, ()),
    (b"<html>HTTP/0.9 body</html>", "eof", R.GARBAGE, ()),
    (b"HTTP/1.1 2", "timeout", R.HANG, ()),  # a start, then silence
    (b"HTTP/1.1 2", "eof", R.GARBAGE, ()),  # truncated head
    (OK + NOT_FOUND, "timeout", R.ACCEPTED, (200, 404)),
    (response(400) + response(400), "eof", R.REJECTED_KEPT_ALIVE, (400, 400)),
]


@pytest.mark.parametrize(("data", "ending", "reaction", "statuses"), CLASSIFY)
def test_observe_whole(data: bytes, ending: str, reaction: Reaction, statuses: tuple) -> None:
    seen = observe(data, ending)
    assert seen.reaction is reaction
    assert seen.statuses == statuses
    assert seen.received == len(data)


CHUNKED_OK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
CONTINUE_400 = b"HTTP/1.1 100 Continue\r\n\r\n" + response(400)
#: (bytes, length of the shortest prefix after which the walker may stop reading)
BYTEWISE = [
    (BAD, len(BAD)),
    (OK + NOT_FOUND, len(OK)),
    (CONTINUE_400, len(CONTINUE_400)),
    (CHUNKED_OK, len(CHUNKED_OK)),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x16\x03", 36),
    (b"SSH-2.0-OpenSSH_9.0\r\n", 1),  # garbage is recognised at once
    (b"\x00\x00\x12\x04\x00", 1),
    (b"HTTP/1.1 2", None),  # a plausible start: keep waiting
    (b"HTTP/1.0 200 OK\r\n\r\nclose-delimited", None),  # complete only at EOF
]


@pytest.mark.parametrize(("data", "stop_at"), BYTEWISE)
def test_read_enough_byte_by_byte(data: bytes, stop_at: int | None) -> None:
    """The walker's stop predicate turns true exactly when the answer is in, and stays true."""
    flips = [i for i in range(len(data) + 1) if read_enough(data[:i])]
    if stop_at is None:
        assert flips == []
    else:
        assert flips == list(range(stop_at, len(data) + 1))


def test_read_enough_counts_responses() -> None:
    assert read_enough(OK + NOT_FOUND, responses=2)
    assert not read_enough(OK + NOT_FOUND[:-1], responses=2)


@pytest.mark.parametrize(("data", "ending", "reaction", "statuses"), CLASSIFY)
def test_observe_with_trailing_data(
    data: bytes, ending: str, reaction: Reaction, statuses: tuple
) -> None:
    """Junk after complete responses changes nothing about the first one."""
    if not statuses or data.startswith(b"HTTP/1.0") or b"101" in data:
        return
    seen = observe(data + b"\x00garbage after\r\n\r\n", ending)
    assert seen.statuses[: len(statuses)] == statuses
    assert seen.status == statuses[0]


def test_partial_response_keeps_its_status() -> None:
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nonly a bit"
    assert observe(head, "timeout").partial_status == 403
    assert observe(head, "timeout").reaction is R.REJECTED_KEPT_ALIVE
    assert observe(head, "eof").reaction is R.REJECTED_CLOSED
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"
    assert observe(huge, "timeout").status == 200


# -- judge_case: the routing trap and friends --------------------------------------------


def test_404_like_the_baseline_is_acceptance() -> None:
    case = BY_NAME["ws-before-colon"]  # MUST reject, HIGH
    verdict = judge_case(case, obs(NOT_FOUND), base(404))
    assert verdict.reaction is R.ACCEPTED
    assert verdict.verdict is Verdict.VIOLATION
    assert verdict.high == ("adv.wrong_accepted",)
    assert "adv.case.ws-before-colon.violation" in verdict.counters


def test_a_4xx_different_from_the_baseline_is_rejection() -> None:
    case = BY_NAME["ws-before-colon"]
    verdict = judge_case(case, obs(NOT_FOUND), base(200))
    assert verdict.reaction is R.REJECTED_KEPT_ALIVE and verdict.verdict is Verdict.PASS
    assert "adv.status_mismatch" in verdict.counters  # the RFC asks for a 400
    verdict = judge_case(case, obs(BAD), base(404))
    assert verdict.verdict is Verdict.PASS
    assert verdict.counters == ("adv.case.ws-before-colon.pass",)


def test_ambiguous_statuses_are_unjudged() -> None:
    case = BY_NAME["ws-before-colon"]
    same_400 = judge_case(case, obs(response(400)), base(400))
    assert same_400.verdict is Verdict.UNJUDGED
    assert "adv.unjudged.baseline_same_rejection" in same_400.counters
    no_baseline = judge_case(case, obs(NOT_FOUND), None)
    assert no_baseline.verdict is Verdict.UNJUDGED and "adv.unjudged" in no_baseline.counters
    rate_limited = judge_case(case, obs(response(429)), base(200))
    assert rate_limited.verdict is Verdict.UNJUDGED
    assert "adv.unjudged.rate_limited" in rate_limited.counters
    assert judge_case(case, obs(BAD), None).verdict is Verdict.PASS  # 400 needs no baseline


def test_refusal_statuses_named_by_the_case() -> None:
    assert judge_case(BY_NAME["te-gzip-only"], obs(response(501), "eof"),
                      base(200)).verdict is Verdict.PASS
    wrong = judge_case(BY_NAME["ws-before-colon"], obs(response(501), "eof"), base(200))
    assert wrong.verdict is Verdict.VIOLATION and wrong.high == ()
    assert {"adv.must_violation", "adv.server_error"} <= set(wrong.counters)
    assert judge_case(BY_NAME["version-invalid"], obs(response(505), "eof"),
                      base(200)).verdict is Verdict.PASS


def test_must_violation_of_lower_severity_is_not_high() -> None:
    verdict = judge_case(BY_NAME["host-missing"], obs(OK), base(200))
    assert verdict.verdict is Verdict.VIOLATION and verdict.high == ()
    assert "adv.must_violation" in verdict.counters


def test_should_deviation_is_lenient() -> None:
    verdict = judge_case(BY_NAME["target-fragment"], obs(OK), base(200))
    assert verdict.verdict is Verdict.LENIENT and "adv.lenient" in verdict.counters
    # ...and a refusal where the RFC says SHOULD process is lenient too.
    verdict = judge_case(BY_NAME["version-minor-high"], obs(BAD, "eof"), base(200))
    assert verdict.verdict is Verdict.LENIENT


def test_must_close_after_cl_te() -> None:
    case = BY_NAME["cl-te-aligned"]
    kept = judge_case(case, obs(OK, "timeout"), base(200))
    assert kept.verdict is Verdict.VIOLATION and kept.high == ()
    assert {"adv.must_violation", "adv.not_closed"} <= set(kept.counters)
    closed = judge_case(case, obs(response(200, b"ok", "Connection: close"), "eof"), base(200))
    assert closed.verdict is Verdict.PASS
    rejected_open = judge_case(BY_NAME["cl-conflicting"], obs(response(400)), base(200))
    assert rejected_open.verdict is Verdict.VIOLATION and "adv.not_closed" in rejected_open.counters


def test_hang_and_drip() -> None:
    hang = judge_case(BY_NAME["cl-conflicting"], obs(b""), base(200))
    assert hang.verdict is Verdict.VIOLATION
    assert {"adv.must_violation", "adv.hang_until_timeout"} <= set(hang.counters)
    assert judge_case(BY_NAME["cl-overflow"], obs(b""), base(200)).verdict is Verdict.PASS
    patient = judge_case(BY_NAME["slow-loris-head"], obs(b""), base(200))
    assert patient.verdict is Verdict.LENIENT and "adv.hang_until_timeout" not in patient.counters
    timed_out = judge_case(BY_NAME["slow-loris-head"], obs(response(408), "eof"), base(200))
    assert timed_out.verdict is Verdict.PASS


def test_early_route_answer_then_close_is_a_body_refusal() -> None:
    case = BY_NAME["chunk-size-hex-prefix"]  # the defect is in the body only
    closed = judge_case(case, obs(response(405, b"", "Connection: close"), "eof"),
                        base(405, closed=False))
    assert closed.reaction is R.REJECTED_CLOSED and closed.verdict is Verdict.PASS
    kept = judge_case(case, obs(response(405)), base(405, closed=False))
    assert kept.reaction is R.ACCEPTED and kept.verdict is Verdict.LENIENT
    # A route that closes after every 405 never read the body: not judged, not "accepted"
    # (a MUST body case would otherwise fail a server that did nothing wrong).
    always_closes = judge_case(case, obs(response(405), "eof"), base(405, closed=True))
    assert always_closes.reaction is None and always_closes.verdict is Verdict.UNJUDGED
    # Framing headers: a route's 4xx then a close is a refusal; a processed 200 is not.
    framing = BY_NAME["cl-conflicting"]
    assert judge_case(framing, obs(response(405), "eof"), base(405)).verdict is Verdict.PASS
    processed = judge_case(framing, obs(OK, "eof"), base(200))
    assert processed.reaction is R.ACCEPTED and processed.high == ("adv.wrong_accepted",)
    # A static handler that answers every POST and closes unread (lighttpd) never read the
    # malformed body, whatever its status: not judged.
    static_base = replace(base(200, closed=True), answered_unread=True)
    static = judge_case(case, obs(OK, "eof"), static_base)
    assert static.verdict is Verdict.UNJUDGED
    # One that read the valid body before answering, then closed, read this one too.
    assert judge_case(case, obs(OK, "eof"), base(200, closed=True)).reaction is R.ACCEPTED
    # Other header-level defects get no such benefit of the doubt: the request was routed.
    header = judge_case(BY_NAME["ws-before-colon"], obs(NOT_FOUND, "eof"), base(404))
    assert header.reaction is R.ACCEPTED


# -- desync --------------------------------------------------------------------------------


def test_desync_fires_on_a_smuggled_response() -> None:
    case = BY_NAME["cl-te-smuggle"]
    assert detect_desync(case, [200, 404])
    assert detect_desync(case, [200, 200])  # servers that answer 200 to anything
    assert detect_desync(case, [200], [404, 200])  # smuggled answer arrived late
    assert detect_desync(case, [400, 404], [200])


def test_desync_silent_on_correct_servers() -> None:
    case = BY_NAME["cl-te-smuggle"]
    assert not detect_desync(case, [400])
    assert not detect_desync(case, [200], [200])
    assert not detect_desync(case, [200], [])
    assert not detect_desync(case, [], [200])
    assert not detect_desync(case, [400, 400])  # leftover junk rejected: nothing served
    assert not detect_desync(BY_NAME["garbage-after-request"], [200, 200])  # not framing


def test_assess_reports_desync_as_high() -> None:
    case = BY_NAME["cl-conflicting"]
    verdict = assess(case, obs(OK + NOT_FOUND, "timeout"), base(200), obs(OK))
    assert verdict.verdict is Verdict.VIOLATION
    assert set(verdict.high) == {"adv.wrong_accepted", "adv.desync"}
    assert "adv.case.cl-conflicting.violation" in verdict.counters
    fine = assess(BY_NAME["get-with-body"], obs(OK), base(200), obs(OK))
    assert fine.verdict is Verdict.PASS and fine.high == ()
    lost = assess(BY_NAME["get-with-body"], obs(OK), base(200), obs(b""))
    assert "adv.canary_lost" in lost.counters and lost.high == ()


# -- fuzz ----------------------------------------------------------------------------------


def _mutations(rng: random.Random) -> bytes:
    seeds = [OK, BAD, NOT_FOUND, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             b"HTTP/1.1 100 Continue\r\n\r\n", b"", b"HTTP/1.0 204 No\r\n\r\n"]
    data = bytearray(rng.choice(seeds) + rng.choice(seeds))
    for _ in range(rng.randrange(4)):
        if data and rng.random() < 0.5:
            data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data[rng.randrange(len(data) + 1):0] = bytes(rng.randrange(256)
                                                         for _ in range(rng.randrange(8)))
    return bytes(data)


def test_fuzz_any_bytes_any_ending_yield_a_verdict() -> None:
    rng = random.Random(9112)
    for _ in range(1500):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            data = _mutations(rng)
        ending = rng.choice(ENDINGS)
        seen = observe(data, ending)
        assert isinstance(seen, Observation) and isinstance(seen.reaction, Reaction)
        assert isinstance(read_enough(data), bool)
        case = rng.choice(CASES)
        baseline = rng.choice([None, observe(OK, "timeout"), observe(NOT_FOUND, "eof"), seen])
        canary = rng.choice([None, observe(_mutations(rng), rng.choice(ENDINGS))])
        verdict = assess(case, seen, baseline, canary)
        assert isinstance(verdict.verdict, Verdict)
        assert verdict.counters[0].startswith(f"adv.case.{case.name}.")
        assert set(verdict.high) <= set(verdict.counters)
        assert set(verdict.high) <= {"adv.wrong_accepted", "adv.desync"}


def test_high_only_for_high_severity_must_cases() -> None:
    """No SHOULD/MAY case, and no MED/LOW one, can ever produce I-ADV-ACCEPTED."""
    accepted = observe(OK, "timeout")
    for case in CASES:
        verdict = judge_case(case, accepted, base(200))
        if "adv.wrong_accepted" in verdict.high:
            assert case.requirement.value == "MUST" and case.severity.value == "HIGH"
            assert R.ACCEPTED not in case.allowed
        for reaction_bytes, ending in ((b"", "eof"), (b"", "reset"), (BAD, "eof")):
            refused = judge_case(case, observe(reaction_bytes, ending), base(200))
            assert refused.high == ()


def test_observation_is_frozen() -> None:
    seen = observe(OK, "timeout")
    with pytest.raises(AttributeError):
        seen.closed = True  # type: ignore[misc]
    assert replace(seen, closed=True).closed


# -- the grown catalogue: interim, switch, pipelining, close, valid traffic ------------------

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"\r\n\x88\x02\x03\xe8")
CLOSING_OK = response(200, b"ok", "Connection: close")
HEAD_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"  # a HEAD answer: no body follows


def test_interim_and_switch_are_seen_in_the_bytes() -> None:
    for data in (CONTINUE + OK, CONTINUE + CONTINUE + OK,
                 b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK):
        seen = observe(data, "eof")
        assert seen.interim and seen.statuses == (200,)
    assert not observe(OK, "eof").interim and not observe(SWITCH, "timeout").interim
    assert observe(SWITCH, "timeout").switched and not observe(OK, "timeout").switched
    # Byte by byte through the walker's stop rule: the interim alone is not enough.
    data = CONTINUE + OK
    assert not read_enough(data[: len(CONTINUE)])
    assert [read_enough(data[:i]) for i in range(len(data) + 1)].index(True) == len(data)


def test_no_1xx_to_http10() -> None:
    case = BY_NAME["expect-100-http10"]
    bad = judge_case(case, observe(CONTINUE + CLOSING_OK, "eof"), base(200))
    assert bad.verdict is Verdict.VIOLATION and bad.high == ()
    assert {"adv.interim_to_http10", "adv.must_violation"} <= set(bad.counters)
    assert judge_case(case, observe(CLOSING_OK, "eof"), base(200)).verdict is Verdict.PASS
    # HTTP/1.1: a 100 before the final answer is what the RFC asks for.
    assert judge_case(BY_NAME["expect-100-http11"], observe(CONTINUE + OK, "timeout"),
                      base(200)).verdict is Verdict.PASS


def test_switching_where_the_rfc_says_ignore() -> None:
    case = BY_NAME["upgrade-ws-http10"]
    bad = judge_case(case, observe(SWITCH, "timeout"), base(200))
    assert bad.verdict is Verdict.VIOLATION and "adv.bad_upgrade" in bad.counters
    assert judge_case(case, observe(CLOSING_OK, "eof"), base(200)).verdict is Verdict.PASS
    # A MAY case: a 101 to an unknown protocol is leniency, not a failure.
    odd = judge_case(BY_NAME["upgrade-unknown-protocol"], observe(SWITCH, "timeout"), base(200))
    assert odd.verdict is Verdict.LENIENT


@pytest.mark.parametrize("split_at", [None, 1, 7, 40])
def test_pipelined_responses_are_counted(split_at: int | None) -> None:
    case = BY_NAME["pipeline-get-3"]
    data = OK * 3
    if split_at is not None:  # the stop rule sees partial reads, the judge the whole
        assert not read_enough(data[:split_at], responses=3)
    assert read_enough(data, responses=3) and not read_enough(OK * 2, responses=3)
    assert read_enough(OK + CLOSING_OK, responses=3)  # an announced close ends the wait
    everything = judge_case(case, observe(data, "timeout"), base(200))
    assert everything.verdict is Verdict.PASS
    dropped = judge_case(case, observe(OK, "timeout"), base(200))
    assert dropped.verdict is Verdict.VIOLATION
    assert {"adv.pipeline_dropped", "adv.must_violation"} <= set(dropped.counters)
    announced = judge_case(case, observe(OK + CLOSING_OK, "eof"), base(200))
    assert announced.verdict is Verdict.PASS  # the client retries the rest
    silent = judge_case(case, observe(OK + OK, "eof"), base(200))
    assert silent.verdict is Verdict.LENIENT and "adv.pipeline_closed_early" in silent.counters
    refused = judge_case(case, observe(OK + BAD, "eof"), base(200))
    assert refused.verdict is Verdict.VIOLATION and "adv.pipeline_refused" in refused.counters


def test_pipelined_head_is_framed_as_head() -> None:
    case = BY_NAME["pipeline-head-then-get"]
    data = HEAD_OK + OK
    seen = observe(data, "timeout", case.methods)
    assert seen.statuses == (200, 200) and not seen.garbage
    assert read_enough(data, responses=2, methods=case.methods)
    assert not read_enough(HEAD_OK, responses=2, methods=case.methods)
    assert judge_case(case, seen, base(200)).verdict is Verdict.PASS
    # A body after HEAD leaves the rest uncountable: leniency here (the response rules judge
    # the body itself), never "dropped".
    body_after_head = judge_case(case, observe(HEAD_OK + b"x" * 12 + OK, "timeout",
                                               case.methods), base(200))
    assert body_after_head.verdict is Verdict.LENIENT
    assert "adv.pipeline_garbage" in body_after_head.counters
    # Without the methods, the GET answer would be swallowed as the HEAD answer's body.
    assert observe(data, "timeout").statuses != (200, 200)


def test_surplus_is_counted_after_the_expected_responses() -> None:
    case = BY_NAME["pipeline-get-3"]
    assert not detect_desync(case, (200, 200, 200), (200,))
    assert detect_desync(case, (200, 200, 200, 200), (200,))


def test_close_received_must_close_and_serve_nothing_more() -> None:
    case = BY_NAME["connection-close"]
    assert judge_case(case, observe(CLOSING_OK, "eof"), base(200)).verdict is Verdict.PASS
    assert judge_case(case, observe(OK, "eof"), base(200)).verdict is Verdict.PASS
    kept = judge_case(case, observe(OK, "timeout"), base(200))
    assert kept.verdict is Verdict.VIOLATION and "adv.not_closed" in kept.counters
    stops = BY_NAME["pipeline-close-stops"]
    served = judge_case(stops, observe(OK + OK, "eof"), base(200))
    assert served.verdict is Verdict.VIOLATION and "adv.served_after_close" in served.counters
    assert judge_case(stops, observe(CLOSING_OK, "eof"), base(200)).verdict is Verdict.PASS
    # A SHOULD-level close (HTTP/1.0 default) kept open is leniency.
    lenient = judge_case(BY_NAME["http10-default-close"], observe(OK, "timeout"), base(200))
    assert lenient.verdict is Verdict.LENIENT


def test_valid_traffic_refused_is_the_violation() -> None:
    case = BY_NAME["chunked-trailer"]
    refused = judge_case(case, observe(BAD, "eof"), base(200))
    assert refused.verdict is Verdict.VIOLATION and refused.high == ()
    assert "adv.must_violation" in refused.counters
    assert judge_case(case, observe(OK, "timeout"), base(200)).verdict is Verdict.PASS
    # The route's own answer (405 for POST, like the baseline) is acceptance, even closed.
    route = judge_case(case, observe(response(405), "eof"), base(405))
    assert route.verdict is Verdict.PASS
    # 411 is a refusal RFC 9112 §6.3 allows for a body without Content-Length.
    assert judge_case(case, observe(response(411), "eof"), base(200)).verdict is Verdict.PASS


def test_low_severity_must_miss_is_reported_not_failed() -> None:
    verdict = judge_case(BY_NAME["cl-tab-ows"], observe(BAD, "eof"), base(200))
    assert verdict.verdict is Verdict.VIOLATION
    assert "adv.must_violation_low" in verdict.counters
    assert "adv.must_violation" not in verdict.counters and verdict.high == ()


def test_lenient_chunk_size_is_a_desync_and_a_rejection_passes() -> None:
    case = BY_NAME["chunk-size-0x-smuggle"]
    answered = assess(case, observe(OK + NOT_FOUND, "timeout"), base(200))
    assert answered.verdict is Verdict.VIOLATION and "adv.desync" in answered.high
    assert assess(case, observe(BAD, "eof"), base(200)).verdict is Verdict.PASS


@pytest.mark.parametrize("case", [c for c in CASES if c.responses > 1 or c.forbid_interim
                                  or c.forbid_switch or c.valid], ids=lambda c: c.name)
def test_new_cases_judge_any_bytes(case) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(case.name)
    pieces = [OK, BAD, CONTINUE, SWITCH, HEAD_OK, NOT_FOUND, b"\x00junk", b"HTTP/1.1 2"]
    for _ in range(30):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(4)))
        seen = observe(data, rng.choice(ENDINGS), case.methods)
        verdict = assess(case, seen, rng.choice([None, base(200), base(405)]),
                         rng.choice([None, observe(OK, "timeout")]))
        assert isinstance(verdict.verdict, Verdict)
