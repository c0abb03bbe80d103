"""What an HTTP/2 torture case is (RFC 9113, RFC 7541): reactions classes, groups, the record.

How this works: a case is data. ``build(env)`` is a pure builder that returns the bytes to
send after the connection preface (or None when the case cannot apply to this server, e.g.
a frame larger than a SETTINGS_MAX_FRAME_SIZE that is already the protocol maximum);
``expect`` names the reaction class the RFC requires and ``codes`` the error codes it names.
``protocols.h2_oracle`` observes one ``H2Reaction`` and judges it against the case. The
groups follow h2spec's (preface, frame size, stream states, flow control, SETTINGS, PING,
GOAWAY, RST_STREAM, CONTINUATION, HPACK, HTTP message rules); ``protocols.h2_cases`` holds
the catalogue.

``H2Env`` carries what a builder may depend on: the request's authority, scheme and path,
the first stream id this connection may open (3 after an h2c upgrade, whose request is
stream 1) and the server's advertised SETTINGS_MAX_FRAME_SIZE.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from protocols import h2_frames as fr
from protocols.outcome import Requirement, Severity

#: RFC 9113 §5.4: "a generic error code (such as PROTOCOL_ERROR or INTERNAL_ERROR) can
#: always be used in place of more specific error codes": always accepted.
GENERIC_CODES = frozenset({fr.ErrorCode.PROTOCOL_ERROR, fr.ErrorCode.INTERNAL_ERROR})


class Expect(enum.Enum):
    """The reaction class a case's RFC sentence requires."""

    #: "MUST be treated as a connection error (Section 5.4.1)": GOAWAY and/or a TCP close.
    CONNECTION_ERROR = "connection_error"
    #: "a stream error (Section 5.4.2)": RST_STREAM; §5.4.1 lets any stream error become a
    #: connection error ("An endpoint can end a connection at any time").
    STREAM_ERROR = "stream_error"
    #: The frame MUST be accepted or ignored: the connection keeps working (a PING sent
    #: after the case is answered, §6.7) and nothing is reset.
    IGNORE = "ignore"
    #: §8.1.1 malformed request: "MUST be treated as a stream error (Section 5.4.2) of type
    #: PROTOCOL_ERROR"; "a server MAY send an HTTP response prior to closing or resetting
    #: the stream" (a 4xx). Serving it (2xx/3xx) is accepting a malformed request.
    MALFORMED = "malformed"
    #: A malformed request whose defect comes after a valid head (trailers, content-length
    #: against DATA): "A server MAY generate a final response before receiving an entire
    #: request" (§8.1.1), so a response does not prove acceptance and is not judged.
    MALFORMED_LATE = "malformed_late"


class H2Reaction(enum.Enum):
    """How the server reacted to one case, as seen from the client socket."""

    #: GOAWAY carrying a code the RFC names for the case (or a generic one, §5.4).
    GOAWAY_EXPECTED = "goaway_expected"
    #: GOAWAY with NO_ERROR: a graceful shutdown, not an error report (§6.8).
    GOAWAY_GRACEFUL = "goaway_graceful"
    #: GOAWAY with another error code.
    GOAWAY_OTHER = "goaway_other"
    #: TCP FIN or RST with no GOAWAY: still a connection error (§5.4.1 "SHOULD first send a
    #: GOAWAY"; §6.8 "An endpoint might choose to close a connection without sending a
    #: GOAWAY for misbehaving peers").
    CLOSED = "closed"
    #: RST_STREAM on the case's stream with a code the RFC names (or a generic one).
    RST_EXPECTED = "rst_expected"
    #: RST_STREAM (not NO_ERROR) with another code.
    RST_OTHER = "rst_other"
    #: A 4xx final response on the case's stream (§8.1.1 "MAY send an HTTP response").
    REFUSED = "refused"
    #: A 5xx final response on the case's stream.
    SERVER_ERROR = "server_error"
    #: A 2xx/3xx final response to a malformed request: the server served it.
    ACCEPTED = "accepted"
    #: The server answered a PING that already carried ACK (§6.7 "MUST NOT respond").
    PING_ECHOED = "ping_echoed"
    #: Nothing of the above, and the PING sent after the case was answered: carried on.
    ALIVE = "alive"
    #: No error, no close and no PING answer by the deadline.
    HANG = "hang"
    #: The server's bytes are not HTTP/2 frames (or exceed our SETTINGS_MAX_FRAME_SIZE).
    GARBAGE = "garbage"
    #: The read cap was reached before a decision: not judged.
    OVERFLOW = "overflow"


