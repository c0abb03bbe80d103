"""Large and finely fragmented valid WebSocket messages: the plan (which messages, which bytes).

How this works: ``ladder(max_message)`` lists the cases of one pass, smallest first: every
size of ``SIZES`` up to the budget (plus the budget itself when it is not on the ladder),
each sent whole and in 1024-, 256- and 64-byte fragments. The finest fragmentations are
bounded by ``MAX_FRAGMENTS`` (65536 frames per message): 64-byte fragments up to 4 MiB,
256-byte fragments up to 16 MiB. That still covers the reported defect (node's server dies
on a valid 4 MiB message in 64-byte fragments) and keeps one case's cost on our side (frame
headers built, masks applied) to a fraction of a second.

Payloads are deterministic from the run seed and the case name (a failing case can be
re-sent byte for byte) and differ per case, so an echo of another message is caught. Text
cases carry valid UTF-8 made mostly of 2-, 3- and 4-byte code points, so fixed-size
fragments split code points across frame boundaries (RFC 6455 §5.6: only the whole message
must be valid UTF-8). ``wire_chunks`` yields the masked frames in bounded batches so the
walker never holds the whole wire twice, and ``deadline_s`` scales the case's deadline with
its bytes and frames.

The server's answer is read by ``protocols.ws_large_echo``; nothing here does I/O.
"""

from __future__ import annotations

import codecs
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocols.websocket_frames import Opcode

KIB = 1024
MIB = 1024 * KIB
#: ``--ws-max-message`` default: the largest message assay sends.
DEFAULT_MAX_MESSAGE = 16 * MIB
#: The size ladder (bytes of one message), smallest first.
SIZES: tuple[int, ...] = (64 * KIB, 1 * MIB, 4 * MIB, 16 * MIB)
#: Fragment sizes; None sends the message as one frame.
FRAGMENTS: tuple[int | None, ...] = (None, 1024, 256, 64)
#: Most frames one message is split into (64-byte fragments stop at 4 MiB).
MAX_FRAGMENTS = 65536
#: Smallest budget that adds a rung of its own (a smaller one runs only the 64 KiB rung if
#: it fits, i.e. nothing).
MIN_MAX_MESSAGE = SIZES[0]
#: Wire bytes batched per yielded chunk of ``wire_chunks``.
WIRE_BATCH = 256 * KIB
#: Throughput granted to any server when scaling deadlines: bytes/s and frames/s. Slow on
#: purpose (a pure-Python framing layer parses some 10^4-10^5 frames/s); a stall is
#: re-sent alone before it counts anyway.
GRANTED_BYTES_PER_S = 4 * MIB
GRANTED_FRAMES_PER_S = 10_000

#: What the large cases rest on (echo, fragmentation, UTF-8 of the whole, 1009, limits).
RFC = "RFC 6455 §5.4, §5.6, §7.1.7, §7.4.1, §10.4"
#: Code points the text payloads are drawn from: 1-, 2-, 3- and 4-byte UTF-8, mostly multibyte.
_TEXT_ALPHABET = ("aZ09 \u00e9\u07ff\u0800\u20ac\u4e2d\u6587\ud55c\uffef"
                  "\U00010000\U0001f600\U0010fffd")
#: Byte -> code point, for ``codecs.charmap_decode``.
_TEXT_TABLE = "".join(_TEXT_ALPHABET[i % len(_TEXT_ALPHABET)] for i in range(256))


