"""Runs Tier 2 sequences over one keep-alive HTTP/1.1 connection (the I/O of tier2).

How this works: ``SequenceRunner`` owns a connection (``actors.keepalive``) and drives a
``protocols.tier2_sequences.SequenceRun``: ask it for a request, send it, give it the
response, until it is done. Each exchange runs under ``fail_after(timeout)``; a timeout or
a transport failure closes the connection and raises ``ExchangeFailed`` (the run keeps what
it recorded so far), and a response that does not allow keep-alive makes the next request
open a fresh connection. Nothing here judges anything.
"""

from __future__ import annotations

import trio

from actors import keepalive, net
from actors.walker import Target
from protocols.openapi_operations import Operation
from protocols.tier2_graph import Graph
from protocols.tier2_sequences import ApiRequest, SequenceRun, Step

#: Transport causes that mean "closed while idle" on a reused connection.
_IDLE_CLOSE = ("eof", "reset")
#: RFC 9110 §9.2.2's idempotent methods: only these are resent after an idle close. "A user
#: agent MUST NOT automatically retry a request with a non-idempotent method unless it has
#: some means to know that ... the original request was never applied" (RFC 9112
#: §9.3.1.1): a POST that meets a closed connection ends its sequence (aborted, not judged)
#: rather than risk creating twice.
_RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class ExchangeFailed(Exception):
    """No response: a timeout, a refused or reset connection, or an unparseable reply."""

    def __init__(self, cause: str, run: SequenceRun) -> None:
        super().__init__(cause)
        self.cause = cause
        self.run = run


def request_bytes(request: ApiRequest, host_header: str) -> bytes:
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {host_header}"]
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    if request.body is not None:
        lines.append(f"Content-Length: {len(request.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (request.body or b"")


class SequenceRunner:
    def __init__(self, target: Target, ops: dict[str, Operation], graph: Graph,
                 base_path: str, timeout: float = 5.0) -> None:
        self.target = target
        self.ops = ops
        self.graph = graph
        self.base_path = base_path
        self.timeout = timeout
        self.requests = 0
        self._conn: keepalive.Connection | None = None

    async def run(self, steps: tuple[Step, ...]) -> SequenceRun:
        """Run ``steps`` in a fresh session; raises ``ExchangeFailed`` on no response."""
        run = SequenceRun(steps, self.ops, self.graph, self.base_path)
        while (request := run.next_request()) is not None:
            data = request_bytes(request, self.target.host_header)
            for attempt in (1, 2):
                reused = self._conn is not None
                try:
                    with trio.fail_after(self.timeout):
                        if self._conn is None:
                            self._conn = await keepalive.open_connection(self.target)
                        keepalive.begin(self._conn, data, request.method)
                        response = await keepalive.complete(self._conn)
                    break
                except trio.TooSlowError:
                    self.close()
                    raise ExchangeFailed("timeout", run) from None
                except (net.TransportError, OSError) as exc:
                    self.close()
                    cause = exc.cause if isinstance(exc, net.TransportError) else \
                        net.cause_of(exc)
                    # A kept-alive connection the server closed while idle: reopen, resend
                    # an idempotent request once (RFC 9112 §9.3.1.1).
                    if not (reused and attempt == 1 and cause in _IDLE_CLOSE
                            and request.method.upper() in _RESENDABLE):
                        raise ExchangeFailed(cause, run) from None
                except Exception as exc:  # the response parser refused the reply
                    self.close()
                    raise ExchangeFailed(keepalive.failure_cause(exc), run) from None
            self.requests += 1
            run.receive(response.status, list(response.headers), response.body)
            if not response.keep_alive:
                self.close()
        return run

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def reachable(target: Target, timeout: float = 3.0) -> str | None:
    """None when a TCP connect succeeds, else why not (for exit status 3)."""
    try:
        with trio.fail_after(timeout):
            conn = await keepalive.open_connection(target)
        conn.close()
        return None
    except trio.TooSlowError:
        return "connect timed out"
    except net.TransportError as exc:
        return str(exc)
