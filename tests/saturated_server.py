"""A correct but saturated HTTP/1.1 server: few worker threads, a slow handler, FIFO queue.

Why it exists: the false alarm confirmation removes (issue 10). A sync server with 2 workers
(gunicorn's sync worker is the model: one request per connection, then close) queues every
new connection behind the load; an adversarial case that would get ``400`` and a close at
once waits its turn, and a walker with a 3 s deadline reports a "hang". Nothing about the
parser is wrong. This server reproduces that without gunicorn's own RFC departures (it
answers a request without Host), so a run against it must end with no confirmed violation.

How this works: the main thread accepts and queues connections; ``--workers`` threads take
them in order and serve exactly one request each with h11, refusing what RFC 9112 says to
refuse (bad grammar, invalid or repeated Host, Content-Length with Transfer-Encoding) with a
4xx and a close, timing slow heads and bodies out with 408. A valid request sleeps
``--delay`` seconds (the slow handler) and gets ``200`` and a close.

Run: ``python tests/saturated_server.py --port 8080 --workers 2 --delay 0.4``
"""

from __future__ import annotations

import argparse
import queue
import re
import socket
import threading
import time
from email.utils import formatdate

import h11

#: Whole-head and body deadline: a client that dribbles gets 408 (RFC 9110 §15.5.9).
READ_TIMEOUT_S = 5.0
MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
#: RFC 9110 §7.2 Host = uri-host [ ":" port ] (RFC 3986 §3.2.2); a repeated Host arrives
#: joined with ", " and fails the pattern, as RFC 9112 §3.2 wants (400 to more than one).
HOST = re.compile(rb"(?:\[[0-9A-Za-z:.%~_-]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]*)?")
REASONS = {200: "OK", 400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 501: "Not Implemented",
           505: "HTTP Version Not Supported"}


class _Refuse(Exception):
    """A control-flow signal carrying the refusal status."""

    def __init__(self, status: int) -> None:
        self.status = status


def _reply(sock: socket.socket, status: int, body: bytes = b"", head_only: bool = False) -> None:
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head if head_only else head + body)


def _check(request: h11.Request) -> None:
    hosts = [value for name, value in request.headers if name == b"host"]
    if len(hosts) != 1 or HOST.fullmatch(hosts[0]) is None:
        raise _Refuse(400)
    names = {name for name, _ in request.headers}
    if b"transfer-encoding" in names and b"content-length" in names:
        raise _Refuse(400)  # RFC 9112 §6.1: a smuggling attempt; reject and close
    lengths = [int(v) for n, v in request.headers if n == b"content-length"]
    if lengths and lengths[0] > MAX_BODY:
        raise _Refuse(413)


def _read(sock: socket.socket, conn: h11.Connection, started: float) -> h11.Request | None:
    """Read one whole request; None when the client left. Raises _Refuse."""
    request: h11.Request | None = None
    size = 0
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _Refuse(exc.error_status_hint) from None
        if event is h11.NEED_DATA:
            left = READ_TIMEOUT_S - (time.monotonic() - started)
            if left <= 0:
                raise _Refuse(408)
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise _Refuse(408) from None
            if not data and request is None and conn.their_state is h11.IDLE:
                return None
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            _check(event)
            request = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_BODY:
                raise _Refuse(413)
        elif isinstance(event, h11.EndOfMessage):
            return request
        else:  # ConnectionClosed: the client left mid-request
            return None


def handle(sock: socket.socket, delay: float) -> None:
    """Serve one request on ``sock`` (then the caller closes it)."""
    started = time.monotonic()
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    try:
        request = _read(sock, conn, started)
    except _Refuse as refusal:
        _reply(sock, refusal.status)
        return
    if request is None:
        return
    time.sleep(delay)  # the slow handler
    _reply(sock, 200, b"ok\n", head_only=request.method == b"HEAD")


def _worker(pending: queue.Queue[socket.socket], delay: float) -> None:
    while True:
        sock = pending.get()
        try:
            handle(sock, delay)
        except OSError:
            pass  # the client reset or left: nothing to answer
        finally:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sock.close()


def serve(port: int, workers: int, delay: float) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    pending: queue.Queue[socket.socket] = queue.Queue()
    for _ in range(workers):
        threading.Thread(target=_worker, args=(pending, delay), daemon=True).start()
    while True:
        sock, _ = listener.accept()
        pending.put(sock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.4)
    args = parser.parse_args()
    serve(args.port, args.workers, args.delay)


if __name__ == "__main__":
    main()
