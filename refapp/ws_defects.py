"""Pieces of the WebSocket defects that need more than a flag check. Sans-IO.

``ws-echo-close-code`` repeats the client's Close code in the server's own Close even when
RFC 6455 §7.4 does not define it (0, 999, 5000, ...), as tornado 6 does; §5.5.1 says the
code "MUST be ... a status code ... defined in Section 7.4". wsproto refuses such a Close
and keeps only its own reason, so ``CloseCodeSpy`` watches the raw client bytes to recover
the code the client sent (it keeps at most ``SPY_CAP`` bytes: enough for any catalogue case).
"""

from __future__ import annotations

import struct

#: Bytes of client traffic the spy keeps; later bytes are ignored.
SPY_CAP = 256 * 1024
#: wsproto's reasons for refusing a Close frame's code (its ``_process_close``).
BAD_CLOSE_CODE_REASONS = ("CLOSE with invalid code", "remote CLOSE with local-only reason",
                          "CLOSE with unknown reserved code")


def first_close_code(data: bytes) -> int | None:
    """The status code of the first Close frame in client bytes ``data`` (RFC 6455 §5.2,
    §5.3 masking), or None if there is none with a 2-byte body."""
    pos = 0
    while len(data) - pos >= 2:
        opcode, short = data[pos] & 0x0F, data[pos + 1] & 0x7F
        masked = bool(data[pos + 1] & 0x80)
        extra = {126: 2, 127: 8}.get(short, 0)
        head = 2 + extra + (4 if masked else 0)
        if len(data) - pos < head:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 2 + extra], "big") if extra else short
        key = data[pos + head - 4 : pos + head] if masked else b"\x00" * 4
        body = data[pos + head : pos + head + length]
        if opcode == 0x8:
            if len(body) < 2:
                return None
            return struct.unpack("!H", bytes(b ^ key[i] for i, b in enumerate(body[:2])))[0]
        pos += head + length
    return None


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """An unmasked server Close frame carrying ``code`` as is (valid or not)."""
    payload = struct.pack("!H", code) + reason[:123]
    return bytes([0x88, len(payload)]) + payload


class CloseCodeSpy:
    """Keeps the first ``SPY_CAP`` client bytes of a session to find its Close code."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        if len(self._data) < SPY_CAP:
            self._data += data[: SPY_CAP - len(self._data)]

    def echo(self, reason: str) -> bytes | None:
        """The defective Close to send when wsproto refused the client's Close with
        ``reason``: the client's own code sent back, or None when not applicable."""
        if reason not in BAD_CLOSE_CODE_REASONS:
            return None
        code = first_close_code(bytes(self._data))
        return None if code is None else close_frame(code, b"echo")
