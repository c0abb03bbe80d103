"""Network faults for the executor: delay and loss inside a private network namespace.

How this works: kernel-level delay and loss (``tc netem``) must not touch the host's own
interfaces (other runs, other users share them), so the run creates a namespace of its own
(``ip netns add``), brings its loopback up and puts the netem qdisc on it. Network
namespaces are per thread on Linux, and a socket stays in the namespace it was created in,
so a short-lived helper thread enters the namespace (``setns``) only to create sockets: a
relay listener, and the client sockets of the impaired connections. A client connects to
the relay over the namespace's impaired loopback (netem delays and drops packets in both
directions there), and the relay pumps the bytes to the real target from the host's
namespace. Any target the host can reach can be impaired this way, local or remote.

The impairment lasts ``interval_s`` (the qdisc is then removed; connections opened through
the relay keep working, unimpaired); the namespace and relay go when the program ends.
``unavailable()`` says why none of this can run here (not root, no ``ip``/``tc``, a kernel
without the netem qdisc), and the executor records that reason as "not judged".
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_PUMP_CHUNK = 65536


def _run(*argv: str) -> str:
    """Run a command; '' on success, else its error output (one line)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return ""
    return (done.stderr or done.stdout or f"exit status {done.returncode}").strip().splitlines()[0]


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why network faults cannot run on this host (None: they can). Probed once."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network faults need root, to create a private network namespace"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"network faults need {' and '.join(missing)} (iproute2) on the PATH"
    name = f"assay-probe-{os.getpid()}"
    error = _run("ip", "netns", "add", name)
    if error:
        return f"cannot create a network namespace: {error}"
    try:
        error = _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up") or _run(
            "ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
            "delay", "1ms")
        if error:
            return f"cannot apply netem in a private namespace: tc: {error}"
    finally:
        _run("ip", "netns", "del", name)
    return None


def _in_namespace(name: str, make: Callable[[], T]) -> T:
    """Call ``make`` in a thread that has entered namespace ``name`` (sockets stay there)."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            box["value"] = make()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="assay-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class ImpairedPath:
    """A namespace with netem on its loopback and a relay to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int], netem: str) -> None:
        self.target = target
        self.netem = netem.split()
        self.name = f"assay-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.relay_port = 0
        self._listener: trio.socket.SocketType | None = None
        self.relayed = 0

    async def start(self, nursery: trio.Nursery) -> None:
        """Create the namespace, the qdisc and the relay; OSError/RuntimeError on failure."""
        error = await trio.to_thread.run_sync(_run, "ip", "netns", "add", self.name)
        if error:
            raise RuntimeError(f"ip netns add: {error}")
        error = await trio.to_thread.run_sync(
            _run, "ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        if not error and self.netem:
            error = await trio.to_thread.run_sync(
                functools.partial(_run, "ip", "netns", "exec", self.name, "tc", "qdisc", "add",
                                  "dev", "lo", "root", "netem", *self.netem))
        if error:
            await self.close()
            raise RuntimeError(f"cannot impair the namespace: {error}")

        def listen() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            return sock

        raw = await trio.to_thread.run_sync(_in_namespace, self.name, listen)
        self.relay_port = raw.getsockname()[1]
        self._listener = trio.socket.from_stdlib_socket(raw)
        nursery.start_soon(self._accept, nursery)

    async def lift(self) -> None:
        """End the impairment (connections through the relay carry on, unimpaired)."""
        if self.netem:
            await trio.to_thread.run_sync(
                _run, "ip", "netns", "exec", self.name, "tc", "qdisc", "del", "dev", "lo", "root")

    async def connect(self, timeout: float) -> trio.SocketStream:
        """A client connection to the target that crosses the impaired loopback."""
        raw = await trio.to_thread.run_sync(
            _in_namespace, self.name, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock = trio.socket.from_stdlib_socket(raw)
        try:
            with trio.fail_after(timeout):
                await sock.connect(("127.0.0.1", self.relay_port))
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return trio.SocketStream(sock)

    async def _accept(self, nursery: trio.Nursery) -> None:
        assert self._listener is not None
        listener = trio.SocketListener(self._listener)
        while True:
            try:
                inside = await listener.accept()
            except (trio.ClosedResourceError, OSError):
                return  # close() shut the relay down
            nursery.start_soon(self._relay, inside)

    async def _relay(self, inside: trio.SocketStream) -> None:
        self.relayed += 1
        try:
            outside = await trio.open_tcp_stream(*self.target)
        except OSError:
            await trio.aclose_forcefully(inside)
            return
        async with trio.open_nursery() as pumps:
            pumps.start_soon(_pump, inside, outside, pumps.cancel_scope)
            pumps.start_soon(_pump, outside, inside, pumps.cancel_scope)
        await trio.aclose_forcefully(inside)
        await trio.aclose_forcefully(outside)

    async def close(self) -> None:
        if self._listener is not None:
            trio.lowlevel.notify_closing(self._listener)
            self._listener.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_run, "ip", "netns", "del", self.name)


async def _pump(source: trio.SocketStream, sink: trio.SocketStream,
                both: trio.CancelScope) -> None:
    """Copy until EOF (passed on as a half-close); an error ends both directions."""
    try:
        while data := await source.receive_some(_PUMP_CHUNK):
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        both.cancel()
