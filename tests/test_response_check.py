"""The actor side of the response rules: counting once per route, the Markov facts, the
HEAD/HTTP/1.0 probes, the re-fetch of refused heads, the results section, the invariants,
``--no-clock`` and the I-RESP-FRAMING reproducer."""

from __future__ import annotations

import random

import pytest
import trio

from actors import response_check
from actors.walker import Target, WalkerContext
from coordinator import invariants, response_report
from protocols.http1 import ResponseParser
from protocols.outcome import Severity
from protocols.response_rules import excess_bytes
from protocols.tally import Tally
from tests.test_response_rules import DATE, GET, HEAD, ok200

# -- the actor side: parsed responses, sampling, dedupe, counters ------------------------------

def _ctx(settings: dict | None = None) -> tuple[WalkerContext, list]:
    sink: list = []
    ctx = WalkerContext(
        actor_id=0, walker_id=0, slice_name="markov", seed=1, rng=random.Random(1),
        target=Target.from_url("http://127.0.0.1:1/"), tally=Tally(),
        settings=settings or {}, deadline=0.0,
        violation_sink=lambda walker, counter, payload: sink.append((counter, payload)))
    return ctx, sink


def _parse(method: str, data: bytes) -> tuple[ResponseParser, object]:
    parser = ResponseParser()
    parser.expect(method)
    parser.feed(data)
    return parser, parser.next_response()


def test_markov_head_body_is_seen_through_the_parser_buffer() -> None:
    parser, response = _parse("HEAD", ok200(body=b"hello"))
    assert parser.buffered_bytes == 5  # the body a HEAD must not have
    ctx, sink = _ctx()
    checker = response_check.checker_for(ctx)
    excess = excess_bytes(parser.trailing_data)
    checker.markov(ctx, "HEAD /x", "HEAD", HEAD, response, excess)  # type: ignore[arg-type]
    counters = ctx.tally.counters
    assert counters["resp.rule.no_content_after_head.violation"] == 1
    assert counters["resp.framing_violation"] == 1
    assert sink and sink[0][0] == "resp.framing_violation"
    assert sink[0][1]["rfc"] == "RFC 9110 §9.3.2"


def test_checker_counts_once_per_rule_and_route() -> None:
    ctx, sink = _ctx()
    no_date = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    for _ in range(5):
        response_check.check_raw(ctx, GET, no_date)
    response_check.check_raw(ctx, b"GET /y?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", no_date)
    counters = ctx.tally.counters
    assert counters["resp.checked"] == 6
    assert counters["resp.rule.date.violation"] == 2  # two routes
    assert counters["resp.violation"] == 2
    assert counters["resp.route.date.violation.GET /x"] == 1
    assert counters["resp.route.date.violation.GET /y"] == 1
    assert "resp.framing_violation" not in counters and not sink
    example = ctx.tally.examples["resp.rule.date.violation"]
    assert example["sent"] == GET and example["received"] == no_date
    # --no-clock: a fresh actor's checker judges no Date.
    quiet, _ = _ctx({"no_clock": True})
    response_check.check_raw(quiet, GET, no_date)
    assert "resp.rule.date.violation" not in quiet.tally.counters


def test_results_section_counts_distinct_routes() -> None:
    counters = {"resp.checked": 9, "resp.route.date.violation.GET /x": 2,
                "resp.route.date.violation.GET /a.b": 1, "resp.route.date.pass.GET /z": 1,
                "resp.route.allow_on_405.pass.GET /x": 1}
    examples = {"resp.rule.date.violation": {"sent": b"x"}}
    block = response_report.section(counters, examples)
    rules = {r["rule"]: r for r in block["rules"]}
    assert rules["date"]["status"] == "violation"
    assert rules["date"]["routes"] == ["GET /a.b", "GET /x"] and rules["date"]["count"] == 2
    assert rules["date"]["example"] == {"sent": b"x"} and rules["date"]["rfc"]
    assert rules["allow_on_405"]["status"] == "pass"
    assert rules["no_obs_fold"]["status"] == "not_observed"
    assert response_report.section(counters, examples, no_clock=True)["rules"][0]["status"] \
        == "not_judged"
    assert any("resp date" in line for line in response_report.summary_lines(block))


