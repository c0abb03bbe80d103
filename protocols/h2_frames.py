"""HTTP/2 frames as bytes: the types, settings and error codes of RFC 9113, a builder that
will write any frame (malformed ones included, which is what torture needs), and a
tolerant incremental reader for what a server sends back.

Why our own and not ``hyperframe``: the torture catalogue must build frames a conforming
library refuses to serialise (wrong lengths, flags on stream 0, reserved bits set), and the
reader must survive a server that answers garbage, reporting it instead of raising.
Header blocks are HPACK-encoded with ``hpack`` (the sans-IO encoder ``h2`` itself uses):
HPACK is a compression format, not something to hand-roll.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import hpack

from protocols.errors import HarnessError

#: RFC 9113 §3.4: the client connection preface starts with this 24-octet sequence.
CLIENT_MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: RFC 9113 §4.2: SETTINGS_MAX_FRAME_SIZE starts at 2^14; we never advertise more.
MAX_FRAME_SIZE = 16384
FRAME_HEADER_LEN = 9


class FrameType(enum.IntEnum):
    """Frame types of RFC 9113 §6."""

    #: §6.1 DATA
    DATA = 0x0
    #: §6.2 HEADERS
    HEADERS = 0x1
    #: §6.3 PRIORITY (deprecated, still parsed)
    PRIORITY = 0x2
    #: §6.4 RST_STREAM
    RST_STREAM = 0x3
    #: §6.5 SETTINGS
    SETTINGS = 0x4
    #: §6.6 PUSH_PROMISE
    PUSH_PROMISE = 0x5
    #: §6.7 PING
    PING = 0x6
    #: §6.8 GOAWAY
    GOAWAY = 0x7
    #: §6.9 WINDOW_UPDATE
    WINDOW_UPDATE = 0x8
    #: §6.10 CONTINUATION
    CONTINUATION = 0x9


class Setting(enum.IntEnum):
    """SETTINGS parameters of RFC 9113 §6.5.2."""

    #: §6.5.2 SETTINGS_HEADER_TABLE_SIZE
    HEADER_TABLE_SIZE = 0x1
    #: §6.5.2 SETTINGS_ENABLE_PUSH ("Any value other than 0 or 1 MUST be treated as a
    #: connection error")
    ENABLE_PUSH = 0x2
    #: §6.5.2 SETTINGS_MAX_CONCURRENT_STREAMS
    MAX_CONCURRENT_STREAMS = 0x3
    #: §6.5.2 SETTINGS_INITIAL_WINDOW_SIZE ("Values above the maximum flow-control window
    #: size of 2^31-1 MUST be treated as a connection error")
    INITIAL_WINDOW_SIZE = 0x4
    #: §6.5.2 SETTINGS_MAX_FRAME_SIZE (between 2^14 and 2^24-1 inclusive)
    MAX_FRAME_SIZE = 0x5
    #: §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE
    MAX_HEADER_LIST_SIZE = 0x6


FLAG_ACK = 0x1
FLAG_END_STREAM = 0x1
FLAG_END_HEADERS = 0x4

DEFAULT_SETTINGS: Mapping[int, int] = {
    Setting.ENABLE_PUSH: 0,
    Setting.MAX_CONCURRENT_STREAMS: 100,
    Setting.INITIAL_WINDOW_SIZE: 65535,
}


def build_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """RFC 9113 §4.1: 24-bit length, 8-bit type, 8-bit flags, R bit + 31-bit stream id."""
    if len(payload) >= 1 << 24 or not 0 <= stream_id < 1 << 31:
        raise HarnessError("frame length or stream id out of range")
    return struct.pack("!I", len(payload))[1:] + bytes([frame_type, flags]) + struct.pack(
        "!I", stream_id
    ) + payload


def settings_payload(settings: Mapping[int, int]) -> bytes:
    """RFC 9113 §6.5.1: each setting is a 16-bit identifier and a 32-bit value."""
    return b"".join(struct.pack("!HI", ident, value) for ident, value in settings.items())


def settings_frame(settings: Mapping[int, int] = DEFAULT_SETTINGS) -> bytes:
    return build_frame(FrameType.SETTINGS, 0, 0, settings_payload(settings))


#: RFC 9113 §6.5.3: acknowledge the peer's SETTINGS (empty payload, ACK flag).
SETTINGS_ACK = build_frame(FrameType.SETTINGS, FLAG_ACK, 0)


@dataclass(frozen=True)
class FrameHeader:
    length: int
    type: int
    flags: int
    stream_id: int


def frame_header(data: bytes, offset: int = 0) -> FrameHeader:
    """The 9-octet frame header at ``offset`` (RFC 9113 §4.1; the reserved bit dropped)."""
    return FrameHeader(int.from_bytes(data[offset:offset + 3], "big"), data[offset + 3],
                       data[offset + 4],
                       int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFF_FFFF)


def is_server_preface(data: bytes) -> bool:
    """Whether ``data`` opens with an HTTP/2 server's first frame (RFC 9113 §3.4: "The
    server connection preface consists of a potentially empty SETTINGS frame (Section 6.5)
    that MUST be the first frame the server sends"): a SETTINGS frame without ACK, on
    stream 0, its length a multiple of 6 (§6.5) and within the default frame size.

    Why: a cleartext server that speaks only HTTP/2 (prior knowledge, §3.3) answers an
    HTTP/1.1 request with this frame; that is a correct server, not one sending garbage."""
    if len(data) < FRAME_HEADER_LEN:
        return False
    h = frame_header(data)
    return (h.type == FrameType.SETTINGS and not h.flags & FLAG_ACK and h.stream_id == 0
            and h.length % 6 == 0 and h.length <= MAX_FRAME_SIZE)






class ErrorCode(enum.IntEnum):
    """Error codes of RFC 9113 §7 (RST_STREAM and GOAWAY)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20


