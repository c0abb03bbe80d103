"""Process lifecycle: listen, accept, run the broker and defect timers, stop on a signal.

How this works: ``serve`` opens one listening socket, then runs everything in one root
nursery: the signal watcher (SIGTERM/SIGINT cancel the root scope, which stops accepting and
cancels every connection, so the process exits promptly and with status 0), the SSE
publisher, the accept loop, the optional defect timers, and one task per connection. The
``assay-refapp listening on ...`` line is printed only after the signal handlers are installed
and the accept loop is running, so a caller that sees it can connect, and can stop the
process cleanly, at once.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys

import trio

from refapp.config import READY_PREFIX, ServerConfig
from refapp.defects import CRASH_EXIT_STATUS
from refapp.server import handle_connection
from refapp.state import ServerState

log = logging.getLogger("refapp")

#: accept() failures that mean "out of resources for a moment", not "the listener is broken".
_TRANSIENT_ACCEPT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def format_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, with an IPv6 literal bracketed (RFC 3986 §3.2.2)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def open_listener(host: str, port: int, backlog: int) -> trio.SocketListener:
    """One listening socket (``open_tcp_listeners`` may open several, each on its own port
    when asked for port 0, and the ready line can name only one)."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, type_, proto, _, address = infos[0]
    sock = trio.socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def serve(config: ServerConfig) -> None:
    """Run the server until SIGTERM or SIGINT."""
    state = ServerState.build(config)
    listener = await open_listener(config.host, config.port, config.backlog)
    host, port = listener.socket.getsockname()[:2]
    async with trio.open_nursery() as root:
        await root.start(_watch_signals, root.cancel_scope)
        root.start_soon(state.broker.run)
        await root.start(_count_pauses, state)
        accept_scope = trio.CancelScope()
        state.stop_accepting = accept_scope.cancel
        await root.start(_accept_loop, listener, state, root, accept_scope)
        if config.has("crash-after"):
            root.start_soon(_crash_after, config.defect_after)
        if config.has("hang-after"):
            root.start_soon(_hang_after, state, config.defect_after)
        sys.stdout.write(READY_PREFIX + format_url(host, port) + "\n")
        sys.stdout.flush()


async def _watch_signals(
    scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.debug("signal %d: shutting down", signum)
            scope.cancel()
            return


async def _count_pauses(
    state: ServerState, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Count SIGCONTs: each one ends a SIGSTOP, so a client that paused us can check we saw it.

    A clock-gap detector would also fire on a starved scheduler; SIGCONT is exact.
    """
    with trio.open_signal_receiver(signal.SIGCONT) as signals:
        task_status.started()
        async for _ in signals:
            state.stats.faults.pauses += 1


async def _accept_loop(
    listener: trio.SocketListener,
    state: ServerState,
    nursery: trio.Nursery,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept until cancelled; closing the listener afterwards refuses new connections."""
    try:
        with scope:
            task_status.started()
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _TRANSIENT_ACCEPT:
                        raise
                    if exc.errno in (errno.EMFILE, errno.ENFILE):
                        state.stats.faults.accept_exhausted += 1
                    log.debug("accept: %s", exc)
                    await trio.sleep(0.1)
                    continue
                nursery.start_soon(handle_connection, stream, state)
    finally:
        await trio.aclose_forcefully(listener)


async def _hang_after(state: ServerState, delay: float) -> None:
    """``hang-after``: from ``delay`` seconds on, requests are read but never answered."""
    await trio.sleep(delay)
    state.hanging = True


async def _crash_after(delay: float) -> None:
    """``crash-after``: exit abruptly, as a segfaulting or OOM-killed server would."""
    await trio.sleep(delay)
    sys.stderr.flush()
    os._exit(CRASH_EXIT_STATUS)
