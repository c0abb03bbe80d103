"""Response probes: a HEAD and an HTTP/1.0 GET per route, once per actor; and a re-fetch of
a response the strict parser refused (``explain_once``).

Why: the walkers' own traffic is HTTP/1.1 and mostly GET/POST, so the response rules about
HEAD (no body after the head, RFC 9110 §9.3.2) and about HTTP/1.0 clients (no
Transfer-Encoding, no 1xx, RFC 9112 §6.1, RFC 9110 §15.2) would never see a response to
judge. Each probe is one valid request on a fresh connection, read until the response is
complete and then for a short grace period: bytes that arrive in that period on a
connection the server keeps open are what a client would read as the next response.
Both methods are safe (RFC 9110 §9.2.1), so probing changes no state on the target.

Bounded: at most ``len(PROBES)`` connections per route per actor, each under the caller's
``timeout`` for connect, send and read, plus ``GRACE_S``; reads are capped at ``CAP``.
"""

from __future__ import annotations

from actors import net
from actors.response_check import check_raw, checker_for
from actors.walker import WalkerContext
from protocols.response_bytes import parse_exchange

#: (method, HTTP version) of each probe.
PROBES: tuple[tuple[str, str], ...] = (("HEAD", "1.1"), ("GET", "1.0"))
GRACE_S = 0.3
CAP = 65536
_CLOSED = (net.Ending.EOF, net.Ending.RESET)


async def probe_once(ctx: WalkerContext, path: str, timeout: float) -> None:
    """Send the probes to ``path`` unless this actor already did."""
    probed = checker_for(ctx).probed
    if path in probed:
        return
    probed.add(path)  # before the first await: concurrent walkers skip it
    for method, version in PROBES:
        await _probe(ctx, method, version, path, timeout)


async def explain_once(ctx: WalkerContext, route: str, method: str, wire: bytes,
                       timeout: float) -> None:
    """Re-send a safe request whose response the strict client parser refused.

    ``protocols.http1`` refuses a head with obs-fold, whitespace before a colon, a bare
    CR, or Content-Length with Transfer-Encoding, so the Markov walker only sees a
    ``protocol_error``; the lenient reader names the rule that was broken. Once per route
    per actor, and only for GET/HEAD (re-sending is safe, RFC 9110 §9.2.1).
    """
    if method not in ("GET", "HEAD"):
        return
    explained = checker_for(ctx).explained
    if route in explained:
        return
    explained.add(route)
    await _exchange(ctx, method, wire, timeout, route)


async def _probe(ctx: WalkerContext, method: str, version: str, path: str,
                 timeout: float) -> None:
    request = (f"{method} {path} HTTP/{version}\r\nHost: {ctx.target.host_header}\r\n\r\n"
               .encode("ascii", "replace"))
    await _exchange(ctx, method, request, timeout, None)


async def _exchange(ctx: WalkerContext, method: str, request: bytes, timeout: float,
                    route: str | None) -> None:
    """One request on a fresh connection, read to the end plus ``GRACE_S``, then judged."""
    try:
        stream = await net.connect(ctx.target, timeout)
    except net.TransportError as exc:
        ctx.tally.incr(f"resp.probe_error.{exc.cause}")
        return
    try:
        await net.send_all(stream, request, timeout)
        first = await net.read_until(stream, timeout, CAP,
                                     enough=lambda data: _complete(method, data))
        data, ending = first.data, first.ending
        if ending is net.Ending.DONE:
            rest = await net.read_until(stream, GRACE_S, CAP - len(data))
            data, ending = data + rest.data, rest.ending
    except net.TransportError as exc:
        ctx.tally.incr(f"resp.probe_error.{exc.cause}")
        return
    finally:
        await net.aclose_quietly(stream)
    ctx.tally.incr("resp.probes")
    ctx.record_exchange(slice="resp", sent=request, received=data, ending=ending.value)
    check_raw(ctx, request, data, closed=ending in _CLOSED, route=route)


def _complete(method: str, data: bytes) -> bool:
    """A final response whose body (if it has one the framing can end) is all here."""
    found = parse_exchange(method, data, closed=False)
    if not found or found[-1].head.status < 200:
        return False
    last = found[-1]
    return method == "HEAD" or last.head.status in (204, 304) or last.body is not None
