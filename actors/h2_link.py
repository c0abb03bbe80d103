"""One raw HTTP/2 connection for the torture and flood slices: bytes out, frames in.

Raw, not ``h2``: these slices send what a conforming client never would and judge what
comes back frame by frame, so the connection is a stream plus ``protocols.h2_frames``'s
tolerant reader. How the connection becomes HTTP/2 follows RFC 9113 §3: over TLS by ALPN
"h2" (§3.2), on cleartext with prior knowledge (§3.3), or, for a server that only takes
the (deprecated) h2c upgrade, through a 101 (RFC 7540 §3.2; the upgrade request is then
stream 1, answered by the server on HTTP/2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import trio

from actors import net, tls
from actors.walker import Target
from protocols import h2_frames as fr
from protocols.h2c import build_upgrade_request, head_complete
from protocols.response_head import HeadError, parse_response_head
from protocols.tls_options import ALPN_H2

READ_CHUNK = 65536


class Via(enum.Enum):
    ALPN = "alpn"  # https: TLS with ALPN h2
    PRIOR = "prior"  # http: prior knowledge
    UPGRADE = "upgrade"  # http: Upgrade: h2c, then HTTP/2 after the 101


class NotHttp2(Exception):
    """The target did not become HTTP/2 this way (a value, not a fault: say why)."""


@dataclass
class H2Link:
    stream: trio.SocketStream
    via: Via
    reader: fr.FrameReader = field(default_factory=fr.FrameReader)
    #: Every frame received so far, in order (bounded by the reader's cap).
    frames: list[fr.Frame] = field(default_factory=list)
    #: How the last read ended: "" while open, else "eof" / "reset".
    closed: str = ""

    async def send(self, data: bytes, timeout: float) -> None:
        await net.send_all(self.stream, data, timeout)

    async def read(self, timeout: float, until: object = None) -> list[fr.Frame]:
        """Frames that arrive within ``timeout`` (stopping early when ``until(frame)`` is
        true for one, or at EOF/reset); they are also appended to ``frames``."""
        got: list[fr.Frame] = []
        with trio.move_on_after(timeout):
            while not self.closed:
                try:
                    chunk = await self.stream.receive_some(READ_CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    self.closed = "reset"
                    break
                if not chunk:
                    self.closed = "eof"
                    break
                new = self.reader.feed(chunk)
                got.extend(new)
                self.frames.extend(new)
                if self.reader.problem or self.reader.capped:
                    break
                if callable(until) and any(until(f) for f in new):
                    break
        return got

    async def aclose(self, reset: bool = False) -> None:
        if reset:
            await net.close_with_reset(self.stream)
        else:
            await net.aclose_quietly(self.stream)


async def open_link(target: Target, timeout: float, via: Via | None = None,
                    settings: dict[int, int] | None = None, path: str = "/") -> H2Link:
    """Connect and send our connection preface (§3.4) with ``settings``; ``via`` defaults to
    ALPN for https and prior knowledge for http. Raises ``net.TransportError`` when the
    connection fails and ``NotHttp2`` when the server does not take HTTP/2 this way (ALPN
    not "h2", the upgrade declined). The server's preface is not awaited here: read it."""
    if via is None:
        via = Via.ALPN if target.scheme == "https" else Via.PRIOR
    preface = fr.client_preface(settings if settings is not None else fr.DEFAULT_SETTINGS)
    stream = await net.connect(target, timeout, alpn=ALPN_H2)
    link = H2Link(stream, via)
    try:
        if via is Via.ALPN:
            chosen = tls.negotiated_alpn(stream)
            if chosen != "h2":
                raise NotHttp2(f"ALPN chose {chosen or 'nothing'}, not h2")
        elif via is Via.UPGRADE:
            await _upgrade(link, target, path, timeout)
        await link.send(preface, timeout)
    except BaseException:
        await link.aclose()
        raise
    return link


async def _upgrade(link: H2Link, target: Target, path: str, timeout: float) -> None:
    await link.send(build_upgrade_request(path, target.host_header), timeout)
    got = await net.read_until(link.stream, timeout, 65536, head_complete)
    head = parse_response_head(got.data)
    if isinstance(head, HeadError) or head is None:
        raise NotHttp2(f"no HTTP/1.1 answer to the h2c upgrade ({got.ending.value})")
    if head.status != 101:
        raise NotHttp2(f"h2c upgrade declined with {head.status}")
    rest = got.data[head.length:]
    if rest:
        link.frames.extend(link.reader.feed(rest))


async def server_preface(link: H2Link, timeout: float) -> fr.Frame | None:
    """Read until the server's first SETTINGS (its preface, §3.4) and ACK it (§6.5.3);
    None when none came (the caller says why: ``link.closed`` or a timeout)."""
    def is_settings(f: fr.Frame) -> bool:
        return f.type == fr.FrameType.SETTINGS and not f.flags & fr.FLAG_ACK

    first = next((f for f in link.frames if is_settings(f)), None)
    if first is None:
        await link.read(timeout, until=is_settings)
        first = next((f for f in link.frames if is_settings(f)), None)
    if first is not None:
        await link.send(fr.SETTINGS_ACK, timeout)
    return first
