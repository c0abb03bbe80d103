"""HTTP/2 catalogue, streams: stream states and identifiers, RST_STREAM, frames that must name
a stream, and the CONTINUATION rules (RFC 9113 §5.1, §5.1.1, §6.1-§6.4, §6.9, §6.10, §7).

Why these: §5.1 gives, per state, which frames a receiver MUST refuse and how (a connection
error for an idle stream, a stream error for a half-closed one); §4.3 and §6.10 make a field
block one contiguous run of HEADERS/CONTINUATION, anything else a connection error. Where
the server may already have closed the stream (its response sent) when our frame arrives,
the RFC's rules for a "closed" stream apply and ignoring is tolerated (graded lenient).
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
    request_block,
)

E = fr.ErrorCode
T = fr.FrameType
C, S, IGN = Expect.CONNECTION_ERROR, Expect.STREAM_ERROR, Expect.IGNORE
PROTOCOL = frozenset({E.PROTOCOL_ERROR})
CLOSED_CODES = frozenset({E.STREAM_CLOSED})

Q_IDLE = ("Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST be "
          "treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_HALF_CLOSED = ("If an endpoint receives additional frames, other than WINDOW_UPDATE, PRIORITY, "
                 "or RST_STREAM, for a stream that is in this state, it MUST respond with a "
                 "stream error (Section 5.4.2) of type STREAM_CLOSED.")
Q_DATA_STATE = ("If a DATA frame is received whose stream is not in the \"open\" or "
                "\"half-closed (local)\" state, the recipient MUST respond with a stream error "
                "(Section 5.4.2) of type STREAM_CLOSED.")
Q_IDS = ("Streams initiated by a client MUST use odd-numbered stream identifiers ... The "
         "identifier of a newly established stream MUST be numerically greater than all streams "
         "that the initiating endpoint has opened or reserved. ... An endpoint that receives an "
         "unexpected stream identifier MUST respond with a connection error (Section 5.4.1) of "
         "type PROTOCOL_ERROR.")
Q_DATA_0 = ("DATA frames MUST be associated with a stream. If a DATA frame is received whose "
            "Stream Identifier field is 0x00, the recipient MUST respond with a connection error "
            "(Section 5.4.1) of type PROTOCOL_ERROR.")
Q_HEADERS_0 = ("HEADERS frames MUST be associated with a stream. If a HEADERS frame is received "
               "whose Stream Identifier field is 0x00, the recipient MUST respond with a "
               "connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_PRIORITY_0 = ("If a PRIORITY frame is received with a stream identifier of 0x00, the "
                "recipient MUST respond with a connection error (Section 5.4.1) of type "
                "PROTOCOL_ERROR.")
Q_PRIORITY_ANY = ("The PRIORITY frame can be sent on a stream in any state, including \"idle\" "
                  "or \"closed\".")
Q_RST_0 = ("RST_STREAM frames MUST be associated with a stream. If a RST_STREAM frame is "
           "received with a stream identifier of 0x00, the recipient MUST treat this as a "
           "connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_RST_IDLE = ("If a RST_STREAM frame identifying an idle stream is received, the recipient MUST "
              "treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_UNKNOWN_CODE = ("Unknown or unsupported error codes MUST NOT trigger any special behavior. "
                  "[§5.4.2] To avoid looping, an endpoint MUST NOT send a RST_STREAM in "
                  "response to a RST_STREAM frame.")
Q_WU_CLOSED = ("This means that a receiver could receive a WINDOW_UPDATE frame on a stream in a "
               "\"half-closed (remote)\" or \"closed\" state. A receiver MUST NOT treat this as "
               "an error (see Section 5.1).")
Q_HEADERS_CONT = ("A HEADERS frame without the END_HEADERS flag set MUST be followed by a "
                  "CONTINUATION frame for the same stream. A receiver MUST treat the receipt of "
                  "any other type of frame or a frame on a different stream as a connection "
                  "error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_CONT_PRECEDED = ("A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or "
                   "CONTINUATION frame without the END_HEADERS flag set. A recipient that "
                   "observes violation of this rule MUST respond with a connection error "
                   "(Section 5.4.1) of type PROTOCOL_ERROR.")
Q_CONT_0 = ("CONTINUATION frames MUST be associated with a stream. If a CONTINUATION frame is "
            "received with a Stream Identifier field of 0x00, the recipient MUST respond with a "
            "connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
Q_CONT_CHAIN = ("If the END_HEADERS flag is not set, this frame MUST be followed by another "
                "CONTINUATION frame. A receiver MUST treat the receipt of any other type of "
                "frame or a frame on a different stream as a connection error (Section 5.4.1) "
                "of type PROTOCOL_ERROR.")
Q_CONT_VALID = ("Any number of CONTINUATION frames can be sent, as long as the preceding frame "
                "is on the same stream and is a HEADERS, PUSH_PROMISE, or CONTINUATION frame "
                "without the END_HEADERS flag set.")
Q_MINIMAL = ("An endpoint can perform this minimal processing for all streams that are in the "
             "\"closed\" state.")
Q_PUSH = ("A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE frame "
          "as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
#: The server may have answered and closed the stream before our frame arrives (§5.1
#: "closed": "An endpoint MAY treat receipt of any other type of frame on a closed stream as
#: a connection error", and "An endpoint can perform this minimal processing for all streams
#: that are in the "closed" state": process and discard); carrying on is then allowed.
RACY_CLOSE = frozenset({H2Reaction.ALIVE})


def _case(name: str, group: Group, build: Builder, expect: Expect, rfc: str, quote: str,
          codes: frozenset[int] = frozenset(), **more: Any) -> H2Case:
    return H2Case(name, group, build, expect, rfc, quote, codes=codes, **more)


def _split(env: H2Env, between: bytes = b"", tail_stream: int | None = None,
           end_headers_last: bool = True) -> bytes:
    """A GET whose field block is split over HEADERS + CONTINUATION, ``between`` in the
    middle; ``tail_stream`` sends the CONTINUATION on another stream."""
    block = request_block(env)
    half = len(block) // 2
    stream = env.sid() if tail_stream is None else tail_stream
    return (fr.headers(env.sid(), block[:half], end_headers=False) + between
            + fr.continuation(stream, block[half:], end_headers=end_headers_last))


def _three_fragments(env: H2Env) -> bytes:
    block = request_block(env)
    a, b = len(block) // 3, 2 * len(block) // 3
    return (fr.headers(env.sid(), block[:a], end_headers=False)
            + fr.continuation(env.sid(), block[a:b], end_headers=False)
            + fr.continuation(env.sid(), block[b:]))


def _push_promise(env: H2Env) -> bytes:
    """A PUSH_PROMISE on the client's open stream promising server stream 2 (§6.6)."""
    promised = struct.pack("!I", 2) + request_block(env)
    return (fr.headers(env.sid(), request_block(env, "POST"), end_stream=False)
            + fr.build_frame(T.PUSH_PROMISE, fr.FLAG_END_HEADERS, env.sid(), promised))


