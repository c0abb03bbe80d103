"""protocols.h2_frames: the frame builder and the tolerant reader, bytes only.

The reader runs three ways (whole buffer, byte by byte, with trailing partial data), and
against ``hyperframe`` (the frame layer of the h2 library) as an independent parser.
"""

from __future__ import annotations

import random
import struct

import hpack
import pytest
from hyperframe.frame import Frame as HyperFrame

from protocols import h2_frames as fr
from protocols.errors import HarnessError

SAMPLE = (
    fr.settings_frame()
    + fr.SETTINGS_ACK
    + fr.ping(b"12345678")
    + fr.headers(1, fr.header_block(fr.request_fields("GET", "a.test", "/x")))
    + fr.data(1, b"hello")
    + fr.window_update(0, 1000)
    + fr.rst_stream(3, fr.ErrorCode.CANCEL)
    + fr.goaway(7, fr.ErrorCode.PROTOCOL_ERROR, b"debug")
    + fr.continuation(5, b"\x82", end_headers=False)
)


def _whole(data: bytes) -> list[fr.Frame]:
    return fr.FrameReader().feed(data)


def _bytewise(data: bytes) -> list[fr.Frame]:
    reader = fr.FrameReader()
    frames: list[fr.Frame] = []
    for i in range(len(data)):
        frames += reader.feed(data[i:i + 1])
    assert reader.pending == 0
    return frames


def test_frame_header_layout() -> None:
    frame = fr.build_frame(fr.FrameType.HEADERS, 0x25, 0x1234567, b"abc")
    assert frame[:3] == b"\x00\x00\x03" and frame[3] == 1 and frame[4] == 0x25
    assert struct.unpack("!I", frame[5:9])[0] == 0x1234567 and frame[9:] == b"abc"


def test_builder_refuses_what_no_frame_header_can_carry() -> None:
    with pytest.raises(HarnessError):
        fr.build_frame(0, 0, 1 << 31)
    with pytest.raises(HarnessError):
        fr.build_frame(0, 0, 1, b"\0" * (1 << 24))


def test_reader_whole_and_byte_by_byte_agree() -> None:
    whole = _whole(SAMPLE)
    assert whole == _bytewise(SAMPLE)
    assert [f.type_name for f in whole] == ["SETTINGS", "SETTINGS", "PING", "HEADERS", "DATA",
                                            "WINDOW_UPDATE", "RST_STREAM", "GOAWAY",
                                            "CONTINUATION"]
    assert whole[1].flags == fr.FLAG_ACK and whole[2].payload == b"12345678"
    assert whole[3].flags == fr.FLAG_END_STREAM | fr.FLAG_END_HEADERS
    assert whole[6].error_code() == fr.ErrorCode.CANCEL
    assert whole[7].error_code() == fr.ErrorCode.PROTOCOL_ERROR
    assert whole[7].last_stream_id() == 7 and whole[7].payload.endswith(b"debug")
    assert whole[4].error_code() is None and whole[4].last_stream_id() is None


def test_reader_holds_back_trailing_partial_frame() -> None:
    reader = fr.FrameReader()
    tail = fr.ping(b"abcdefgh")
    frames = reader.feed(SAMPLE + tail[:11])
    assert len(frames) == 9 and reader.pending == 11
    rest = reader.feed(tail[11:])
    assert [f.type for f in rest] == [fr.FrameType.PING] and reader.pending == 0


def test_reader_agrees_with_hyperframe() -> None:
    """An independent parser reads the same types, flags, streams and payload lengths."""
    offset = 0
    for ours in _whole(SAMPLE):
        theirs, length = HyperFrame.parse_frame_header(memoryview(SAMPLE[offset:offset + 9]))
        assert (theirs.type, theirs.stream_id, length) == (ours.type, ours.stream_id,
                                                          len(ours.payload))
        offset += 9 + length
    assert offset == len(SAMPLE)


def test_reader_masks_the_reserved_bit() -> None:
    frame = bytearray(fr.ping(b"abcdefgh"))
    frame[5] |= 0x80
    assert _whole(bytes(frame))[0].stream_id == 0


def test_oversized_frame_is_a_problem_not_an_exception() -> None:
    reader = fr.FrameReader()
    big = b"\x00\x40\x01" + b"\x00" * 6  # announces 16385 octets
    assert reader.feed(fr.SETTINGS_ACK + big) == [fr.Frame(fr.FrameType.SETTINGS, 1, 0)]
    assert "exceeds SETTINGS_MAX_FRAME_SIZE" in reader.problem
    assert reader.feed(fr.SETTINGS_ACK) == []  # nothing after it can be framed


def test_http11_answer_is_a_problem() -> None:
    reader = fr.FrameReader()
    assert reader.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n") == []
    assert reader.problem


def test_cap_stops_reading() -> None:
    reader = fr.FrameReader(cap=20)
    assert len(reader.feed(fr.ping(b"abcdefgh"))) == 1
    assert reader.feed(fr.ping(b"abcdefgh")) == [] and reader.capped


