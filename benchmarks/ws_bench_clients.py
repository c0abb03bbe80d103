"""The two clients of ``bench_ws.py``, its payloads and its echo server.

Each client runs in a process of its own (``bench_ws.py --client NAME``) and prints one JSON
line: messages echoed identically, sessions, bytes, wall and CPU seconds of the measured
window. Why the clients are driven the way they are: ``bench_ws.py``'s docstring.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
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


def assay_slice_client(port: int, seconds: float, concurrency: int, max_message: int,
                       case_timeout: float) -> dict[str, Any]:
    """The whole ws slice as ``assay run`` deals it (catalogue, deflate and, with a budget,
    large messages); counts catalogue verdicts and large messages apart."""
    import trio

    from actors import ws_torture
    from actors.walker import Target, WalkerContext
    from protocols.tally import Tally

    tally = Tally()
    settings = {"ws_path": "/ws", "ws_timeout": 5.0, "ws_case_timeout": case_timeout,
                "ws_max_message": max_message}
    result: dict[str, Any] = {}

    async def main() -> None:
        deadline = trio.current_time() + seconds
        cpu0, wall0 = _cpu(), time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(ws_torture.run, WalkerContext(
                    actor_id=0, walker_id=i, slice_name="ws", seed=19, rng=random.Random(i),
                    target=Target.from_url(f"http://127.0.0.1:{port}/"), tally=tally,
                    settings=settings, deadline=deadline, violation_sink=lambda *_: None))
        result.update(cpu_s=_cpu() - cpu0, wall_s=time.perf_counter() - wall0)

    trio.run(main)
    verdicts = ("pass", "violation", "lenient", "unjudged", "unconfirmed")
    judged = {key: value for key, value in tally.counters.items()
              if key.startswith("ws.case.") and key.rsplit(".", 1)[1] in verdicts}
    result["catalogue_cases"] = sum(v for k, v in judged.items()
                                    if not k.startswith("ws.case.large_"))
    result["large_cases"] = sum(v for k, v in judged.items() if k.startswith("ws.case.large_"))
    result["large_bytes"] = tally.counters.get("ws.large.bytes_sent", 0)
    result["sessions"] = tally.counters.get("ws.sessions", 0)
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
