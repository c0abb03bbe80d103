"""permessage-deflate (RFC 7692) for ``GET /ws``: wsproto's extension, with inflation capped.

Why a subclass: wsproto's ``PerMessageDeflate`` inflates whatever arrives, so a 32 KiB frame
of compressed zeros becomes 32 MiB in memory before any size check can see it (a
"compression bomb"). ``BoundedDeflate`` asks zlib for at most the message limit and fails
the connection with 1009 the moment a message would inflate past it (RFC 6455 §10.4:
implementations "MUST protect themselves against exceeding those limits"). The
``ws-deflate-bomb`` defect uses the plain extension instead, and the session skips its size
check for messages, so the bomb is inflated whole and echoed.
"""

from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol

_Proto = FrameDecoder | FrameProtocol


class BoundedDeflate(PerMessageDeflate):
    """``PerMessageDeflate`` that never inflates one message past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._inflated = 0

    def frame_inbound_payload_data(self, proto: _Proto, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        assert self._decompressor is not None
        room = self._limit - self._inflated
        try:
            out = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._limit or self._decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: _Proto, fin: bool) -> bytes | CloseReason | None:
        if fin:
            self._inflated = 0
        return super().frame_inbound_complete(proto, fin)


def accept(offers: bytes | None, limit: int, bounded: bool) -> tuple[bytes, PerMessageDeflate]:
    """The answer to the client's first acceptable ``permessage-deflate`` offer, or ``(b"",
    None)``-like empty answer when there is none (the extension is then declined)."""
    extension: PerMessageDeflate = BoundedDeflate(limit) if bounded else PerMessageDeflate()
    for offer in (offers or b"").decode("latin-1").split(","):
        name = offer.split(";", 1)[0].strip().lower()
        if name != extension.name:
            continue
        answer = extension.accept(offer)
        if isinstance(answer, str):
            value = "; ".join(p for p in (extension.name, answer) if p)
            return value.encode("latin-1"), extension
    return b"", extension
