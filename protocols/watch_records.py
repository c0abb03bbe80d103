"""``assay watch``: the plan, one request's record, and its CSV forms, without I/O.

How this works: every watch client logs each request it sends through the proxy as a
``WatchRecord``: when (wall-clock µs, so the actors' records merge in one time order),
which client and sequence number, the status or the connection error, the front source
port (the client's own local port toward the proxy), and from the backend's JSON answer
(``protocols.backend_echo``) which backend answered and the proxy's source port toward it
(the back source port). The actors write their records to shard files
(``shard_line``); the coordinator reads them back (``parse_shard_line``), merges them
by time and writes the CSV the user asked for (``CSV_HEADER`` + ``csv_line``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

CSV_HEADER = "us_since_start,client,seq,result,front_port,backend,back_port,retried\n"
#: The ``result`` of a request that got a status; anything else is a connection error.
OK_STATUS = 200
#: ``backend``/port when there is none (a failed request, or an answer not from a backend).
NONE = -1
#: Response header the backend sends its id in (``actors.backend_server``), used when a
#: body cannot be read as the backend's JSON.
BACKEND_HEADER = "x-assay-backend"


@dataclass(frozen=True)
class WatchPlan:
    clients: int
    rate_per_s: float
    duration_s: float
    path: str
    timeout_s: float
    shard_dir: str
    backend_ports: tuple[int, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {**asdict(self), "backend_ports": list(self.backend_ports)}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> WatchPlan:
        return cls(clients=int(wire["clients"]), rate_per_s=float(wire["rate_per_s"]),
                   duration_s=float(wire["duration_s"]), path=str(wire["path"]),
                   timeout_s=float(wire["timeout_s"]), shard_dir=str(wire["shard_dir"]),
                   backend_ports=tuple(int(p) for p in wire.get("backend_ports", ())))

    def client_ids(self, rank: int, count: int) -> range:
        """The clients actor ``rank`` of ``count`` runs."""
        return range(rank, self.clients, count)

    def interval_s(self) -> float:
        """Between two requests of one client: the rate is split across the clients."""
        return self.clients / self.rate_per_s

    def offset_s(self, client: int) -> float:
        """Clients start staggered across one interval, not all at once."""
        return self.interval_s() * client / self.clients


@dataclass(frozen=True)
class WatchRecord:
    #: Wall-clock µs when the request was sent (``time.time_ns() // 1000``).
    at_us: int
    client: int
    seq: int
    #: "200", another status, or a connection error's cause ("refused", "eof", ...).
    result: str
    front_port: int
    backend: int
    back_port: int
    #: The first try on a reused keep-alive connection found it closed by the proxy and
    #: the request was sent again on a new one (RFC 9112 §9.3.1 lets a client retry).
    retried: bool = False

    @property
    def ok(self) -> bool:
        return self.result == str(OK_STATUS)


def shard_line(record: WatchRecord) -> str:
    return json.dumps([record.at_us, record.client, record.seq, record.result,
                       record.front_port, record.backend, record.back_port,
                       int(record.retried)]) + "\n"


def parse_shard_line(line: str) -> WatchRecord | None:
    """A record, or None for a line that is not one (a shard cut off mid-line)."""
    try:
        at, client, seq, result, front, backend, back, retried = json.loads(line)
        return WatchRecord(int(at), int(client), int(seq), str(result), int(front),
                           int(backend), int(back), bool(retried))
    except (ValueError, TypeError):
        return None


def merge(shards: Iterable[Iterable[str]]) -> list[WatchRecord]:
    """Every record of every shard, in time order (then client, seq)."""
    records = [r for lines in shards for r in map(parse_shard_line, lines) if r is not None]
    records.sort(key=lambda r: (r.at_us, r.client, r.seq))
    return records


def csv_line(record: WatchRecord, start_us: int) -> str:
    return (f"{record.at_us - start_us},{record.client},{record.seq},{record.result},"
            f"{record.front_port},{record.backend},{record.back_port},{int(record.retried)}\n")


def answer_of(body: bytes, backend_header: bytes | None) -> tuple[int, int]:
    """(backend id, back source port) from a backend's JSON answer; (NONE, NONE) when the
    body is not one (the proxy answered itself), the header's id when only it is there."""
    try:
        document = json.loads(body)
        return int(document["backend"]), int(document["client_port"])
    except (ValueError, TypeError, KeyError):
        header = (backend_header or b"").strip()
        return (int(header) if header.isdigit() else NONE), NONE


def build_request(path: str, host: str, client: int, seq: int) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Assay-Client: {client}\r\n"
            f"X-Assay-Seq: {seq}\r\n\r\n").encode()
