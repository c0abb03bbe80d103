"""HTTP/2 catalogue, frame layer: preface, frame sizes, SETTINGS, PING, GOAWAY, flow control
and extension points (RFC 9113 §3.4, §4, §5.2, §5.5, §6.5-§6.9).

Why these: each is a sentence of RFC 9113 that names the receiver's reaction (a connection
error of a given type, a stream error, or "MUST ignore"), the same sentences h2spec's groups
test. Frames on stream 0 that break a rule are connection errors (§4.2 "any frame with a
stream identifier of 0"); frames that the RFC says to accept are judged by a PING sent after
them: the connection must still answer it.
"""

from __future__ import annotations

import struct
from typing import Any

from protocols import h2_frames as fr
from protocols.h2_case_model import (
    Builder,
    Expect,
    Group,
    H2Case,
    H2Env,
    H2Reaction,
    get,
    post_open,
)

E = fr.ErrorCode
T = fr.FrameType
PROTOCOL = frozenset({E.PROTOCOL_ERROR})
FRAME_SIZE = frozenset({E.FRAME_SIZE_ERROR})
FLOW = frozenset({E.FLOW_CONTROL_ERROR})
#: An extension frame type no RFC defines (§5.5 "MUST discard frames that have unknown or
#: unsupported types").
UNKNOWN_TYPE = 0xFA

Q_PREFACE = ("This sequence MUST be followed by a SETTINGS frame ... Clients and servers MUST "
             "treat an invalid connection preface as a connection error (Section 5.4.1) of "
             "type PROTOCOL_ERROR. A GOAWAY frame (Section 6.8) MAY be omitted in this case, "
             "since an invalid preface indicates that the peer is not using HTTP/2.")
Q_FRAME_SIZE = ("An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the "
                "size defined in SETTINGS_MAX_FRAME_SIZE, exceeds any limit defined for the "
                "frame type, or is too small to contain mandatory frame data. A frame size "
                "error in a frame that could alter the state of the entire connection MUST be "
                "treated as a connection error (Section 5.4.1); this includes any frame "
                "carrying a field block (Section 4.3) (that is, HEADERS, PUSH_PROMISE, and "
                "CONTINUATION), a SETTINGS frame, and any frame with a stream identifier of 0.")
Q_MIN_SIZE = ("All implementations MUST be capable of receiving and minimally processing frames "
              "up to 2^14 octets in length, plus the 9-octet frame header (Section 4.1).")
Q_UNKNOWN = ("Implementations MUST ignore unknown or unsupported values in all extensible "
             "protocol elements. Implementations MUST discard frames that have unknown or "
             "unsupported types.")
Q_UNKNOWN_IN_BLOCK = ("However, extension frames that appear in the middle of a field block "
                      "(Section 4.3) are not permitted; these MUST be treated as a connection "
                      "error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_FLAGS = ("Unused flags MUST be ignored on receipt and MUST be left unset (0x00) when "
           "sending.")
Q_RESERVED = ("A reserved 1-bit field. The semantics of this bit are undefined, and the bit "
              "MUST remain unset (0x00) when sending and MUST be ignored when receiving.")
