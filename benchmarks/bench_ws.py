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
import random
import resource
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
sys.path.insert(0, str(REPO))

CLIENTS = ("assay", "websockets")
PAYLOADS = ("small", "varied", "large")
#: Concurrency cap of the large-payload run (each session holds a message and its wire).
LARGE_CONCURRENCY = 4
#: The catalogue's echo cases: what the small-payload run deals.
ECHO_CASES = ("echo_text", "echo_binary", "echo_fragmented_split_codepoint")
#: Sizes of the varied payloads (text and binary each, whole and in 3 fragments).
VARIED_SIZES = (16, 128, 1024, 8192, 65536)


# --- the echo server ----------------------------------------------------------------------


def serve(port: int) -> None:
    """aiohttp echo endpoint on every path; Pings answered by aiohttp (autoping)."""
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- payloads -----------------------------------------------------------------------------


def varied_messages(seed: int = 19) -> list[tuple[bool, bytes, int]]:
    """(is_text, payload, fragments) for the varied run: valid UTF-8 for text."""
    rng = random.Random(seed)
    out: list[tuple[bool, bytes, int]] = []
    alphabet = "assay-ws κόσμε 日本語 🙂 "
    for size in VARIED_SIZES:
        for is_text in (True, False):
            for fragments in (1, 3):
                if is_text:
                    text = "".join(rng.choice(alphabet) for _ in range(size))
                    data = text.encode()[:size]
                    data = data.decode("utf-8", "ignore").encode()  # whole code points only
                else:
                    data = rng.randbytes(size)
                out.append((is_text, data, fragments))
    return out


def _varied_cases() -> list[Any]:
    from protocols.outcome import Requirement, Severity
    from protocols.websocket_case_model import CaseKind, WsCase, WsReaction
    from protocols.websocket_frames import Frame, Opcode

    cases = []
    for index, (is_text, data, fragments) in enumerate(varied_messages()):
        first = Opcode.TEXT if is_text else Opcode.BINARY
        cut = [data[i * len(data) // fragments:(i + 1) * len(data) // fragments]
               for i in range(fragments)]
        frames = tuple(Frame(first if i == 0 else Opcode.CONTINUATION, part,
                             fin=i == fragments - 1) for i, part in enumerate(cut))
        cases.append(WsCase(
            name=f"bench_echo_{index:02d}", kind=CaseKind.ECHO, frames=frames,
            allowed=frozenset({WsReaction.RESPONDED}), tolerated=frozenset(),
            rfc="RFC 6455 §5.6", quote="", requirement=Requirement.MUST,
            severity=Severity.MED))
    return cases


def large_cases(max_message: int) -> tuple[Any, ...]:
    from protocols.ws_large_plan import ladder

    return ladder(max_message)


def _text_fragments(data: bytes, size: int) -> list[str]:
    """``data`` cut about every ``size`` bytes, each cut moved back onto a code point."""
    pieces, start = [], 0
    while start < len(data):
        end = min(len(data), start + size)
        while end < len(data) and end > start + 1 and 0x80 <= data[end] <= 0xBF:
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


# --- clients (each runs in its own process: `--client NAME`) ------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def assay_client(port: int, seconds: float, concurrency: int, payloads: str,
                 large_max: int) -> dict[str, Any]:
    import trio

    from actors import ws_large_walk, ws_torture
    from actors.walker import Target, WalkerContext
    from protocols.tally import Tally

    tally = Tally()
    target = Target.from_url(f"http://127.0.0.1:{port}/")
    settings: dict[str, Any] = {"ws_path": "/ws", "ws_timeout": 5.0, "ws_case_timeout": 5.0}
    varied: list[Any] = []
    if payloads == "varied":
        varied = _varied_cases()
    elif payloads == "large":
        varied = list(large_cases(large_max))
        concurrency = min(concurrency, LARGE_CONCURRENCY)
    else:
        settings["ws_cases"] = list(ECHO_CASES)
    names = [case.name for case in varied] or list(ECHO_CASES)
    play = ws_large_walk.session if payloads == "large" else ws_torture.session
    result: dict[str, Any] = {}

    async def main() -> None:
        deadline = trio.current_time() + seconds
        contexts = [WalkerContext(
            actor_id=0, walker_id=i, slice_name="ws", seed=19, rng=random.Random(i),
            target=target, tally=tally, settings=settings, deadline=deadline,
            violation_sink=lambda *_: None) for i in range(concurrency)]

        async def walk(ctx: WalkerContext) -> None:
            if not varied:
                await ws_torture.run(ctx)
                return
            turn = ctx.walker_id
            while not ctx.expired():
                await play(ctx, varied[turn % len(varied)])
                turn += concurrency

        cpu0, wall0 = _cpu(), time.perf_counter()
        async with trio.open_nursery() as nursery:
            for ctx in contexts:
                nursery.start_soon(walk, ctx)
        result.update(cpu_s=_cpu() - cpu0, wall_s=time.perf_counter() - wall0)

    trio.run(main)
    counters = tally.counters
    result["messages"] = sum(counters.get(f"ws.case.{name}.pass", 0) for name in names)
    if not varied:
        from protocols.websocket_cases import BY_NAME

        varied_or_echo = [BY_NAME[name] for name in ECHO_CASES]
    else:
        varied_or_echo = varied
    sizes = {case.name: _message_size(case) for case in varied_or_echo}
    result["bytes"] = sum(counters.get(f"ws.case.{name}.pass", 0) * size
                          for name, size in sizes.items())
    result["sessions"] = counters.get("ws.sessions", 0)
    result["not_pass"] = {key: value for key, value in counters.items()
                          if key.startswith("ws.case.") and not key.endswith(".pass")}
    return result


