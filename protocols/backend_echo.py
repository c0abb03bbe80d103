"""What an ``assay backend`` answers and what it remembers, without any I/O.

How this works: a metadata backend stands behind the proxy under test and tells the
client, in every response, what the proxy delivered: the request line, the header fields
in order, the body length, the proxy-side address of that connection and how many
requests that connection carried. The server shell (``actors.backend_server``) feeds each
complete request in as a ``ReceivedRequest`` and sends the bytes built here. Every request
is also kept, exact bytes and all, in a bounded ``ReceivedRing`` that the control route
(``GET /__assay/received?since=N``) pages out as JSON, so a watch or a proxy run can
compare what arrived with what it sent.

Raw bytes travel as ``latin-1`` text: every byte maps to the code point of the same value,
so the JSON escaping is lossless (``text.encode("latin-1")`` gives the bytes back) and the
text stays readable for the ASCII a request mostly is.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: The control route: assay asks a backend what arrived (not itself recorded).
RECEIVED_PATH = "/__assay/received"
HEALTH_PATH = "/healthz"
SSE_PATH = "/sse"
WS_PATH = "/ws"
#: Most raw bytes kept per recorded request (the head and the start of the body).
MAX_RAW_BYTES = 64 * 1024
#: Most records one control answer carries; a caller pages on with ``since``.
MAX_PAGE = 1000
DEFAULT_RING = 10_000


class Route(enum.Enum):
    """Which answer a request gets, by its path."""

    #: ``/healthz``: 200 "ok", for probes from assay or the proxy; not recorded.
    HEALTH = "health"
    #: ``/__assay/received``: the recorded requests as JSON; not recorded.
    RECEIVED = "received"
    #: ``/sse``: one ``text/event-stream`` event carrying the echo document.
    SSE = "sse"
    #: ``/ws`` with an Upgrade: a WebSocket that sends the echo document, then echoes.
    WS = "ws"
    #: Anything else: the echo document as JSON.
    ECHO = "echo"


def route_of(target: str, upgrade_websocket: bool) -> Route:
    path = urlsplit(target).path
    if path == HEALTH_PATH:
        return Route.HEALTH
    if path == RECEIVED_PATH:
        return Route.RECEIVED
    if path == SSE_PATH:
        return Route.SSE
    if path == WS_PATH and upgrade_websocket:
        return Route.WS
    return Route.ECHO


def recorded(route: Route) -> bool:
    """assay's own probes and queries are not what the proxy delivered: not recorded."""
    return route not in (Route.HEALTH, Route.RECEIVED)


@dataclass(frozen=True)
class ReceivedRequest:
    """One complete request as the backend received it."""

    method: str
    target: str
    http_version: str
    headers: tuple[tuple[str, str], ...]
    body_length: int
    client_host: str
    client_port: int
    connection_id: int
    #: 1 for the first request on its connection, 2 for the next, ...
    connection_request: int


def echo_document(backend_id: int, request: ReceivedRequest) -> dict[str, Any]:
    """The JSON every echo answer carries. ``client_port`` is the proxy's source port
    toward this backend (the watch's "back source port")."""
    return {
        "backend": backend_id,
        "request_line": f"{request.method} {request.target} HTTP/{request.http_version}",
        "method": request.method,
        "target": request.target,
        "headers": [[name, value] for name, value in request.headers],
        "body_length": request.body_length,
        "client_host": request.client_host,
        "client_port": request.client_port,
        "connection": request.connection_id,
        "connection_request": request.connection_request,
    }


def echo_body(backend_id: int, request: ReceivedRequest) -> bytes:
    return json.dumps(echo_document(backend_id, request), separators=(",", ":")).encode()


def sse_event(document: dict[str, Any]) -> bytes:
    """One Server-Sent Event whose data is ``document`` (HTML §9.2.6: ``data:`` lines,
    ended by a blank line; compact JSON has no newline, so one line suffices)."""
    return b"data: " + json.dumps(document, separators=(",", ":")).encode() + b"\n\n"


def parse_since(target: str) -> int:
    """``?since=N`` of the control route: records with ``seq > N`` (0 when absent or not
    a non-negative integer)."""
    values = parse_qs(urlsplit(target).query).get("since", ["0"])
    text = values[0].strip()
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True)
class Record:
    """A received request kept for the control route (``raw`` capped at MAX_RAW_BYTES)."""

    seq: int
    at: float
    connection_id: int
    client_port: int
    raw: bytes
    raw_length: int
    #: Empty, or why the backend refused the bytes (a parse error): the bytes still count.
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "connection": self.connection_id,
                "client_port": self.client_port, "raw": self.raw.decode("latin-1"),
                "raw_length": self.raw_length, "truncated": self.raw_length > len(self.raw),
                "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(seq=int(data["seq"]), at=float(data["at"]),
                   connection_id=int(data["connection"]), client_port=int(data["client_port"]),
                   raw=str(data["raw"]).encode("latin-1"), raw_length=int(data["raw_length"]),
                   error=str(data.get("error", "")))


@dataclass
class ReceivedRing:
    """The last ``capacity`` records, numbered from 1 in arrival order; ``dropped`` says
    how many older ones no longer fit."""

    capacity: int = DEFAULT_RING
    records: deque[Record] = field(default_factory=deque)
    next_seq: int = 1
    dropped: int = 0

    def add(self, at: float, connection_id: int, client_port: int, raw: bytes,
            error: str = "", length: int | None = None) -> Record:
        """``length``: the request's full length when ``raw`` is only its start."""
        record = Record(self.next_seq, at, connection_id, client_port, raw[:MAX_RAW_BYTES],
                        max(len(raw), length or 0), error)
        self.next_seq += 1
        self.records.append(record)
        while len(self.records) > self.capacity:
            self.records.popleft()
            self.dropped += 1
        return record

    def since(self, seq: int, limit: int = MAX_PAGE) -> list[Record]:
        out: list[Record] = []
        for record in self.records:
            if record.seq > seq:
                out.append(record)
                if len(out) >= limit:
                    break
        return out


def received_page(backend_id: int, ring: ReceivedRing, since: int) -> bytes:
    """The control route's answer: records after ``since`` (at most MAX_PAGE), the last
    sequence number handed out and how many were dropped from the ring."""
    records = ring.since(since)
    return json.dumps({"backend": backend_id, "last_seq": ring.next_seq - 1,
                       "dropped": ring.dropped,
                       "records": [r.to_json() for r in records]}).encode()


def record_line(backend_id: int, record: Record) -> str:
    """One JSON line of ``--record FILE``."""
    return json.dumps({"backend": backend_id, **record.to_json()}) + "\n"


def header_pairs(raw_headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """h11's header list as text, names as received (latin-1 keeps every byte)."""
    return tuple((bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                 for n, v in raw_headers)