@dataclass(frozen=True)
class Frame:
    """One complete frame as received: the header fields and the raw payload."""

    type: int
    flags: int
    stream_id: int
    payload: bytes = b""

    @property
    def type_name(self) -> str:
        member = FrameType._value2member_map_.get(self.type)
        return member.name if member is not None else f"UNKNOWN_{self.type:#x}"

    def error_code(self) -> int | None:
        """The error code of a GOAWAY (§6.8) or RST_STREAM (§6.4), else None."""
        if self.type == FrameType.GOAWAY and len(self.payload) >= 8:
            return int.from_bytes(self.payload[4:8], "big")
        if self.type == FrameType.RST_STREAM and len(self.payload) >= 4:
            return int.from_bytes(self.payload[:4], "big")
        return None

    def last_stream_id(self) -> int | None:
        """A GOAWAY's Last-Stream-ID (§6.8), else None."""
        if self.type == FrameType.GOAWAY and len(self.payload) >= 4:
            return int.from_bytes(self.payload[:4], "big") & 0x7FFF_FFFF
        return None

    def describe(self) -> str:
        code = self.error_code()
        suffix = ""
        if code is not None:
            name = ErrorCode._value2member_map_.get(code)
            suffix = f" {name.name if name is not None else hex(code)}"
        return f"{self.type_name}[stream {self.stream_id}, flags {self.flags:#x}]{suffix}"


@dataclass
class FrameReader:
    """Incremental frame reader: ``feed`` bytes, get the complete frames so far.

    Never raises on server bytes. A frame header announcing more than ``max_frame_size``
    (what we advertised, §4.2) sets ``problem`` and stops reading: the rest of the stream
    cannot be framed. Bytes are capped at ``cap`` in all (a flood of answers costs a
    bounded amount of memory); past it, ``capped`` is set and further bytes are dropped.
    """

    max_frame_size: int = MAX_FRAME_SIZE
    cap: int = 4 * 1024 * 1024
    problem: str = ""
    capped: bool = False
    received: int = 0
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        self.received += len(data)
        if self.problem or self.capped:
            return []
        if self.received > self.cap:
            self.capped = True
            return []
        self._buffer += data
        frames: list[Frame] = []
        buf = self._buffer
        offset = 0
        while len(buf) - offset >= FRAME_HEADER_LEN:
            length = int.from_bytes(buf[offset : offset + 3], "big")
            if length > self.max_frame_size:
                self.problem = (f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE "
                                f"{self.max_frame_size}")
                break
            end = offset + FRAME_HEADER_LEN + length
            if end > len(buf):
                break
            stream_id = int.from_bytes(buf[offset + 5 : offset + 9], "big") & 0x7FFF_FFFF
            frames.append(Frame(buf[offset + 3], buf[offset + 4], stream_id,
                                bytes(buf[offset + FRAME_HEADER_LEN : end])))
            offset = end
        del buf[:offset]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


