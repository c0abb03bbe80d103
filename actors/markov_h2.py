"""The Markov slice over HTTP/2 (``--http2``): each walker's session as a stream at a time.

The same sans-IO ``MarkovSession`` decides every request and judges every response as over
HTTP/1.1 (``actors.markov_walker``); only the transport differs: the walkers of an actor
share a few HTTP/2 connections (``actors.h2_session``), many streams on each, so the
counters (``markov.requests``, ``markov.status_*``, ``markov.error.*``), the latency
histograms ``markov.latency.<state>``, captures and the read-after-write check are the
same. ``markov.h2.connections`` counts the connections opened, so a report shows how many
requests one connection carried.

What differs, and why:
- The response rules run with no bytes past a response's end: HTTP/2 frames every body in
  DATA frames (RFC 9113 §8.1), so no response can run into the next one. The rules about
  Date, Allow on 405, WWW-Authenticate on 401 and Content-Length on 204 are RFC 9110's and
  hold for every version.
- A refused head is not re-fetched over HTTP/1.1 to name the rule it broke: ``h2``
  refuses a malformed HTTP/2 message for HTTP/2 reasons, which an HTTP/1.1 re-fetch would
  not show.
- Evidence shows each request as its HTTP/1.1 equivalent (``PlannedRequest.wire``), the
  form a reproducer replays.
- A failure whose cause the session does not count (a TLS failure met after the
  pre-flight, an I/O error) is counted under the nearest cause the session knows.
"""

from __future__ import annotations

import time

import trio

from actors import net, response_check, response_probes
from actors.h2_session import H2Pool
from actors.markov_walker import (
    ERROR_PAUSE_S,
    MIRROR_COUNTER,
    _remember,
    _route_names,
)
from actors.walker import WalkerContext
from protocols.h2_client import request_fields
from protocols.http1 import Response
from protocols.markov import TRANSPORT_CAUSES, MarkovSession, PlannedRequest
from protocols.markov_model import default_model

CONNECTIONS_COUNTER = "markov.h2.connections"


async def run(ctx: WalkerContext, pool: H2Pool) -> None:
    settings = ctx.settings
    model = settings.get("markov_model") or default_model(ctx.target.base_path)
    session = MarkovSession(model, settings.get("openapi_spec"), ctx.rng,
                            host=ctx.target.host_header)
    tally = ctx.tally
    timeout = float(settings.get("request_timeout_s", 10.0))
    checker = response_check.checker_for(ctx)
    routes = _route_names(model)
    authority, scheme = ctx.target.host_header, ctx.target.scheme
    login_sent = b""
    perf_counter = time.perf_counter
    await response_probes.probe_once(ctx, ctx.target.base_path, timeout)
    async with pool.member(ctx.target, lambda: tally.incr(CONNECTIONS_COUNTER)) as member:
        while not ctx.expired():
            planned = session.next_request()
            started = perf_counter()
            ctx.markov_inflight = (started, planned)  # crash attribution
            mismatches_before = tally.counters.get(MIRROR_COUNTER, 0)
            fields = request_fields(planned.method, planned.target, authority, scheme,
                                    planned.headers, planned.body)
            response: Response | None = None
            cause = "timeout"
            member.connecting = False
            with trio.move_on_after(timeout):
                try:
                    response = await member.request(fields, planned.body)
                except net.TransportError as exc:
                    cause = known_cause(exc.cause)
            if response is None:
                if cause == "timeout" and member.connecting:
                    cause = "connect_timeout"
                _failed(ctx, session, planned, cause, member.connecting, started)
                await trio.sleep(ERROR_PAUSE_S)
                continue
            micros = (perf_counter() - started) * 1e6
            session.on_response(planned, response, tally, micros)
            if planned.is_login:
                login_sent = planned.wire
            _remember(ctx, planned, response, int(micros))
            if checker.sample.get((planned.state, response.status), 1) > 0:
                _check_response(ctx, checker, routes, planned, response)
            if tally.counters.get(MIRROR_COUNTER, 0) > mismatches_before:
                example = tally.examples.get(MIRROR_COUNTER, {})
                ctx.report_violation(MIRROR_COUNTER, {
                    "state": planned.state, "sent": planned.wire,
                    "status": response.status, "received": response.body,
                    "latency_us": int(micros), "check": example, "login_sent": login_sent,
                }, count=False)
            pause = session.retry_after_s
            if pause:
                await trio.sleep(min(pause, max(0.0, ctx.remaining())))


def known_cause(cause: str) -> str:
    """``cause`` if the session counts it, else the nearest one it does: a TLS timeout is
    a connect timeout, a refused TLS handshake or an HTTP/2 protocol failure a protocol
    error, anything else at the socket a reset."""
    if cause in TRANSPORT_CAUSES:
        return cause
    if cause.endswith("timeout"):
        return "connect_timeout"
    if cause.startswith("tls"):
        return "protocol_error"
    return "reset"


def _failed(ctx: WalkerContext, session: MarkovSession, planned: PlannedRequest, cause: str,
            connecting: bool, started: float) -> None:
    session.on_transport_error(planned, cause, ctx.tally)
    # ``sent_at``: bytes reached the target (not a failed connect), for attribution.
    ctx.record_exchange(state=planned.state, sent=planned.wire, error=cause,
                        sent_at=None if connecting else
                        time.time() - (time.perf_counter() - started))
    if not connecting:
        ctx.flight.markov.append(ctx.recent[-1])


def _check_response(ctx: WalkerContext, checker: response_check.ResponseChecker,
                    routes: dict[str, str], planned: PlannedRequest, response: Response
                    ) -> None:
    """The response rules on a sample of responses per (state, status), as over HTTP/1.1,
    with nothing past the end (see the module docstring)."""
    key = (planned.state, response.status)
    checker.sample[key] = checker.sample.get(key, response_check.SAMPLE) - 1
    route = routes.get(planned.state, planned.state)
    checker.markov(ctx, route, planned.method, planned.wire, response, 0)

