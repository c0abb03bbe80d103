"""Small blocking clients for exercising a running refapp from tests (loopback only).

Tests of refapp talk to a real child process over real sockets, because what they check is
the wire: status lines, framing, close behaviour, resets. These helpers keep each test a few
lines: an h11 keep-alive client, raw byte exchanges, and a wsproto client.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Event
from wsproto.events import Request as WsRequest

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass
class Reply:
    """A complete HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """One keep-alive connection driven by h11; remembers the session cookie it is given."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.conn = h11.Connection(h11.CLIENT)
        self.cookie: str | None = None
        self._host = f"{host}:{port}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        """Send one request (a non-bytes body is sent as JSON) and read its response."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = [("host", self._host), *(headers or [])]
        if self.cookie:
            hdrs.append(("cookie", f"session={self.cookie}"))
        if data is not None:
            hdrs += [("content-type", "application/json"), ("content-length", str(len(data)))]
        out = self.conn.send(h11.Request(method=method, target=path, headers=hdrs))
        if data:
            out += self.conn.send(h11.Data(data=data))
        out += self.conn.send(h11.EndOfMessage())
        self.sock.sendall(out)
        reply = self.read_response()
        cookie = reply.headers.get("set-cookie", "")
        if cookie.startswith("session="):
            self.cookie = cookie.split(";", 1)[0].split("=", 1)[1] or None
        return reply

    def read_response(self) -> Reply:
        status, headers, body = 0, {}, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Reply(status, headers, body)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a complete response")

    def login(self, username: str = "tester", password: str = "secret") -> Reply:
        return self.request("POST", "/login", {"username": username, "password": password})


def exchange(port: int, data: bytes, timeout: float = 3.0, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes, half-close, and return everything read until the server closes."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return read_until_close(sock, timeout)


def read_until_close(sock: socket.socket, timeout: float = 3.0) -> bytes:
    """Read until EOF or reset; raises TimeoutError if the peer neither answers nor closes."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def statuses(raw: bytes) -> list[int]:
    """Status codes of every response in a raw byte stream (enough for these tests)."""
    return [int(code) for code in _STATUS_LINE.findall(raw)]


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class WsClient:
    """A WebSocket client over a blocking socket, with a raw escape hatch for bad frames."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(WsRequest(host=f"{host}:{port}", target="/ws")))
        events = self.events()
        if not any(isinstance(e, AcceptConnection) for e in events):
            raise ConnectionError(f"handshake refused: {events}")

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def events(self) -> list[Event]:
        """Read once (blocking) and return what wsproto made of it; [] on EOF."""
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    def close(self) -> None:
        self.sock.close()


def frame(opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> bytes:
    """One client WebSocket frame (RFC 6455 §5.2), optionally unmasked (a violation)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of unmasked server frames in ``data``."""
    frames = []
    pos = 0
    while pos + 2 <= len(data):
        opcode = data[pos] & 0x0F
        length = data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        elif length == 127:
            length = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
        frames.append((opcode, data[pos : pos + length]))
        pos += length
    return frames


def ws_handshake(key: str = "dGhlIHNhbXBsZSBub25jZQ==", version: str = "13") -> bytes:
    """A raw opening handshake for /ws (RFC 6455 §1.3's sample key by default)."""
    lines = [
        "GET /ws HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Version: {version}",
    ]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
