"""``assay backend``: N metadata backends on loopback, to stand behind a proxy under test.

Each answers every request with JSON saying what arrived (``protocols.backend_echo``) and
records the raw bytes, served by ``actors.backend_server``. Every port is bound before
any backend serves, so a port in use is one line and exit 3 with nothing started; a bad
flag value is exit 2. SIGINT or SIGTERM stops them all (exit 0).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import trio

from actors.backend_server import Backend, bound_port, open_listeners
from protocols.backend_echo import DEFAULT_RING, ReceivedRing

EXIT_OK, EXIT_USAGE, EXIT_INFRA = 0, 2, 3
MAX_BACKENDS = 256


def add_backend_parser(sub: Any) -> None:
    backend = sub.add_parser("backend", help="metadata backends for proxy validation: each "
                             "answers with JSON of what it received and records the bytes")
    add = backend.add_argument
    add("--count", default="4", help="backends to start (default 4)")
    add("--base-port", default="0", help="port of the first backend, the next on +1, ... "
        "(default 0: an ephemeral port each)")
    add("--id-base", default="0", help="id of the first backend (default 0)")
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--record", type=Path, metavar="FILE", help="also append every received request "
        "to FILE as JSON lines")
    add("--ring", default=str(DEFAULT_RING), help="requests each backend keeps for "
        f"GET /__assay/received (default {DEFAULT_RING})")


def _int(text: str, flag: str, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{flag} must be {low}..{high} (got {value})")
    return value


def ports_for(count: int, base_port: int) -> list[int]:
    return [0] * count if base_port == 0 else [base_port + i for i in range(count)]


def run_backend(args: argparse.Namespace) -> int:
    try:
        count = _int(args.count, "--count", 1, MAX_BACKENDS)
        base_port = _int(args.base_port, "--base-port", 0, 65535)
        if base_port and base_port + count - 1 > 65535:
            raise ValueError(f"--base-port {base_port} + --count {count} runs past 65535")
        id_base = _int(args.id_base, "--id-base", 0, 1 << 31)
        ring = _int(args.ring, "--ring", 1, 10_000_000)
        ipaddress.ip_address(args.host)  # one listener per backend: an address, not a name
    except ValueError as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE
    with ExitStack() as stack:
        record: IO[str] | None = None
        if args.record is not None:
            try:
                record = stack.enter_context(open(args.record, "a", encoding="utf-8"))
            except OSError as exc:
                sys.stderr.write(f"assay: error: --record {args.record}: {exc.strerror}\n")
                return EXIT_USAGE
        try:
            return trio.run(serve_backends, args.host, ports_for(count, base_port), id_base,
                            ring, record)
        except OSError as exc:
            sys.stderr.write(f"assay: error: cannot listen on {args.host}: "
                             f"{exc.strerror or exc}\n")
            return EXIT_INFRA
        except KeyboardInterrupt:
            return EXIT_OK


async def serve_backends(host: str, ports: list[int], id_base: int, ring: int,
                         record: IO[str] | None) -> int:
    """Bind all, print one line per backend, serve until SIGINT/SIGTERM."""
    listeners = await open_listeners(host, ports)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for index, listener in enumerate(listeners):
                backend = Backend(id_base + index, ReceivedRing(ring), record)
                nursery.start_soon(backend.serve, listener)
                print(f"backend {backend.backend_id} listening on {host}:"
                      f"{bound_port(listener)}", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return EXIT_OK