def _priority(stream: int) -> bytes:
    return fr.build_frame(T.PRIORITY, 0, stream, struct.pack("!IB", 0, 15))


STATE_CASES = (
    _case("data_on_idle_stream", Group.STREAM_STATES,
          lambda env: fr.data(env.sid(), b"assay"), C, "RFC 9113 §5.1", Q_IDLE, PROTOCOL),
    _case("window_update_on_idle_stream", Group.STREAM_STATES,
          lambda env: fr.window_update(env.sid(), 1), C, "RFC 9113 §5.1", Q_IDLE, PROTOCOL),
    _case("priority_on_idle_stream_ignored", Group.STREAM_STATES,
          lambda env: _priority(env.sid(4)), IGN, "RFC 9113 §6.3", Q_PRIORITY_ANY),
    _case("data_after_end_stream", Group.STREAM_STATES,
          lambda env: get(env) + fr.data(env.sid(), b"assay"), S, "RFC 9113 §6.1",
          f"{Q_DATA_STATE} [§5.1 half-closed (remote)] {Q_HALF_CLOSED} [§5.1 closed] "
          f"{Q_MINIMAL}", CLOSED_CODES, tolerated=RACY_CLOSE),
    _case("headers_after_end_stream", Group.STREAM_STATES,
          lambda env: get(env) + fr.headers(env.sid(), fr.header_block([("x-assay", "t")],
                                                                       huffman=False)),
          S, "RFC 9113 §5.1", Q_HALF_CLOSED, CLOSED_CODES, tolerated=RACY_CLOSE),
    _case("stream_id_lower_than_previous", Group.STREAM_STATES,
          lambda env: get(env, 1) + get(env, 0), C, "RFC 9113 §5.1.1", Q_IDS,
          frozenset({E.PROTOCOL_ERROR, E.STREAM_CLOSED})),
    _case("even_stream_id", Group.STREAM_STATES,
          lambda env: fr.headers(env.sid() + 1, request_block(env)), C, "RFC 9113 §5.1.1",
          Q_IDS, PROTOCOL),
    _case("data_on_stream_0", Group.STREAM_STATES, lambda env: fr.data(0, b"assay"), C,
          "RFC 9113 §6.1", Q_DATA_0, PROTOCOL),
    _case("headers_on_stream_0", Group.STREAM_STATES,
          lambda env: fr.headers(0, request_block(env)), C, "RFC 9113 §6.2", Q_HEADERS_0,
          PROTOCOL),
    _case("priority_on_stream_0", Group.STREAM_STATES, lambda env: _priority(0), C,
          "RFC 9113 §6.3", Q_PRIORITY_0, PROTOCOL),
    _case("push_promise_from_client", Group.STREAM_STATES, _push_promise, C, "RFC 9113 §8.4",
          Q_PUSH, PROTOCOL),
    _case("window_update_after_end_stream_ignored", Group.FLOW_CONTROL,
          lambda env: get(env) + fr.window_update(env.sid(), 1024), IGN, "RFC 9113 §6.9",
          Q_WU_CLOSED),
)

