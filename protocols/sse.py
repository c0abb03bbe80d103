"""An incremental, capped parser for ``text/event-stream`` (WHATWG HTML, "Server-sent events").

How this works: ``SseParser.feed(data)`` takes body bytes in any split and returns what they
complete, in order: ``SseEvent`` (dispatched on a blank line), ``SseComment`` (a line starting
with a colon; servers use them as keep-alives), ``SseRetry`` (a valid ``retry`` field) and, at
most once, ``SseOverflow`` when a cap is exceeded (the parser then stops: a hostile server
cannot make us buffer without bound). The steps follow "9.2.6 Interpreting an event stream":

* Decode as UTF-8 with replacement (errors never raise); one leading U+FEFF BOM is ignored.
* Lines end with CRLF, a lone LF or a lone CR. A CR at the end of one chunk followed by LF at
  the start of the next is one line end, so the decoder holds a trailing CR back.
* An empty line dispatches; ``:`` starts a comment; otherwise the field name runs to the first
  colon and the value follows it, minus one leading space; no colon means an empty value.
* ``event`` sets the event type buffer; ``data`` appends the value and a LF to the data buffer;
  ``id`` sets the last event ID buffer unless the value contains U+0000 NULL; ``retry`` sets
  the reconnection time if the value is only ASCII digits; any other field is ignored.
* Dispatch: the last event ID becomes the buffer's value (it persists across events); if the
  data buffer is empty, the data and type buffers are reset and nothing fires; otherwise one
  trailing LF is removed and an event fires with type ``message`` if none was set.
* At the end of the stream an incomplete event is discarded (``close()``).

``SseKillStage`` names the moments at which the sse slice walks away from a subscription.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

#: Longest line we hold while waiting for its end (characters).
DEFAULT_MAX_LINE = 64 * 1024
#: Largest data buffer of one event (characters).
DEFAULT_MAX_EVENT = 1024 * 1024

_BOM = "\ufeff"


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event."""

    type: str
    data: str
    #: The last event ID string at dispatch time ("" until an ``id`` field set one).
    last_event_id: str


@dataclass(frozen=True)
class SseComment:
    """A comment line (without its leading colon)."""

    text: str


@dataclass(frozen=True)
class SseRetry:
    """A valid ``retry`` field: the reconnection time in milliseconds."""

    milliseconds: int


@dataclass(frozen=True)
class SseOverflow:
    """A cap was exceeded; the parser stopped."""

    reason: str


SseItem = SseEvent | SseComment | SseRetry | SseOverflow


class SseKillStage(enum.Enum):
    """When the sse slice abandons a subscription."""

    #: The request is sent; we leave before any response byte arrives.
    BEFORE_HEADERS = "before_headers"
    #: Right after the response head (200, text/event-stream) arrived.
    AFTER_HEADERS = "after_headers"
    #: As soon as stream bytes arrive, while an event may still be in flight.
    MID_EVENT = "mid_event"
    #: After holding the subscription for a while (events flowing or idle).
    IDLE = "idle"


class SseParser:
    """WHATWG event-stream interpretation, incremental and capped; see the module docstring."""

    def __init__(
        self, *, max_line: int = DEFAULT_MAX_LINE, max_event: int = DEFAULT_MAX_EVENT
    ) -> None:
        self.max_line = max_line
        self.max_event = max_event
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []  # text of the current, unfinished line
        self._pending_len = 0
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._started = False  # BOM check done
        self._data: list[str] = []
        self._data_size = 0
        self._type = ""
        self._id_buffer = ""
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.stopped: SseOverflow | None = None
        #: Events dispatched so far.
        self.events = 0

    @property
    def mid_event(self) -> bool:
        """True while a line or an event is partly received (nothing dispatched for it yet)."""
        return bool(self._parts or self._data or self._type)

    def feed(self, data: bytes) -> list[SseItem]:
        """Parse the next body bytes; never raises."""
        if self.stopped is not None:
            return []
        return self._lines(self._decoder.decode(data))

    def close(self) -> list[SseItem]:
        """End of stream: flush the decoder; a pending, undispatched event is discarded."""
        if self.stopped is not None:
            return []
        out = self._lines(self._decoder.decode(b"", final=True))
        self._parts, self._pending_len = [], 0
        self._data, self._data_size, self._type = [], 0, ""
        return out

    def _lines(self, text: str) -> list[SseItem]:
        if not self._started and text:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        out: list[SseItem] = []
        if "\r" not in text and "\n" not in text:
            if text:  # no line end: just hold it (a list, so trickled bytes stay linear)
                self._parts.append(text)
                self._pending_len += len(text)
            return self._check_line_cap(out)
        buf = "".join(self._parts) + text
        self._parts, self._pending_len = [], 0
        start = 0
        size = len(buf)
        while start < size:
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            if cr < 0 and lf < 0:
                break
            end = lf if cr < 0 else cr if lf < 0 else min(cr, lf)
            line = buf[start:end]
            if buf[end] == "\r":
                if end + 1 < size:
                    start = end + 2 if buf[end + 1] == "\n" else end + 1
                else:
                    start = end + 1
                    self._skip_lf = True
            else:
                start = end + 1
            item = self._line(line)
            if item is not None:
                out.append(item)
                if isinstance(item, SseOverflow):
                    self.stopped = item
                    return out
        if start < size:
            self._parts = [buf[start:]]
            self._pending_len = size - start
        return self._check_line_cap(out)

    def _check_line_cap(self, out: list[SseItem]) -> list[SseItem]:
        if self._pending_len > self.max_line:
            self.stopped = SseOverflow(f"line longer than {self.max_line} characters")
            out.append(self.stopped)
        return out

    def _line(self, line: str) -> SseItem | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return SseComment(line[1:])
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self.max_event:
                return SseOverflow(f"event data longer than {self.max_event} characters")
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry_ms = int(value)
                return SseRetry(self.retry_ms)
        return None

    def _dispatch(self) -> SseEvent | None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._type = ""
            return None
        data = "\n".join(self._data)
        event = SseEvent(type=self._type or "message", data=data, last_event_id=self.last_event_id)
        self._data, self._data_size, self._type = [], 0, ""
        self.events += 1
        return event