def test_invariants_registered() -> None:
    must, framing = invariants.BY_ID["I-RESP-MUST"], invariants.BY_ID["I-RESP-FRAMING"]
    assert must.severity is Severity.MED and must.counter == response_check.VIOLATION
    assert framing.severity is Severity.HIGH
    assert framing.counter == response_check.FRAMING_VIOLATION
    assert framing.counter in invariants.HIGH_COUNTERS
    verdicts = invariants.judge_all({"resp.checked": 3, "resp.violation": 1}, {})
    assert "I-RESP-MUST" in {e["id"] for e in verdicts["failed"]}


def test_trio_is_not_needed_by_the_rules() -> None:
    import protocols.response_rules as rules

    assert "trio" not in vars(rules)
    assert trio  # the actor side runs under trio; the rules do not


# -- the probes: HEAD and HTTP/1.0 GET, once per path per actor --------------------------------

def _answering(head_body: bytes, chunked_to_10: bool):  # type: ignore[no-untyped-def]
    """A keep-alive server: HEAD gets ``head_body`` after its head; an HTTP/1.0 GET gets a
    chunked body when ``chunked_to_10`` (both defects), else a Content-Length one."""
    async def handler(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        line = data.split(b"\r\n", 1)[0]
        if line.startswith(b"HEAD"):
            await stream.send_all(b"HTTP/1.1 200 OK\r\n" + DATE + b"Content-Length: 5\r\n\r\n"
                                  + head_body)
        elif chunked_to_10:
            await stream.send_all(b"HTTP/1.1 200 OK\r\n" + DATE + b"Transfer-Encoding: chunked"
                                  b"\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            return
        else:
            await stream.send_all(ok200(b"Connection: close\r\n", b"hello"))
            return
        await trio.sleep(2)  # keep the connection open past the probe's grace period
    return handler


def _probe(handler):  # type: ignore[no-untyped-def]
    from actors import response_probes
    from tests.torture_servers import serving, walker_ctx

    async def main() -> WalkerContext:
        async with serving(handler) as port:
            ctx = walker_ctx(port, "adv", {}, 10)
            await response_probes.probe_once(ctx, "/", 2.0)
            await response_probes.probe_once(ctx, "/", 2.0)  # once per path per actor
            return ctx

    return trio.run(main)


def test_probes_catch_body_after_head_and_chunked_to_http10() -> None:
    ctx = _probe(_answering(b"hello", chunked_to_10=True))
    counters = ctx.tally.counters
    assert counters["resp.probes"] == 2
    assert counters["resp.rule.no_content_after_head.violation"] == 1
    assert counters["resp.framing_violation"] == 1
    assert counters["resp.rule.no_transfer_encoding_to_http10.violation"] == 1
    assert [c for c, _ in ctx.violations] == ["resp.framing_violation"]  # type: ignore[attr-defined]


def test_probes_pass_a_correct_server() -> None:
    ctx = _probe(_answering(b"", chunked_to_10=False))
    counters = ctx.tally.counters
    assert counters["resp.probes"] == 2
    assert counters["resp.rule.no_content_after_head.pass"] == 1
    assert counters["resp.rule.no_transfer_encoding_to_http10.pass"] == 1
    assert "resp.violation" not in counters and "resp.framing_violation" not in counters


def test_explain_names_the_rule_a_refused_head_broke() -> None:
    from actors import response_probes
    from tests.torture_servers import serving, walker_ctx

    folded = ok200(b"X-A: one\r\n two\r\n")
    parser = ResponseParser()
    parser.expect("GET")
    parser.feed(folded)
    with pytest.raises(Exception, match="folding"):
        parser.next_response()  # the Markov walker only sees a protocol_error

    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)
        await stream.send_all(folded)

    async def main() -> WalkerContext:
        async with serving(handler) as port:
            ctx = walker_ctx(port, "markov", {}, 10)
            for method in ("POST", "GET", "GET"):  # POST is not re-sent; GET once per route
                await response_probes.explain_once(ctx, "GET /x", method, GET, 2.0)
            return ctx

    ctx = trio.run(main)
    counters = ctx.tally.counters
    assert counters["resp.probes"] == 1
    assert counters["resp.route.no_obs_fold.violation.GET /x"] == 1
    assert counters["resp.violation"] == 1


# -- reproducers for framing trips (replay.resp_repro) ----------------------------------------

class _Result:
    def __init__(self, data: bytes, ending: str) -> None:
        self.data, self.ending = data, ending


class _Transcript:
    def __init__(self, results: dict[int, _Result]) -> None:
        self.results, self.elapsed_s = tuple(results.values()), 0.0
        self._by_index = results

    def of_step(self, index: int) -> _Result | None:
        return self._by_index.get(index)


def test_framing_reproducer_fails_while_the_body_follows_head() -> None:
    from protocols.program import Program
    from replay.checks import evaluate
    from replay.evidence import EvidenceError, TripContext, derive

    evidence = {"rule": "no_content_after_head", "sent": HEAD, "route": "HEAD /x"}
    trip = TripContext("resp.framing_violation", "I-RESP-FRAMING", evidence,
                       "http://127.0.0.1:1/")
    derived = derive(trip)
    program: Program = derived.program
    assert [s.label for s in program.steps] == ["resp.sent", "resp.reply", "resp.reply"]
    assert program.steps[0].data == HEAD
    head = ok200()[: ok200().index(b"\r\n\r\n") + 4]
    sent = _Result(b"", "ok")
    defective = _Transcript({0: sent, 1: _Result(head + b"ok", "ok"),
                             2: _Result(b"", "timeout")})
    correct = _Transcript({0: sent, 1: _Result(head, "ok"), 2: _Result(b"", "timeout")})
    closed = _Transcript({0: sent, 1: _Result(head + b"ok", "ok"), 2: _Result(b"", "eof")})
    assert evaluate(program, defective).violated
    assert not evaluate(program, correct).violated
    assert not evaluate(program, closed).violated  # a MUST broken, but no framing hazard
    with pytest.raises(EvidenceError):
        derive(TripContext("resp.framing_violation", "I-RESP-FRAMING",
                           {"rule": "date", "sent": HEAD}, "http://127.0.0.1:1/"))


def test_a_framing_rule_broken_closed_then_kept_alive_reports_the_high_one() -> None:
    ctx, sink = _ctx()
    body_after_head = ok200(body=b"hello")
    response_check.check_raw(ctx, HEAD, body_after_head, closed=True)  # MED: no desync
    response_check.check_raw(ctx, HEAD, body_after_head, closed=False)  # HIGH
    response_check.check_raw(ctx, HEAD, body_after_head, closed=False)  # counted already
    counters = ctx.tally.counters
    assert counters["resp.rule.no_content_after_head.violation"] == 1
    assert counters["resp.violation"] == 1
    assert counters["resp.framing_violation"] == 1 and len(sink) == 1


def test_no_clock_from_flag_env_and_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from coordinator.cli import build_parser, config_from_args
    from coordinator.config import RunConfig, build_config

    args = build_parser().parse_args(["run", "--no-clock"])
    assert config_from_args(args).no_clock is True
    assert config_from_args(build_parser().parse_args(["run"])).no_clock is False
    assert build_config({}, None, {"ASSAY_NO_CLOCK": "1"}, RunConfig()).no_clock is True
    toml = tmp_path / "assay.toml"
    toml.write_text("[run]\nno_clock = true\n")
    assert build_config({}, toml, {}, RunConfig()).no_clock is True
