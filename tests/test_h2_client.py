"""The sans-IO HTTP/2 client (``protocols.h2_client``) against an in-memory, validating
``h2`` server: request fields, flow control both ways, GOAWAY and resets, malformed
responses, and the HTTP/1.1-to-HTTP/2 split ``assay load --http2`` uses."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hyperframe.frame
import pytest

from actors.markov_h2 import known_cause
from protocols.h2_client import (
    RECEIVE_WINDOW,
    H2Client,
    Response,
    StreamFailure,
    build_response,
    request_fields,
    split_http1_request,
)
from protocols.markov import TRANSPORT_CAUSES

# -- an in-memory server ---------------------------------------------------------------------


class Server:
    """A validating ``h2`` server wired to an ``H2Client`` by hand: bytes both ways."""

    def __init__(self, client: H2Client, settings: dict[int, int] | None = None) -> None:
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.client = client
        self.events: list[h2.events.Event] = []
        client.initiate()
        self.pump()

    def pump(self) -> list:
        """Move bytes both ways until quiet; the client's finished streams."""
        done = []
        for _ in range(20):
            to_server = self.client.data_to_send()
            if to_server:
                self.events += self.conn.receive_data(to_server)
            to_client = self.conn.data_to_send()
            if not to_client and not to_server:
                break
            if to_client:
                done += self.client.receive(to_client)
        return done

    def requests(self) -> dict[int, list[tuple[bytes, bytes]]]:
        return {e.stream_id: e.headers for e in self.events
                if isinstance(e, h2.events.RequestReceived)}

    def respond(self, stream_id: int, status: int = 200, body: bytes = b"ok",
                headers: tuple = ()) -> None:
        fields = [(b":status", str(status).encode()), (b"content-length", str(len(body)).encode()),
                  *headers]
        self.conn.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.conn.send_data(stream_id, body, end_stream=True)


def _get(client: H2Client, path: str = "/x") -> int:
    return client.start(request_fields("GET", path, "example.test", "https", (), None), None)


def test_request_fields_follow_rfc9113():
    fields = request_fields("POST", "/items?a=1", "h:8443", "https",
                            [("Cookie", "s=1"), ("Content-Type", "application/json"),
                             ("Connection", "keep-alive"), ("Host", "x"), ("TE", "gzip"),
                             ("Transfer-Encoding", "chunked")], b'{"a":1}')
    assert fields[:4] == [(b":method", b"POST"), (b":scheme", b"https"),
                          (b":authority", b"h:8443"), (b":path", b"/items?a=1")]
    assert fields[4:] == [(b"cookie", b"s=1"), (b"content-type", b"application/json"),
                          (b"content-length", b"7")]
    assert (b"content-length", b"0") in request_fields("POST", "/", "h", "http", (), None)
    assert all(n != b"content-length" for n, _ in request_fields("GET", "/", "h", "http", (),
                                                                  None))


def test_build_response_drops_pseudo_fields():
    response = build_response([(b":status", b"404"), (b"date", b"d")], b"no",
                              [(b"x-t", b"1")])
    assert (response.status, response.headers, response.body) == (404, ((b"date", b"d"),), b"no")
    assert response.keep_alive and response.http_version == b"2"
    assert response.trailers == ((b"x-t", b"1"),)


def test_many_streams_answered_out_of_order():
    client = H2Client()
    server = Server(client)
    ids = [_get(client, f"/p{i}") for i in range(5)]
    server.pump()
    assert [dict(h)[b":path"] for h in server.requests().values()] == [
        f"/p{i}".encode() for i in range(5)]
    for sid in reversed(ids):
        server.respond(sid, body=f"r{sid}".encode(), headers=((b"date", b"now"),))
    done = server.pump()
    assert [d.stream_id for d in done] == list(reversed(ids))
    for d in done:
        assert isinstance(d.outcome, Response)
        assert d.outcome.body == f"r{d.stream_id}".encode()
        assert d.outcome.header("date") == b"now"
    assert client.in_flight == 0 and client.usable


def test_request_body_waits_for_the_window():
    client = H2Client()
    server = Server(client)
    body = b"x" * 100_000  # past the default 65 535-octet window
    sid = client.start(request_fields("POST", "/", "h", "http", (), body), body)
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert len(got) == 65535  # the rest waits for a WINDOW_UPDATE
    server.conn.acknowledge_received_data(len(got), sid)
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert got == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in server.events)


def test_request_body_goes_on_when_the_server_raises_the_initial_window():
    """RFC 9113 §6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE adjusts every stream window,
    with no WINDOW_UPDATE frame: the rest of a waiting body must go then."""
    client = H2Client()
    server = Server(client)
    server.conn.increment_flow_control_window(1 << 20)  # the connection has room
    server.pump()
    body = b"x" * 100_000
    client.start(request_fields("POST", "/", "h", "http", (), body), body)
    server.pump()
    server.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    server.pump()
    got = b"".join(e.data for e in server.events if isinstance(e, h2.events.DataReceived))
    assert got == body