Q_SETTINGS_STREAM = ("If an endpoint receives a SETTINGS frame whose Stream Identifier field is "
                     "anything other than 0x00, the endpoint MUST respond with a connection "
                     "error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_SETTINGS_LEN = ("A SETTINGS frame with a length other than a multiple of 6 octets MUST be "
                  "treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
Q_SETTINGS_ACK = ("Receipt of a SETTINGS frame with the ACK flag set and a length field value "
                  "other than 0 MUST be treated as a connection error (Section 5.4.1) of type "
                  "FRAME_SIZE_ERROR.")
Q_PUSH = ("Any value other than 0 or 1 MUST be treated as a connection error (Section 5.4.1) of "
          "type PROTOCOL_ERROR.")
Q_WINDOW_SETTING = ("Values above the maximum flow-control window size of 2^31-1 MUST be "
                    "treated as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR.")
Q_MAX_FRAME = ("The value advertised by an endpoint MUST be between this initial value and the "
               "maximum allowed frame size (2^24-1 or 16,777,215 octets), inclusive. Values "
               "outside this range MUST be treated as a connection error (Section 5.4.1) of "
               "type PROTOCOL_ERROR.")
Q_SETTING_UNKNOWN = ("An endpoint that receives a SETTINGS frame with any unknown or "
                     "unsupported identifier MUST ignore that setting.")
Q_PING_STREAM = ("If a PING frame is received with a Stream Identifier field value other than "
                 "0x00, the recipient MUST respond with a connection error (Section 5.4.1) of "
                 "type PROTOCOL_ERROR.")
Q_PING_LEN = ("Receipt of a PING frame with a length field value other than 8 MUST be treated "
              "as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
Q_PING_ACK = ("An endpoint MUST set this flag in PING responses. An endpoint MUST NOT respond "
              "to PING frames containing this flag.")
Q_GOAWAY_STREAM = ("An endpoint MUST treat a GOAWAY frame with a stream identifier other than "
                   "0x00 as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_WU_ZERO = ("A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control "
             "window increment of 0 as a stream error (Section 5.4.2) of type PROTOCOL_ERROR; "
             "errors on the connection flow-control window MUST be treated as a connection "
             "error (Section 5.4.1).")
Q_WU_LEN = ("A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a "
            "connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
Q_WU_OVERFLOW = ("A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets. If a "
                 "sender receives a WINDOW_UPDATE that causes a flow-control window to exceed "
                 "this maximum, it MUST terminate either the stream or the connection, as "
                 "appropriate. For streams, the sender sends a RST_STREAM with an error code of "
                 "FLOW_CONTROL_ERROR; for the connection, a GOAWAY frame with an error code of "
                 "FLOW_CONTROL_ERROR is sent.")
Q_PRIORITY_LEN = ("A PRIORITY frame with a length other than 5 octets MUST be treated as a "
                  "stream error (Section 5.4.2) of type FRAME_SIZE_ERROR.")
Q_DATA_PAD = ("If the length of the padding is the length of the frame payload or greater, the "
              "recipient MUST treat this as a connection error (Section 5.4.1) of type "
              "PROTOCOL_ERROR.")
#: A stream that the server may have closed (its response sent) before our frame arrives:
#: on a "closed" stream, "An endpoint MAY treat receipt of any other type of frame on a
#: closed stream as a connection error" (§5.1), and ignoring it is minimal processing.
RACY_CLOSE = frozenset({H2Reaction.ALIVE})
#: The connection ended (an error report or a close) where the RFC forbids only an answer.
ENDED = frozenset({H2Reaction.GOAWAY_EXPECTED, H2Reaction.GOAWAY_OTHER, H2Reaction.CLOSED})


def _too_big(env: H2Env, frame_type: int, stream: int, prefix: bytes = b"") -> bytes | None:
    """A frame one octet over the server's SETTINGS_MAX_FRAME_SIZE; None when that is
    already the largest length a frame header can carry."""
    size = env.server_max_frame + 1
    if size >= 1 << 24:
        return None
    return prefix + fr.build_frame(frame_type, 0, stream, b"\0" * size)


def _settings(**values: int) -> bytes:
    return fr.build_frame(T.SETTINGS, 0, 0, fr.settings_payload(
        {getattr(fr.Setting, k.upper()): v for k, v in values.items()}))


def _case(name: str, group: Group, build: Builder, expect: Expect, rfc: str, quote: str,
          codes: frozenset[int] = frozenset(), **more: Any) -> H2Case:
    return H2Case(name, group, build, expect, rfc, quote, codes=codes, **more)


C, S, IGN = Expect.CONNECTION_ERROR, Expect.STREAM_ERROR, Expect.IGNORE

PREFACE_CASES = (
    _case("preface_bad_magic", Group.PREFACE, lambda env: b"", C, "RFC 9113 §3.4", Q_PREFACE,
          PROTOCOL, preface=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + fr.settings_frame()),
    _case("preface_ping_instead_of_settings", Group.PREFACE, lambda env: b"", C,
          "RFC 9113 §3.4", Q_PREFACE, PROTOCOL, preface=fr.CLIENT_MAGIC + fr.ping(b"assay-pf")),
)

FRAME_SIZE_CASES = (
    _case("data_over_max_frame_size", Group.FRAME_SIZE,
          lambda env: _too_big(env, T.DATA, env.sid(), post_open(env)), S, "RFC 9113 §4.2",
          Q_FRAME_SIZE, FRAME_SIZE),
    _case("headers_over_max_frame_size", Group.FRAME_SIZE,
          lambda env: _too_big(env, T.HEADERS, env.sid()), C, "RFC 9113 §4.2", Q_FRAME_SIZE,
          FRAME_SIZE),
    _case("unknown_type_at_2_14_octets_ignored", Group.FRAME_SIZE,
          lambda env: fr.build_frame(UNKNOWN_TYPE, 0, 0, b"\0" * fr.MAX_FRAME_SIZE), IGN,
          "RFC 9113 §4.2", Q_MIN_SIZE),
    _case("ping_length_7", Group.FRAME_SIZE, lambda env: fr.build_frame(T.PING, 0, 0, b"assay-7"),
          C, "RFC 9113 §6.7", Q_PING_LEN, FRAME_SIZE),
    _case("rst_stream_length_3", Group.FRAME_SIZE,
          lambda env: post_open(env) + fr.build_frame(T.RST_STREAM, 0, env.sid(), b"\0\0\x08"),
          C, "RFC 9113 §6.4", "A RST_STREAM frame with a length other than 4 octets MUST be "
          "treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.", FRAME_SIZE),
    _case("window_update_length_3", Group.FRAME_SIZE,
          lambda env: fr.build_frame(T.WINDOW_UPDATE, 0, 0, b"\0\0\x01"), C, "RFC 9113 §6.9",
          Q_WU_LEN, FRAME_SIZE),
    _case("priority_length_4", Group.FRAME_SIZE,
          lambda env: post_open(env) + fr.build_frame(T.PRIORITY, 0, env.sid(), b"\0\0\0\0"),
          S, "RFC 9113 §6.3", Q_PRIORITY_LEN, FRAME_SIZE),
    _case("goaway_length_4", Group.FRAME_SIZE,
          lambda env: fr.build_frame(T.GOAWAY, 0, 0, b"\0\0\0\0"), C, "RFC 9113 §4.2",
          Q_FRAME_SIZE, FRAME_SIZE),
    _case("data_padding_exceeds_payload", Group.FRAME_SIZE,
          lambda env: post_open(env) + fr.build_frame(T.DATA, fr.FLAG_PADDED | fr.FLAG_END_STREAM,
                                                      env.sid(), b"\x05abcd"),
          C, "RFC 9113 §6.1", Q_DATA_PAD, PROTOCOL),
)

SETTINGS_CASES = (
    _case("settings_on_stream_1", Group.SETTINGS,
          lambda env: fr.build_frame(T.SETTINGS, 0, 1, b""), C, "RFC 9113 §6.5",
          Q_SETTINGS_STREAM, PROTOCOL),
    _case("settings_length_not_multiple_of_6", Group.SETTINGS,
          lambda env: fr.build_frame(T.SETTINGS, 0, 0, b"\0\x03\0\0\0"), C, "RFC 9113 §6.5",
          Q_SETTINGS_LEN, FRAME_SIZE),
    _case("settings_ack_with_payload", Group.SETTINGS,
          lambda env: fr.build_frame(T.SETTINGS, fr.FLAG_ACK, 0, b"\0\x03\0\0\0\x64"), C,
          "RFC 9113 §6.5", Q_SETTINGS_ACK, FRAME_SIZE),
    _case("settings_enable_push_2", Group.SETTINGS, lambda env: _settings(enable_push=2), C,
          "RFC 9113 §6.5.2", Q_PUSH, PROTOCOL),
    _case("settings_initial_window_2_31", Group.SETTINGS,
          lambda env: _settings(initial_window_size=1 << 31), C, "RFC 9113 §6.5.2",
          Q_WINDOW_SETTING, FLOW),
    _case("settings_max_frame_size_below_2_14", Group.SETTINGS,
          lambda env: _settings(max_frame_size=16383), C, "RFC 9113 §6.5.2", Q_MAX_FRAME,
          PROTOCOL),
    _case("settings_max_frame_size_2_24", Group.SETTINGS,
          lambda env: _settings(max_frame_size=1 << 24), C, "RFC 9113 §6.5.2", Q_MAX_FRAME,
          PROTOCOL),
    _case("settings_unknown_identifier_ignored", Group.SETTINGS,
          lambda env: fr.build_frame(T.SETTINGS, 0, 0, struct.pack("!HI", 0xFA, 1)), IGN,
          "RFC 9113 §6.5.2", Q_SETTING_UNKNOWN),
)

PING_GOAWAY_CASES = (
    _case("ping_on_stream_1", Group.PING, lambda env: fr.build_frame(T.PING, 0, 1, b"assay-p1"),
          C, "RFC 9113 §6.7", Q_PING_STREAM, PROTOCOL),
    # §6.7 forbids answering it, not ending the connection over it (§5.4.1 "An endpoint
    # can end a connection at any time"): only an answer is a violation.
    _case("ping_with_ack_not_answered", Group.PING,
          lambda env: fr.ping(b"assay-ak", ack=True), IGN, "RFC 9113 §6.7", Q_PING_ACK,
          never_echo=b"assay-ak", tolerated=ENDED),
    _case("goaway_on_stream_1", Group.GOAWAY,
          lambda env: fr.build_frame(T.GOAWAY, 0, 1, struct.pack("!II", 0, 0)), C,
          "RFC 9113 §6.8", Q_GOAWAY_STREAM, PROTOCOL),
)

FLOW_CASES = (
    _case("window_update_zero_on_connection", Group.FLOW_CONTROL,
          lambda env: fr.window_update(0, 0), C, "RFC 9113 §6.9", Q_WU_ZERO, PROTOCOL),
    _case("window_update_zero_on_stream", Group.FLOW_CONTROL,
          lambda env: post_open(env) + fr.window_update(env.sid(), 0), S, "RFC 9113 §6.9",
          Q_WU_ZERO, PROTOCOL, tolerated=RACY_CLOSE),
    _case("window_update_overflows_connection", Group.FLOW_CONTROL,
          lambda env: fr.window_update(0, 0x7FFF_FFFF), C, "RFC 9113 §6.9.1", Q_WU_OVERFLOW,
          FLOW),
    _case("window_update_overflows_stream", Group.FLOW_CONTROL,
          lambda env: post_open(env) + fr.window_update(env.sid(), 0x7FFF_FFFF), S,
          "RFC 9113 §6.9.1", Q_WU_OVERFLOW, FLOW, tolerated=RACY_CLOSE),
)

EXTENSION_CASES = (
    _case("unknown_frame_type_ignored", Group.EXTENSIONS,
          lambda env: fr.build_frame(UNKNOWN_TYPE, 0, 0, b"assay-ext"), IGN, "RFC 9113 §5.5",
          Q_UNKNOWN),
    _case("unknown_frame_type_on_idle_stream_ignored", Group.EXTENSIONS,
          lambda env: fr.build_frame(UNKNOWN_TYPE, 0xFF, env.sid(), b"assay-ext"), IGN,
          "RFC 9113 §5.5", Q_UNKNOWN),
    _case("unknown_frame_inside_field_block", Group.EXTENSIONS,
          lambda env: _split_get(env, fr.build_frame(UNKNOWN_TYPE, 0, env.sid(), b"x")), C,
          "RFC 9113 §5.5", Q_UNKNOWN_IN_BLOCK, PROTOCOL),
    _case("unused_flags_on_settings_ignored", Group.EXTENSIONS,
          lambda env: fr.build_frame(T.SETTINGS, 0xFE, 0, b""), IGN, "RFC 9113 §4.1", Q_FLAGS),
    _case("reserved_bit_in_stream_id_ignored", Group.EXTENSIONS,
          lambda env: _set_reserved_bit(get(env)), IGN, "RFC 9113 §4.1", Q_RESERVED),
)


def _split_get(env: H2Env, between: bytes) -> bytes:
    """A GET whose field block is split over HEADERS and CONTINUATION with ``between``
    sent in the middle of the block (§4.3 "no interleaved frames")."""
    from protocols.h2_case_model import request_block

    block = request_block(env)
    half = len(block) // 2
    return (fr.headers(env.sid(), block[:half], end_headers=False) + between
            + fr.continuation(env.sid(), block[half:]))


def _set_reserved_bit(frame: bytes) -> bytes:
    """§4.1: the R bit is the top bit of the stream identifier (octet 5 of the header)."""
    return frame[:5] + bytes([frame[5] | 0x80]) + frame[6:]


CASES: tuple[H2Case, ...] = (*PREFACE_CASES, *FRAME_SIZE_CASES, *SETTINGS_CASES,
                             *PING_GOAWAY_CASES, *FLOW_CASES, *EXTENSION_CASES)
