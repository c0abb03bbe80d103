"""A strict little HTTP/1.1 server whose body handling can be made granian-like.

It validates the request head the way a careful server does (request line, field syntax,
one valid Host, Content-Length digits, Transfer-Encoding exactly ``chunked``, not both) and
routes: ``GET /`` (and HEAD) answers 200, ``POST /`` answers 405 without reading the body (and
closes), ``POST /upload`` reads the body (Content-Length or chunked, with extensions and
trailers) and answers 200. A malformed chunked body on ``/upload`` gets 400 and a close,
or, with ``defective=True``, 500: the framing error reached the application, as granian
was seen to do. Every request path is recorded, so a test can see where cases went.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HEAD_CAP = 32 * 1024
BODY_CAP = 1 << 20
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
REQUEST_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*|http://[\x21-\x7e]+) HTTP/1\.([01])")
HOST = re.compile(rb"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})((?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
                        rb"(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|\"[^\"\r\n]*\"))?)*)")


class BadRequest(Exception):
    """The request cannot be framed: answer ``status`` and close."""

    def __init__(self, status: int = 400) -> None:
        super().__init__(status)
        self.status = status


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self, cap: int = HEAD_CAP) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > cap or b"\n" in self.buf:
                raise BadRequest()
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if b"\r" in line or b"\n" in line:
            raise BadRequest()
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self.fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data


def _head(conn: _Conn) -> tuple[bytes, bytes, bytes, dict[bytes, list[bytes]]]:
    while conn.buf.startswith(b"\r\n"):
        conn.buf = conn.buf[2:]
    match = REQUEST_LINE.fullmatch(conn.line())
    if match is None:
        raise BadRequest()
    fields: dict[bytes, list[bytes]] = {}
    size = 0
    while (line := conn.line()) != b"":
        size += len(line)
        if size > HEAD_CAP:
            raise BadRequest(431)
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):
            raise BadRequest()
        value = value.strip(b" \t")
        if any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in value):
            raise BadRequest()
        fields.setdefault(name.lower(), []).append(value)
    hosts = fields.get(b"host", [])
    if len(hosts) != 1 or not HOST.fullmatch(hosts[0]):
        raise BadRequest()
    return match.group(1), match.group(2), match.group(3), fields


def _framing(fields: dict[bytes, list[bytes]], version: bytes) -> int | None:
    """The body length, None for chunked; checked before routing, as servers do."""
    lengths, codings = fields.get(b"content-length"), fields.get(b"transfer-encoding")
    if lengths and codings:
        raise BadRequest()
    if codings:
        if version == b"0" or len(codings) != 1 or codings[0].lower() != b"chunked":
            raise BadRequest(501 if b"chunked" not in codings[0].lower() else 400)
        return None
    if lengths:
        if len(lengths) != 1 or not re.fullmatch(rb"[0-9]{1,7}", lengths[0]):
            raise BadRequest(413 if lengths[0].isdigit() else 400)
        return int(lengths[0])
    return 0


class BodyError(Exception):
    """A malformed chunked body: the one place where the defective variant answers 500."""


def _chunked(conn: _Conn) -> bytes:
    body = b""
    while True:
        try:
            match = CHUNK_LINE.fullmatch(conn.line(4096))
        except BadRequest:
            raise BodyError from None
        if match is None:
            raise BodyError
        size = int(match.group(1), 16)
        if size == 0:
            break
        body += conn.exactly(size)
        if len(body) > BODY_CAP or conn.exactly(2) != b"\r\n":
            raise BodyError
    while True:  # trailer section
        try:
            line = conn.line(8192)
        except BadRequest:
            raise BodyError from None
        if line == b"":
            return body
        name, colon, _ = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):
            raise BodyError


def _answer(status: int, reason: str, body: bytes = b"", close: bool = False,
            extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n" + extra
            + ("Connection: close\r\n" if close else "") + "\r\n")
    return head.encode() + body


class BodyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, defective: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.defective = defective
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(socketserver.BaseRequestHandler):
    server: BodyServer

    def handle(self) -> None:
        self.request.settimeout(3.0)
        conn = _Conn(self.request)
        try:
            while self._one(conn):
                pass
        except (EOFError, OSError):
            pass

    def _one(self, conn: _Conn) -> bool:
        send = self.request.sendall
        try:
            method, target, version, fields = _head(conn)
            length = _framing(fields, version)
        except BadRequest as exc:
            send(_answer(exc.status, "Bad Request", close=True))
            return False
        if target.startswith(b"http://"):  # absolute-form (RFC 9112 §3.2.2): MUST accept
            target = b"/" + target[7:].partition(b"/")[2]
        path = target.split(b"?", 1)[0].decode()
        with self.server.lock:
            self.server.seen.append((method.decode(), path))
        if path == "/" and method == b"POST":
            send(_answer(405, "Method Not Allowed", close=True, extra="Allow: GET\r\n"))
            return False
        try:
            body = _chunked(conn) if length is None else conn.exactly(length)
        except BodyError:
            if self.server.defective and path == "/upload":
                send(_answer(500, "Internal Server Error", b"framing error", close=True))
            else:
                send(_answer(400, "Bad Request", close=True))
            return False
        close = version == b"0" or b"close" in b",".join(fields.get(b"connection", [])).lower()
        if path == "/upload" and method == b"POST":
            send(_answer(200, "OK", b"%d" % len(body), close))
        elif path == "/" and method in (b"GET", b"HEAD"):
            answer = _answer(200, "OK", b"ok", close)
            send(answer[:-2] if method == b"HEAD" else answer)  # HEAD: the head only
        elif path == "/":
            send(_answer(405, "Method Not Allowed", close=True, extra="Allow: GET\r\n"))
            return False
        else:
            send(_answer(404, "Not Found", close=close))
        return not close


@contextmanager
def body_server(defective: bool) -> Iterator[BodyServer]:
    server = BodyServer(defective)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
