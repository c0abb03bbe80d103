"""The Markov slice's I/O shell: keep-alive HTTP/1.1 around a sans-IO ``MarkovSession``.

All protocol decisions (which request next, cookies, captures, read-after-write checks,
what a status means) are the session's; this module only moves bytes, keeps one
keep-alive connection per walker, and times each exchange. It is the hot path of a load
run, so it calls a non-blocking socket directly (no stream wrapper, trio's low-level
waits only when the kernel has nothing), parses with the incremental ``ResponseParser``,
and leaves latency recording to the session (a list append per request, see
``Tally.latency_recorder``). Per request it costs about a
quarter of what it did with ``fail_after`` and trio's socket methods (see
``benchmarks/README.md``: the figures, and what each change bought).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import trio

from actors import net, response_check, response_probes
from actors.keepalive import (
    Connection,
    begin,
    complete,
    failure_cause,
    open_connection,
)
from actors.walker import RING_BYTES, WalkerContext
from protocols.http1 import Response, ResponseProtocolError, ResponseTooLarge
from protocols.markov import LOGIN_STATE, MarkovSession, PlannedRequest
from protocols.markov_loader import load_model
from protocols.markov_model import default_model
from protocols.openapi import load_spec
from protocols.openapi_walk import model_from_spec
from protocols.response_rules import excess_bytes

READ_SIZE = 65536
MIRROR_COUNTER = "markov.read_after_write_mismatch"
ERROR_PAUSE_S = 0.05


def prepare(settings: dict[str, Any]) -> dict[str, Any]:
    """Parse the model and spec once per actor (the coordinator already validated them)."""
    markov = settings.get("markov") or {}
    spec = None
    if markov.get("spec_text") is not None:
        spec = load_spec(markov["spec_text"], markov.get("spec_source") or "spec")
    if markov.get("model_text") is not None:
        model = load_model(markov["model_text"], markov.get("model_source") or "model")
    elif spec is not None:
        model = model_from_spec(spec)
    else:
        model = None  # default model: GET of the target URL's path, built per target below
    settings["markov_model"] = model
    settings["openapi_spec"] = spec
    if settings.get("http2"):  # the actor's walkers share its HTTP/2 connections
        from actors.h2_session import DEFAULT_STREAMS_PER_CONN, H2Pool

        settings["h2_pool"] = H2Pool(
            float(settings.get("request_timeout_s", 10.0)),
            int(settings.get("h2_streams_per_conn") or DEFAULT_STREAMS_PER_CONN))
    return settings


async def run(ctx: WalkerContext) -> None:
    settings = ctx.settings
    if settings.get("http2"):
        from actors import markov_h2

        return await markov_h2.run(ctx, settings["h2_pool"])
    model = settings.get("markov_model") or default_model(ctx.target.base_path)
    session = MarkovSession(model, settings.get("openapi_spec"), ctx.rng,
                            host=ctx.target.host_header)
    tally = ctx.tally
    timeout = float(settings.get("request_timeout_s", 10.0))
    current_time = trio.current_time
    perf_counter = time.perf_counter
    conn: Connection | None = None
    # Response rules (actors.response_check): judged on the first few responses per
    # (route, status) -- ``sample`` is read inline, one dict lookup per response -- and on
    # any response the server sent unrequested bytes after (a framing hazard).
    checker = response_check.checker_for(ctx)
    sample = checker.sample
    routes = _route_names(model)
    login_sent = b""  # the session's last login: a repro replays it to get a fresh cookie
    # Each request must get ``timeout`` from just before it is sent, exactly as with a
    # ``fail_after`` per request. Building a scope per request, or even moving one scope's
    # deadline before each request, cost a sixth of the actor's time, so the deadline is
    # armed early instead: a scope's deadline is the due time of the first request it
    # covers, which is never later than the due time of any request after it. When it
    # fires and the request in flight is not yet due (a spurious wake, about once per
    # ``timeout`` per walker), the exchange carries on where it stopped under a new scope
    # armed at that request's own due time. A scope is re-armed exactly whenever it would
    # be late: for a new connection, and after a pause with no deadline.
    planned: PlannedRequest | None = None  # the request in flight
    resume = False  # ``planned``'s exchange was interrupted by a deadline not its own
    due = started = 0.0
    mismatches_before = 0
    # HEAD and HTTP/1.0 responses of the target path, once per actor (response rules).
    await response_probes.probe_once(ctx, ctx.target.base_path, timeout)
    try:
        while resume or not ctx.expired():
            cause = "timeout"  # what leaving the scope with a request in flight means
            opening = False  # whether the scope fired while connecting
            with trio.CancelScope() as scope:
                armed = math.inf
                if resume:
                    armed = scope.deadline = due
                while True:
                    if not resume:
                        now = current_time()
                        if now >= ctx.deadline:
                            break
                        planned = session.next_request()
                        started = perf_counter()
                        ctx.markov_inflight = (started, planned)  # crash attribution
                        mismatches_before = tally.counters.get(MIRROR_COUNTER, 0)
                        due = now + timeout
                        if armed > due or conn is None:
                            armed = scope.deadline = due
                    assert planned is not None
                    try:
                        if not resume:
                            if conn is None:
                                opening = True
                                conn = await open_connection(ctx.target)
                                opening = False
                            begin(conn, planned.wire, planned.method)
                        resume = False
                        assert conn is not None
                        response = await complete(conn)
                    except (net.TransportError, OSError,
                            ResponseProtocolError, ResponseTooLarge) as exc:
                        cause = failure_cause(exc)
                        break
                    micros = (perf_counter() - started) * 1e6
                    session.on_response(planned, response, tally, micros)
                    if planned.is_login:
                        login_sent = planned.wire
                    _remember(ctx, planned, response, int(micros))
                    if conn.parser.buffered_bytes or sample.get(
                            (planned.state, response.status), 1) > 0:
                        if _check_response(ctx, checker, routes, planned, conn, response):
                            response = _closing(response)
                    if tally.counters.get(MIRROR_COUNTER, 0) > mismatches_before:
                        example = tally.examples.get(MIRROR_COUNTER, {})
                        ctx.report_violation(MIRROR_COUNTER, {
                            "state": planned.state, "sent": planned.wire,
                            "status": response.status, "received": response.body,
                            "latency_us": int(micros), "check": example,
                            "login_sent": login_sent,
                        }, count=False)
                    planned = None
                    if not response.keep_alive:
                        conn.close()
                        conn = None
                    pause = session.retry_after_s
                    if pause:
                        armed = scope.deadline = math.inf
                        await trio.sleep(min(pause, max(0.0, ctx.remaining())))
            if planned is None:
                continue  # the walker's deadline passed between requests
            if scope.cancelled_caught:
                if opening:  # armed at this request's due time: a real timeout
                    cause = "connect_timeout"
                elif current_time() < due:
                    resume = True  # an earlier request's deadline fired, not this one's
                    continue
            # The exchange failed, or its deadline passed.
            session.on_transport_error(planned, cause, tally)
            if cause == "protocol_error":  # which response rule the refused head broke
                await response_probes.explain_once(
                    ctx, routes.get(planned.state, planned.state), planned.method,
                    planned.wire, timeout)
            # ``sent_at``: bytes reached the target (not a failed connect), for attribution.
            ctx.record_exchange(state=planned.state, sent=planned.wire, error=cause,
                                sent_at=None if opening else
                                time.time() - (perf_counter() - started))
            if not opening:  # kept apart too: refused connects after a death flood ``recent``
                ctx.flight.markov.append(ctx.recent[-1])
            planned = None
            if conn is not None:
                conn.close()
                conn = None
            await trio.sleep(ERROR_PAUSE_S)
    finally:
        if conn is not None:
            conn.close()


def _remember(
    ctx: WalkerContext, planned: PlannedRequest, response: Response, latency_us: int
) -> None:
    """``ctx.record_exchange(state=, sent=, status=, received=, latency_us=)``: the same
    ring entry, built directly -- it runs once per request, and the generic method's loop
    over its keyword arguments cost a few per cent of the actor's time."""
    ctx.step += 1
    ctx.recent.append({
        "step": ctx.step, "at": time.time(), "state": planned.state[:RING_BYTES],
        "sent": planned.wire[:RING_BYTES], "status": response.status,
        "received": response.body[:512], "latency_us": latency_us,
    })


def _route_names(model: Any) -> dict[str, str]:
    """State name -> ``METHOD /template``: response findings are counted per route."""
    routes = {name: f"{state.method} {state.path}" for name, state in model.states.items()}
    if model.login is not None:
        routes[LOGIN_STATE] = f"{model.login.method} {model.login.path}"
    return routes


def _check_response(
    ctx: WalkerContext, checker: response_check.ResponseChecker, routes: dict[str, str],
    planned: PlannedRequest, conn: Connection, response: Response,
) -> bool:
    """Judge ``response`` against the response rules; True when the server sent bytes past
    its end (the connection is then out of step and must not be reused)."""
    excess = 0
    if conn.parser.buffered_bytes:
        excess = excess_bytes(conn.parser.trailing_data)
    route = routes.get(planned.state, planned.state)
    # The sample is per (state, status); the dedupe is per route.
    checker.sample[(planned.state, response.status)] = checker.sample.get(
        (planned.state, response.status), response_check.SAMPLE) - 1
    checker.markov(ctx, route, planned.method, planned.wire, response, excess)
    return excess > 0


def _closing(response: Response) -> Response:
    """``response`` marked not keep-alive, so the walker drops an out-of-step connection."""
    return dataclasses.replace(response, keep_alive=False)

