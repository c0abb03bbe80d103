"""Which way a target speaks HTTP/2, if any: ALPN h2 (https), prior knowledge, or h2c upgrade.

Why a probe and not a guess: a cleartext server may take prior knowledge (hypercorn, nginx
with ``http2 on``), only the deprecated upgrade (RFC 7540 §3.2), or neither; over TLS, only
ALPN "h2" makes a connection HTTP/2 (RFC 9113 §3.2). A way counts when the server's
connection preface (a SETTINGS frame, §3.4) arrives. Used by the coordinator's gate
(``coordinator.h2_preflight``) and by a walker that was given no way in its settings.
"""

from __future__ import annotations

import trio

from actors.h2_link import NotHttp2, Via, open_link, server_preface
from actors.net import TransportError
from actors.walker import Target


async def try_via(target: Target, via: Via, timeout: float, path: str = "/") -> str:
    """"" when ``via`` gives an HTTP/2 connection (server preface seen), else why not."""
    try:
        with trio.fail_after(timeout * 3):
            link = await open_link(target, timeout, via, path=path)
            try:
                first = await server_preface(link, timeout)
            finally:
                await link.aclose()
    except NotHttp2 as exc:
        return str(exc)
    except TransportError as exc:
        return f"connect failed: {exc.cause}"
    except trio.TooSlowError:
        return "timed out"
    if first is not None:
        return ""
    if link.reader.problem:
        return "the answer is not HTTP/2 frames"
    return f"no server preface ({link.closed or 'timeout'})"


async def discover(target: Target, timeout: float, path: str = "/") -> tuple[Via | None, str]:
    """(the way, "") or (None, why no way worked)."""
    if target.scheme == "https":
        why = await try_via(target, Via.ALPN, timeout, path)
        return (Via.ALPN, "") if not why else (None, f"no HTTP/2 over TLS: {why}")
    prior = await try_via(target, Via.PRIOR, timeout, path)
    if not prior:
        return Via.PRIOR, ""
    upgrade = await try_via(target, Via.UPGRADE, timeout, path)
    if not upgrade:
        return Via.UPGRADE, ""
    return None, f"no HTTP/2 on cleartext: prior knowledge: {prior}; h2c upgrade: {upgrade}"
