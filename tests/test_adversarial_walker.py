"""The adversarial walker against tiny trio servers on loopback: correct, lenient, silent.

Each server is a few lines: a strict one built on h11 (rejects with 400/501 and closes, and
closes after a Content-Length + Transfer-Encoding request as RFC 9112 §6.1 requires), a
naive hand-written one that keeps the first Content-Length, ignores Transfer-Encoding and
GET bodies (the classic smuggling parser), one that never answers, and one that times slow
clients out with 408. Timeouts are tenths of a second, so the whole file runs in seconds.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import h11
import pytest
import trio

from actors.adversarial import AdvSettings, BaselineCache, CaseDeck, prepare, probe, run
from actors.walker import Target, WalkerContext
from actors.walker_plan import _share
from protocols.adversarial_cases import BY_NAME, CASES, SMUGGLED_PATH
from protocols.tally import Tally

Handler = Callable[[trio.SocketStream], Awaitable[None]]
FAST = {"adv_timeout": 0.4, "adv_grace": 0.05, "adv_drip_max": 0.2, "adv_backoff": 0.05}


# -- servers ---------------------------------------------------------------------------------


def h11_server(close_after_cl_te: bool = True) -> Handler:
    async def handle(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while await _h11_cycle(stream, conn, close_after_cl_te):
                conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.LocalProtocolError):
            pass
        finally:
            await stream.aclose()

    return handle


async def _h11_cycle(stream: trio.SocketStream, conn: h11.Connection, close_cl_te: bool) -> bool:
    request: h11.Request | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            await stream.send_all(
                f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .encode())
            return False
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return False
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            return False
    assert request is not None
    names = {name for name, _ in request.headers}
    close = close_cl_te and {b"content-length", b"transfer-encoding"} <= names
    status = 404 if request.target.startswith(SMUGGLED_PATH.encode()) else 200
    headers = [("Content-Length", "2"), *([("Connection", "close")] if close else [])]
    await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers))
                          + conn.send(h11.Data(data=b"ok")) + conn.send(h11.EndOfMessage()))
    return conn.our_state is not h11.MUST_CLOSE


async def naive_server(stream: trio.SocketStream) -> None:
    """First Content-Length wins, Transfer-Encoding ignored, GET has no body: desyncs.

    It answers 200 to every path, so desync must be seen by counting responses."""
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and not length:
                    length = int(value.split(b",")[0].strip() or b"0")
            if lines[0].startswith(b"GET "):
                length = 0
            while len(buf) < length:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            buf = buf[length:]  # and 200 for any path, the smuggled one included
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except (trio.BrokenResourceError, ValueError):
        pass
    finally:
        await stream.aclose()


async def silent_server(stream: trio.SocketStream) -> None:
    """Reads everything, answers nothing, never closes (until the client does)."""
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass


async def impatient_server(stream: trio.SocketStream) -> None:
    """Answers 408 and closes if a request head is not complete within 0.1 s."""
    buf = b""
    with trio.move_on_after(0.1):
        while b"\r\n\r\n" not in buf:
            data = await stream.receive_some(65536)
            if not data:
                break
            buf += data
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if b"\r\n\r\n" in buf else \
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    try:
        await stream.send_all(reply)
    except trio.BrokenResourceError:
        pass
    await stream.aclose()


# -- harness ---------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, walker: int, counter: str, payload: dict[str, Any]) -> None:
        self.reports.append((counter, payload))


def make_ctx(port: int, sink: Sink, seconds: float = 60.0, **settings: Any) -> WalkerContext:
    return WalkerContext(
        actor_id=0, walker_id=3, slice_name="adv", seed=7, rng=random.Random(7),
        target=Target.from_url(f"http://127.0.0.1:{port}/"), tally=Tally(),
        settings={**FAST, **settings}, deadline=trio.current_time() + seconds,
        violation_sink=sink,
    )


def probe_cases(handler: Handler, names: list[str], **settings: Any) -> tuple[Tally, Sink]:
    """Run each named case once against ``handler`` served on an ephemeral port."""
    sink = Sink()
    tally: Tally | None = None

    async def main() -> None:
        nonlocal tally
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            ctx = make_ctx(port, sink, **settings)
            adv = AdvSettings.from_mapping(ctx.settings)
            cache = BaselineCache(adv)
            for name in names:
                assert await probe(ctx, BY_NAME[name], adv, cache)
            tally = ctx.tally
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert tally is not None
    return tally, sink


HIGH = ("adv.wrong_accepted", "adv.desync")
SMUGGLING = ["cl-conflicting", "cl-te-smuggle", "te-cl-smuggle", "ws-before-colon-te",
             "obs-fold-te", "bare-cr-value-te", "get-with-body", "te-gzip-only",
             "ws-before-colon", "host-duplicate", "leading-crlf", "chunk-size-overflow"]


# -- tests -----------------------------------------------------------------------------------


def test_correct_server_trips_nothing() -> None:
    tally, sink = probe_cases(h11_server(), SMUGGLING)
    counters = tally.counters
    assert counters["adv.sent"] == len(SMUGGLING)
    assert sink.reports == []
    assert not any(counters.get(name) for name in HIGH)
    assert not counters.get("adv.must_violation")
    for name in SMUGGLING:
        assert counters.get(f"adv.case.{name}.pass") == 1, (name, counters)
    assert counters["adv.baseline"] >= 2  # GET and POST baselines, fetched once each


def test_h11_default_keeps_cl_te_connections_open_counted_not_high() -> None:
    tally, sink = probe_cases(h11_server(close_after_cl_te=False),
                              ["cl-te-aligned", "cl-te-smuggle", "te-cl-smuggle"])
    assert tally.counters["adv.not_closed"] == 3
    assert tally.counters["adv.must_violation"] == 3
    assert sink.reports == [] and not any(tally.counters.get(name) for name in HIGH)


def test_naive_server_trips_accepted_and_desync_with_evidence() -> None:
    tally, sink = probe_cases(naive_server, ["cl-conflicting", "cl-te-smuggle", "ws-before-colon",
                                             "get-with-body"])
    counters = tally.counters
    assert counters["adv.wrong_accepted"] >= 2  # cl-conflicting, ws-before-colon
    assert counters["adv.desync"] >= 3  # cl-conflicting, cl-te-smuggle, get-with-body
    assert counters["adv.case.get-with-body.violation"] == 1
    # (The naive server also sends a body after HEAD: the response probes report
    # resp.framing_violation, which is not this test's business.)
    reported = {counter for counter, _ in sink.reports if counter.startswith("adv.")}
    assert reported == {"adv.wrong_accepted", "adv.desync"}
    counter, evidence = next(r for r in sink.reports if r[1].get("case") == "cl-te-smuggle")
    assert counter == "adv.desync"
    assert evidence["rfc"] == "RFC 9112 §6.1" and "MUST close" in evidence["quote"]
    assert isinstance(evidence["sent"], bytes) and SMUGGLED_PATH.encode() in evidence["sent"]
    assert evidence["received"].count(b"HTTP/1.1 ") >= 2
    assert evidence["timings"]["reply_s"] >= 0 and "total_s" in evidence["timings"]
    assert tally.examples["adv.desync"]["case"] in {"cl-conflicting", "cl-te-smuggle",
                                                    "get-with-body"}


def test_silent_server_hangs_are_unconfirmed_when_the_baseline_hangs_too() -> None:
    """A server that answers nothing, not even the valid baseline, is saturated or hung
    (the coordinator's I-HANG): its case hangs say nothing about its parser."""
    tally, sink = probe_cases(silent_server, ["cl-conflicting", "target-fragment"],
                              adv_timeout=0.2)
    counters = tally.counters
    assert counters["adv.case.cl-conflicting.unconfirmed"] == 1
    assert counters["adv.unconfirmed.baseline_slow"] == 1
    assert not counters.get("adv.case.cl-conflicting.violation")
    assert not counters.get("adv.must_violation") and not counters.get("adv.confirmed")
    assert counters["adv.case.target-fragment.lenient"] == 1  # a SHOULD: not confirmed
    example = tally.examples["adv.case.cl-conflicting.unconfirmed"]
    assert example["why"] == "baseline_slow" and example["reaction"] == "hang"
    assert sink.reports == []


def test_silent_server_counts_hangs_with_confirmation_off() -> None:
    tally, sink = probe_cases(silent_server, ["cl-conflicting", "target-fragment"],
                              adv_timeout=0.2, adv_confirm_tries=0)
    counters = tally.counters
    assert counters["adv.hang_until_timeout"] == 2
    assert counters["adv.case.cl-conflicting.violation"] == 1  # MUST: hanging is not rejecting
    assert counters["adv.case.target-fragment.lenient"] == 1
    assert sink.reports == []
    assert not counters.get("adv.baseline")  # the baseline never answered either
    assert counters["adv.baseline_unanswered"] >= 1


def test_slow_loris_patient_is_lenient_impatient_passes() -> None:
    tally, _ = probe_cases(h11_server(), ["slow-loris-head", "slow-loris-body"])
    assert tally.counters["adv.case.slow-loris-head.lenient"] == 1
    assert tally.counters["adv.case.slow-loris-body.lenient"] == 1
    assert not tally.counters.get("adv.hang_until_timeout")
    tally, _ = probe_cases(impatient_server, ["slow-loris-head"], adv_drip_max=0.3)
    assert tally.counters["adv.case.slow-loris-head.pass"] == 1


def test_connect_refused_is_unjudged_and_the_loop_backs_off() -> None:
    sink = Sink()
    sock_port = _free_port()
    ctx_box: list[WalkerContext] = []

    async def main() -> None:
        ctx = make_ctx(sock_port, sink, seconds=0.3)
        ctx_box.append(ctx)
        await run(ctx)

    trio.run(main)
    counters = ctx_box[0].tally.counters
    errors = {name for name in counters if name.startswith("adv.error.")}
    # actors.net names the cause; trio wraps a refused connect in a generic OSError today.
    assert errors and errors <= {"adv.error.connect_refused", "adv.error.io_error"}
    assert counters["adv.unjudged"] >= 1
    assert not counters.get("adv.sent") and sink.reports == []
    assert counters["adv.unjudged"] <= 10  # backed off, not a hot loop


def _free_port() -> int:
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        return plain.getsockname()[1]


def test_run_walks_round_robin_until_the_deadline() -> None:
    names = ["ws-before-colon", "host-missing", "version-invalid"]
    sink = Sink()
    result: list[WalkerContext] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            serve = partial(trio.serve_tcp, h11_server(), 0, host="127.0.0.1")
            listeners = await nursery.start(serve)
            port = listeners[0].socket.getsockname()[1]
            ctx = make_ctx(port, sink, seconds=0.6, adv_cases=names)
            await run(ctx)
            result.append(ctx)
            nursery.cancel_scope.cancel()

    trio.run(main)
    ctx = result[0]
    assert ctx.tally.counters["adv.sent"] >= len(names)
    for name in names:
        assert ctx.tally.counters.get(f"adv.case.{name}.pass", 0) >= 1
    assert ctx.recent and ctx.recent[-1]["slice"] == "adv"


def test_unknown_case_names_are_refused_at_prepare() -> None:
    with pytest.raises(ValueError, match="no-such-case"):
        prepare({"adv_cases": ["no-such-case"]})
    assert prepare({"adv_timeout": 1})["adv_timeout"] == 1


def test_actors_deal_disjoint_stretches_of_the_catalogue() -> None:
    """Two actors of one run start half a catalogue apart (from the run seed): a short run
    covers it instead of dealing one stretch twice."""
    planned = {"0": [[0, "markov"], [1, "adv"]], "1": [[2, "adv"]], "2": [[3, "markov"]]}
    assert _share(planned, "adv", 1, 7) == (1, 2, 7)
    assert _share(planned, "adv", 0, 7) == (0, 2, 7)
    cases = CASES[:100]
    rng = random.Random(0)
    decks = [CaseDeck(cases, _share(planned, "adv", actor, 7)) for actor in (0, 1)]
    dealt = [[decks[i].draw(rng).name for _ in range(50)] for i in (0, 1)]
    assert set(dealt[0]).isdisjoint(dealt[1])
    assert set(dealt[0]) | set(dealt[1]) == {case.name for case in cases}
    again = CaseDeck(cases, _share(planned, "adv", 0, 7))
    assert again.draw(random.Random(99)).name == dealt[0][0]  # the seed, not the walker rng
