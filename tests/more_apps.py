"""Minimal apps on more real HTTP/1.1 servers, for tests/test_more_servers.py.

``python -m tests.more_apps SERVER PORT`` serves on 127.0.0.1:PORT the same app as
``tests.conformance_apps`` (reads every body; GET, HEAD and POST get 200 ``ok``, other
methods 405 with ``Allow``) on granian, twisted.web, cheroot, werkzeug's dev server or the
standard library's ``http.server``: what assay judges is the server's parser, not the app.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tests.conformance_apps import ALLOWED, asgi_app, wsgi_app

SERVERS = ("granian", "twisted", "cheroot", "werkzeug", "stdlib")
#: Python module each server needs (the stdlib one needs nothing more).
MODULES = {"granian": "granian", "twisted": "twisted", "cheroot": "cheroot",
           "werkzeug": "werkzeug", "stdlib": "http.server"}


async def asgi_echo_app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """``asgi_app``, but a WebSocket echoes every message until the client closes, so the
    ws slice judges the server's WebSocket framing, not an app that hangs up at once."""
    if scope["type"] != "websocket":
        await asgi_app(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"),
                    "text": message.get("text")})


def _granian(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian("tests.more_apps:asgi_echo_app", address="127.0.0.1", port=port,
            interface=Interfaces.ASGI, workers=1, log_enabled=False).serve()


def _twisted(port: int) -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Answer(resource.Resource):
        isLeaf = True

        def render(self, request: Any) -> bytes:
            request.content.read()
            request.setHeader(b"content-type", b"text/plain")
            if request.method not in (b"GET", b"HEAD", b"POST"):
                request.setResponseCode(405)
                request.setHeader(b"allow", ALLOWED)
                return b"method not allowed\n"
            return b"ok\n"

    reactor.listenTCP(port, server.Site(Answer()), interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def _cheroot(port: int) -> None:
    from cheroot import wsgi

    wsgi.Server(("127.0.0.1", port), wsgi_app, numthreads=10).safe_start()


def _werkzeug(port: int) -> None:
    import logging

    from werkzeug.serving import run_simple
    from werkzeug.wsgi import get_input_stream

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """``wsgi_app`` reading the body through werkzeug's own stream: its dev server
        hands the raw socket as ``wsgi.input`` (PEP 3333: read no more than
        CONTENT_LENGTH), so reading to EOF would wait on the client forever."""
        environ["wsgi.input"] = get_input_stream(environ)
        return wsgi_app(environ, start_response)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    run_simple("127.0.0.1", port, app, threaded=True)


def _stdlib(port: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        """Answers GET, HEAD and POST after reading the body by its Content-Length, as most
        handlers do: the stdlib frames no request body itself and knows no chunked coding,
        so what assay finds is what such a server does, not a body left unread."""

        protocol_version = "HTTP/1.1"

        def _answer(self, send_body: bool = True) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer()

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            """Quiet: the tests read assay's report, not an access log."""

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def serve(server: str, port: int) -> None:
    """Serve forever (until signalled) with ``server`` on 127.0.0.1:``port``."""
    runners = {"granian": _granian, "twisted": _twisted, "cheroot": _cheroot,
               "werkzeug": _werkzeug, "stdlib": _stdlib}
    if server not in runners:
        raise SystemExit(f"unknown server {server!r} (known: {', '.join(SERVERS)})")
    runners[server](port)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
