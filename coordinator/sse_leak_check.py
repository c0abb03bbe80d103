"""Coordinator-side checks for the ws/sse slices: route pre-flight and SSE subscriber return.

How this works:

* ``route_exists`` runs before ws/sse walkers are planned. For ``ws`` it performs a real
  opening handshake (a 101 with the right ``Sec-WebSocket-Accept``); for ``sse`` a ``GET``
  must answer 200 with ``text/event-stream``. Anything else returns ``(False, reason)`` with
  a reason the results can print ("no /ws route (404)"), so absent routes are never passed
  silently.
* ``subscriber_baseline`` reads the target's own subscriber count before the run, from a
  JSON document (``/stats`` field ``sse_subscribers`` on refapp; dotted paths allowed) or a
  Prometheus text metric (all series of the metric summed). ``check_subscribers_return``
  polls the same source after the walkers stop and passes once the count is back at or
  below the baseline within ``grace_s``: every subscriber the sse slice abandoned must have
  been released. A count that never comes back is I-SSE-LEAK; a count that cannot be read
  is "not judged", never a failure (``leak_verdict`` tells the two apart).

Every network operation runs under the caller's ``timeout``; every read is capped.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal
from urllib.parse import urlsplit

import h11
import trio

from actors import net
from actors.walker import Target
from protocols.outcome import Verdict
from protocols.response_head import HEAD_CAP, ResponseHead, parse_response_head
from protocols.websocket_frames import build_handshake, make_key, parse_handshake_response

BODY_CAP = 1024 * 1024
POLL_INTERVAL_S = 0.2


class _FetchError(Exception):
    """The stats/metrics document could not be fetched or read."""


def _target_for(target_url: str, url_or_path: str) -> tuple[Target, str]:
    """Resolve an absolute URL or a path (relative to the target's origin)."""
    if "://" in url_or_path:
        parts = urlsplit(url_or_path)
        base = f"{parts.scheme}://{parts.netloc}/"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Target.from_url(base), path
    return Target.from_url(target_url), url_or_path if url_or_path.startswith("/") else (
        "/" + url_or_path
    )


async def _get(target: Target, path: str, timeout: float) -> tuple[int, bytes]:
    """A capped ``GET`` with ``Connection: close`` through h11: (status, body)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_CAP)
    request = conn.send(h11.Request(method="GET", target=path, headers=[
        ("Host", target.host_header), ("Connection", "close"), ("Accept", "*/*")]))
    status = 0
    body = bytearray()
    with trio.move_on_after(timeout) as scope:
        try:
            stream = await net.connect(target, timeout)
        except net.TransportError as exc:
            raise _FetchError(f"connect failed: {exc.cause}") from None
        try:
            await net.send_all(stream, request or b"", timeout)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await net.receive_some(stream, timeout))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > BODY_CAP:
                        raise _FetchError(f"body over {BODY_CAP} bytes")
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
        except net.TransportError as exc:
            raise _FetchError(f"transport: {exc.cause}") from None
        except h11.RemoteProtocolError as exc:
            raise _FetchError(f"malformed response: {exc}") from None
        finally:
            await net.aclose_quietly(stream)
    if scope.cancelled_caught:
        raise _FetchError(f"no complete answer within {timeout} s")
    return status, bytes(body)


def _json_field(document: Any, field: str) -> int:
    value = document
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise _FetchError(f"no field {field!r} in the stats document")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _FetchError(f"field {field!r} is not a number: {value!r}")
    return int(value)


def _prometheus_value(text: str, metric: str) -> int:
    """Sum every series of ``metric`` in Prometheus text exposition format."""
    total = 0.0
    found = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if name_end < 0 or line[:name_end] != metric:
            continue
        rest = line[name_end:]
        if rest.startswith("{"):
            close = rest.rfind("}")
            if close < 0:
                continue
            rest = rest[close + 1 :]
        fields = rest.split()
        try:
            value = float(fields[0])
        except (IndexError, ValueError):
            continue
        if math.isfinite(value):
            total += value
            found = True
    if not found:
        raise _FetchError(f"no metric {metric!r} in the metrics document")
    return round(total)


async def _read_count(
    target_url: str,
    stats_url: str | None,
    field: str | None,
    prometheus_metric: str | None,
    timeout: float,
) -> int:
    if stats_url is None or (field is None and prometheus_metric is None):
        raise _FetchError("no stats URL with a field or metric configured")
    target, path = _target_for(target_url, stats_url)
    status, body = await _get(target, path, timeout)
    if status != 200:
        raise _FetchError(f"{stats_url} answered {status}")
    text = body.decode("utf-8", "replace")
    if field is not None:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise _FetchError(f"{stats_url} is not JSON") from None
        return _json_field(document, field)
    assert prometheus_metric is not None
    return _prometheus_value(text, prometheus_metric)


async def subscriber_baseline(
    target_url: str,
    stats_url: str | None,
    field: str | None,
    prometheus_metric: str | None,
    timeout: float,
) -> int | None:
    """The subscriber count before the run, or None when it cannot be read."""
    try:
        return await _read_count(target_url, stats_url, field, prometheus_metric, timeout)
    except _FetchError:
        return None


async def leak_verdict(
    target_url: str,
    stats_url: str | None,
    field: str | None,
    prometheus_metric: str | None,
    baseline: int | None,
    grace_s: float,
    *,
    timeout: float = 5.0,
) -> tuple[Verdict, str]:
    """PASS when the count returns to ``baseline`` within ``grace_s``; VIOLATION when it
    stays above; UNJUDGED (with the reason) when no baseline or no reading exists."""
    what = field or prometheus_metric or "subscribers"
    if baseline is None:
        return Verdict.UNJUDGED, "not judged: no subscriber baseline was read before the run"
    started = trio.current_time()
    give_up = started + grace_s
    last: int | None = None
    problem = ""
    while True:
        try:
            last = await _read_count(target_url, stats_url, field, prometheus_metric,
                                     min(timeout, max(give_up - trio.current_time(), 0.1)))
            if last <= baseline:
                waited = trio.current_time() - started
                return Verdict.PASS, (f"{what} back to {last} (baseline {baseline}) after "
                                      f"{waited:.1f} s")
        except _FetchError as exc:
            problem = str(exc)
        if trio.current_time() + POLL_INTERVAL_S > give_up:
            break
        await trio.sleep(POLL_INTERVAL_S)
    if last is None:
        return Verdict.UNJUDGED, f"not judged: {what} could not be read ({problem})"
    return Verdict.VIOLATION, (f"{what} still {last} after {grace_s:.1f} s "
                               f"(baseline {baseline}): {last - baseline} subscriber slot(s) "
                               "not released")


async def check_subscribers_return(
    target_url: str,
    stats_url: str | None,
    field: str | None,
    prometheus_metric: str | None,
    baseline: int | None,
    grace_s: float,
    *,
    timeout: float = 5.0,
) -> tuple[bool, str]:
    """``(False, reason)`` only for a real leak; "not judged" cases return ``(True, reason)``
    with a reason starting "not judged:" (use ``leak_verdict`` to tell them apart)."""
    verdict, reason = await leak_verdict(target_url, stats_url, field, prometheus_metric,
                                         baseline, grace_s, timeout=timeout)
    return verdict is not Verdict.VIOLATION, reason


async def route_exists(
    target_url: str, path: str, kind: Literal["ws", "sse"], timeout: float
) -> tuple[bool, str]:
    """Whether ``path`` serves ``kind`` (a real ws handshake / an SSE 200)."""
    if kind not in ("ws", "sse"):
        raise ValueError(f"route kind must be 'ws' or 'sse', not {kind!r}")
    target = Target.from_url(target_url)
    key = make_key(bytes(range(16)))
    if kind == "ws":
        request = build_handshake(path, target.host_header, key)
    else:
        request = (f"GET {path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                   "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()
    try:
        stream = await net.connect(target, timeout)
    except net.TransportError as exc:
        return False, f"no {path} route: connect failed ({exc.cause})"
    try:
        try:
            await net.send_all(stream, request, timeout)
        except net.TransportError as exc:
            return False, f"no {path} route: send failed ({exc.cause})"
        result = await net.read_until(stream, timeout, HEAD_CAP + 1,
                                      lambda data: parse_response_head(data) is not None)
    finally:
        await net.aclose_quietly(stream)
    head = parse_response_head(result.data)
    if not isinstance(head, ResponseHead):
        why = head.reason if head is not None else f"no response ({result.ending.value})"
        return False, f"no {path} route: {why}"
    if kind == "ws":
        answer = parse_handshake_response(result.data, key)
        if answer is not None and answer.accepted:
            return True, f"{path} accepts WebSocket handshakes"
        if head.status != 101:
            return False, f"no {path} route ({head.status})"
        problem = answer.problem if answer is not None else "incomplete"
        return False, f"no {path} route: invalid handshake ({problem})"
    content_type = (head.get(b"content-type") or b"").split(b";")[0].strip().lower()
    if head.status == 200 and content_type == b"text/event-stream":
        return True, f"{path} serves text/event-stream"
    if head.status != 200:
        return False, f"no {path} route ({head.status})"
    shown = content_type.decode("latin-1")
    return False, f"no {path} route: 200 with {shown!r}, not an event stream"
