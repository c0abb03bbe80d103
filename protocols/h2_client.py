"""The client side of one HTTP/2 connection carrying many requests at once, without I/O.

How this works: ``H2Client`` wraps ``h2``'s sans-IO ``H2Connection``. The I/O shell
(``actors.h2_session``) calls ``start`` to open a stream for a request, feeds what the
socket reads to ``receive``, writes what ``data_to_send`` returns, and gets back one
``Finished`` per stream that ended: a ``protocols.http1.Response`` (the same shape the
HTTP/1.1 walkers get, so every check downstream is unchanged) or a ``StreamFailure``
whose ``cause`` is one of the transport causes the walkers already count. Response
bodies are capped; flow-control credit is given back as DATA arrives (RFC 9113 §6.9:
"A receiver ... MUST ... send WINDOW_UPDATE frames ... as it consumes data"), and
request bodies larger than the peer's window wait for its WINDOW_UPDATE.

Three departures from what ``h2`` does on its own, all for correctness of the counts:
- A graceful GOAWAY (NO_ERROR) does not end the streams the server said it will still
  answer. RFC 9113 §6.8: "Activity on streams numbered lower than or equal to the last
  stream identifier might still complete successfully." ``h2`` moves the connection to
  CLOSED on any GOAWAY and then refuses every later frame (even the rest of the same
  read), which would turn each in-flight request at a server's routine
  ``keepalive_requests`` limit into a false error; so ``GracefulConnection`` keeps the
  connection open for reading after a graceful GOAWAY, and no new stream is started on
  it (``usable`` is False).
- A malformed response (a bad field, a body that disagrees with its content-length)
  fails its own stream (RST_STREAM PROTOCOL_ERROR), not the connection and every other
  request on it, as ``h2`` would (``protocols.h2_tolerant``).
- Streams the server never processed are marked ``retry``: those above a GOAWAY's last
  stream identifier, and those reset with REFUSED_STREAM (RFC 9113 §8.7: "The
  REFUSED_STREAM error code can be included in a RST_STREAM frame to indicate that the
  stream is being closed prior to any processing having occurred. Any request that was
  sent on the reset stream can be safely retried."). The shell sends them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from protocols.h2_tolerant import GracefulConnection, Malformed
from protocols.http1 import DEFAULT_MAX_BODY_BYTES, Response

#: RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
#: connection-specific header fields"; Host becomes ``:authority`` (§8.3.1).
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-connection",
                            "transfer-encoding", "upgrade", "host", "content-length"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Our receive window per stream and for the connection: large enough that a response of
#: a few hundred KiB never waits for a WINDOW_UPDATE round trip.
RECEIVE_WINDOW = 4 * 1024 * 1024
#: Header list we accept (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 §6.5.2).
MAX_HEADER_LIST = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """A stream that ended without a complete response."""

    #: A transport cause the walkers count: ``reset``, ``eof``, ``protocol_error``,
    #: ``too_large``.
    cause: str
    detail: str
    #: The server did not process the request (REFUSED_STREAM, above a GOAWAY's last
    #: stream): safe to send again on another connection.
    retry: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    stream_id: int
    outcome: Response | StreamFailure


def request_fields(method: str, target: str, authority: str, scheme: str,
                   headers: Iterable[tuple[str, str]], body: bytes | None
                   ) -> list[tuple[bytes, bytes]]:
    """The header list of a request (RFC 9113 §8.3.1 pseudo-header fields first, then
    regular fields with lowercase names, §8.2.1: "field names MUST be converted to
    lowercase"). Connection-specific fields are dropped; ``content-length`` is computed
    here for a body, or 0 for a bodiless POST/PUT/PATCH, as ``http1.build_request`` does."""
    fields = [(b":method", method.encode("ascii")), (b":scheme", scheme.encode("ascii")),
              (b":authority", authority.encode("ascii")), (b":path", target.encode("ascii"))]
    for name, value in headers:
        lower = name.lower()
        if lower in _NOT_FORWARDED or (lower == "te" and value.lower() != "trailers"):
            continue
        fields.append((lower.encode("ascii"), value.encode("latin-1")))
    if body is not None or method in _BODY_METHODS:
        fields.append((b"content-length", str(len(body or b"")).encode("ascii")))
    return fields


def valid_status(value: bytes) -> bool:
    """RFC 9110 §15: "The status code of a response is a three-digit integer code";
    RFC 9113 §8.1.1: a malformed response "MUST be treated as a stream error (Section
    5.4.2) of type PROTOCOL_ERROR"."""
    return len(value) == 3 and value.isdigit()


