"""h2c upgrade churn: the bytes a client sends and a classifier for what the server answered.

How this works: the h2c slice opens a connection, sends an HTTP/1.1 request asking to
upgrade to cleartext HTTP/2 (RFC 7540 §3.2; RFC 9113 deprecates the mechanism, so declining
is as correct as upgrading), and walks away at one of the ``TeardownStage`` moments. What the
server said before we left is classified by ``classify_answer``:

* UPGRADED: ``101 Switching Protocols`` with ``Upgrade: h2c``, then valid HTTP/2 frames, the
  first being a non-ACK SETTINGS frame on stream 0 (RFC 7540 §3.2 "The first HTTP/2 frame
  sent by the server MUST be a server connection preface (Section 3.5) consisting of a
  SETTINGS frame"). The server may wait for our preface before sending it, so the SETTINGS
  check is only final once ``preface_sent`` is true.
* DECLINED: a valid HTTP/1.x answer other than 101 and 5xx ("a server ... can respond to the
  request as though the Upgrade header field were absent", RFC 7540 §3.2).
* SERVER_ERROR: a 5xx. GARBAGE: bytes that are neither an HTTP/1.x head nor, after a 101,
  well-formed HTTP/2 frames. HANG: nothing decisive by the deadline with the socket open.
  CLOSED: the server closed or reset before a complete answer.

The frame checks are structural (RFC 9113 §4.1 header, §6 fixed lengths and stream rules,
§6.5 SETTINGS values); HPACK contents are not decoded. Unknown frame types are skipped
("Implementations MUST ignore and discard frames of unknown types", RFC 9113 §4.1).
"""

from __future__ import annotations

import base64
import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocols.errors import HarnessError
from protocols.h2_frames import (  # noqa: F401  (re-exported: h2c's users import them here)
    CLIENT_MAGIC,
    DEFAULT_SETTINGS,
    FLAG_ACK,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    FRAME_HEADER_LEN,
    MAX_FRAME_SIZE,
    SETTINGS_ACK,
    FrameHeader,
    FrameType,
    Setting,
    build_frame,
    frame_header,
    settings_frame,
    settings_payload,
)
from protocols.response_head import HeadError, ResponseHead, parse_response_head


def http2_settings_value(settings: Mapping[int, int] = DEFAULT_SETTINGS) -> str:
    """RFC 7540 §3.2.1: "the base64url encoding of a SETTINGS frame payload", "with any
    trailing '=' characters omitted"."""
    encoded = base64.urlsafe_b64encode(settings_payload(settings)).rstrip(b"=")
    return encoded.decode("ascii")


