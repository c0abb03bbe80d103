"""A tornado WebSocket echo handler, for the ws catalogue tests against tornado.

``python -m tests.ws_tornado_app PORT`` serves on 127.0.0.1:PORT a handler that accepts a
WebSocket on every path and echoes every message (text as text, bytes as bytes). The ASGI
servers use ``tests.ws_echo_apps``; tornado is not an ASGI server, hence its own module.
"""

from __future__ import annotations

import asyncio
import sys


def serve(port: int) -> None:
    """Serve the echo handler forever (until signalled) on 127.0.0.1:``port``."""
    import tornado.web
    import tornado.websocket

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

    async def main() -> None:
        tornado.web.Application([(r"/.*", Echo)]).listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