def _message_size(case: Any) -> int:
    """Bytes of the data message a case sends (a large case knows it; an echo case sums
    its data frames)."""
    if isinstance(case.frames, int):
        return int(case.size)
    return sum(len(frame.payload) for frame in case.frames if frame.opcode < 8)


def websockets_client(port: int, seconds: float, concurrency: int, payloads: str,
                      large_max: int) -> dict[str, Any]:
    import asyncio

    from websockets.asyncio.client import connect

    messages: list[tuple[bool, bytes, int | None]]
    if payloads == "varied":
        messages = [(t, data, max(1, -(-len(data) // n)) if n > 1 else None)
                    for t, data, n in varied_messages()]
    elif payloads == "large":
        from protocols.websocket_frames import Opcode
        from protocols.ws_large_plan import payload

        messages = [(case.opcode is Opcode.TEXT, payload(case, 19), case.fragment)
                    for case in large_cases(large_max)]
        concurrency = min(concurrency, LARGE_CONCURRENCY)
    else:  # the catalogue's echo payloads
        messages = [(True, b"assay-echo-text", None),
                    (False, b"assay-echo-\x00\xff\x80binary", None),
                    (True, "assay-κόσμε".encode(), 9)]
    uri = f"ws://127.0.0.1:{port}/ws"
    count = {"messages": 0, "sessions": 0, "mismatch": 0, "errors": 0, "bytes": 0}

    def shaped(is_text: bool, data: bytes, fragment: int | None) -> tuple[Any, Any]:
        """(what to send, what the echo must equal)."""
        whole: str | bytes = data.decode() if is_text else data
        if fragment is None:
            return whole, whole
        if is_text:
            return _text_fragments(data, fragment), whole
        return [data[i:i + fragment] for i in range(0, len(data), fragment)], whole

    shapes = [(shaped(t, data, fragment), len(data)) for t, data, fragment in messages]
    timeout = 5.0 + (large_max / (1 << 20) if payloads == "large" else 0.0)

    async def one(send: Any, expected: Any, size: int) -> None:
        async with asyncio.timeout(timeout):
            ws = await connect(uri, compression=None, max_size=None, open_timeout=5.0)
            try:
                count["sessions"] += 1
                await ws.send(send)
                await ws.ping(b"assay-canary")
                echo = await ws.recv()
                ok = echo == expected
                count["messages" if ok else "mismatch"] += 1
                count["bytes"] += size if ok else 0
            finally:
                ws.transport.close()  # FIN, no closing handshake: as the ws slice does

    async def walk(index: int, deadline: float) -> None:
        turn = index
        while time.perf_counter() < deadline:
            (send, expected), size = shapes[turn % len(shapes)]
            turn += concurrency
            try:
                await one(send, expected, size)
            except Exception:  # refused, reset, timed out, closed: counted, not fatal
                count["errors"] += 1

    async def main() -> dict[str, Any]:
        cpu0, wall0 = _cpu(), time.perf_counter()
        deadline = wall0 + seconds
        await asyncio.gather(*(walk(i, deadline) for i in range(concurrency)))
        return {"cpu_s": _cpu() - cpu0, "wall_s": time.perf_counter() - wall0}

    result = asyncio.run(main())
    result.update(count)
    return result


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