class Group(enum.Enum):
    """h2spec's groups, by the RFC section they test."""

    PREFACE = "preface"  # RFC 9113 §3.4
    FRAME_SIZE = "frame_size"  # §4.2, per-type lengths
    STREAM_STATES = "stream_states"  # §5.1, §5.1.1
    FLOW_CONTROL = "flow_control"  # §5.2, §6.9
    SETTINGS = "settings"  # §6.5
    PING = "ping"  # §6.7
    GOAWAY = "goaway"  # §6.8
    RST_STREAM = "rst_stream"  # §6.4
    CONTINUATION = "continuation"  # §6.2, §6.10, §4.3
    EXTENSIONS = "extensions"  # §4.1, §5.5
    HPACK = "hpack"  # RFC 7541, RFC 9113 §4.3
    HTTP = "http"  # §8.1-§8.3


@dataclass(frozen=True)
class H2Env:
    authority: str
    scheme: str = "http"
    path: str = "/"
    #: The first client stream id this connection may open: 1, or 3 after an h2c upgrade.
    first_stream: int = 1
    #: The server's SETTINGS_MAX_FRAME_SIZE (§6.5.2; 2^14 when it sent none).
    server_max_frame: int = fr.MAX_FRAME_SIZE

    def sid(self, n: int = 0) -> int:
        """The n-th fresh client stream id (odd, increasing)."""
        return self.first_stream + 2 * n


Builder = Callable[[H2Env], "bytes | None"]


@dataclass(frozen=True)
class H2Case:
    name: str
    group: Group
    #: Bytes sent after the client preface (and the server's SETTINGS ACKed); None: the
    #: case does not apply to this server (counted, not judged).
    build: Builder
    expect: Expect
    rfc: str
    quote: str
    requirement: Requirement = Requirement.MUST
    severity: Severity = Severity.MED
    #: Error codes the RFC names (the generic ones of §5.4 are always added).
    codes: frozenset[int] = frozenset()
    #: Reactions graded lenient instead of violation (a race the RFC allows, a SHOULD).
    tolerated: frozenset[H2Reaction] = frozenset()
    #: Replaces the client connection preface (preface group only): sent instead of
    #: magic + SETTINGS, no server preface awaited.
    preface: bytes | None = None
    #: Opaque data of a PING the server MUST NOT answer (a PING that already has ACK set).
    never_echo: bytes = b""

    def accepted_codes(self) -> frozenset[int]:
        return self.codes | GENERIC_CODES


def request_block(env: H2Env, method: str = "GET",
                  extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A valid request's field block (fresh HPACK encoder, no Huffman: readable evidence)."""
    return fr.header_block(fr.request_fields(method, env.authority, env.path, env.scheme, extra),
                           huffman=False)


def get(env: H2Env, n: int = 0, end_stream: bool = True) -> bytes:
    """A complete GET on the n-th fresh stream."""
    return fr.headers(env.sid(n), request_block(env), end_stream=end_stream)


def post_open(env: H2Env, n: int = 0) -> bytes:
    """A POST head without END_STREAM: the stream stays "open" (§5.1) for the case's frames."""
    return fr.headers(env.sid(n), request_block(env, "POST"), end_stream=False)
