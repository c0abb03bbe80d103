"""WebSocket wire format for a hostile client: frames we may bend, frames we must doubt.

How this works, in three parts (RFC 6455):

* Building (client side). ``build_frame`` writes any frame the wire can carry, including the
  ones the RFC forbids: any opcode, any RSV bits, masked or not, FIN or not, and a declared
  7/16/64-bit payload length that need not match the payload actually sent. ``Frame`` is the
  same thing as frozen data, so catalogues can hold frames and the walker picks mask keys.
  The opening handshake request is built by ``build_handshake`` (key and version may be
  omitted or wrong on purpose).
* Reading the handshake answer. ``parse_handshake_response`` reads the response head and
  checks what a client must check (RFC 6455 §4.1, §4.2.2): status 101, ``Upgrade:
  websocket``, ``Connection: Upgrade`` and ``Sec-WebSocket-Accept`` = base64(SHA-1(key +
  GUID)). Frames that arrive right behind the head are handed back in ``rest``.
* Parsing server frames. ``ServerFrameParser`` is incremental (feed any split of the bytes)
  and capped: the server is not trusted, so a frame that breaks the rules becomes a
  ``FrameError`` value (and the parser stops), never an exception.

Nothing here does I/O; masking keys and handshake keys come from the caller's PRNG.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.errors import HarnessError
from protocols.response_head import HeadError, ResponseHead, parse_response_head

#: RFC 6455 §1.3: the GUID concatenated with the key to prove the server read the handshake.
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 6455 §4.1: "The value of this header field MUST be 13."
WS_VERSION = "13"
#: RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD = 125
#: Default cap on one server frame's payload (a hostile server cannot make us buffer more).
DEFAULT_MAX_PAYLOAD = 1 << 20


class Opcode(enum.IntEnum):
    """Frame opcodes defined by RFC 6455 §5.2 (3-7 and 0xB-0xF are reserved)."""

    #: §5.2 "%x0 denotes a continuation frame"
    CONTINUATION = 0x0
    #: §5.2 "%x1 denotes a text frame"
    TEXT = 0x1
    #: §5.2 "%x2 denotes a binary frame"
    BINARY = 0x2
    #: §5.2 "%x8 denotes a connection close"
    CLOSE = 0x8
    #: §5.2 "%x9 denotes a ping"
    PING = 0x9
    #: §5.2 "%xA denotes a pong"
    PONG = 0xA


#: §5.2 "%x3-7 are reserved for further non-control frames"
RESERVED_DATA_OPCODES = (0x3, 0x4, 0x5, 0x6, 0x7)
#: §5.2 "%xB-F are reserved for further control frames"
RESERVED_CONTROL_OPCODES = (0xB, 0xC, 0xD, 0xE, 0xF)


def is_control(opcode: int) -> bool:
    """§5.5: control frames are identified by opcodes where the MSB of the opcode is 1."""
    return bool(opcode & 0x8)


class CloseCode(enum.IntEnum):
    """Status codes of RFC 6455 §7.4.1 ("Defined Status Codes")."""

    #: §7.4.1 1000: "a normal closure, meaning that the purpose for which the connection was
    #: established has been fulfilled".
    NORMAL = 1000
    #: §7.4.1 1001: an endpoint is "going away", such as a server going down.
    GOING_AWAY = 1001
    #: §7.4.1 1002: "terminating the connection due to a protocol error".
    PROTOCOL_ERROR = 1002
    #: §7.4.1 1003: "received a type of data it cannot accept".
    UNSUPPORTED_DATA = 1003
    #: §7.4.1 1004: "Reserved. The specific meaning might be defined in the future."
    RESERVED = 1004
    #: §7.4.1 1005: "a reserved value and MUST NOT be set as a status code in a Close control
    #: frame by an endpoint" (means "no status code was actually present").
    NO_STATUS_RCVD = 1005
    #: §7.4.1 1006: "a reserved value and MUST NOT be set as a status code in a Close control
    #: frame by an endpoint" (means "closed abnormally").
    ABNORMAL_CLOSURE = 1006
    #: §7.4.1 1007: "received data within a message that was not consistent with the type of
    #: the message (e.g., non-UTF-8 [RFC3629] data within a text message)".
    INVALID_PAYLOAD = 1007
    #: §7.4.1 1008: "received a message that violates its policy" (the generic code).
    POLICY_VIOLATION = 1008
    #: §7.4.1 1009: "received a message that is too big for it to process".
    MESSAGE_TOO_BIG = 1009
    #: §7.4.1 1010: the client expected the server to negotiate an extension.
    MANDATORY_EXTENSION = 1010
    #: §7.4.1 1011: "encountered an unexpected condition that prevented it from fulfilling
    #: the request".
    INTERNAL_ERROR = 1011
    #: §7.4.1 1015: "a reserved value and MUST NOT be set as a status code in a Close control
    #: frame by an endpoint" (means "TLS handshake failed").
    TLS_HANDSHAKE = 1015


#: §7.4.1: the three codes that "MUST NOT be set as a status code in a Close control frame".
NEVER_SENT_CODES = frozenset(
    {CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE, CloseCode.TLS_HANDSHAKE}
)
#: Registered since RFC 6455 in the IANA "WebSocket Close Code Number Registry" (§11.7):
#: 1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway. Valid on the wire.
IANA_REGISTERED_CODES = frozenset({1012, 1013, 1014})
_DEFINED_CODES = frozenset(int(code) for code in CloseCode)


class CodeStanding(enum.Enum):
    """Whether a close code may appear in a Close frame on the wire."""

    #: Defined in §7.4.1, registered with IANA (§11.7), or in 3000-4999 (§7.4.2).
    VALID = "valid"
    #: In a range the RFC does not assign: 0-999 ("not used"), 1004 ("Reserved"), the
    #: unregistered rest of 1000-2999, 5000 and above. Sending it breaks §5.5.1: "the first
    #: two bytes of the body MUST be ... a status code with value /code/ defined in Section
    #: 7.4" (a receiver fails the connection on it, so it is no valid code to send either).
    UNDEFINED = "undefined"
    #: 1005, 1006 and 1015: §7.4.1 "MUST NOT be set as a status code in a Close control
    #: frame by an endpoint".
    FORBIDDEN = "forbidden"


def code_standing(code: int) -> CodeStanding:
    """Classify ``code`` by RFC 6455 §7.4.1 and §7.4.2."""
    if code in NEVER_SENT_CODES:
        return CodeStanding.FORBIDDEN
    if 3000 <= code <= 4999 or code in IANA_REGISTERED_CODES:
        return CodeStanding.VALID
    if code in _DEFINED_CODES and code != CloseCode.RESERVED:
        return CodeStanding.VALID
    return CodeStanding.UNDEFINED


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    """Body of a Close frame (RFC 6455 §5.5.1): a 2-byte code, then the reason bytes."""
    if code is None:
        if reason:
            raise HarnessError("a Close reason needs a status code before it")
        return b""
    if not 0 <= code <= 0xFFFF:
        raise HarnessError(f"close code {code} does not fit in 16 bits")
    return struct.pack("!H", code) + reason


class LengthWidth(enum.Enum):
    """How the payload length is encoded (RFC 6455 §5.2 "Payload length")."""

    #: 7 bits in the second byte (0-125).
    SHORT = 7
    #: 126, then a 16-bit unsigned length.
    MEDIUM = 16
    #: 127, then a 64-bit length ("the most significant bit MUST be 0").
    LONG = 64


def _minimal_width(length: int) -> LengthWidth:
    if length <= 125:
        return LengthWidth.SHORT
    if length <= 0xFFFF:
        return LengthWidth.MEDIUM
    return LengthWidth.LONG


def mask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3: octet i of the payload XOR octet i MOD 4 of the masking key."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask_key: bytes | None = None,
    declared_length: int | None = None,
    width: LengthWidth | None = None,
) -> bytes:
    """Encode one frame exactly as asked, lawful or not.

    Args:
        opcode: 0-15, reserved values included.
        payload: the bytes actually sent after the header (masked when ``mask_key`` is set).
        fin: the FIN bit.
        rsv: RSV1/RSV2/RSV3 as a 3-bit number (4 = RSV1, 2 = RSV2, 1 = RSV3).
        mask_key: 4 bytes to mask with, or None for an unmasked frame.
        declared_length: the length written in the header (default ``len(payload)``).
        width: force a 7/16/64-bit length field (default: the minimal one).

    Raises:
        HarnessError: on arguments the wire cannot carry (opcode > 15, a 3-byte mask key,
            a declared length that does not fit the chosen width).
    """
    if not 0 <= opcode <= 0xF:
        raise HarnessError(f"opcode {opcode} does not fit in 4 bits")
    if not 0 <= rsv <= 7:
        raise HarnessError(f"rsv {rsv} does not fit in 3 bits")
    if mask_key is not None and len(mask_key) != 4:
        raise HarnessError("a masking key is exactly 4 bytes")
    length = len(payload) if declared_length is None else declared_length
    chosen = width or _minimal_width(length)
    head = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask_key is not None else 0
    if chosen is LengthWidth.SHORT:
        if not 0 <= length <= 125:
            raise HarnessError(f"length {length} does not fit the 7-bit field")
        head.append(mask_bit | length)
    elif chosen is LengthWidth.MEDIUM:
        if not 0 <= length <= 0xFFFF:
            raise HarnessError(f"length {length} does not fit the 16-bit field")
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        if not 0 <= length <= 0xFFFF_FFFF_FFFF_FFFF:
            raise HarnessError(f"length {length} does not fit the 64-bit field")
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if mask_key is None:
        return bytes(head) + payload
    return bytes(head) + mask_key + mask(payload, mask_key)


@dataclass(frozen=True)
class Frame:
    """One client frame as data; ``masked=False`` sends it unmasked whatever key is given."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    declared_length: int | None = None
    width: LengthWidth | None = None

    def encode(self, mask_key: bytes) -> bytes:
        return build_frame(
            self.opcode,
            self.payload,
            fin=self.fin,
            rsv=self.rsv,
            mask_key=mask_key if self.masked else None,
            declared_length=self.declared_length,
            width=self.width,
        )


