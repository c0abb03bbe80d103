"""The flood catalogue's bytes and every branch of the flood verdict (no sockets)."""

from __future__ import annotations

import hpack
import hpack.exceptions
import pytest

from protocols import h2_frames as fr
from protocols.h2_flood_verdict import (
    MIB,
    Bound,
    ControlSample,
    Criteria,
    FloodReaction,
    RssTrace,
    Verdict,
    judge,
)
from protocols.h2_floods import (
    BY_NAME,
    CATALOGUE,
    HUGE_TABLE_SIZE,
    LAST_CLIENT_STREAM,
    FloodState,
    hpack_int,
    literal_field,
)


def state() -> FloodState:
    return FloodState("example.test", "/", "https")


def frames_of(data: bytes) -> list[fr.Frame]:
    reader = fr.FrameReader(cap=1 << 30)
    frames = reader.feed(data)
    assert not reader.problem and reader.pending == 0
    return frames


# --- the catalogue ---------------------------------------------------------------------

def test_catalogue_names_are_unique_and_cite_their_source():
    assert len(BY_NAME) == len(CATALOGUE) == 7
    for flood in CATALOGUE:
        assert "RFC" in flood.reference and flood.quote and flood.harm


@pytest.mark.parametrize("flood", CATALOGUE, ids=lambda f: f.name)
def test_every_burst_is_well_framed_and_counted(flood):
    st = state()
    opening, opened = flood.opening(st)
    assert len(frames_of(opening)) == opened
    for _ in range(3):
        data, count = flood.burst(st)
        frames = frames_of(data)
        assert len(frames) == count > 0
        assert all(len(f.payload) <= fr.MAX_FRAME_SIZE for f in frames)


def test_rapid_reset_pairs_a_new_stream_with_its_reset():
    st = state()
    frames = frames_of(BY_NAME["rapid_reset"].burst(st)[0])
    heads, resets = frames[0::2], frames[1::2]
    assert all(f.type == fr.FrameType.HEADERS for f in heads)
    assert all(f.type == fr.FrameType.RST_STREAM and f.error_code() == fr.ErrorCode.CANCEL
               for f in resets)
    ids = [f.stream_id for f in heads]
    assert ids == [f.stream_id for f in resets] == list(range(1, 2 * len(ids), 2))
    assert frames_of(BY_NAME["rapid_reset"].burst(st)[0])[0].stream_id == ids[-1] + 2


def test_continuation_never_ends_the_header_block():
    st = state()
    flood = BY_NAME["continuation"]
    head = frames_of(flood.opening(st)[0])[0]
    assert head.type == fr.FrameType.HEADERS and not head.flags & fr.FLAG_END_HEADERS
    conts = frames_of(flood.burst(st)[0]) + frames_of(flood.burst(st)[0])
    assert all(f.type == fr.FrameType.CONTINUATION and f.stream_id == head.stream_id
               and not f.flags & fr.FLAG_END_HEADERS for f in conts)
    # The fragments are a valid HPACK block once ended: the flood is legal, only endless.
    fields = hpack.Decoder().decode(head.payload + b"".join(f.payload for f in conts[:2]), raw=True)
    assert (b":method", b"GET") in fields and len(fields) == 4 + 10


def test_settings_ping_and_empty_data_are_small_frames():
    st = state()
    settings = frames_of(BY_NAME["settings"].burst(st)[0])
    assert all(f.type == fr.FrameType.SETTINGS and not f.flags & fr.FLAG_ACK
               and f.stream_id == 0 for f in settings)
    pings = frames_of(BY_NAME["ping"].burst(st)[0])
    assert len({f.payload for f in pings}) == len(pings)  # each opaque value differs
    empty = BY_NAME["empty_data"]
    post = frames_of(empty.opening(st)[0])[0]
    assert not post.flags & fr.FLAG_END_STREAM
    datas = frames_of(empty.burst(st)[0])
    assert all(f.type == fr.FrameType.DATA and f.payload == b"" and f.stream_id ==
               post.stream_id and not f.flags & fr.FLAG_END_STREAM for f in datas)


def test_hpack_table_asks_for_a_huge_table_that_a_conforming_decoder_refuses():
    frames = frames_of(BY_NAME["hpack_table"].burst(state())[0])
    block = b"".join(f.payload for f in frames[:3])
    assert frames[2].flags & fr.FLAG_END_HEADERS
    # RFC 7541 §6.3: "A value that exceeds this limit MUST be treated as a decoding error."
    with pytest.raises(hpack.exceptions.InvalidTableSizeError):
        hpack.Decoder().decode(block)
    lenient = hpack.Decoder()
    lenient.max_allowed_table_size = HUGE_TABLE_SIZE
    fields = lenient.decode(block, raw=True)
    assert (b":method", b"HEAD") in fields
    assert len(lenient.header_table.dynamic_entries) >= 15  # every x-table field indexed


