"""protocols.h2_cases: the catalogue's shape, and that each builder sends what its name says."""

from __future__ import annotations

import hpack
import pytest

from protocols import h2_frames as fr
from protocols.h2_case_model import Expect, Group, H2Env
from protocols.h2_cases import BY_NAME, CASES
from protocols.outcome import Requirement, Severity

ENV = H2Env("127.0.0.1:8443", "https", "/index.html")
UPGRADED = H2Env("127.0.0.1:8080", "http", "/", first_stream=3)


def _frames(name: str, env: H2Env = ENV) -> list[fr.Frame]:
    data = BY_NAME[name].build(env)
    assert data is not None
    reader = fr.FrameReader(max_frame_size=1 << 24)
    frames = reader.feed(data)
    assert reader.pending == 0 and not reader.problem, name
    return frames


def test_catalogue_shape() -> None:
    assert 60 <= len(CASES) <= 100
    assert len(BY_NAME) == len(CASES), "case names are unique"
    assert {case.group for case in CASES} == set(Group)
    for case in CASES:
        assert case.rfc.startswith(("RFC 9113 §", "RFC 7541 §")), case.name
        # A MUST case quotes a MUST sentence (or the "can be sent in any state" that
        # forbids refusing a PRIORITY); te_not_trailers is graded SHOULD because its MUST
        # NOT binds the sender only (the receiver's reaction is not stated).
        if case.requirement is Requirement.MUST:
            assert "MUST" in case.quote or "can be sent" in case.quote, case.name
        assert case.name == case.name.lower() and " " not in case.name


@pytest.mark.parametrize("env", [ENV, UPGRADED], ids=["prior", "upgraded"])
def test_every_builder_is_pure_and_frames_cleanly(env: H2Env) -> None:
    for case in CASES:
        first, again = case.build(env), case.build(env)
        assert first == again, case.name
        if first is None:
            continue
        reader = fr.FrameReader(max_frame_size=1 << 24)
        frames = reader.feed(first)
        assert frames or case.preface is not None, case.name
        assert reader.pending == 0 and not reader.problem, case.name
        if env.first_stream == 3:  # stream 1 belongs to the upgrade's request
            assert all(f.stream_id != 1 or f.type in (fr.FrameType.SETTINGS, fr.FrameType.PING,
                                                      fr.FrameType.GOAWAY)
                       for f in frames), case.name


def test_frame_size_cases_follow_the_servers_limit() -> None:
    big = H2Env("h", server_max_frame=(1 << 24) - 1)
    assert BY_NAME["data_over_max_frame_size"].build(big) is None
    assert BY_NAME["headers_over_max_frame_size"].build(big) is None
    frames = _frames("data_over_max_frame_size", H2Env("h", server_max_frame=20000))
    assert [f.type for f in frames] == [fr.FrameType.HEADERS, fr.FrameType.DATA]
    assert len(frames[1].payload) == 20001


def test_hpack_cases_do_not_decode_with_an_independent_decoder() -> None:
    hpack_cases = [case for case in CASES if case.group is Group.HPACK]
    assert len(hpack_cases) == 7
    for case in hpack_cases:
        (headers,) = _frames(case.name)
        decoder = hpack.Decoder()
        with pytest.raises(Exception):  # noqa: B017 - hpack raises several error types
            decoder.decode(headers.payload)
        assert case.expect is Expect.CONNECTION_ERROR
        assert case.codes == {fr.ErrorCode.COMPRESSION_ERROR}


def test_malformed_requests_are_valid_hpack_carrying_the_defect() -> None:
    expected = {
        "field_name_uppercase": ("X-Assay", "1"),
        "field_value_lf": ("x-assay", "a\nb"),
        "connection_header": ("connection", "keep-alive"),
        "pseudo_header_status_in_request": (":status", "200"),
    }
    for name, field in expected.items():
        (headers,) = _frames(name)
        fields = [(n.decode(), v.decode()) for n, v in hpack.Decoder().decode(headers.payload,
                                                                              raw=True)]
        assert field in fields and headers.flags & fr.FLAG_END_STREAM
    names = [n for n, _ in hpack.Decoder().decode(_frames("missing_path")[0].payload)]
    assert ":path" not in names and ":method" in names


def test_severity_follows_the_hazard() -> None:
    for case in CASES:
        if case.requirement is not Requirement.MUST:
            assert case.severity is Severity.LOW, case.name
    assert BY_NAME["transfer_encoding_header"].severity is Severity.HIGH
    assert BY_NAME["field_value_leading_space"].severity is Severity.MED
    assert BY_NAME["te_not_trailers"].requirement is Requirement.SHOULD


def test_continuation_and_state_builders() -> None:
    types = [f.type for f in _frames("ping_inside_field_block")]
    assert types == [fr.FrameType.HEADERS, fr.FrameType.PING, fr.FrameType.CONTINUATION]
    streams = [f.stream_id for f in _frames("continuation_on_other_stream")]
    assert streams == [1, 3]
    streams = [f.stream_id for f in _frames("stream_id_lower_than_previous", UPGRADED)]
    assert streams == [5, 3]
    (frame,) = _frames("even_stream_id", UPGRADED)
    assert frame.stream_id == 4
    raw = BY_NAME["reserved_bit_in_stream_id_ignored"].build(ENV)
    assert raw is not None and raw[5] & 0x80
    assert BY_NAME["preface_bad_magic"].preface is not None
