"""The Tier 2 runner's I/O: a kept-alive connection the server closed while idle is
reopened and the request resent once; a server that stops answering is a timeout."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from actors.tier2_exec import ExchangeFailed, SequenceRunner
from actors.walker import Target
from protocols.openapi_operations import load_operations
from protocols.tier2_graph import infer
from protocols.tier2_sequences import Step

SPEC = (Path(__file__).resolve().parent.parent / "refapp" / "openapi.yaml").read_text()
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n' \
     b'{"status":"ok"}'


async def _runner_against(handler, steps):
    api = load_operations(SPEC, "openapi.yaml")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0,
                                                host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        runner = SequenceRunner(Target.from_url(f"http://127.0.0.1:{port}/"), api.by_id(),
                                infer(api), "", timeout=0.5)
        try:
            outcome = await runner.run(steps)
        except ExchangeFailed as exc:  # raised outside the nursery, not in a group
            outcome = exc
        finally:
            runner.close()
            nursery.cancel_scope.cancel()
    if isinstance(outcome, ExchangeFailed):
        raise outcome
    return outcome


def test_server_closing_idle_connections_is_retried_once() -> None:
    connections = []

    async def one_and_close(stream: trio.SocketStream) -> None:
        connections.append(1)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        await stream.send_all(OK)  # keep-alive by default, yet closed right after
        await stream.aclose()

    run = trio.run(_runner_against, one_and_close, (Step("healthz"),) * 3)
    assert [e.status for e in run.exchanges] == [200, 200, 200]
    assert len(connections) == 3


def test_a_post_meeting_an_idle_close_is_not_resent() -> None:
    """RFC 9112 §9.3.1.1: a non-idempotent request is not retried automatically (the
    server may have applied it); the sequence ends instead."""
    requests = []

    async def one_and_close(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        requests.append(data.split(b" ", 1)[0])
        await stream.send_all(OK)
        await stream.aclose()

    with pytest.raises(ExchangeFailed):
        trio.run(_runner_against, one_and_close,
                 (Step("healthz"), Step("login", "valid", {"user": "a", "password": "b"})))
    assert requests == [b"GET"]  # the POST went out once, on the closed connection


def test_silent_server_is_a_timeout() -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with pytest.raises(ExchangeFailed) as caught:
        trio.run(_runner_against, silent, (Step("healthz"),))
    assert caught.value.cause == "timeout" and caught.value.run.exchanges == []


def test_an_interrupted_campaign_still_reports_what_it_measured(monkeypatch) -> None:
    """Ctrl-C mid-campaign: ``stopped_by`` says so and the counts are kept."""
    from coordinator import tier2_run
    from protocols.tier2_sequences import SequenceRun

    api = load_operations(SPEC, "openapi.yaml")
    graph = infer(api)

    class Interrupted(SequenceRunner):
        async def run(self, steps):
            if self.requests >= 3:
                raise KeyboardInterrupt
            self.requests += 1
            return SequenceRun(steps, self.ops, self.graph)

    monkeypatch.setattr(tier2_run, "SequenceRunner", Interrupted)
    campaign = tier2_run.Campaign(api=api, graph=graph,
                                  target=Target.from_url("http://127.0.0.1:9/"), seed=1,
                                  budget_s=30.0)
    with pytest.raises(KeyboardInterrupt):
        tier2_run.run_campaign(campaign, None)
    report = campaign.report()
    assert report["stopped_by"] == "interrupted" and report["sequences"] == 3
    assert report["requests"] == 3 and report["planner"]["proposed"] == 4


def test_a_repro_with_malformed_overrides_is_bad_input() -> None:
    """A hand-edited ``overrides`` member (the digest covers only steps and bucket) is a
    Tier2ReproError (exit 2), not a TypeError traceback."""
    import json

    from replay import tier2_repro

    doc = tier2_repro.build("I-API-5XX:readItem:5xx", {}, ("openapi.yaml", SPEC), None,
                            [Step("login").to_json()], 1, {})
    assert tier2_repro.parse(json.dumps(doc), "r.json")["overrides"] is None
    for bad in ("oops", {"source": "o.toml"}, ["o.toml", "x"]):
        with pytest.raises(tier2_repro.Tier2ReproError, match="'overrides' must be"):
            tier2_repro.parse(json.dumps({**doc, "overrides": bad}), "r.json")
