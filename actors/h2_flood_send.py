"""The flood connection of the h2flood slice: send a flood's bursts within its bounds while
reading everything the server answers, and say how the server reacted.

Why the reading matters: a server whose answers (PING ACKs, SETTINGS ACKs, responses) we
left unread would stall on its own writes, and we would judge TCP backpressure instead of
the server. Frames are counted, not kept: a flood can draw hundreds of thousands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import trio

from actors import h2_link, net
from actors.walker import WalkerContext
from protocols import h2_frames as fr
from protocols.h2_flood_verdict import FloodReaction
from protocols.h2_floods import FloodBounds, FloodClass, FloodState


async def flood_once(ctx: WalkerContext, flood: FloodClass, bounds: FloodBounds,
                     via: h2_link.Via | None, path: str, timeout: float, settle_s: float,
                     settled: Callable[[], None], sending_over: trio.Event
                     ) -> FloodReaction | str:
    """Send ``flood`` within ``bounds`` while reading what the server answers; set
    ``sending_over`` after the last burst, keep reading for ``settle_s`` (a late GOAWAY
    still counts), call ``settled()`` (the RSS "after" sample, the connection still open)
    and close. A string says why no flood could be sent."""
    try:
        with trio.fail_after(timeout * 2):
            link = await h2_link.open_link(ctx.target, timeout, via=via,
                                           settings=flood.preface_settings, path=path)
    except (trio.TooSlowError, net.TransportError, h2_link.NotHttp2) as exc:
        return f"flood connection failed: {exc}"
    try:
        if await h2_link.server_preface(link, timeout) is None:
            return f"no server preface on the flood connection ({link.closed or 'silent'})"
        link.reader.cap = 1 << 40  # frames are counted, not kept: no cap on what we drain
        seen = _Seen(closed=link.closed)
        seen.take(link.frames)
        state = FloodState(ctx.target.host_header, path, ctx.target.scheme)
        if link.via is h2_link.Via.UPGRADE:
            state.next_stream_id = 3  # stream 1 was the upgrade request (RFC 7540 §3.2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, link, seen)
            sent, stopped = await _send_bursts(link, flood, state, bounds, seen)
            sending_over.set()
            await trio.sleep(settle_s)
            settled()
            nursery.cancel_scope.cancel()
    finally:
        await link.aclose(reset=True)
    return FloodReaction(frames_sent=sent, goaway_code=seen.goaway_code,
                         rst_streams=seen.rst_streams, closed=seen.closed,
                         stopped_reading=stopped)


async def _send_bursts(link: h2_link.H2Link, flood: FloodClass, state: FloodState,
                       bounds: FloodBounds, seen: _Seen) -> tuple[int, bool]:
    """(frames sent, whether the server stopped reading)."""
    sent = octets = 0
    end = trio.current_time() + bounds.max_seconds
    data, count = flood.opening(state)
    while True:
        if data:
            try:
                with trio.fail_after(bounds.send_timeout_s):
                    await link.stream.send_all(data)
            except trio.TooSlowError:
                return sent, True
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                seen.closed = seen.closed or "reset"
                return sent, False
            sent += count
            octets += len(data)
        if (sent >= bounds.max_frames or octets >= bounds.max_bytes or seen.ended
                or trio.current_time() >= end):
            return sent, False
        data, count = flood.burst(state)
        if not data:  # the stream ids ran out
            return sent, False


@dataclass
class _Seen:
    goaway_code: int | None = None
    rst_streams: int = 0
    closed: str = ""

    @property
    def ended(self) -> bool:
        return self.goaway_code is not None or bool(self.closed)

    def take(self, frames: list[fr.Frame]) -> None:
        for frame in frames:
            if frame.type == fr.FrameType.GOAWAY and self.goaway_code is None:
                self.goaway_code = frame.error_code()
            elif frame.type == fr.FrameType.RST_STREAM:
                self.rst_streams += 1


async def _drain(link: h2_link.H2Link, seen: _Seen) -> None:
    """Read everything the server sends on the flood connection, counting what bounds it
    (a server whose answers we left unread would stall on them, not on the flood)."""
    while not seen.closed:
        try:
            chunk = await link.stream.receive_some(h2_link.READ_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            seen.closed = "reset"
            return
        if not chunk:
            seen.closed = "eof"
            return
        seen.take(link.reader.feed(chunk))
