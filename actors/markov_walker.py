"""The Markov slice's I/O shell: keep-alive HTTP/1.1 around a sans-IO ``MarkovSession``.

All protocol decisions (which request next, cookies, captures, read-after-write checks,
what a status means) are the session's; this module only moves bytes, keeps one
keep-alive connection per walker, and times each exchange. It is the hot path of a load
run, so it talks to the trio socket directly (no stream wrapper), parses with the
incremental ``ResponseParser``, and records latency into the tally's cheap pending dict.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import trio

from actors import net
from actors.walker import WalkerContext
from protocols.http1 import ResponseParser, ResponseProtocolError, ResponseTooLarge
from protocols.markov import MarkovSession
from protocols.markov_model import default_model, load_model
from protocols.openapi import load_spec, model_from_spec

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
    return settings


class _Connection:
    """One keep-alive connection: a raw trio socket plus its response parser."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.parser = ResponseParser()

    def close(self, reset: bool = False) -> None:
        if reset:
            net.arm_reset_socket(self.sock)
        self.sock.close()


async def _open(ctx: WalkerContext, timeout: float) -> _Connection:
    target = ctx.target
    with trio.move_on_after(timeout) as scope:
        try:
            sock = trio.socket.socket(
                trio.socket.AF_INET6 if ":" in target.host else trio.socket.AF_INET,
                trio.socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await sock.connect((target.host, target.port))
        except OSError as exc:
            sock.close()
            raise net.TransportError(net.cause_of(exc), str(exc)) from None
        return _Connection(sock)
    assert scope.cancelled_caught
    sock.close()
    raise net.TransportError("connect_timeout", f"{target.host}:{target.port}")


async def _exchange(conn: _Connection, data: bytes, method: str) -> Any:
    """Send one request and read exactly one response (caller holds the deadline)."""
    sock = conn.sock
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]
    parser = conn.parser
    parser.expect(method)
    while True:
        response = parser.next_response()
        if response is not None:
            return response
        chunk = await sock.recv(READ_SIZE)
        if chunk:
            parser.feed(chunk)
        else:
            parser.feed_eof()
            response = parser.next_response()
            if response is None:
                raise net.TransportError("eof", "closed before a complete response")
            return response


async def run(ctx: WalkerContext) -> None:
    settings = ctx.settings
    model = settings.get("markov_model") or default_model(ctx.target.base_path)
    session = MarkovSession(model, settings.get("openapi_spec"), ctx.rng,
                            host=ctx.target.host_header)
    tally = ctx.tally
    timeout = float(settings.get("request_timeout_s", 10.0))
    conn: _Connection | None = None
    try:
        while not ctx.expired():
            planned = session.next_request()
            started = time.perf_counter()
            mismatches_before = tally.counters.get(MIRROR_COUNTER, 0)
            try:
                with trio.fail_after(timeout):
                    if conn is None:
                        conn = await _open(ctx, timeout)
                    response = await _exchange(conn, planned.wire, planned.method)
            except (net.TransportError, trio.TooSlowError, OSError,
                    ResponseProtocolError, ResponseTooLarge) as exc:
                cause = _cause(exc)
                session.on_transport_error(planned, cause, tally)
                ctx.record_exchange(state=planned.state, sent=planned.wire, error=cause)
                if conn is not None:
                    conn.close()
                    conn = None
                await trio.sleep(ERROR_PAUSE_S)
                continue
            micros = (time.perf_counter() - started) * 1e6
            tally.record_latency("markov.latency", micros)
            tally.record_latency(f"markov.latency.{planned.state}", micros)
            session.on_response(planned, response, tally)
            ctx.record_exchange(state=planned.state, sent=planned.wire,
                                status=response.status, received=response.body[:512],
                                latency_us=int(micros))
            if tally.counters.get(MIRROR_COUNTER, 0) > mismatches_before:
                example = tally.examples.get(MIRROR_COUNTER, {})
                ctx.report_violation(MIRROR_COUNTER, {
                    "state": planned.state, "sent": planned.wire,
                    "status": response.status, "received": response.body,
                    "latency_us": int(micros), "check": example,
                }, count=False)
            if not response.keep_alive:
                conn.close()
                conn = None
            pause = getattr(session, "retry_after_s", 0.0)
            if pause:
                await trio.sleep(min(pause, max(0.0, ctx.remaining())))
    finally:
        if conn is not None:
            conn.close()


def _cause(exc: BaseException) -> str:
    if isinstance(exc, net.TransportError):
        return exc.cause
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    if isinstance(exc, ResponseTooLarge):
        return "too_large"
    if isinstance(exc, ResponseProtocolError):
        return "protocol_error"
    return net.cause_of(exc)
