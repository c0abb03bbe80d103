"""The ``h2`` connection ``protocols.h2_client`` runs: where it departs from ``h2``.

``h2`` ends the whole connection on anything it refuses and on every GOAWAY; a client
that counts each request's fate must not: a graceful GOAWAY still lets the streams the
server will answer finish (RFC 9113 §6.8), and a malformed response is a stream error
(RFC 9113 §8.1.1). Both are done here by overriding the few ``h2`` methods involved, so
``h2_client`` reads as the protocol and this module as the workaround.
"""

from __future__ import annotations

from typing import Any

import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.stream


def _why(exc: Exception) -> str:
    text = str(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


#: RFC 9113 §3.4: the client connection preface starts with this 24-octet sequence.
_CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frames_up_to(data: bytes, last_stream_id: int) -> bytes:
    """The whole frames of ``data`` (our own output) on the connection (stream 0) or on a
    stream numbered up to ``last_stream_id``. Dropping a HEADERS frame leaves the server's
    HPACK table behind ours, which is harmless here: no HEADERS follows a GOAWAY."""
    at = len(_CLIENT_PREFACE) if data.startswith(_CLIENT_PREFACE) else 0
    kept = bytearray(data[:at])
    while at + 9 <= len(data):
        end = at + 9 + int.from_bytes(data[at:at + 3], "big")
        if int.from_bytes(data[at + 5:at + 9], "big") & 0x7FFFFFFF <= last_stream_id:
            kept += data[at:end]
        at = end
    return bytes(kept)


class Malformed(h2.events.ResponseReceived):
    """A response ``h2`` refused for its own stream's sake (see ``_OneStream``). A kind of
    ``ResponseReceived`` only because h2 asserts that a HEADERS frame with the PRIORITY
    flag yields one first: match it before ``ResponseReceived``."""

    def __init__(self, stream_id: int, detail: str, flow_controlled_length: int) -> None:
        super().__init__(stream_id=stream_id, headers=[])
        self.detail = detail
        self.flow_controlled_length = flow_controlled_length


class _OneStream(h2.stream.H2Stream):
    """An ``H2Stream`` whose malformed response (a bad field, a body longer or shorter than
    its content-length) ends that stream alone. RFC 9113 §8.1.1: "Malformed requests or
    responses that are detected MUST be treated as a stream error (Section 5.4.2) of type
    PROTOCOL_ERROR." ``h2`` raises, and ends the whole connection, which would count every
    other request in flight on it as failed."""

    def receive_headers(self, *args: Any, **kwargs: Any) -> tuple[list[Any], list[Any]]:
        try:
            return super().receive_headers(*args, **kwargs)
        except h2.exceptions.StreamClosedError:
            raise  # h2 answers frames on a closed stream itself
        except h2.exceptions.ProtocolError as exc:
            return [], [Malformed(self.stream_id, _why(exc), 0)]

    def receive_data(self, data: bytes, end_stream: bool, flow_control_len: int
                     ) -> tuple[list[Any], list[Any]]:
        try:
            return super().receive_data(data, end_stream, flow_control_len)
        except h2.exceptions.StreamClosedError:
            raise
        except h2.exceptions.ProtocolError as exc:
            return [], [Malformed(self.stream_id, _why(exc), flow_control_len)]


class GracefulConnection(h2.connection.H2Connection):
    """``H2Connection`` that, after a GOAWAY with NO_ERROR, still reads the streams the
    server will answer (see the module docstring), and whose streams are ``_OneStream``.
    h2 dispatches frames through a table of bound methods built in ``__init__``, so
    overriding the GOAWAY handler is enough."""

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        pending = bytes(self._data_to_send)
        frames, events = super()._receive_goaway_frame(frame)
        if frame.error_code == h2.errors.ErrorCodes.NO_ERROR:
            self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            # h2 also dropped what was queued and not yet written: a request's HEADERS or
            # body DATA that another task had still to write. The streams the server will
            # answer need theirs; those above its last stream are not sent (§6.8:
            # "Receivers of a GOAWAY frame MUST NOT open additional streams").
            self._data_to_send += frames_up_to(pending, frame.last_stream_id)
        return frames, events

    def _begin_new_stream(self, stream_id: int, allowed_ids: Any) -> h2.stream.H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = _OneStream
        return stream