RST_CASES = (
    _case("rst_stream_on_stream_0", Group.RST_STREAM, lambda env: fr.rst_stream(0), C,
          "RFC 9113 §6.4", Q_RST_0, PROTOCOL),
    _case("rst_stream_on_idle_stream", Group.RST_STREAM, lambda env: fr.rst_stream(env.sid()),
          C, "RFC 9113 §6.4", Q_RST_IDLE, PROTOCOL),
    _case("rst_stream_unknown_code_ignored", Group.RST_STREAM,
          lambda env: get(env) + fr.rst_stream(env.sid(), 0xFA), IGN, "RFC 9113 §7",
          Q_UNKNOWN_CODE),
)

CONTINUATION_CASES = (
    _case("continuation_split_in_three_accepted", Group.CONTINUATION, _three_fragments, IGN,
          "RFC 9113 §6.10", Q_CONT_VALID),
    _case("continuation_without_headers", Group.CONTINUATION,
          lambda env: fr.continuation(env.sid(), request_block(env)), C, "RFC 9113 §6.10",
          Q_CONT_PRECEDED, PROTOCOL),
    _case("continuation_after_end_headers", Group.CONTINUATION,
          lambda env: get(env) + fr.continuation(env.sid(), fr.header_block(
              [("x-assay", "late")], huffman=False)), C, "RFC 9113 §6.10", Q_CONT_PRECEDED,
          PROTOCOL),
    _case("continuation_on_other_stream", Group.CONTINUATION,
          lambda env: _split(env, tail_stream=env.sid(1)), C, "RFC 9113 §6.2", Q_HEADERS_CONT,
          PROTOCOL),
    _case("continuation_on_stream_0", Group.CONTINUATION,
          lambda env: _split(env, tail_stream=0), C, "RFC 9113 §6.10", Q_CONT_0, PROTOCOL),
    _case("data_inside_field_block", Group.CONTINUATION,
          lambda env: _split(env, fr.data(env.sid(), b"x", end_stream=False)), C,
          "RFC 9113 §6.2", Q_HEADERS_CONT, PROTOCOL),
    _case("ping_inside_field_block", Group.CONTINUATION,
          lambda env: _split(env, fr.ping(b"assay-in")), C, "RFC 9113 §4.3",
          "Field blocks MUST be transmitted as a contiguous sequence of frames, with no "
          "interleaved frames of any other type or from any other stream. [§6.2] "
          + Q_HEADERS_CONT, PROTOCOL),
    _case("continuation_chain_interrupted", Group.CONTINUATION,
          lambda env: _split(env, end_headers_last=False) + _priority(env.sid()), C,
          "RFC 9113 §6.10", Q_CONT_CHAIN, PROTOCOL),
)

CASES: tuple[H2Case, ...] = (*STATE_CASES, *RST_CASES, *CONTINUATION_CASES)
