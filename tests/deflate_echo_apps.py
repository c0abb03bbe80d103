"""WebSocket echo endpoints on real PyPI servers with permessage-deflate left on (or turned on).

``python -m tests.deflate_echo_apps SERVER PORT`` serves ``/ws`` on 127.0.0.1:PORT until
signalled. Each server's own extension code does the compression; the app only echoes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

SERVERS = ("uvicorn-wsproto", "hypercorn", "aiohttp", "tornado")


async def asgi_echo(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok\n"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] != "websocket.receive":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})


def _aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _tornado(port: int) -> None:
    import tornado.web
    import tornado.websocket

    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self) -> dict[str, Any]:
            return {}  # RFC 7692 on, tornado's defaults

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    async def main() -> None:
        tornado.web.Application([(r"/ws", Echo)]).listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def serve(server: str, port: int) -> None:
    if server == "uvicorn-wsproto":
        import uvicorn

        uvicorn.run(asgi_echo, host="127.0.0.1", port=port, ws="wsproto", log_level="error",
                    access_log=False)
    elif server == "hypercorn":
        from hypercorn.asyncio import serve as hyper_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "ERROR"
        asyncio.run(hyper_serve(asgi_echo, config))  # type: ignore[arg-type]
    elif server == "aiohttp":
        _aiohttp(port)
    elif server == "tornado":
        _tornado(port)
    else:
        raise SystemExit(f"unknown server {server!r} (known: {', '.join(SERVERS)})")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