def test_zero_window_shuts_our_window_and_opens_streams():
    flood = BY_NAME["zero_window"]
    assert flood.preface_settings[fr.Setting.INITIAL_WINDOW_SIZE] == 0
    frames = frames_of(flood.burst(state())[0])
    assert all(f.type == fr.FrameType.HEADERS and f.flags & fr.FLAG_END_STREAM for f in frames)


def test_floods_stop_before_stream_ids_run_out():
    st = state()
    st.next_stream_id = LAST_CLIENT_STREAM - 10
    assert st.exhausted
    for name in ("rapid_reset", "hpack_table", "zero_window"):
        assert BY_NAME[name].burst(st) == (b"", 0)


@pytest.mark.parametrize("value,prefix", [(0, 5), (30, 5), (31, 5), (1 << 30, 5), (3000, 7),
                                          (126, 7), (127, 7)])
def test_hpack_int_matches_hpack(value, prefix):
    from hpack.hpack import decode_integer, encode_integer

    assert hpack_int(value, prefix) == bytes(encode_integer(value, prefix))
    assert decode_integer(hpack_int(value, prefix), prefix) == (value, len(hpack_int(value,
                                                                                     prefix)))


def test_literal_field_decodes():
    field = literal_field(b"x-a", b"v" * 200, indexed=True)
    decoder = hpack.Decoder()
    assert decoder.decode(field, raw=True) == [(b"x-a", b"v" * 200)]
    assert len(decoder.header_table.dynamic_entries) == 1
    decoder = hpack.Decoder()
    decoder.decode(literal_field(b"x-b", b"w", indexed=False))
    assert not decoder.header_table.dynamic_entries


# --- the verdict ------------------------------------------------------------------------

FAST = [ControlSample(0.010, 200)] * 5
NOTHING = FloodReaction(frames_sent=1000)


def samples(*latencies: float | None, status: int = 200) -> list[ControlSample]:
    return [ControlSample(t, status if t is not None else None,
                          "" if t is not None else "timeout") for t in latencies]


def test_failed_baseline_is_unjudged():
    got = judge(samples(0.01, None), FAST, NOTHING, None)
    assert got.verdict is Verdict.UNJUDGED and "before the flood" in got.reason
    assert judge([], FAST, NOTHING, None).verdict is Verdict.UNJUDGED


def test_no_control_during_is_unjudged():
    assert judge(FAST, [], NOTHING, None).verdict is Verdict.UNJUDGED


def test_a_failed_control_request_is_a_violation():
    got = judge(FAST, samples(0.01, None, 0.01), NOTHING, None)
    assert got.verdict is Verdict.VIOLATION and got.failures == 1
    assert "1 of 3" in got.reason and "timeout" in got.reason


def test_a_new_5xx_fails_but_one_the_baseline_also_got_does_not():
    got = judge(FAST, samples(0.01, 0.01, status=503), NOTHING, None)
    assert got.verdict is Verdict.VIOLATION and "answered 503" in got.reason
    baseline = samples(0.01, 0.01, status=503)
    assert judge(baseline, samples(0.01, status=503), NOTHING, None).verdict is Verdict.ABSORBED


def test_latency_far_beyond_the_baseline_is_a_violation():
    got = judge(FAST, samples(0.3, 0.3, 0.3), NOTHING, None)
    assert got.verdict is Verdict.VIOLATION and "median latency 300 ms" in got.reason


def test_latency_within_the_slack_passes_even_at_ten_times():
    # 10 ms baseline: the limit is max(100 ms, 260 ms); 250 ms is 25x but within the slack.
    assert judge(FAST, samples(0.25, 0.25), NOTHING, None).verdict is Verdict.ABSORBED
    # A slow baseline: 10x is the larger bound.
    slow = samples(0.1, 0.1, 0.1)
    assert judge(slow, samples(0.9, 0.9), NOTHING, None).verdict is Verdict.ABSORBED
    assert judge(slow, samples(1.1, 1.1), NOTHING, None).verdict is Verdict.VIOLATION


def test_one_slow_sample_does_not_move_the_median():
    assert judge(FAST, samples(2.0, 0.01, 0.01), NOTHING, None).verdict is Verdict.ABSORBED


def test_memory_kept_after_the_flood_is_a_violation():
    kept = RssTrace(before=30 * MIB, peak=200 * MIB, after=150 * MIB)
    got = judge(FAST, FAST, NOTHING, kept)
    assert got.verdict is Verdict.VIOLATION and "grew 120 MiB" in got.reason