def test_a_body_waiting_for_room_is_dropped_when_its_stream_is_reset_in_the_same_read():
    """WINDOW_UPDATE then RST_STREAM in one read: h2 closed the stream before the client
    sees the window event; the rest of the body is dropped (it raised StreamClosedError in
    the reader task: a walker error) and the reset is the request's outcome."""
    client = H2Client()
    server = Server(client)
    body = b"x" * 100_000
    sid = client.start(request_fields("POST", "/", "h", "http", (), body), body)
    server.pump()
    server.conn.acknowledge_received_data(65535, sid)
    server.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
    done = client.receive(server.conn.data_to_send())
    assert [(d.stream_id, d.outcome.detail) for d in done] == [(sid, "RST_STREAM INTERNAL_ERROR")]
    assert client.usable and client.in_flight == 0


def test_large_response_is_credited_back_and_capped():
    client = H2Client(max_body_bytes=200_000)
    server = Server(client)
    sid = _get(client)
    server.pump()
    server.conn.send_headers(sid, [(b":status", b"200")])
    # More than one window's worth arrives only if the client gives credit back.
    for _ in range(4):
        server.conn.send_data(sid, b"y" * 16384)
    server.pump()
    assert server.conn.local_flow_control_window(sid) >= 0
    for _ in range(12):
        if server.conn.local_flow_control_window(sid) < 16384:
            break
        server.conn.send_data(sid, b"y" * 16384)
    done = server.pump()
    assert done and isinstance(done[0].outcome, StreamFailure)
    assert done[0].outcome.cause == "too_large"
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == h2.errors.ErrorCodes.CANCEL
               for e in server.events)
    assert client.usable  # the connection carries on
    assert RECEIVE_WINDOW > 65535


def test_refused_stream_is_retried_other_resets_are_not():
    client = H2Client()
    server = Server(client)
    first, second = _get(client), _get(client)
    server.pump()
    server.conn.reset_stream(first, h2.errors.ErrorCodes.REFUSED_STREAM)
    server.conn.reset_stream(second, h2.errors.ErrorCodes.INTERNAL_ERROR)
    outcomes = {d.stream_id: d.outcome for d in server.pump()}
    assert outcomes[first] == StreamFailure("reset", "RST_STREAM REFUSED_STREAM", retry=True)
    assert outcomes[second].retry is False and outcomes[second].cause == "reset"


def test_graceful_goaway_lets_earlier_streams_finish():
    """RFC 9113 §6.8: streams up to the last stream identifier may still complete; those
    above it were not processed (retry); no new stream starts."""
    client = H2Client()
    server = Server(client)
    low, high = _get(client), _get(client)
    server.pump()
    server.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=low)
    done = server.pump()
    assert [(d.stream_id, d.outcome.retry) for d in done] == [(high, True)]
    assert not client.usable and client.ended.startswith("GOAWAY NO_ERROR")
    # The server may still answer ``low``; h2 itself would have refused it.
    server.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
    server.respond(low, body=b"late")
    done = server.pump()
    assert done[0].stream_id == low and done[0].outcome.body == b"late"


def test_graceful_goaway_keeps_what_was_queued_for_the_streams_it_covers():
    """h2 drops its unwritten output on any GOAWAY. A request queued (another task was
    writing) when a shutdown notice (last stream 2^31-1, RFC 9113 §6.8) arrives must still
    go out, or its stream waits to its deadline; under a GOAWAY that does not cover it, it
    must not (§6.8: "Receivers of a GOAWAY frame MUST NOT open additional streams")."""
    for last in (2**31 - 1, 0):
        client = H2Client()
        server = Server(client)
        body = b"b" * 1000
        queued = client.start(request_fields("POST", "/q", "h", "http", (), body), body)
        server.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=last)
        done = client.receive(server.conn.data_to_send())
        sent = client.data_to_send()
        server.conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
        events = server.conn.receive_data(sent)
        if last == 0:
            assert [(d.stream_id, d.outcome.retry) for d in done] == [(queued, True)]
            assert not [e for e in events if isinstance(e, h2.events.RequestReceived)]
            continue
        assert done == []
        assert [e.stream_id for e in events if isinstance(e, h2.events.RequestReceived)] == [
            queued]
        assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == body
        server.respond(queued, body=b"answered")
        assert [d.outcome.body for d in server.pump()] == [b"answered"]


def test_goaway_with_an_error_fails_every_stream():
    client = H2Client()
    server = Server(client)
    sid = _get(client)
    server.pump()
    server.conn.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=sid)
    done = server.pump()
    assert done[0].outcome == StreamFailure(
        "reset", f"GOAWAY ENHANCE_YOUR_CALM, last stream {sid}", retry=False)