def client_preface(settings: Mapping[int, int] = DEFAULT_SETTINGS) -> bytes:
    """RFC 9113 §3.4: the magic octets, then a SETTINGS frame (possibly empty)."""
    return CLIENT_MAGIC + settings_frame(settings)


def ping(opaque: bytes = b"assay-pg", ack: bool = False) -> bytes:
    """§6.7: eight octets of opaque data."""
    return build_frame(FrameType.PING, FLAG_ACK if ack else 0, 0, opaque)


def goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    """§6.8: Last-Stream-ID, error code, optional debug data."""
    return build_frame(FrameType.GOAWAY, 0, 0,
                       struct.pack("!II", last_stream_id & 0x7FFF_FFFF, code) + debug)


def rst_stream(stream_id: int, code: int = ErrorCode.CANCEL) -> bytes:
    """§6.4: one 32-bit error code."""
    return build_frame(FrameType.RST_STREAM, 0, stream_id, struct.pack("!I", code))


def window_update(stream_id: int, increment: int) -> bytes:
    """§6.9: R bit and a 31-bit increment (0 is a protocol error the catalogue sends)."""
    return build_frame(FrameType.WINDOW_UPDATE, 0, stream_id,
                       struct.pack("!I", increment & 0x7FFF_FFFF))


def data(stream_id: int, payload: bytes = b"", end_stream: bool = True) -> bytes:
    return build_frame(FrameType.DATA, FLAG_END_STREAM if end_stream else 0, stream_id, payload)


def header_block(fields: Iterable[tuple[str, str]], encoder: hpack.Encoder | None = None,
                 huffman: bool = True) -> bytes:
    """An HPACK header block (RFC 7541). Pass the connection's encoder when the block must
    agree with earlier ones (dynamic table); a fresh encoder otherwise."""
    enc = encoder if encoder is not None else hpack.Encoder()
    return enc.encode([(name.encode("latin-1"), value.encode("latin-1"))
                       for name, value in fields], huffman=huffman)


def headers(stream_id: int, block: bytes, *, end_stream: bool = True,
            end_headers: bool = True, flags: int = 0) -> bytes:
    """§6.2 HEADERS carrying ``block`` (already HPACK-encoded)."""
    flags |= (FLAG_END_STREAM if end_stream else 0) | (FLAG_END_HEADERS if end_headers else 0)
    return build_frame(FrameType.HEADERS, flags, stream_id, block)


def continuation(stream_id: int, block: bytes, end_headers: bool = True) -> bytes:
    """§6.10 CONTINUATION carrying the rest of a header block."""
    return build_frame(FrameType.CONTINUATION, FLAG_END_HEADERS if end_headers else 0,
                       stream_id, block)


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 §5.1 integer representation, ``first`` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def request_fields(method: str, authority: str, path: str, scheme: str = "http",
                   extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The four request pseudo-header fields of RFC 9113 §8.3.1, then regular fields."""
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path), *extra]


def field_block_fragment(frame: Frame) -> bytes:
    """The field block fragment a HEADERS or PUSH_PROMISE carries (§6.2, §6.6): its payload
    less the Pad Length octet and padding (PADDED), the priority fields (HEADERS with
    PRIORITY) or the Promised Stream ID (PUSH_PROMISE). Other frames: the payload as is."""
    payload = frame.payload
    pad = 0
    if frame.type in (FrameType.HEADERS, FrameType.PUSH_PROMISE) and frame.flags & FLAG_PADDED:
        pad, payload = (payload[0], payload[1:]) if payload else (0, b"")
    if frame.type == FrameType.PUSH_PROMISE:
        payload = payload[4:]
    elif frame.type == FrameType.HEADERS and frame.flags & FLAG_PRIORITY:
        payload = payload[5:]
    return payload[: max(len(payload) - pad, 0)]


def status_of(block: bytes) -> int | None:
    """The ``:status`` of a response header block, decoded with a fresh decoder; None when
    the block does not decode on its own (it used the dynamic table) or has no status."""
    try:
        fields = hpack.Decoder().decode(block)
    except Exception:  # hpack raises several types for garbage; any of them means "unknown"
        return None
    for name, value in fields:
        if name in (":status", b":status"):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            return int(text) if text.isdigit() else None
    return None
