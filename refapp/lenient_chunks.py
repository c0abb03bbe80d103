"""The ``lenient-chunk-size`` defect: chunk sizes read with Python's ``int(size, 16)``. Sans-IO.

h11 parses ``chunk-size = 1*HEXDIG`` strictly. A hand-written server that reads the size with
``int(line.split(b";")[0], 16)`` instead takes ``0x5``, ``0X5``, ``+5``, ``0_5``, `` 5 ``
and ``-0`` as numbers: the classic lenient parser that frames a body differently from a
strict front end (request smuggling). ``LenientChunkSizes`` simulates it in front of h11: it
follows the request stream (heads, Content-Length bodies, chunked bodies, trailers) and
rewrites every chunk-size line that such a parser would accept into the canonical hex that
h11 then reads, so refapp frames the message exactly as the lenient server would.

Anything it cannot follow (an over-long head, a size Python refuses too) is passed through
untouched from then on, so h11 rejects it as before. Nothing here runs without the defect.
"""

from __future__ import annotations

import re

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_MAX_LINE = 64 * 1024


def _framing(head: bytes) -> tuple[str, int]:
    """("chunked", 0), ("length", n) or ("none", 0) for one request head."""
    chunked, length = False, None
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"transfer-encoding" and value.endswith(b"chunked"):
            chunked = True
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    if chunked:
        return "chunked", 0
    return ("length", length) if length else ("none", 0)


class LenientChunkSizes:
    """Rewrites leniently parsed chunk-size lines into canonical ones, as bytes arrive."""

    def __init__(self, max_head: int) -> None:
        self._max_head = max_head
        self._buf = bytearray()
        self._state = "head"
        self._left = 0  # bytes of body or chunk data still to pass

    def has_pending(self) -> bool:
        """Whether bytes are held back (part of a head or of a chunk-size line)."""
        return bool(self._buf)

    def flush(self) -> bytes:
        """Release held-back bytes unchanged (at EOF), and stop rewriting."""
        out = bytes(self._buf)
        self._buf.clear()
        self._state = "pass"
        return out

    def feed(self, data: bytes) -> bytes:
        """The bytes to hand h11 for ``data`` (possibly empty while a line is incomplete)."""
        if self._state == "pass":
            return data
        self._buf += data
        out = bytearray()
        while self._buf and self._step(out):
            pass
        return bytes(out)

    def _step(self, out: bytearray) -> bool:
        """Advance one state; False when more bytes are needed."""
        buf, state = self._buf, self._state
        if state in ("fixed", "data"):
            take = min(self._left, len(buf))
            out += buf[:take]
            del buf[:take]
            self._left -= take
            if self._left == 0:
                self._state = "head" if state == "fixed" else "data-end"
            return take > 0 or self._left == 0
        if state == "head":
            match = _HEAD_END.search(buf)
            if match is None:
                if len(buf) > self._max_head:
                    return self._give_up(out)
                return False
            head = bytes(buf[: match.end()])
            del buf[: match.end()]
            out += head
            kind, length = _framing(head)
            self._state, self._left = {"chunked": ("size", 0), "length": ("fixed", length),
                                       "none": ("head", 0)}[kind]
            return True
        end = buf.find(b"\n")
        if end < 0:
            return False if len(buf) <= _MAX_LINE else self._give_up(out)
        line = bytes(buf[: end + 1])
        del buf[: end + 1]
        if state == "data-end":  # the CRLF after chunk data
            out += line
            self._state = "size"
        elif state == "trailers":
            out += line
            if line.strip(b"\r\n") == b"":
                self._state = "head"
        else:  # a chunk-size line
            size = self._lenient_size(line)
            if size is None:
                out += line
                return self._give_up(out)
            out += b"%x\r\n" % size
            self._state, self._left = ("trailers", 0) if size == 0 else ("data", size)
        return True

    @staticmethod
    def _lenient_size(line: bytes) -> int | None:
        """The defect: Python's ``int(x, 16)`` (sign, ``0x``, ``_``, whitespace accepted)."""
        try:
            size = int(line.split(b";", 1)[0].strip(b"\r\n"), 16)
        except ValueError:
            return None
        return size if size >= 0 else None

    def _give_up(self, out: bytearray) -> bool:
        out += self._buf
        self._buf.clear()
        self._state = "pass"
        return False
