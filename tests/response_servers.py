"""Small targets with one response-side defect each, for tests/test_response_rules_servers.py.

* ``asgi_app``: a plain ASGI app; daphne serves it without a Date field (RFC 9110 §6.6.1).
* ``python tests/response_servers.py tornado PORT``: tornado, whose 405 for a method the
  handler lacks carries no Allow field (RFC 9110 §15.5.6).
* ``python tests/response_servers.py overlong PORT``: answers every request with
  ``Content-Length: 2`` and four body bytes on a kept-alive connection (a framing hazard).
"""

from __future__ import annotations

import asyncio
import sys
from email.utils import formatdate


async def asgi_app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})


async def _tornado(port: int) -> None:
    import tornado.web

    class Root(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("ok\n")

    tornado.web.Application([(r"/", Root)]).listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


async def _overlong_connection(reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":", 1)[1]))
            date = formatdate(usegmt=True).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nDate: " + date
                         + b"\r\nContent-Length: 2\r\n\r\nokXX")
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            ValueError):
        pass
    finally:
        writer.close()


async def _overlong(port: int) -> None:
    server = await asyncio.start_server(_overlong_connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    kind, port_text = sys.argv[1], sys.argv[2]
    asyncio.run({"tornado": _tornado, "overlong": _overlong}[kind](int(port_text)))


def wsgi_app(environ, start_response):  # type: ignore[no-untyped-def]
    """A WSGI app that leaves HEAD to its server (as PEP 3333 allows): waitress then sends
    the body after the head of a HEAD response (RFC 9110 §9.3.2)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