@dataclass(frozen=True, slots=True)
class LargeCase:
    """One valid message: its size, its fragmentation and whether it is text or binary."""

    size: int
    #: Payload bytes per frame; None: one frame.
    fragment: int | None
    opcode: Opcode

    @property
    def name(self) -> str:
        kind = "text" if self.opcode is Opcode.TEXT else "binary"
        split = "whole" if self.fragment is None else f"f{self.fragment}"
        return f"large_{kind}_{size_label(self.size)}_{split}"

    @property
    def frames(self) -> int:
        if self.fragment is None:
            return 1
        return max(1, -(-self.size // self.fragment))

    @property
    def rfc(self) -> str:
        return RFC


def size_label(size: int) -> str:
    """``64KiB``, ``4MiB``, or bytes: the size as case names and reports show it."""
    if size % MIB == 0:
        return f"{size // MIB}MiB"
    if size % KIB == 0:
        return f"{size // KIB}KiB"
    return f"{size}B"


def ladder(max_message: int) -> tuple[LargeCase, ...]:
    """The cases of one pass, smallest size first; empty when ``max_message`` is 0 (off).

    Whole messages and 256-byte fragments are binary, 1024- and 64-byte fragments text (so
    both opcodes meet both coarse and fine fragmentation).
    """
    if max_message <= 0:
        return ()
    sizes = [size for size in SIZES if size <= max_message]
    if max_message not in sizes and max_message >= MIN_MAX_MESSAGE:
        sizes.append(max_message)
    cases = []
    for size in sizes:
        for fragment in FRAGMENTS:
            opcode = Opcode.TEXT if fragment in (1024, 64) else Opcode.BINARY
            case = LargeCase(size, fragment, opcode)
            if case.frames <= MAX_FRAGMENTS:
                cases.append(case)
    return tuple(cases)


def payload(case: LargeCase, seed: int) -> bytes:
    """The message's bytes: deterministic from (seed, case name), exactly ``case.size`` long.

    Text is valid UTF-8 (padded with ASCII to the exact size); binary is random bytes.
    """
    rng = random.Random(f"{seed}/{case.name}")
    raw = rng.randbytes(case.size)
    if case.opcode is Opcode.BINARY:
        return raw
    # Each random byte picks a code point of 1-4 bytes (2.6 on average): size/2 picks fill it.
    # A charmap decode is the C loop of str.translate without its per-character dict
    # lookups: 16 MiB in ~0.2 s instead of ~0.7 s of event loop (bench_ws_depth.py).
    text = codecs.charmap_decode(raw[: case.size // 2], "strict", _TEXT_TABLE)[0]
    text = text.encode("utf-8")
    while len(text) < case.size:  # only for tiny sizes
        text += text
    cut = case.size
    while 0 < cut < len(text) and (text[cut] & 0xC0) == 0x80:
        cut -= 1  # back off to the start of the code point that crosses the size
    return text[:cut] + b"." * (case.size - cut)


def wire_chunks(
    case: LargeCase, data: bytes, mask_key: Callable[[], bytes], batch: int = WIRE_BATCH
) -> Iterator[bytes]:
    """The message as masked client frames, in batches of about ``batch`` bytes.

    ``mask_key()`` gives a fresh 4-byte key per frame (RFC 6455 §5.3: unpredictable keys,
    so they come from the caller's PRNG). Frames are masked a batch at a time with one XOR
    over the batch's key stream, and a single large frame piece by piece (pieces are
    multiples of 4 bytes, so its key stays in phase): no step holds the event loop for
    more than one batch's work (a 16 MiB frame masked at once took 0.13 s).
    """
    step = case.fragment or max(1, len(data))
    offsets = range(0, max(1, len(data)), step)
    last = offsets[-1]
    if len(offsets) == 1:
        key = mask_key()
        yield _head(case.opcode, True, len(data)) + key
        piece = max(4, batch - batch % 4)
        for start in range(0, len(data), piece):
            chunk = data[start:start + piece]
            yield _xor(chunk, (key * (len(chunk) // 4 + 1))[: len(chunk)])
        return
    per_batch = max(1, batch // (step + 14))
    for first in range(0, len(offsets), per_batch):
        starts = offsets[first:first + per_batch]
        keys = [mask_key() for _ in starts]
        lo, hi = starts[0], min(len(data), starts[-1] + step)
        stream = b"".join((key * (step // 4 + 1))[: min(step, len(data) - start)]
                          for key, start in zip(keys, starts, strict=True))
        masked = _xor(data[lo:hi], stream)
        parts: list[bytes] = []
        for index, (key, start) in enumerate(zip(keys, starts, strict=True), start=first):
            end = min(len(data), start + step)
            opcode = case.opcode if index == 0 else Opcode.CONTINUATION
            parts += (_head(opcode, start == last, end - start), key,
                      masked[start - lo:end - lo])
        yield b"".join(parts)


def _head(opcode: int, fin: bool, length: int) -> bytes:
    """A masked client frame's header, the key excluded (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | opcode
    if length <= 125:
        return struct.pack("!BB", first, 0x80 | length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", first, 0x80 | 126, length)
    return struct.pack("!BBQ", first, 0x80 | 127, length)


def _xor(data: bytes, keystream: bytes) -> bytes:
    """RFC 6455 §5.3 masking of ``data`` by a key stream of the same length."""
    return (int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")).to_bytes(
        len(data), "little")


def deadline_s(case: LargeCase, base_s: float) -> float:
    """How long the server gets for the whole case (send and echo): ``base_s`` plus what the
    granted throughput needs for the bytes both ways and for the frames."""
    return base_s + 2 * case.size / GRANTED_BYTES_PER_S + case.frames / GRANTED_FRAMES_PER_S


__all__ = [
    "DEFAULT_MAX_MESSAGE",
    "FRAGMENTS",
    "MAX_FRAGMENTS",
    "SIZES",
    "LargeCase",
    "deadline_s",
    "ladder",
    "payload",
    "size_label",
    "wire_chunks",
]