def build_response(headers: Iterable[tuple[bytes, bytes]], body: bytes,
                   trailers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
    """A ``Response`` from a final response's header list: ``:status`` read, the other
    pseudo-header fields dropped; an HTTP/2 connection always carries the next request."""
    status = 0
    regular = []
    for name, value in headers:
        if name == b":status":
            status = int(value)  # ``valid_status`` checked it: three digits
        elif not name.startswith(b":"):
            regular.append((name, value))
    return Response(status=status, reason=b"", http_version=b"2", headers=tuple(regular),
                    body=body, keep_alive=True, trailers=tuple(trailers))


class _Stream:
    """One request in flight: what is left of its body to send, what came back so far."""

    __slots__ = ("body", "headers", "size", "trailers", "unsent")

    def __init__(self, unsent: bytes) -> None:
        self.unsent = unsent
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.trailers: list[tuple[bytes, bytes]] = []


class H2Client:
    """One client connection's HTTP/2 state: streams in flight and their outcomes."""

    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        # Our own fields are built valid (``request_fields``; the tests decode them with a
        # validating server), so h2 need not check them again on every request; the
        # server's fields are checked.
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False)
        self._conn = GracefulConnection(config)
        self._streams: dict[int, _Stream] = {}
        self._max_body = max_body_bytes
        #: Why the connection takes no new stream ("" while it does), and the transport
        #: cause that goes with it.
        self.ended = ""
        self.end_cause = ""
        #: The server's first bytes, until its first frame header is complete.
        self._preface: bytearray | None = bytearray()
        #: Its SETTINGS arrived: the limits it announces there (concurrent streams) hold.
        self.settings_received = False

    # -- the shell's side ------------------------------------------------------------------

    def initiate(self) -> None:
        """Queue our preface (§3.4): no push, a large receive window, a header list cap."""
        conn = self._conn
        conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
        })
        conn.initiate_connection()
        conn.increment_flow_control_window(RECEIVE_WINDOW - 65535)  # the connection's own

    def data_to_send(self) -> bytes:
        return self._conn.data_to_send()

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    @property
    def max_concurrent(self) -> int:
        """The server's SETTINGS_MAX_CONCURRENT_STREAMS (unbounded until it says)."""
        return self._conn.remote_settings.max_concurrent_streams

    @property
    def usable(self) -> bool:
        """Whether a new stream may start: not ended, below the server's limit, stream
        identifiers left (§5.1.1: they cannot be reused)."""
        # ``len(self._streams)``, not h2's ``open_outbound_streams`` (a scan of every
        # stream): a stream leaves ``_streams`` when h2 closes it, or when we reset it.
        return (not self.ended and len(self._streams) < self.max_concurrent
                and self._conn.highest_outbound_stream_id < 2**31 - 3)

    def start(self, fields: list[tuple[bytes, bytes]], body: bytes | None) -> int:
        """Open a stream for one request; its body goes out as the flow-control windows
        allow. The caller checked ``usable``."""
        conn = self._conn
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, fields, end_stream=not body)
        self._streams[stream_id] = _Stream(body or b"")
        if body:
            self._send_body(stream_id)
        return stream_id

    def cancel(self, stream_id: int) -> None:
        """We gave up on the stream (its deadline passed): RST_STREAM CANCEL (§8.7) so the
        server can stop, and forget it."""
        if self._streams.pop(stream_id, None) is not None:
            self._reset(stream_id)

    def _reset(self, stream_id: int,
               code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.CANCEL) -> None:
        # h2 closes the whole connection on a RST_STREAM it finds invalid in its state (a
        # connection already CLOSED): send one only while the connection is open.
        if self._conn.state_machine.state is h2.connection.ConnectionState.CLOSED:
            return
        try:
            self._conn.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:  # already closed on the server's side
            pass

    def receive(self, data: bytes) -> list[Finished]:
        """Feed bytes read from the socket; the streams that ended."""
        if self._preface is not None:
            self._preface += data
            if len(self._preface) < 9:
                return []
            head, self._preface = self._preface, None
            # §3.4: "The server connection preface consists of a potentially empty
            # SETTINGS frame (Section 6.5) that MUST be the first frame the server sends."
            # Checked on its 9-octet header, because h2 waits for a whole frame, and
            # "HTTP/1.1 400" read as a frame header announces 4.5 MiB.
            if head[3] != 0x4 or head[5:9] != b"\0\0\0\0":
                return self.lost("protocol_error", "the target did not answer HTTP/2 (its "
                                 f"first bytes are {bytes(head[:24])!r}, not SETTINGS)")
            data = bytes(head)
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY (PROTOCOL_ERROR or its kin); every stream is lost.
            return self.lost("protocol_error", f"HTTP/2 protocol error: {exc}")
        done: list[Finished] = []
        for event in events:
            self._on_event(event, done)
        return done

    def lost(self, cause: str, detail: str) -> list[Finished]:
        """The connection is gone (EOF, reset, protocol error): every stream fails."""
        if not self.ended:
            self.ended, self.end_cause = detail, cause
        done = [Finished(sid, StreamFailure(cause, detail)) for sid in self._streams]
        self._streams.clear()
        return done

    # -- events ----------------------------------------------------------------------------

    def _on_event(self, event: h2.events.Event, done: list[Finished]) -> None:
        streams = self._streams
        if isinstance(event, Malformed):  # before ResponseReceived: it is one
            if event.flow_controlled_length:  # the connection's window was spent on it
                self._conn.acknowledge_received_data(event.flow_controlled_length,
                                                     event.stream_id)
            if streams.pop(event.stream_id, None) is not None:
                self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
                done.append(Finished(event.stream_id, StreamFailure(
                    "protocol_error", f"malformed response: {event.detail}")))
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id
            # Credit back what arrived, kept or not: the connection window is shared.
            if event.flow_controlled_length:
                self._conn.acknowledge_received_data(event.flow_controlled_length, sid)
            stream = streams.get(sid)
            if stream is None:
                return
            stream.size += len(event.data)
            if stream.size > self._max_body:
                self.cancel(sid)
                done.append(Finished(sid, StreamFailure(
                    "too_large", f"response body over {self._max_body} bytes")))
                return
            stream.body.append(event.data)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = streams.get(event.stream_id)
            if stream is None:
                return
            status = next((v for n, v in event.headers if n == b":status"), b"")
            if not valid_status(status):  # h2 checks that :status is there, not its form
                del streams[event.stream_id]
                self._reset(event.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
                done.append(Finished(event.stream_id, StreamFailure(
                    "protocol_error", f"malformed response: :status {status[:32]!r} is not "
                    "three digits (RFC 9113 §8.1.1, RFC 9110 §15)")))
                return
            stream.headers = list(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = streams.pop(event.stream_id, None)
            if stream is not None:
                if stream.unsent:  # answered before the whole body went (§8.1): stop it
                    self._reset(event.stream_id)
                done.append(Finished(event.stream_id, self._response(stream)))
        elif isinstance(event, h2.events.StreamReset):
            if streams.pop(event.stream_id, None) is not None:
                code = _code_name(event.error_code)
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                done.append(Finished(event.stream_id, StreamFailure(
                    "reset", f"RST_STREAM {code}", retry=refused)))
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            # A larger SETTINGS_INITIAL_WINDOW_SIZE grows every stream's window (RFC 9113
            # §6.9.2) with no WINDOW_UPDATE: a body waiting for room goes on then too.
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_received = True
            for sid, stream in list(streams.items()):
                if stream.unsent:
                    self._send_body(sid)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event, done)

    def _on_goaway(self, event: h2.events.ConnectionTerminated,
                   done: list[Finished]) -> None:
        code = _code_name(event.error_code)
        self.ended, self.end_cause = f"GOAWAY {code}", "reset"
        last = event.last_stream_id if event.last_stream_id is not None else 2**31
        graceful = event.error_code == h2.errors.ErrorCodes.NO_ERROR
        for sid in [sid for sid in self._streams if sid > last or not graceful]:
            del self._streams[sid]
            done.append(Finished(sid, StreamFailure(
                "reset", f"GOAWAY {code}, last stream {last}", retry=sid > last)))

    def _response(self, stream: _Stream) -> Response | StreamFailure:
        if stream.headers is None:  # pragma: no cover - h2 refuses a stream end first
            return StreamFailure("protocol_error", "stream ended without a response")
        return build_response(stream.headers, b"".join(stream.body), stream.trailers)

    def _send_body(self, stream_id: int) -> None:
        conn = self._conn
        stream = self._streams[stream_id]
        try:
            while stream.unsent:
                room = min(conn.local_flow_control_window(stream_id),
                           conn.max_outbound_frame_size)
                if room <= 0:
                    return  # the rest waits for a WINDOW_UPDATE
                chunk, stream.unsent = stream.unsent[:room], stream.unsent[room:]
                conn.send_data(stream_id, chunk, end_stream=not stream.unsent)
        except h2.exceptions.StreamClosedError:
            # Reset in the same read as the WINDOW_UPDATE or SETTINGS that woke us: h2
            # has closed it already, and its StreamReset is among the events to come.
            stream.unsent = b""


def _code_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def split_http1_request(wire: bytes) -> tuple[str, str, list[tuple[str, str]], bytes | None]:
    """(method, target, header fields, body) of one HTTP/1.1 request as ``assay load``
    renders it, to send the same request over HTTP/2. Host comes back as a field (the
    caller makes it ``:authority``). Raises ValueError for what HTTP/2 cannot carry: a
    Transfer-Encoding (RFC 9113 §8.2.2) or a malformed head."""
    head, sep, body = wire.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of the request head")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError(f"not a request line: {lines[0]!r}")
    method, target, _ = parts
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header field: {line!r}")
        if name.lower() == "transfer-encoding":
            raise ValueError("HTTP/2 has no Transfer-Encoding (RFC 9113 §8.2.2): send the "
                             "body unchunked")
        fields.append((name, value.strip(" \t")))
    return method, target, fields, body or None
