"""Following WebSocket frame boundaries in a client byte stream, ahead of wsproto. Sans-IO.

wsproto reports a frame's payload as it arrives and never its declared length, so a client
that announces a 2^53-byte frame would be noticed only after a mebibyte had been read. This
scanner reads each frame header (RFC 6455 §5.2) as the bytes go by, reports the declared
length at once, and skips payload bytes by count without copying or buffering them. With
``mask_unmasked`` it also adds an all-zero masking key to unmasked frames so that wsproto
accepts them unchanged (XOR with zero is the identity): that is how the
``ws-accept-unmasked`` defect is simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

_EXTENDED = {126: 2, 127: 8}


@dataclass(frozen=True, slots=True)
class FrameHead:
    """One frame header as the client sent it."""

    fin: bool
    opcode: int
    length: int
    masked: bool

    @property
    def is_data(self) -> bool:
        """Text, binary or continuation: a frame that carries message payload."""
        return self.opcode <= 0x2


class FrameScanner:
    """Incremental frame-header reader; ``feed`` returns the bytes to give wsproto."""

    def __init__(self, *, mask_unmasked: bool = False) -> None:
        self._mask = mask_unmasked
        self._pending = b""
        self._payload_left = 0

    def feed(self, data: bytes) -> tuple[bytes, list[FrameHead]]:
        """Scan ``data``; returns (bytes for wsproto, headers completed in it).

        Without ``mask_unmasked`` the bytes are passed on unchanged and unbuffered (an
        incomplete header is both passed on and remembered), so the scanner never delays
        wsproto.
        """
        buf = self._pending + data if self._pending else data
        heads: list[FrameHead] = []
        out = bytearray() if self._mask else None
        pos = 0
        while pos < len(buf):
            if self._payload_left:
                take = min(self._payload_left, len(buf) - pos)
                if out is not None:
                    out += buf[pos : pos + take]
                pos += take
                self._payload_left -= take
                continue
            parsed = _header(buf, pos)
            if parsed is None:
                break
            head, size = parsed
            heads.append(head)
            if out is not None:
                raw = bytearray(buf[pos : pos + size])
                if not head.masked:
                    raw[1] |= 0x80
                    raw += b"\x00\x00\x00\x00"
                out += raw
            pos += size
            self._payload_left = head.length
        self._pending = buf[pos:]
        if out is None:
            return data, heads
        return bytes(out), heads


def _header(buf: bytes, pos: int) -> tuple[FrameHead, int] | None:
    """(header, its size in bytes) starting at ``pos``, or None if incomplete."""
    if len(buf) - pos < 2:
        return None
    short = buf[pos + 1] & 0x7F
    extra = _EXTENDED.get(short, 0)
    masked = bool(buf[pos + 1] & 0x80)
    size = 2 + extra + (4 if masked else 0)
    if len(buf) - pos < size:
        return None
    length = int.from_bytes(buf[pos + 2 : pos + 2 + extra], "big") if extra else short
    return FrameHead(bool(buf[pos] & 0x80), buf[pos] & 0x0F, length, masked), size