def test_reader_never_raises_on_random_bytes() -> None:
    rng = random.Random(5)
    for _ in range(300):
        reader = fr.FrameReader()
        data = rng.randbytes(rng.randrange(0, 200))
        for chunk in (data[:7], data[7:]):
            for frame in reader.feed(chunk):
                frame.describe()
                frame.error_code()


def test_settings_and_preface() -> None:
    preface = fr.client_preface({fr.Setting.ENABLE_PUSH: 0})
    assert preface.startswith(fr.CLIENT_MAGIC)
    frames = _whole(preface[len(fr.CLIENT_MAGIC):])
    assert frames == [fr.Frame(fr.FrameType.SETTINGS, 0, 0, b"\x00\x02\x00\x00\x00\x00")]


def test_describe_names_unknown_types_and_codes() -> None:
    assert fr.Frame(0xFA, 0, 3).describe() == "UNKNOWN_0xfa[stream 3, flags 0x0]"
    goaway = _whole(fr.goaway(0, 0xFF))[0]
    assert goaway.describe().endswith("0xff")


def test_header_block_and_status() -> None:
    block = fr.header_block([(":status", "204"), ("server", "t")])
    assert fr.status_of(block) == 204
    assert fr.status_of(b"\xbe") is None  # a dynamic-table reference a fresh decoder lacks
    assert fr.status_of(b"\xff\xff\xff") is None
    encoder = hpack.Encoder()
    first = fr.header_block([("x-a", "1")], encoder)
    second = fr.header_block([("x-a", "1")], encoder)
    assert len(second) < len(first)  # the shared encoder indexed it


def test_field_block_fragment_strips_padding_priority_and_promised_id():
    block = fr.header_block([(":status", "200")])
    padded = fr.Frame(fr.FrameType.HEADERS, fr.FLAG_PADDED | fr.FLAG_END_HEADERS, 1,
                      b"\x03" + block + b"\0\0\0")
    prioritised = fr.Frame(fr.FrameType.HEADERS, fr.FLAG_PRIORITY | fr.FLAG_PADDED, 1,
                           b"\x01" + b"\0\0\0\0\x0f" + block + b"\0")
    promise = fr.Frame(fr.FrameType.PUSH_PROMISE, fr.FLAG_END_HEADERS, 1, b"\0\0\0\x02" + block)
    for frame in (padded, prioritised, promise):
        assert fr.field_block_fragment(frame) == block
        assert fr.status_of(fr.field_block_fragment(frame)) == 200
    # garbage never raises: a PADDED flag on an empty payload, padding longer than it
    assert fr.field_block_fragment(fr.Frame(fr.FrameType.HEADERS, fr.FLAG_PADDED, 1)) == b""
    assert fr.field_block_fragment(fr.Frame(fr.FrameType.HEADERS, fr.FLAG_PADDED, 1,
                                            b"\x09ab")) == b""


def test_a_control_request_reads_the_status_of_a_padded_response():
    """A server may pad its HEADERS (§6.2): the control request still finds the status
    (it decoded the raw payload: "response without a :status", a failed control sample)."""
    import trio

    from actors import h2_control, h2_link

    block = fr.header_block([(":status", "200")])
    link = h2_link.H2Link(stream=None, via=h2_link.Via.PRIOR)  # type: ignore[arg-type]
    link.frames.append(fr.Frame(fr.FrameType.HEADERS, fr.FLAG_PADDED | fr.FLAG_END_HEADERS, 1,
                                b"\x04" + block + b"\0\0\0\0"))
    assert trio.run(h2_control._status, link, 1.0) == 200


def test_server_preface_is_recognised_and_http1_is_not() -> None:
    """What an HTTP/2-only cleartext server sends to an HTTP/1.1 GET (node:http2 sends an
    empty SETTINGS, then a GOAWAY) against what it must not be confused with."""
    node = bytes.fromhex("000000040000000000") + fr.goaway(0, fr.ErrorCode.PROTOCOL_ERROR)
    assert fr.is_server_preface(node)
    assert fr.is_server_preface(fr.settings_frame({fr.Setting.MAX_CONCURRENT_STREAMS: 100}))
    assert not fr.is_server_preface(node[:8])  # a frame header needs 9 bytes
    assert not fr.is_server_preface(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert not fr.is_server_preface(fr.SETTINGS_ACK)  # an ACK answers, it does not open
    assert not fr.is_server_preface(fr.ping())  # not SETTINGS
    assert not fr.is_server_preface(fr.build_frame(fr.FrameType.SETTINGS, 0, 1))  # stream 1
    assert not fr.is_server_preface(fr.build_frame(fr.FrameType.SETTINGS, 0, 0, b"\0" * 5))
    assert not fr.is_server_preface(b"\x00\x48\x06\x04\x00\x00\x00\x00\x00")  # 18438 > 16384
