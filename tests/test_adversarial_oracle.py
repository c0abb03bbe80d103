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
