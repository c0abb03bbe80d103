"""Minimal apps on real PyPI servers, for the conformance tests: one command per server.

``python -m tests.conformance_apps SERVER PORT`` serves on 127.0.0.1:PORT an app that reads
every request body and answers GET, HEAD and POST with 200 ``ok`` (other methods with 405
and ``Allow``), on every path, and accepts a WebSocket on every path where the server can.
The app does as little as possible so that what the adversarial slice judges is the
server's HTTP/1.1 parser, not the application.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

ALLOWED = b"GET, HEAD, POST"
SERVERS = ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "daphne", "aiohttp", "waitress",
           "gunicorn", "tornado")


async def asgi_app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """Reads the whole body, answers 200 (405 for other methods); accepts WebSockets."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    ok = scope["method"] in ("GET", "HEAD", "POST")
    body = b"ok\n" if ok else b"method not allowed\n"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    if not ok:
        headers.append((b"allow", ALLOWED))
    await send({"type": "http.response.start", "status": 200 if ok else 405,
                "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
    """The WSGI twin of ``asgi_app`` (no WebSocket)."""
    stream = environ["wsgi.input"]
    while stream.read(65536):
        pass
    ok = environ["REQUEST_METHOD"] in ("GET", "HEAD", "POST")
    body = b"ok\n" if ok else b"method not allowed\n"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    if not ok:
        headers.append(("Allow", ALLOWED.decode()))
    start_response("200 OK" if ok else "405 Method Not Allowed", headers)
    return [body]


def slow_wsgi_app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
    """A correct handler that takes 0.1 s and never reads the body: a sync server runs it
    for every client that sent a whole head, even one that has since left."""
    time.sleep(0.1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]


def _aiohttp(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.method not in ("GET", "HEAD", "POST"):
            return web.Response(status=405, text="method not allowed\n",
                                headers={"Allow": ALLOWED.decode()})
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _tornado(port: int) -> None:
    import asyncio

    import tornado.web

    class Handler(tornado.web.RequestHandler):
        def get(self, _: str) -> None:
            self.write("ok\n")

        head = get

        def post(self, _: str) -> None:
            self.write("ok\n")

    async def main() -> None:
        tornado.web.Application([(r"/(.*)", Handler)]).listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def serve(server: str, port: int) -> None:
    """Serve forever (until signalled) with ``server`` on 127.0.0.1:``port``."""
    if server.startswith("uvicorn"):
        import uvicorn

        uvicorn.run(asgi_app, host="127.0.0.1", port=port, http=server.split("-")[1],
                    ws="wsproto", log_level="error", access_log=False)
    elif server == "hypercorn":
        import asyncio

        from hypercorn.asyncio import serve as hyper_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "ERROR"
        asyncio.run(hyper_serve(asgi_app, config))  # type: ignore[arg-type]
    elif server == "daphne":
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(port), "-v", "0",
                                    "tests.conformance_apps:asgi_app"])
    elif server == "waitress":
        import waitress

        waitress.serve(wsgi_app, host="127.0.0.1", port=port, _quiet=True)
    elif server == "gunicorn":
        from gunicorn.app.wsgiapp import run

        sys.argv = ["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "--log-level", "error",
                    "tests.conformance_apps:wsgi_app"]
        run()
    elif server == "aiohttp":
        _aiohttp(port)
    elif server == "tornado":
        _tornado(port)
    else:
        raise SystemExit(f"unknown server {server!r} (known: {', '.join(SERVERS)})")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
