"""WebSocket messages per second per core: assay's ws slice beside the ``websockets`` client.

What it measures: how many echoed messages per second one client process gets through a
fast echo server, and how many per second of its own CPU time ("per core"), for two
clients driven the same way, one after the other, against the same server:

* ``assay``: the ws slice's own code. Small payloads: ``actors.ws_torture.run`` on the
  catalogue's echo cases (``echo_text``, ``echo_binary``, ``echo_fragmented_split_codepoint``,
  restricted through the ``ws_cases`` setting), exactly what ``assay run`` does with them:
  one connection per case, a valid handshake checked against the key, the response head
  judged by the response rules, the message and a canary Ping masked with fresh keys, every
  server frame parsed and the echo compared by the oracle. Varied payloads:
  ``actors.ws_torture.session`` on echo cases built here with the catalogue's own record
  (``WsCase``, kind ECHO): text and binary, 16 B to 64 KiB, whole or in 3 fragments.
  Large payloads: ``actors.ws_large_walk.session`` on the large-message ladder up to
  ``--large-max`` (default 1 MiB: 64 KiB and 1 MiB, whole and in 1024/256/64-byte
  fragments), each payload drawn from the seed per session and the echo compared as it
  streams in (``protocols.ws_large_echo``), as ``assay run`` does with ``--ws-max-message``.
* ``websockets`` (the reference, ``pip install websockets``): per message, a connection
  opened with ``websockets.asyncio.client.connect`` (no compression), the same message and
  a Ping sent, the echo received and compared, the TCP connection closed. No closing
  handshake on either side: the ws slice does not send one after an echo case either.
  Large payloads: the same bytes as assay's cases (computed once, before the clock starts),
  fragmented alike (``send`` of a list of fragments; text fragments end on a code point,
  websockets sends ``str`` pieces), echo received whole and compared.

Both use the same number of concurrent sessions (``--concurrency``) in one process on one
event loop (trio for assay, asyncio for websockets). The echo server is aiohttp (its frame
reader is compiled) in its own process; ``--client-core`` / ``--server-core`` pin them with
taskset where it exists. A message counts when its echo came back identical (for assay: a
``pass`` verdict of the echo case; anything else is reported beside the rate). Rates use
wall time; msg/CPU-s divides by the client process's own user+system time over the same
window, i.e. what one core does when it is the client's alone. The order of the two clients
alternates from round to round, and the table reports the ratio assay / websockets within
each round and their median: only same-round ratios mean anything on a shared machine.

Run: ``python benchmarks/bench_ws.py [--rounds 3 --seconds 8 --concurrency 16]``.
Exit 0 when it ran, 2 when aiohttp or websockets is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ws_bench_clients import (  # noqa: E402
    CLIENTS,
    PAYLOADS,
    assay_client,
    serve,
    websockets_client,
)

# --- the driver ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []


@contextlib.contextmanager
def echo_server(core: int | None) -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen([*_pinned(core), sys.executable, __file__, "--serve", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the aiohttp echo server did not start")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_client(name: str, port: int, args: argparse.Namespace, payloads: str) -> dict[str, Any]:
    command = [*_pinned(args.client_core), sys.executable, __file__, "--client", name,
               "--port", str(port), "--seconds", str(args.seconds),
               "--concurrency", str(args.concurrency), "--payloads", payloads,
               "--large-max", str(args.large_max)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=args.seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"{name} client failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["msg_per_s"] = result["messages"] / result["wall_s"] if result["wall_s"] else 0.0
    result["msg_per_cpu_s"] = result["messages"] / result["cpu_s"] if result["cpu_s"] else 0.0
    wall = result["wall_s"]
    result["mib_per_s"] = result["bytes"] / wall / (1 << 20) if wall else 0.0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--payloads", choices=(*PAYLOADS, "all"), default="all")
    parser.add_argument("--large-max", type=int, default=1 << 20,
                        help="largest message of the large-payload run, bytes (1 MiB)")
    parser.add_argument("--client-core", type=int, default=None)
    parser.add_argument("--server-core", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.client:
        run = assay_client if args.client == "assay" else websockets_client
        print(json.dumps(run(args.port, args.seconds, args.concurrency, args.payloads,
                             args.large_max)))
        return 0
    missing = [m for m in ("aiohttp", "websockets") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench_ws: {', '.join(missing)} not installed (pip install -e '.[bench,dev]')",
              file=sys.stderr)
        return 2
    kinds = PAYLOADS if args.payloads == "all" else (args.payloads,)
    print(f"bench_ws: {args.rounds} rounds x {args.seconds:g} s, concurrency "
          f"{args.concurrency}, load {os.getloadavg()[0]:.2f}", flush=True)
    rows: list[dict[str, Any]] = []
    with echo_server(args.server_core) as port:
        for payloads in kinds:
            for round_no in range(args.rounds):
                order = CLIENTS if round_no % 2 == 0 else CLIENTS[::-1]
                got = {name: run_client(name, port, args, payloads) for name in order}
                ratio = {key: got["assay"][key] / got["websockets"][key]
                         if got["websockets"][key] else 0.0
                         for key in ("msg_per_s", "msg_per_cpu_s")}
                rows.append({"payloads": payloads, "round": round_no + 1, **got,
                             "ratio": ratio})
                print(_row(rows[-1]), flush=True)
    for payloads in kinds:
        mine = [row["ratio"] for row in rows if row["payloads"] == payloads]
        print(f"{payloads}: median ratio assay/websockets "
              f"{statistics.median(r['msg_per_s'] for r in mine):.2f} msg/s, "
              f"{statistics.median(r['msg_per_cpu_s'] for r in mine):.2f} msg/CPU-s")
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _row(row: dict[str, Any]) -> str:
    parts = [f"{row['payloads']:6} round {row['round']}"]
    for name in CLIENTS:
        got = row[name]
        extra = "" if name != "assay" or not got["not_pass"] else f" other={got['not_pass']}"
        if name == "websockets" and (got["errors"] or got["mismatch"]):
            extra = f" errors={got['errors']} mismatch={got['mismatch']}"
        parts.append(f"{name} {got['msg_per_s']:7.1f} msg/s {got['msg_per_cpu_s']:7.1f} "
                     f"msg/CPU-s {got['mib_per_s']:6.1f} MiB/s{extra}")
    parts.append(f"ratio {row['ratio']['msg_per_s']:.2f} / {row['ratio']['msg_per_cpu_s']:.2f}")
    return " | ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