def build_upgrade_request(
    path: str,
    host: str,
    settings: Mapping[int, int] = DEFAULT_SETTINGS,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """An HTTP/1.1 GET asking for h2c (RFC 7540 §3.2, §3.2.1).

    "Since the upgrade is only intended to apply to the immediate connection, a client
    sending the HTTP2-Settings header field MUST also send HTTP2-Settings as a connection
    option in the Connection header field".
    """
    headers = [
        ("Host", host),
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", http2_settings_value(settings)),
        *extra_headers,
    ]
    for value in (path, *(v for pair in headers for v in pair)):
        if any(ch in value for ch in "\r\n\0"):
            raise HarnessError(f"CR/LF/NUL in request part {value!r}")
    lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def build_client_preface(settings: Mapping[int, int] = DEFAULT_SETTINGS) -> bytes:
    """RFC 9113 §3.4: the magic octets, then a SETTINGS frame (possibly empty)."""
    return CLIENT_MAGIC + settings_frame(settings)


class TeardownStage(enum.Enum):
    """Where the churn walker abandons the connection (with a FIN or an RST)."""

    #: Part of the upgrade request's head is sent; the rest never comes.
    MID_HEADERS = "mid_headers"
    #: The whole upgrade request is sent; we leave before any response byte.
    REQUEST_SENT = "request_sent"
    #: The server's answer (101 or an HTTP/1.1 response head) is read; we leave.
    AFTER_RESPONSE = "after_response"
    #: After a 101, part of the client connection preface (RFC 9113 §3.4) is sent.
    PARTIAL_PREFACE = "partial_preface"
    #: Our preface and SETTINGS are sent and the server's SETTINGS read; we leave
    #: without the SETTINGS ACK that RFC 9113 §6.5.3 requires.
    AFTER_SETTINGS = "after_settings"
    #: The response to the upgraded request (stream 1) or the declined HTTP/1.1 response
    #: has started arriving; we leave before reading it all.
    MID_RESPONSE = "mid_response"


class AnswerKind(enum.Enum):
    """What the server did with an h2c upgrade request."""

    #: 101 with Upgrade: h2c, then valid HTTP/2 frames starting with SETTINGS.
    UPGRADED = "upgraded"
    #: A valid HTTP/1.x response other than 101 or 5xx.
    DECLINED = "declined"
    #: A 5xx response.
    SERVER_ERROR = "server_error"
    #: Neither a valid HTTP/1.x head nor valid HTTP/2 frames after a 101.
    GARBAGE = "garbage"
    #: Nothing decisive by the deadline, socket still open.
    HANG = "hang"
    #: The server closed or reset before a complete answer.
    CLOSED = "closed"


class Transport(enum.Enum):
    """How the read ended (mapped from the socket layer by the walker)."""

    OPEN = "open"
    EOF = "eof"
    RESET = "reset"
    CAP = "cap"


@dataclass(frozen=True)
class FramesCheck:
    """Structural check of the server's HTTP/2 bytes after a 101."""

    #: Complete frames seen, in order.
    frames: tuple[FrameHeader, ...]
    #: True once the first frame is a valid SETTINGS (the server preface).
    preface_valid: bool
    #: The first structural problem ("" when none).
    problem: str


def check_server_frames(data: bytes) -> FramesCheck:
    """Walk complete frames in ``data`` and check each one's header and fixed-size rules."""
    frames: list[FrameHeader] = []
    offset = 0
    while len(data) - offset >= FRAME_HEADER_LEN:
        header = frame_header(data, offset)
        length, ftype, flags = header.length, header.type, header.flags
        problem = _header_problem(header, first=not frames)
        if problem:
            return FramesCheck(tuple(frames), bool(frames), problem)
        end = offset + FRAME_HEADER_LEN + length
        if end > len(data):
            break
        if ftype == FrameType.SETTINGS and not flags & FLAG_ACK:
            problem = _settings_problem(data[offset + FRAME_HEADER_LEN : end])
            if problem:
                return FramesCheck(tuple(frames), bool(frames), problem)
        frames.append(header)
        offset = end
    problem = _partial_header_problem(data[offset : offset + FRAME_HEADER_LEN], not frames)
    return FramesCheck(tuple(frames), bool(frames), problem)


def _partial_header_problem(part: bytes, first: bool) -> str:
    """Judge an incomplete frame header as far as its bytes go (garbage is caught early)."""
    if len(part) >= 3 and int.from_bytes(part[:3], "big") > MAX_FRAME_SIZE:
        return f"frame of {int.from_bytes(part[:3], 'big')} bytes exceeds {MAX_FRAME_SIZE}"
    if first and len(part) >= 4 and part[3] != FrameType.SETTINGS:
        return f"server preface is frame type {part[3]:#x}, not SETTINGS"
    return ""


# Fixed payload lengths (RFC 9113 §6.3, §6.4, §6.7, §6.9) and stream-0 rules (§6.x).
_FIXED_LENGTH = {
    FrameType.PRIORITY: 5,
    FrameType.RST_STREAM: 4,
    FrameType.PING: 8,
    FrameType.WINDOW_UPDATE: 4,
}
_CONNECTION_ONLY = {FrameType.SETTINGS, FrameType.PING, FrameType.GOAWAY}
_STREAM_ONLY = {
    FrameType.DATA,
    FrameType.HEADERS,
    FrameType.PRIORITY,
    FrameType.RST_STREAM,
    FrameType.PUSH_PROMISE,
    FrameType.CONTINUATION,
}


def _header_problem(h: FrameHeader, *, first: bool) -> str:
    if h.length > MAX_FRAME_SIZE:
        return f"frame of {h.length} bytes exceeds SETTINGS_MAX_FRAME_SIZE {MAX_FRAME_SIZE}"
    if first and (h.type != FrameType.SETTINGS or h.flags & FLAG_ACK):
        return f"server preface is frame type {h.type:#x} flags {h.flags:#x}, not SETTINGS"
    if h.type not in FrameType._value2member_map_:
        return ""
    ftype = FrameType(h.type)
    if ftype in _CONNECTION_ONLY and h.stream_id != 0:
        return f"{ftype.name} on stream {h.stream_id} (must be stream 0)"
    if ftype in _STREAM_ONLY and h.stream_id == 0:
        return f"{ftype.name} on stream 0"
    fixed = _FIXED_LENGTH.get(ftype)
    if fixed is not None and h.length != fixed:
        return f"{ftype.name} of length {h.length} (must be {fixed})"
    if ftype is FrameType.SETTINGS:
        if h.flags & FLAG_ACK and h.length:
            return "SETTINGS ACK with a payload"
        if h.length % 6:
            return f"SETTINGS length {h.length} is not a multiple of 6"
    if ftype is FrameType.GOAWAY and h.length < 8:
        return f"GOAWAY of length {h.length} (at least 8)"
    return ""


def _settings_problem(payload: bytes) -> str:
    for offset in range(0, len(payload) - 5, 6):
        ident, value = struct.unpack_from("!HI", payload, offset)
        if ident == Setting.ENABLE_PUSH and value > 1:
            return f"SETTINGS_ENABLE_PUSH = {value}"
        if ident == Setting.INITIAL_WINDOW_SIZE and value > 0x7FFF_FFFF:
            return f"SETTINGS_INITIAL_WINDOW_SIZE = {value}"
        if ident == Setting.MAX_FRAME_SIZE and not MAX_FRAME_SIZE <= value <= 0xFF_FFFF:
            return f"SETTINGS_MAX_FRAME_SIZE = {value}"
    return ""


@dataclass(frozen=True)
class H2cAnswer:
    kind: AnswerKind
    #: Final HTTP status, when an HTTP/1.x head was read.
    status: int | None
    detail: str
    #: After a 101: the structural check of the HTTP/2 bytes that followed.
    frames: FramesCheck | None = None
    #: Bytes of the final response head (0 when none).
    head_length: int = 0


def _final_head(data: bytes) -> ResponseHead | HeadError | None:
    """Skip interim 1xx heads other than 101 (e.g. 100 Continue); return the final one."""
    offset = 0
    while True:
        head = parse_response_head(data[offset:])
        if not isinstance(head, ResponseHead) or head.status == 101 or head.status >= 200:
            if isinstance(head, ResponseHead) and offset:
                return ResponseHead(head.version, head.status, head.reason, head.headers,
                                    head.length + offset)
            return head
        offset += head.length


def classify_answer(data: bytes, transport: Transport, *, preface_sent: bool) -> H2cAnswer:
    """Classify everything the server sent on an h2c upgrade connection; never raises.

    Args:
        data: all bytes read from the server so far.
        transport: how the read ended.
        preface_sent: whether we sent our connection preface and waited for the server's
            SETTINGS; only then is a missing SETTINGS held against the server.
    """
    head = _final_head(data)
    if isinstance(head, HeadError):
        return H2cAnswer(AnswerKind.GARBAGE, None, head.reason)
    if head is None:
        if transport is Transport.OPEN:
            return H2cAnswer(AnswerKind.HANG, None, "no response head by the deadline")
        if transport is Transport.CAP:
            return H2cAnswer(AnswerKind.GARBAGE, None, "response head never ended")
        what = "closed" if transport is Transport.EOF else "reset"
        detail = f"{what} before a complete response head ({len(data)} bytes)"
        return H2cAnswer(AnswerKind.CLOSED, None, detail)
    status = head.status
    if status != 101:
        kind = AnswerKind.SERVER_ERROR if status >= 500 else AnswerKind.DECLINED
        return H2cAnswer(kind, status, f"HTTP/1.x {status}", head_length=head.length)
    upgrade = head.get(b"upgrade")
    if upgrade is None or upgrade.strip().lower() != b"h2c":
        # RFC 9110 §15.2.2: a 101 MUST say which protocol will be in effect.
        return H2cAnswer(AnswerKind.GARBAGE, 101, f"101 with Upgrade {upgrade!r}, not h2c",
                         head_length=head.length)
    check = check_server_frames(data[head.length :])
    if check.problem:
        return H2cAnswer(AnswerKind.GARBAGE, 101, check.problem, check, head.length)
    if check.preface_valid or not preface_sent:
        return H2cAnswer(AnswerKind.UPGRADED, 101, "101 then HTTP/2", check, head.length)
    if transport is Transport.OPEN:
        return H2cAnswer(AnswerKind.HANG, 101, "101 but no SETTINGS by the deadline", check,
                         head.length)
    if transport is Transport.CAP:
        return H2cAnswer(AnswerKind.GARBAGE, 101, "first frame never completed", check,
                         head.length)
    return H2cAnswer(AnswerKind.CLOSED, 101, "closed after 101 without a SETTINGS frame",
                     check, head.length)


def head_complete(data: bytes) -> bool:
    """Read predicate: the final response head is in (or the bytes are garbage)."""
    return _final_head(data) is not None


def preface_complete(data: bytes) -> bool:
    """Read predicate after a 101: the server's SETTINGS is in (or something is wrong)."""
    head = _final_head(data)
    if not isinstance(head, ResponseHead):
        return head is not None
    check = check_server_frames(data[head.length :])
    return check.preface_valid or bool(check.problem)


def stream_started(data: bytes, stream_id: int = 1) -> bool:
    """Read predicate: a frame on ``stream_id`` arrived (or something is wrong)."""
    head = _final_head(data)
    if not isinstance(head, ResponseHead):
        return head is not None
    check = check_server_frames(data[head.length :])
    return bool(check.problem) or any(f.stream_id == stream_id for f in check.frames)