def test_garbage_is_a_protocol_error_and_lost_fails_the_rest():
    client = H2Client()
    client.initiate()
    sid = _get(client)
    assert client.receive(b"HTTP/1.1") == []  # not yet a frame header
    done = client.receive(b" 400 Bad Request\r\n\r\n")
    assert done[0].stream_id == sid and done[0].outcome.cause == "protocol_error"
    assert "did not answer HTTP/2" in done[0].outcome.detail
    assert "HTTP/1.1 400" in done[0].outcome.detail
    assert not client.usable and client.end_cause == "protocol_error"
    assert client.lost("eof", "gone") == []
    assert client.end_cause == "protocol_error"  # the first reason stays


def test_a_malformed_response_fails_its_own_stream_only():
    """RFC 9113 §8.1.1: "Malformed requests or responses that are detected MUST be treated
    as a stream error (Section 5.4.2) of type PROTOCOL_ERROR" -- not a connection error
    that fails every other request in flight (h2's own reaction), and no crash on a
    :status that is not three digits (RFC 9110 §15)."""
    client = H2Client()
    server = Server(client)
    short, bad_status, priority, fine = (_get(client) for _ in range(4))
    server.pump()
    server.conn.config.validate_outbound_headers = False
    server.conn.send_headers(short, [(b":status", b"200"), (b"content-length", b"5")])
    server.conn.send_data(short, b"abc", end_stream=True)  # shorter than announced
    server.conn.send_headers(bad_status, [(b":status", b"2x0")], end_stream=True)
    # A bad field name (§8.2.1: uppercase is malformed) in HEADERS with the PRIORITY flag,
    # which h2 (as a server) will not send: built by hand.
    with_priority = hyperframe.frame.HeadersFrame(
        priority, flags=["END_HEADERS", "PRIORITY"])
    with_priority.data = server.conn.encoder.encode([(b":status", b"200"), (b"Upper", b"x")])
    sent = server.conn.data_to_send() + with_priority.serialize()
    done = {d.stream_id: d.outcome for d in client.receive(sent)}
    to_server = client.data_to_send()
    server.events += server.conn.receive_data(to_server)
    resets = {}
    while to_server:  # the streams are closed at the server: read the client's frames
        frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(to_server[:9]))
        frame.parse_body(memoryview(to_server[9:9 + length]))
        to_server = to_server[9 + length:]
        if isinstance(frame, hyperframe.frame.RstStreamFrame):
            resets[frame.stream_id] = frame.error_code
    # RST_STREAM PROTOCOL_ERROR stops the streams still open; ``bad_status`` had ended.
    assert resets == dict.fromkeys((short, priority), h2.errors.ErrorCodes.PROTOCOL_ERROR)
    server.respond(fine, body=b"still here")
    done.update((d.stream_id, d.outcome) for d in server.pump())
    for sid in (short, bad_status, priority):
        assert done[sid].cause == "protocol_error", done[sid]
        assert done[sid].detail.startswith("malformed response"), done[sid]
    assert "Expected 5 bytes, received 3" in done[short].detail
    assert "2x0" in done[bad_status].detail
    assert done[fine].body == b"still here"
    assert client.usable and not client.ended
    later = _get(client)
    server.pump()
    server.respond(later)
    assert [d.outcome.status for d in server.pump()] == [200]


def test_server_limit_on_concurrent_streams_is_honoured():
    client = H2Client()
    Server(client, {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    assert client.max_concurrent == 2
    _get(client), _get(client)
    assert not client.usable


def test_cancel_resets_the_stream_and_frees_its_slot():
    client = H2Client()
    server = Server(client)
    sid = _get(client)
    server.pump()
    client.cancel(sid)
    assert client.in_flight == 0
    assert server.pump() == []
    assert any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid
               and e.error_code == h2.errors.ErrorCodes.CANCEL for e in server.events)
    late = _get(client)
    server.pump()
    server.respond(late)  # on its way when the client gives up: dropped quietly
    client.cancel(late)
    assert server.pump() == []
    assert client.usable


def test_http1_requests_split_for_http2():
    method, target, fields, body = split_http1_request(
        b"POST /items?x=1 HTTP/1.1\r\nHost: h:81\r\nX-A:  v \r\nContent-Length: 2\r\n\r\n{}")
    assert (method, target, body) == ("POST", "/items?x=1", b"{}")
    assert fields == [("Host", "h:81"), ("X-A", "v"), ("Content-Length", "2")]
    assert split_http1_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")[3] is None
    for bad in (b"GET / HTTP/1.1\r\nHost: h\r\n",
                b"GET /\r\n\r\n",
                b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
        with pytest.raises(ValueError):
            split_http1_request(bad)


def test_every_cause_is_one_the_session_counts():
    for cause in ("tls_verify", "tls_handshake", "tls_timeout", "io_error", "tls_error",
                  *TRANSPORT_CAUSES):
        assert known_cause(cause) in TRANSPORT_CAUSES
