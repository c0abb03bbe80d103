"""A WebSocket echo app on real PyPI servers, for the large-message tests.

``python -m tests.ws_echo_apps SERVER PORT`` serves on 127.0.0.1:PORT an ASGI app that
accepts a WebSocket on every path and echoes every message (text as text, bytes as bytes)
until the client closes. Kept apart from ``tests.conformance_apps``, whose WebSocket closes
at once: these tests judge what the server does with a message, so it must reach the app.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

SERVERS = ("daphne", "uvicorn-wsproto", "hypercorn")


async def echo_app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    """Echo every WebSocket message; answer HTTP with 200 ``ok`` (the pre-flight GET)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ok\n"})


def serve(server: str, port: int) -> None:
    """Serve ``echo_app`` forever (until signalled) with ``server`` on 127.0.0.1:``port``."""
    if server == "daphne":
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(["-b", "127.0.0.1", "-p", str(port), "-v", "0",
                                    "tests.ws_echo_apps:echo_app"])
    elif server == "uvicorn-wsproto":
        import uvicorn

        # 32 MiB: the budget of the tests is below it, so a 1009 here would be a finding.
        uvicorn.run(echo_app, host="127.0.0.1", port=port, ws="wsproto", log_level="error",
                    access_log=False, ws_max_size=32 * 1024 * 1024)
    elif server == "hypercorn":
        import asyncio

        from hypercorn.asyncio import serve as hyper_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "ERROR"
        config.websocket_max_message_size = 32 * 1024 * 1024
        asyncio.run(hyper_serve(echo_app, config))  # type: ignore[arg-type]
    else:
        raise SystemExit(f"unknown server {server!r} (known: {', '.join(SERVERS)})")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
