"""Bytes-only tests for protocols.websocket_frames: builders, handshake reader, frame parser."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from protocols import websocket_frames as wf
from protocols.errors import HarnessError
from protocols.websocket_frames import (
    CloseCode,
    CodeStanding,
    FrameError,
    LengthWidth,
    Opcode,
    ServerFrame,
    ServerFrameParser,
)

# --- builder: RFC 6455 §5.7 examples ----------------------------------------------------


def test_rfc_examples_unmasked_and_masked_hello() -> None:
    assert wf.build_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
    masked = wf.build_frame(Opcode.TEXT, b"Hello", mask_key=bytes.fromhex("37fa213d"))
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")


def test_rfc_examples_fragments_ping_and_lengths() -> None:
    assert wf.build_frame(Opcode.TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert wf.build_frame(Opcode.CONTINUATION, b"lo") == bytes.fromhex("80026c6f")
    assert wf.build_frame(Opcode.PING, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert wf.build_frame(Opcode.BINARY, b"\0" * 256)[:4] == bytes.fromhex("827e0100")
    assert wf.build_frame(Opcode.BINARY, b"\0" * 65536)[:10] == bytes.fromhex(
        "827f0000000000010000"
    )


def test_declared_length_is_independent_of_payload() -> None:
    frame = wf.build_frame(Opcode.BINARY, b"abc", declared_length=1 << 53)
    assert frame[:2] == b"\x82\x7f"
    assert struct.unpack("!Q", frame[2:10])[0] == 1 << 53
    assert frame[10:] == b"abc"
    msb = wf.build_frame(Opcode.BINARY, b"", declared_length=(1 << 63) | 1)
    assert msb[2] & 0x80


def test_forced_width_rsv_and_reserved_opcodes() -> None:
    frame = wf.build_frame(Opcode.TEXT, b"hi", width=LengthWidth.LONG)
    assert frame[:10] == b"\x81\x7f" + struct.pack("!Q", 2)
    assert wf.build_frame(3, b"", rsv=7)[0] == 0x80 | 0x70 | 3
    assert wf.build_frame(0xF, b"x", fin=False)[0] == 0x0F


@pytest.mark.parametrize(
    "kwargs",
    [
        {"opcode": 16},
        {"opcode": 1, "rsv": 8},
        {"opcode": 1, "mask_key": b"abc"},
        {"opcode": 1, "declared_length": 126, "width": LengthWidth.SHORT},
        {"opcode": 1, "declared_length": 1 << 16, "width": LengthWidth.MEDIUM},
        {"opcode": 1, "declared_length": 1 << 64},
    ],
)
def test_builder_refuses_what_the_wire_cannot_carry(kwargs: dict) -> None:
    opcode = kwargs.pop("opcode")
    with pytest.raises(HarnessError):
        wf.build_frame(opcode, b"", **kwargs)


def test_frame_dataclass_masks_unless_told_not_to() -> None:
    key = b"\x01\x02\x03\x04"
    assert wf.Frame(Opcode.TEXT, b"a").encode(key)[1] & 0x80
    assert not wf.Frame(Opcode.TEXT, b"a", masked=False).encode(key)[1] & 0x80
    assert wf.mask(wf.mask(b"payload", key), key) == b"payload"


# --- close codes --------------------------------------------------------------------------


def test_close_code_standing_follows_section_7_4() -> None:
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
    assert all(wf.code_standing(c) is CodeStanding.VALID for c in valid)
    forbidden = [1005, 1006, 1015]
    assert all(wf.code_standing(c) is CodeStanding.FORBIDDEN for c in forbidden)
    undefined = [0, 999, 1004, 1016, 2999, 5000, 65535]
    assert all(wf.code_standing(c) is CodeStanding.UNDEFINED for c in undefined)


def test_every_close_code_member_cites_the_rfc() -> None:
    source = Path(wf.__file__).read_text(encoding="utf-8")
    for member in CloseCode:
        index = source.index(f"    {member.name} = {member.value}")
        comment = source[source.rindex("\n\n", 0, index) : index]
        assert "§7.4.1" in comment, member


def test_parse_close() -> None:
    assert wf.parse_close(b"") == wf.CloseInfo(None, b"", CodeStanding.VALID, "")
    assert wf.parse_close(b"\x03").problem
    info = wf.parse_close(wf.close_payload(1000, b"bye"))
    assert (info.code, info.reason, info.problem) == (1000, b"bye", "")
    assert wf.parse_close(wf.close_payload(1005)).problem
    assert wf.parse_close(wf.close_payload(1000, b"\xff")).problem
    undefined = wf.parse_close(wf.close_payload(999))
    assert undefined.standing is CodeStanding.UNDEFINED and "§7.4" in undefined.problem
    assert not wf.parse_close(wf.close_payload(4999, b"ok")).problem
    with pytest.raises(HarnessError):
        wf.close_payload(None, b"reason")


# --- handshake ---------------------------------------------------------------------------

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def _response(accept: str = RFC_ACCEPT, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n" + extra + b"\r\n"
    )


def test_accept_matches_rfc_example() -> None:
    assert wf.accept_for(RFC_KEY) == RFC_ACCEPT
    assert wf.make_key(b"the sample nonce") == RFC_KEY


def test_build_handshake_variants() -> None:
    req = wf.build_handshake("/ws", "h:1", RFC_KEY)
    assert req.startswith(b"GET /ws HTTP/1.1\r\nHost: h:1\r\n")
    assert b"Sec-WebSocket-Key: " + RFC_KEY.encode() in req
    assert b"Sec-WebSocket-Version: 13\r\n" in req and req.endswith(b"\r\n\r\n")
    assert b"Sec-WebSocket-Key" not in wf.build_handshake("/ws", "h", None)
    assert b"Sec-WebSocket-Version: 12" in wf.build_handshake("/ws", "h", RFC_KEY, version="12")
    assert b"Sec-WebSocket-Version" not in wf.build_handshake("/ws", "h", RFC_KEY, version=None)
    with pytest.raises(HarnessError):
        wf.build_handshake("/ws\r\nX: y", "h", RFC_KEY)


def test_handshake_response_whole_bytewise_trailing() -> None:
    good = _response()
    result = wf.parse_handshake_response(good, RFC_KEY)
    assert result is not None and result.accepted and result.rest == b""
    for end in range(len(good)):
        assert wf.parse_handshake_response(good[:end], RFC_KEY) is None
    trailing = wf.parse_handshake_response(good + b"\x81\x02hi", RFC_KEY)
    assert trailing is not None and trailing.accepted and trailing.rest == b"\x81\x02hi"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (_response(accept="AAAA"), "does not match"),
        (_response().replace(b"Upgrade: websocket\r\n", b""), "Upgrade"),
        (_response().replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive\r\n"),
         "Connection"),
        (_response(extra=b"Sec-WebSocket-Extensions: permessage-deflate\r\n"), "Extensions"),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "status 400"),
        (b"\x00\x00\x12\x04garbage", "not an HTTP"),
    ],
)
def test_handshake_response_problems(data: bytes, problem: str) -> None:
    result = wf.parse_handshake_response(data, RFC_KEY)
    assert result is not None and not result.accepted
    assert problem in result.problem


def test_handshake_without_key_never_accepts() -> None:
    result = wf.parse_handshake_response(_response(), None)
    assert result is not None and not result.accepted


# --- server frame parser ------------------------------------------------------------------

STREAM = (
    wf.build_frame(Opcode.TEXT, b"hello")
    + wf.build_frame(Opcode.PING, b"p")
    + wf.build_frame(Opcode.BINARY, b"x" * 300)
    + wf.build_frame(Opcode.TEXT, b"frag", fin=False)
    + wf.build_frame(Opcode.CONTINUATION, b"ment")
    + wf.build_frame(Opcode.CLOSE, wf.close_payload(1000))
)
EXPECTED = [
    ServerFrame(Opcode.TEXT, True, 0, b"hello"),
    ServerFrame(Opcode.PING, True, 0, b"p"),
    ServerFrame(Opcode.BINARY, True, 0, b"x" * 300),
    ServerFrame(Opcode.TEXT, False, 0, b"frag"),
    ServerFrame(Opcode.CONTINUATION, True, 0, b"ment"),
    ServerFrame(Opcode.CLOSE, True, 0, b"\x03\xe8"),
]


def test_parser_whole() -> None:
    parser = ServerFrameParser()
    assert parser.feed(STREAM) == EXPECTED
    assert parser.buffered == 0 and parser.consumed == len(STREAM)


def test_parser_byte_by_byte() -> None:
    parser = ServerFrameParser()
    out = []
    for byte in STREAM:
        out += parser.feed(bytes([byte]))
    assert out == EXPECTED


def test_parser_trailing_partial_frame_is_held() -> None:
    parser = ServerFrameParser()
    assert parser.feed(STREAM + b"\x81\x05hel") == EXPECTED
    assert parser.buffered == 5
    assert parser.feed(b"lo") == [ServerFrame(Opcode.TEXT, True, 0, b"hello")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (wf.build_frame(Opcode.TEXT, b"a", mask_key=b"abcd"), "masked"),
        (wf.build_frame(Opcode.TEXT, b"a", rsv=4), "RSV"),
        (wf.build_frame(3, b"a"), "reserved opcode"),
        (wf.build_frame(0xB, b"a"), "reserved opcode"),
        (wf.build_frame(Opcode.PING, b"a" * 126), "> 125"),
        (wf.build_frame(Opcode.PING, b"a", fin=False), "fragmented control"),
        (wf.build_frame(Opcode.BINARY, b"", declared_length=1 << 63), "most significant"),
    ],
)
def test_parser_reports_server_violations(data: bytes, reason: str) -> None:
    parser = ServerFrameParser()
    out = parser.feed(wf.build_frame(Opcode.TEXT, b"ok") + data)
    assert out[0] == ServerFrame(Opcode.TEXT, True, 0, b"ok")
    assert isinstance(out[1], FrameError) and reason in out[1].reason
    assert not out[1].over_cap
    assert parser.feed(wf.build_frame(Opcode.TEXT, b"more")) == []


def test_parser_cap_is_not_a_violation() -> None:
    parser = ServerFrameParser(max_payload=10)
    (error,) = parser.feed(wf.build_frame(Opcode.BINARY, b"", declared_length=11))
    assert isinstance(error, FrameError) and error.over_cap


def test_fuzz_any_bytes_give_frames_or_one_error() -> None:
    rng = random.Random(6455)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(0, 64))
        parser = ServerFrameParser(max_payload=4096)
        chunks = [data[i : i + rng.randrange(1, 8)] for i in range(0, len(data), 7)]
        out = []
        for chunk in chunks:
            out += parser.feed(chunk)
        errors = [item for item in out if isinstance(item, FrameError)]
        assert len(errors) <= 1 and (not errors or out[-1] is errors[0])
        assert all(isinstance(item, (ServerFrame, FrameError)) for item in out)
        wf.parse_handshake_response(data, RFC_KEY)
        wf.parse_close(data)
