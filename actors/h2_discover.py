"""Which way a target speaks HTTP/2, if any: ALPN h2 (https), prior knowledge, or h2c upgrade.

Why a probe and not a guess: a cleartext server may take prior knowledge (hypercorn, nginx
with ``http2 on``), only the deprecated upgrade (RFC 7540 §3.2), or neither; over TLS, only
ALPN "h2" makes a connection HTTP/2 (RFC 9113 §3.2). A way counts when the server's
connection preface (a SETTINGS frame, §3.4) arrives and a PING sent on it is answered
(§6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame
with the ACK flag set"): the h2 slice judges a crash by that PING on a fresh connection, so a
way on which it is never answered cannot be judged at all. apache2's mod_http2 is one: after
the h2c upgrade it serves the upgraded request and then closes (GOAWAY NO_ERROR "timeout")
unless the client preface came in the same packet as the upgrade request, which a client
may not send before the 101 (RFC 7540 §3.2); a graceful close is allowed (§6.8), so that
way is "not judged", not a crash on every case. Used by the coordinator's gate
(``coordinator.h2_preflight``) and by a walker that was given no way in its settings.
"""

from __future__ import annotations

import trio

from actors.h2_link import NotHttp2, Via, open_link, server_preface
from actors.net import TransportError
from actors.walker import Target
from protocols import h2_frames as fr


async def try_via(target: Target, via: Via, timeout: float, path: str = "/") -> str:
    """"" when ``via`` gives an HTTP/2 connection (server preface seen), else why not."""
    try:
        with trio.fail_after(timeout * 3):
            link = await open_link(target, timeout, via, path=path)
            try:
                first = await server_preface(link, timeout)
                if first is not None:
                    await link.send(fr.ping(PING_OPAQUE), timeout)
                    await link.read(timeout, until=_is_our_ping_ack)
            finally:
                await link.aclose()
    except NotHttp2 as exc:
        return str(exc)
    except TransportError as exc:
        return f"connect failed: {exc.cause}"
    except trio.TooSlowError:
        return "timed out"
    if first is None:
        if link.reader.problem:
            return "the answer is not HTTP/2 frames"
        return f"no server preface ({link.closed or 'timeout'})"
    if any(_is_our_ping_ack(f) for f in link.frames):
        return ""
    return (f"a PING after the server preface was not answered ({link.closed or 'timeout'}), "
            "so a crash could not be told from this way's normal close")


PING_OPAQUE = b"assay-dv"


def _is_our_ping_ack(frame: fr.Frame) -> bool:
    return (frame.type == fr.FrameType.PING and bool(frame.flags & fr.FLAG_ACK)
            and frame.payload == PING_OPAQUE)


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
