"""Confirmation: the pure decision (protocols.confirmation) and the adversarial walker's use
of it against tiny loopback servers (a flaky one that hangs only the first time, one that
hangs only on the case while answering the baseline, and the naive smuggling parser)."""

from __future__ import annotations

from functools import partial

import pytest
import trio

from actors.adversarial import AdvSettings, BaselineCache, probe
from protocols.adversarial_cases import BY_NAME
from protocols.confirmation import (
    Attempt,
    Confirmed,
    Unconfirmed,
    Why,
    decide,
    tries_from,
)
from tests.test_adversarial_walker import Sink, make_ctx, naive_server, probe_cases

HANG = Attempt(violation=True, key="adv.must_violation", hang=True, detail="violation: hang")
WRONG = Attempt(violation=True, key="adv.wrong_accepted", detail="violation: accepted")
PASS = Attempt(violation=False, detail="pass: rejected_closed")
OFF = Attempt.unjudged("connect failed: connect_refused")


def hang(baseline: bool | None) -> Attempt:
    return Attempt(violation=True, key=HANG.key, hang=True, baseline_answered=baseline)


# -- the pure decision -----------------------------------------------------------------------


def test_every_judged_resend_must_reproduce() -> None:
    assert decide(WRONG, [], 2) is None
    assert decide(WRONG, [WRONG], 2) is None
    assert decide(WRONG, [WRONG, WRONG], 2) == Confirmed(2)
    assert decide(WRONG, [WRONG], 1) == Confirmed(1)


def test_a_pass_or_another_violation_is_not_reproduced() -> None:
    decision = decide(HANG, [PASS], 2)
    assert isinstance(decision, Unconfirmed) and decision.why is Why.NOT_REPRODUCED
    assert "rejected_closed" in decision.detail
    assert decide(WRONG, [WRONG, PASS], 2) == decide(WRONG, [WRONG, PASS], 5)
    other = Attempt(violation=True, key="adv.desync")
    assert decide(WRONG, [other], 2).why is Why.NOT_REPRODUCED  # type: ignore[union-attr]


def test_a_hang_needs_the_baseline_of_the_same_round() -> None:
    assert decide(HANG, [hang(True), hang(True)], 2) == Confirmed(2)
    slow = decide(HANG, [hang(False)], 2)
    assert isinstance(slow, Unconfirmed) and slow.why is Why.BASELINE_SLOW
    assert decide(HANG, [hang(True), hang(None)], 2).why is Why.BASELINE_SLOW  # type: ignore
    # the first sending under load need not have had a baseline; a re-send that answers
    # with the same violation at once is no hang and needs none
    quick = Attempt(violation=True, key=HANG.key, hang=False)
    assert decide(HANG, [quick, quick], 2) == Confirmed(2)


def test_unjudged_resends_say_nothing() -> None:
    assert decide(WRONG, [OFF], 2) is None
    decision = decide(WRONG, [OFF, OFF], 2)
    assert isinstance(decision, Unconfirmed) and decision.why is Why.UNJUDGED
    assert "connect_refused" in decision.detail
    # one reproduction then a dead target (the case killed it): confirmed
    assert decide(WRONG, [WRONG, OFF], 2) == Confirmed(1)


def test_out_of_time() -> None:
    assert decide(WRONG, [], 2, out_of_time=True).why is Why.DEADLINE  # type: ignore
    assert decide(WRONG, [WRONG], 2, out_of_time=True) == Confirmed(1)
    assert decide(WRONG, [OFF], 2, out_of_time=True).why is Why.UNJUDGED  # type: ignore


def test_only_violations_are_confirmed() -> None:
    with pytest.raises(ValueError):
        decide(PASS, [], 2)


