"""A tiny single-threaded HTTP server that hangs for good on a request with ``X-Hang:``.

``python tests/hang_server.py PORT``: answers every request ``200 ok`` and closes; a request
carrying an ``X-Hang:`` header makes it stop serving while the process lives (later
connections sit in the listen backlog, never answered): the shape of a deadlocked server,
for the hang half of crash shrinking.
"""

from __future__ import annotations

import socket
import sys
import time

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"

def main(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2.0)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                continue
            if b"\nx-hang:" in data.lower():
                time.sleep(3600)  # bounded: the test stops the process long before
            try:
                conn.sendall(ANSWER)
            except OSError:
                pass


if __name__ == "__main__":
    main(int(sys.argv[1]))