def encode_frames(frames: Iterable[Frame], mask_keys: Iterable[bytes]) -> bytes:
    """Concatenate frames, each masked with the next key from ``mask_keys``."""
    keys = iter(mask_keys)
    return b"".join(frame.encode(next(keys)) for frame in frames)


# --- opening handshake ------------------------------------------------------------------


def make_key(nonce: bytes) -> str:
    """RFC 6455 §4.1: "a randomly selected 16-byte value that has been base64-encoded"."""
    if len(nonce) != 16:
        raise HarnessError("a Sec-WebSocket-Key nonce is 16 bytes")
    return base64.b64encode(nonce).decode("ascii")


def accept_for(key: str) -> str:
    """RFC 6455 §4.2.2: base64 of the SHA-1 of the key concatenated with the GUID."""
    digest = hashlib.sha1(key.encode("ascii", "replace") + WS_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _check_header_value(value: str) -> None:
    if any(ch in value for ch in "\r\n\0"):
        raise HarnessError(f"header value with CR/LF/NUL: {value!r}")


def build_handshake(
    path: str,
    host: str,
    key: str | None,
    *,
    version: str | None = WS_VERSION,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The client's opening handshake (RFC 6455 §4.1); ``key``/``version`` None omit them.

    No ``Sec-WebSocket-Extensions`` is offered, so the RSV bits have no negotiated meaning
    and a server must fail a frame that sets them (RFC 6455 §5.2).
    """
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
    ]
    if key is not None:
        headers.append(("Sec-WebSocket-Key", key))
    if version is not None:
        headers.append(("Sec-WebSocket-Version", version))
    headers.extend(extra_headers)
    for value in (path, *(v for pair in headers for v in pair)):
        _check_header_value(value)
    lines = [f"GET {path} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class HandshakeResult:
    """What the server answered to the opening handshake."""

    #: The response head, or None when the bytes were not a response head at all.
    head: ResponseHead | None
    #: True when the server completed a valid WebSocket handshake for our key.
    accepted: bool
    #: Why the answer is not a valid acceptance ("" when accepted).
    problem: str
    #: Bytes after the head (the first server frames, or a body).
    rest: bytes

    @property
    def status(self) -> int | None:
        return None if self.head is None else self.head.status


def parse_handshake_response(
    buf: bytes, key: str | None, *, offered_extensions: bool = False
) -> HandshakeResult | None:
    """Judge the server's answer to our handshake; None while the head is incomplete.

    A 101 is accepted only with ``Upgrade: websocket``, a ``Connection`` header listing
    ``upgrade`` and ``Sec-WebSocket-Accept`` equal to ``accept_for(key)`` (RFC 6455 §4.1,
    client steps 2-4). With ``key=None`` (a handshake that omitted it) no 101 is valid.
    ``offered_extensions``: the request offered some, so the caller judges the answer's
    ``Sec-WebSocket-Extensions`` itself (``protocols.ws_deflate``).
    """
    head = parse_response_head(buf)
    if head is None:
        return None
    if isinstance(head, HeadError):
        return HandshakeResult(None, False, head.reason, b"")
    rest = bytes(buf[head.length :])
    if head.status != 101:
        return HandshakeResult(head, False, f"status {head.status}, not 101", rest)
    problem = _acceptance_problem(head, key, offered_extensions)
    return HandshakeResult(head, not problem, problem, rest)


def _acceptance_problem(head: ResponseHead, key: str | None, offered: bool = False) -> str:
    upgrade = head.get(b"upgrade")
    if upgrade is None or upgrade.strip().lower() != b"websocket":
        return f"101 without Upgrade: websocket ({upgrade!r})"
    if not head.has_token(b"connection", b"upgrade"):
        return "101 without Connection: Upgrade"
    accept = head.get(b"sec-websocket-accept")
    if key is None:
        return "101 to a handshake that had no Sec-WebSocket-Key"
    if accept is None:
        return "101 without Sec-WebSocket-Accept"
    if accept.strip() != accept_for(key).encode("ascii"):
        return f"Sec-WebSocket-Accept {accept[:64]!r} does not match the key"
    if not offered and head.get(b"sec-websocket-extensions") is not None:
        return "101 with Sec-WebSocket-Extensions that the client never offered"
    return ""


# --- server frames ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerFrame:
    """One complete frame from the server (payload already unmasked if it was masked)."""

    opcode: int
    fin: bool
    rsv: int
    payload: bytes


@dataclass(frozen=True)
class FrameError:
    """The server's bytes broke the framing rules; the parser stops at the first one."""

    reason: str
    #: True when the only fault is exceeding our cap (not an RFC violation).
    over_cap: bool = False


@dataclass(frozen=True)
class CloseInfo:
    """A Close frame's body, split and judged."""

    code: int | None
    reason: bytes
    #: How the code stands (VALID when there is no code: an empty body is allowed).
    standing: CodeStanding
    #: A MUST-level defect of the body itself ("" when none): a 1-byte body (§5.5.1 "the
    #: first two bytes of the body MUST be a 2-byte unsigned integer"), a code that is
    #: forbidden (§7.4.1) or not defined in §7.4 (§5.5.1 "... a status code with value /code/
    #: defined in Section 7.4"), or a reason that is not UTF-8 (§5.5.1 "the body MAY contain
    #: UTF-8-encoded data", §8.1).
    problem: str


def parse_close(payload: bytes) -> CloseInfo:
    """Split and judge a Close body (RFC 6455 §5.5.1, §7.4)."""
    if not payload:
        return CloseInfo(None, b"", CodeStanding.VALID, "")
    if len(payload) == 1:
        return CloseInfo(None, payload, CodeStanding.VALID, "Close body of 1 byte")
    (code,) = struct.unpack("!H", payload[:2])
    reason = payload[2:]
    standing = code_standing(code)
    if standing is CodeStanding.FORBIDDEN:
        return CloseInfo(code, reason, standing, f"close code {code} MUST NOT be sent")
    if standing is CodeStanding.UNDEFINED:
        return CloseInfo(code, reason, standing,
                         f"close code {code} is not defined in RFC 6455 §7.4 (§5.5.1)")
    try:
        reason.decode("utf-8")
    except UnicodeDecodeError:
        return CloseInfo(code, reason, standing, "close reason is not valid UTF-8")
    return CloseInfo(code, reason, standing, "")


class ServerFrameParser:
    """Incremental, capped parser for frames a server sends to a client (RFC 6455 §5.2).

    ``feed(data)`` returns the frames completed by ``data`` and, at most once, a trailing
    ``FrameError``; after an error every later ``feed`` returns ``[]``. A server frame is an
    error when it is masked (§5.1 "A server MUST NOT mask any frames"), sets RSV bits (no
    extension was negotiated), uses a reserved opcode, is a control frame that is fragmented
    or longer than 125 bytes (§5.5), sets the MSB of a 64-bit length (§5.2), or declares a
    payload over ``max_payload`` (our cap, not an RFC rule). ``allowed_rsv``: RSV bits a
    negotiated extension gives a meaning (RSV1 = 4 under permessage-deflate, RFC 7692 §6);
    its user judges where they may appear.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD, allowed_rsv: int = 0) -> None:
        self.max_payload = max_payload
        self.allowed_rsv = allowed_rsv
        self._buf = bytearray()
        self.failed: FrameError | None = None
        #: Total bytes consumed by complete frames.
        self.consumed = 0

    def feed(self, data: bytes) -> list[ServerFrame | FrameError]:
        if self.failed is not None:
            return []
        self._buf += data
        out: list[ServerFrame | FrameError] = []
        while True:
            step = self._next()
            if step is None:
                return out
            out.append(step)
            if isinstance(step, FrameError):
                self.failed = step
                self._buf.clear()
                return out

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a complete frame."""
        return len(self._buf)

    def _next(self) -> ServerFrame | FrameError | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        fin, rsv, opcode = bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F
        masked, length, offset = bool(second & 0x80), second & 0x7F, 2
        if rsv & ~self.allowed_rsv:
            return FrameError(f"server frame sets RSV bits {rsv:03b} with no extension")
        if opcode in RESERVED_DATA_OPCODES or opcode in RESERVED_CONTROL_OPCODES:
            return FrameError(f"server frame uses reserved opcode {opcode:#x}")
        if masked:
            return FrameError("server frame is masked")
        if is_control(opcode):
            if not fin:
                return FrameError("fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                return FrameError(f"control frame declares {length} bytes (> 125)")
        if length == 126:
            if len(buf) < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, 2)
            offset = 4
        elif length == 127:
            if len(buf) < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, 2)
            offset = 10
            if length >> 63:
                return FrameError("64-bit payload length with the most significant bit set")
        if length > self.max_payload:
            return FrameError(
                f"server frame declares {length} bytes (cap {self.max_payload})", over_cap=True
            )
        end = offset + length
        if len(buf) < end:
            return None
        payload = bytes(buf[offset:end])
        del buf[:end]
        self.consumed += end
        return ServerFrame(opcode=opcode, fin=fin, rsv=rsv, payload=payload)
