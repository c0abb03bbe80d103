"""Bytes-only tests for protocols.h2c and protocols.response_head."""

from __future__ import annotations

import base64
import random

import pytest

from protocols import h2c
from protocols.h2c import AnswerKind, FrameType, TeardownStage
from protocols.h2c import Transport as T
from protocols.response_head import HeadError, ResponseHead, parse_response_head

pytest.importorskip("h2")
import h2.config
import h2.connection


def _h2_server_bytes(body: bytes = b"hello") -> bytes:
    """What a real HTTP/2 server (the h2 package) sends after accepting our upgrade."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_upgrade_connection(h2c.http2_settings_value())
    conn.send_headers(1, [(":status", "200"), ("content-length", str(len(body)))])
    conn.send_data(1, body, end_stream=True)
    return conn.data_to_send()


SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
DECLINED = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- builders ------------------------------------------------------------------------------


def test_http2_settings_is_unpadded_base64url_of_the_payload() -> None:
    value = h2c.http2_settings_value({h2c.Setting.INITIAL_WINDOW_SIZE: 0xFFFF_FFFF >> 1})
    assert "=" not in value and "+" not in value and "/" not in value
    decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert decoded == b"\x00\x04\x7f\xff\xff\xff"


def test_upgrade_request_and_h2_accepts_its_settings() -> None:
    request = h2c.build_upgrade_request("/x", "h:1")
    assert request.startswith(b"GET /x HTTP/1.1\r\nHost: h:1\r\n")
    assert b"Connection: Upgrade, HTTP2-Settings\r\n" in request
    assert b"Upgrade: h2c\r\n" in request and request.endswith(b"\r\n\r\n")
    value = request.split(b"HTTP2-Settings: ")[1].split(b"\r\n")[0].decode()
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_upgrade_connection(value)  # raises if the header is malformed
    assert server.remote_settings.enable_push == 0


def test_client_preface_and_ack_parse_in_h2() -> None:
    preface = h2c.build_client_preface()
    assert preface.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    events = server.receive_data(preface + h2c.SETTINGS_ACK)
    names = [type(e).__name__ for e in events]
    assert "RemoteSettingsChanged" in names and "SettingsAcknowledged" in names


def test_teardown_stages_cover_the_lifecycle() -> None:
    assert len(TeardownStage) >= 6
    assert {s.value for s in TeardownStage} >= {
        "mid_headers", "request_sent", "after_response", "partial_preface", "after_settings",
        "mid_response",
    }


# --- classifier ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])
def test_upgraded_with_real_h2_frames(how: str) -> None:
    data = SWITCHING + _h2_server_bytes()
    if how == "trailing":
        data += b"\x00\x00"
    if how == "bytewise":
        complete_at = next(i for i in range(len(data) + 1) if h2c.preface_complete(data[:i]))
        assert h2c.stream_started(data) and not h2c.stream_started(data[: complete_at])
    answer = h2c.classify_answer(data, T.OPEN, preface_sent=True)
    assert answer.kind is AnswerKind.UPGRADED and answer.status == 101
    assert answer.frames is not None and answer.frames.frames[0].type == FrameType.SETTINGS


def test_101_before_the_server_preface_is_upgraded_until_we_sent_ours() -> None:
    assert h2c.head_complete(SWITCHING) and not h2c.preface_complete(SWITCHING)
    pending = h2c.classify_answer(SWITCHING, T.OPEN, preface_sent=False)
    assert pending.kind is AnswerKind.UPGRADED
    assert h2c.classify_answer(SWITCHING, T.OPEN, preface_sent=True).kind is AnswerKind.HANG
    assert h2c.classify_answer(SWITCHING, T.EOF, preface_sent=True).kind is AnswerKind.CLOSED


@pytest.mark.parametrize(
    ("data", "kind", "status"),
    [
        (DECLINED, AnswerKind.DECLINED, 200),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", AnswerKind.DECLINED, 404),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + DECLINED, AnswerKind.DECLINED, 200),
        (b"HTTP/1.0 503 Service Unavailable\r\n\r\n", AnswerKind.SERVER_ERROR, 503),
        (b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", AnswerKind.GARBAGE, None),
        (SWITCHING + b"<html>", AnswerKind.GARBAGE, 101),
        (SWITCHING.replace(b"h2c", b"websocket") + _h2_server_bytes(), AnswerKind.GARBAGE, 101),
        (SWITCHING + h2c.build_frame(FrameType.HEADERS, 4, 1, b"x"), AnswerKind.GARBAGE, 101),
        (SWITCHING + h2c.SETTINGS_ACK, AnswerKind.GARBAGE, 101),
        (SWITCHING + h2c.build_frame(FrameType.SETTINGS, 0, 0, b"\x00\x02\x00\x00\x00\x05"),
         AnswerKind.GARBAGE, 101),
        (SWITCHING + h2c.settings_frame() + h2c.build_frame(FrameType.PING, 0, 0, b"1234"),
         AnswerKind.GARBAGE, 101),
    ],
)
def test_classify(data: bytes, kind: AnswerKind, status: int | None) -> None:
    answer = h2c.classify_answer(data, T.OPEN, preface_sent=True)
    assert (answer.kind, answer.status) == (kind, status), answer.detail
    if kind is AnswerKind.GARBAGE:
        assert h2c.preface_complete(data) and h2c.stream_started(data)


def test_unknown_frame_types_are_ignored() -> None:
    data = SWITCHING + h2c.settings_frame() + h2c.build_frame(0xEE, 0xFF, 7, b"whatever")
    assert h2c.classify_answer(data, T.OPEN, preface_sent=True).kind is AnswerKind.UPGRADED


@pytest.mark.parametrize(
    ("transport", "kind"),
    [(T.OPEN, AnswerKind.HANG), (T.EOF, AnswerKind.CLOSED), (T.RESET, AnswerKind.CLOSED)],
)
def test_no_answer(transport: T, kind: AnswerKind) -> None:
    assert h2c.classify_answer(b"HTTP/1.1 2", transport, preface_sent=False).kind is kind


def test_fuzz_classifier_never_raises() -> None:
    rng = random.Random(7540)
    pieces = [SWITCHING, DECLINED, h2c.settings_frame(), h2c.SETTINGS_ACK, b"HTTP/1.1 "]
    for _ in range(2000):
        data = b"".join(
            rng.choice(pieces) if rng.random() < 0.4 else rng.randbytes(rng.randrange(12))
            for _ in range(rng.randrange(4))
        )
        for transport in T:
            answer = h2c.classify_answer(data, transport, preface_sent=rng.random() < 0.5)
            assert answer.kind in AnswerKind
        h2c.head_complete(data)
        h2c.preface_complete(data)
        h2c.stream_started(data)


# --- response head -------------------------------------------------------------------------

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Connection: keep-alive, Upgrade\r\n\r\n"
)


@pytest.mark.parametrize("how", ["whole", "bytewise", "trailing"])
def test_response_head_three_ways(how: str) -> None:
    if how == "bytewise":
        assert all(parse_response_head(HEAD[:i]) is None for i in range(len(HEAD)))
    data = HEAD + (b"data: x\n\n" if how == "trailing" else b"")
    head = parse_response_head(data)
    assert isinstance(head, ResponseHead)
    assert (head.version, head.status, head.reason) == ((1, 1), 200, b"OK")
    assert head.get(b"Content-Type") == b"text/event-stream"
    assert head.has_token(b"connection", b"upgrade") and head.length == len(HEAD)


def test_response_head_tolerates_bare_lf_and_missing_reason() -> None:
    head = parse_response_head(b"HTTP/1.0 204\nX-A: 1\n\n")
    assert isinstance(head, ResponseHead) and head.status == 204 and head.get(b"x-a") == b"1"


@pytest.mark.parametrize(
    "data",
    [
        b"PRI * HTTP/2.0\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 20000,
        b"HTTP/1.1 OK\r\n",
    ],
)
def test_response_head_garbage(data: bytes) -> None:
    assert isinstance(parse_response_head(data), HeadError)