def test_tries_setting() -> None:
    assert tries_from({}) == 2
    assert tries_from({"adv_confirm_tries": 0}) == 0
    assert tries_from({"adv_confirm_tries": "3"}) == 3
    assert tries_from({"adv_confirm_tries": -1}) == 0
    assert tries_from({"adv_confirm_tries": "x"}) == 2
    assert tries_from(None) == 2


# -- the adversarial walker ------------------------------------------------------------------


def flaky_server() -> object:
    """Hangs on the first request with two Content-Lengths (as if queued), then answers every
    request with 400 and a close, as a correct server does at once when not busy."""
    state = {"first": True}

    async def handle(stream: trio.SocketStream) -> None:
        try:
            data = await stream.receive_some(65536)
            if state["first"] and data.count(b"Content-Length") > 1:
                state["first"] = False
                with trio.move_on_after(5):
                    while await stream.receive_some(65536):
                        pass
                return
            if data.count(b"Content-Length") > 1:
                await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      b"Connection: close\r\n\r\n")
            else:
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except trio.BrokenResourceError:
            pass
        finally:
            await stream.aclose()

    return handle


def case_hanger() -> object:
    """Answers the valid baseline at once; never answers a request with two Content-Lengths."""
    async def handle(stream: trio.SocketStream) -> None:
        try:
            data = await stream.receive_some(65536)
            if data.count(b"Content-Length") > 1:
                while await stream.receive_some(65536):
                    pass
                return
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except trio.BrokenResourceError:
            pass
        finally:
            await stream.aclose()

    return handle


def test_a_hang_that_does_not_reproduce_is_unconfirmed_not_counted() -> None:
    tally, sink = probe_cases(flaky_server(), ["cl-conflicting"], adv_timeout=0.3)
    counters = tally.counters
    assert counters["adv.case.cl-conflicting.unconfirmed"] == 1
    assert counters["adv.unconfirmed"] == 1 and counters["adv.unconfirmed.not_reproduced"] == 1
    assert not counters.get("adv.must_violation") and not counters.get("adv.hang_until_timeout")
    assert not counters.get("adv.case.cl-conflicting.violation") and sink.reports == []
    assert counters["adv.confirm_sent"] == 1  # stopped at the first contradiction
    assert tally.examples["adv.unconfirmed"]["why"] == "not_reproduced"


def test_a_real_hang_with_a_prompt_baseline_is_confirmed() -> None:
    tally, _ = probe_cases(case_hanger(), ["cl-conflicting"], adv_timeout=0.3)
    counters = tally.counters
    assert counters["adv.confirmed"] == 1 and counters["adv.confirm_sent"] == 2
    assert counters["adv.case.cl-conflicting.violation"] == 1
    assert counters["adv.must_violation"] == 1 and not counters.get("adv.unconfirmed")


def test_smuggling_is_confirmed_and_reported_with_the_confirmation() -> None:
    tally, sink = probe_cases(naive_server, ["cl-te-smuggle"])
    assert tally.counters["adv.confirmed"] == 1
    adv = [(counter, ev) for counter, ev in sink.reports if counter.startswith("adv.")]
    assert [counter for counter, _ in adv] == ["adv.desync"]
    assert adv[0][1]["confirmation"] == "confirmed" and adv[0][1]["reproduced"] == 2


def test_confirmation_is_bounded_by_the_walker_deadline() -> None:
    sink = Sink()
    found: dict[str, int] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serve = partial(trio.serve_tcp, case_hanger(), 0, host="127.0.0.1")
            port = (await nursery.start(serve))[0].socket.getsockname()[1]
            ctx = make_ctx(port, sink, seconds=0.5, adv_timeout=0.3)
            adv = AdvSettings.from_mapping(ctx.settings)
            assert await probe(ctx, BY_NAME["cl-conflicting"], adv, BaselineCache(adv))
            found.update(ctx.tally.counters)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert found["adv.unconfirmed.deadline"] == 1 or found["adv.unconfirmed.unjudged"] == 1
    assert not found.get("adv.must_violation") and sink.reports == []
