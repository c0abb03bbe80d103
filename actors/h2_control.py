"""Control traffic for the flood slice: one HTTP/2 GET on a fresh connection, timed.

Why HTTP/2 and a fresh connection: the flood slice only runs against targets that speak
HTTP/2, and a flood hurts other clients through the server's HTTP/2 machinery (its worker
pool, its event loop, its memory); a new connection per request measures what a new client
meets, connection setup (and TLS) included, the same way before and during the flood. The
RSS sampler lives here too: both are side measurements taken beside the flood.
"""

from __future__ import annotations

import contextlib

import psutil
import trio

from actors import h2_link, net
from actors.walker import Target
from protocols import h2_frames as fr
from protocols.h2_flood_verdict import ControlSample

#: Our window for control responses: the whole body may come, we stop at the status.
CONTROL_SETTINGS = {fr.Setting.ENABLE_PUSH: 0, fr.Setting.INITIAL_WINDOW_SIZE: 1 << 20}


async def control_request(target: Target, path: str, timeout: float,
                          via: h2_link.Via | None = None) -> ControlSample:
    """GET ``path`` on a new HTTP/2 connection; the sample ends at the response's status.
    Through an h2c upgrade the upgrade request itself is the GET (stream 1)."""
    started = trio.current_time()
    link: h2_link.H2Link | None = None
    try:
        with trio.fail_after(timeout):
            link = await h2_link.open_link(target, timeout, via=via,
                                           settings=CONTROL_SETTINGS, path=path)
            if link.via is not h2_link.Via.UPGRADE:
                block = fr.header_block(fr.request_fields("GET", target.host_header, path,
                                                          target.scheme))
                await link.send(fr.headers(1, block), timeout)
            if await h2_link.server_preface(link, timeout) is None:
                return ControlSample(None, error=f"no server preface ({link.closed or 'none'})")
            status = await _status(link, timeout)
    except trio.TooSlowError:
        return ControlSample(None, error="timeout")
    except net.TransportError as exc:
        return ControlSample(None, error=f"transport {exc.cause}")
    except h2_link.NotHttp2 as exc:
        return ControlSample(None, error=f"not HTTP/2: {exc}")
    finally:
        if link is not None:
            await link.aclose()
    if isinstance(status, str):
        return ControlSample(None, error=status)
    return ControlSample(trio.current_time() - started, status=status)


async def _status(link: h2_link.H2Link, timeout: float) -> int | str:
    """The :status of stream 1, or why there is none."""
    def answered(frame: fr.Frame) -> bool:
        return frame.type == fr.FrameType.GOAWAY or (
            frame.stream_id == 1 and frame.type in (fr.FrameType.HEADERS,
                                                    fr.FrameType.RST_STREAM))

    while True:
        for frame in link.frames:
            if frame.type == fr.FrameType.HEADERS and frame.stream_id == 1:
                status = fr.status_of(fr.field_block_fragment(frame))
                return status if status is not None else "response without a :status"
            if frame.stream_id == 1 and frame.type == fr.FrameType.RST_STREAM:
                return f"stream reset ({frame.describe()})"
            if frame.type == fr.FrameType.GOAWAY:
                return f"refused ({frame.describe()})"
        if link.closed:
            return f"connection closed ({link.closed})"
        if link.reader.problem or link.reader.capped:
            return f"unreadable answer ({link.reader.problem or 'over the cap'})"
        await link.read(timeout, until=answered)


def rss_of(pid: int | None) -> int | None:
    """Resident memory of ``pid`` and its descendants (nginx answers from its workers), in
    bytes; None when unknown or gone."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total
    except psutil.Error:
        return None