def test_memory_given_back_or_under_the_limit_passes():
    back = RssTrace(before=30 * MIB, peak=200 * MIB, after=40 * MIB)
    assert judge(FAST, FAST, NOTHING, back).verdict is Verdict.ABSORBED
    small = RssTrace(before=30 * MIB, peak=60 * MIB, after=60 * MIB)
    assert judge(FAST, FAST, NOTHING, small).verdict is Verdict.ABSORBED
    strict = Criteria(rss_limit=16 * MIB)
    assert judge(FAST, FAST, NOTHING, small, strict).verdict is Verdict.VIOLATION


@pytest.mark.parametrize("reaction,bound,text", [
    (FloodReaction(goaway_code=fr.ErrorCode.ENHANCE_YOUR_CALM, closed="eof"), Bound.GOAWAY,
     "GOAWAY ENHANCE_YOUR_CALM"),
    (FloodReaction(goaway_code=0x77), Bound.GOAWAY, "GOAWAY 0x77"),
    (FloodReaction(rst_streams=129), Bound.RST, "129 RST_STREAM"),
    (FloodReaction(closed="reset"), Bound.CLOSED, "connection closed (reset)"),
    (FloodReaction(stopped_reading=True), Bound.STOPPED_READING, "stopped reading"),
    # over TLS the timed-out send breaks our stream: the reset read after it is ours
    (FloodReaction(closed="reset", stopped_reading=True), Bound.STOPPED_READING,
     "connection closed (reset), stopped reading"),
])
def test_every_bound_passes_when_control_traffic_is_fine(reaction, bound, text):
    got = judge(FAST, FAST, reaction, None)
    assert got.verdict is Verdict.BOUNDED and got.bound is bound
    assert text in reaction.describe() and text in got.reason


def test_absorbed_passes_and_says_so():
    got = judge(FAST, FAST, NOTHING, None)
    assert got.verdict is Verdict.ABSORBED and got.bound is Bound.NONE
    assert NOTHING.describe() == "nothing (absorbed)"
    assert got.baseline_p50_s == got.during_p50_s == 0.010


def test_a_bound_does_not_excuse_harm():
    calm = FloodReaction(goaway_code=fr.ErrorCode.ENHANCE_YOUR_CALM)
    got = judge(FAST, samples(None, None), calm, None)
    assert got.verdict is Verdict.VIOLATION and "ENHANCE_YOUR_CALM" in got.reason


#: The RFC text the flood quotes come from, copied verbatim (RFC 9113 as published; its
#: §10.5 rewords RFC 7540's, whose sentences must not be cited under RFC 9113).
RFC_TEXT = {
    "RFC 9113 §5.1.2": (
        'Streams that are in the "open" state or in either of the "half-closed" states '
        "count toward the maximum number of streams that an endpoint is permitted to "
        "open."),
    "RFC 9113 §10.5": (
        "An HTTP/2 connection can demand a greater commitment of resources to operate than "
        "an HTTP/1.1 connection.  Both field section compression and flow control depend on "
        "a commitment of a greater amount of state.  Settings for these features ensure "
        "that memory commitments for these features are strictly bounded. "
        "Large numbers of small or empty frames can be abused to cause a peer to expend "
        "time processing frame headers.  Caution is required here as some uses of small "
        "frames are entirely legitimate, such as the sending of an empty DATA or "
        "CONTINUATION frame at the end of a stream. "
        "The SETTINGS frame might also be abused to cause a peer to expend additional "
        "processing time.  This might be done by pointlessly changing settings, sending "
        "multiple undefined settings, or changing the same setting multiple times in the "
        "same frame. "
        "An endpoint that doesn't monitor use of these features exposes itself to a risk "
        "of denial of service.  Implementations SHOULD track the use of these features and "
        "set limits on their use.  An endpoint MAY treat activity that is suspicious as a "
        "connection error (Section 5.4.1) of type ENHANCE_YOUR_CALM."),
    "RFC 9113 §10.5.1": (
        "A large field block (Section 4.3) can cause an implementation to commit a large "
        "amount of state."),
    "RFC 7541 §6.3": (
        "The new maximum size MUST be lower than or equal to the limit determined by the "
        "protocol using HPACK.  A value that exceeds this limit MUST be treated as a "
        "decoding error."),
}


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("flood", CATALOGUE, ids=lambda f: f.name)
def test_every_flood_quote_is_verbatim_rfc_text(flood):
    """Each sentence of a flood's quote (pieces joined by "[§x]" markers) is in the RFC
    text this file holds: no paraphrase, no RFC 7540 wording cited as RFC 9113."""
    import re

    corpus = _words(" ".join(RFC_TEXT.values()))
    for piece in re.split(r"\s*\[§[^\]]*\]\s*", flood.quote):
        if piece:
            assert _words(piece) in corpus, (flood.name, piece)
