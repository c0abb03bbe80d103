"""Judging the pre-flight answer to one plain ``GET``: answered, or broken and how.

How this works: before any load, the coordinator connects to the target, sends one
``GET <health path>`` with ``Connection: close`` and feeds every byte that comes back into
``AnswerWatcher.feed``. The watcher follows the response just far enough to know where it
ends (head, then the body framed as RFC 9112 §6.3 says) and keeps no body bytes, only counts
them, so memory is bounded by ``head_cap`` plus ``evidence_cap`` whatever the server sends.
``finish(ending)`` turns what was seen and how the read stopped into a ``Finding``.

Why this exists: a server that accepts TCP but answers garbage, nothing, or a response that
never ends is *up and broken*. That is a verdict about the target (exit 1, a HIGH invariant
named for what it did), not an infrastructure failure like "nothing listens" (exit 3). Any
complete, well-formed response passes, whatever its status: a 404 or 500 on the health
path is a well-formed answer, and the run goes on as before.

The head is read with ``protocols.response_head`` (lenient where RFC 9112 lets a recipient
be: bare LF line ends, a missing reason phrase). Body framing, RFC 9112 §6.3:
  1. 1xx (other than 101), 204 and 304 responses end at the head (interim 1xx are skipped);
  4. "If a Transfer-Encoding header field is present in a response and the chunked transfer
     coding is not the final encoding, the message body length is determined by reading the
     connection until it is closed by the server";
  5. "If a message is received without Transfer-Encoding and with an invalid Content-Length
     header field, then the message framing is invalid" (garbage here);
  8. otherwise, no Content-Length: the body runs until the server closes.
A body over ``body_cap`` is endless unless its length was declared (a big page is not a
broken one); a ``text/event-stream`` answer is judged at its head (it never ends by design).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from protocols.response_head import HeadError, ResponseHead, parse_response_head

#: Largest response head accepted before the answer counts as endless headers.
HEAD_CAP = 64 * 1024
#: Body bytes counted (never kept) before the answer counts as endless.
BODY_CAP = 8 * 1024 * 1024
#: Bytes of the answer kept as evidence for the results.
EVIDENCE_CAP = 4096
#: Longest chunk-size line (with extensions) or trailer section accepted.
_LINE_CAP = 4096

# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then [ chunk-ext ] (anything after ";" here).
_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?")


class Behaviour(enum.Enum):
    """What the target did with one plain GET."""

    #: A complete, well-formed HTTP/1.x response (any status).
    ANSWERED = "answered"
    #: Bytes that are not an HTTP/1.x response, or a response cut off by a close or reset.
    GARBAGE = "garbage"
    #: The connection was accepted and nothing came back: no byte by the deadline, or a
    #: close or reset before the first byte.
    SILENT = "silent"
    #: The answer never ended: head or body over its cap, or still unfinished at the deadline.
    ENDLESS = "endless"


class Ending(enum.Enum):
    """How the read stopped when the watcher had not decided by itself."""

    EOF = "eof"
    RESET = "reset"
    DEADLINE = "deadline"


@dataclass(frozen=True)
class Finding:
    behaviour: Behaviour
    detail: str
    #: Status code of the final response head, when one was parsed.
    status: int | None
    #: Every byte received (the evidence keeps only the first ``EVIDENCE_CAP``).
    received: int
    evidence: bytes


class AnswerWatcher:
    """Incremental observer of one response; ``decided`` says the read may stop."""

    def __init__(self, *, head_cap: int = HEAD_CAP, body_cap: int = BODY_CAP,
                 evidence_cap: int = EVIDENCE_CAP) -> None:
        self.head_cap = head_cap
        self.body_cap = body_cap
        self.evidence_cap = evidence_cap
        self.received = 0
        self._evidence = bytearray()
        self._buf = bytearray()
        self._head: ResponseHead | None = None
        self._framing = ""  # "length" | "chunked" | "close" once the head is read
        self._remaining = 0  # body bytes left in the fixed body or the current chunk
        self._chunk_phase = "size"  # "size" | "data" | "crlf" | "trailers"
        self._body = 0
        self._trailers = 0
        self._verdict: tuple[Behaviour, str] | None = None

    @property
    def decided(self) -> bool:
        return self._verdict is not None

    def feed(self, data: bytes) -> None:
        """Take the next bytes (any split); never raises on server input."""
        if not data or self._verdict is not None:
            return
        self.received += len(data)
        room = self.evidence_cap - len(self._evidence)
        if room > 0:
            self._evidence += data[:room]
        self._buf += data
        self._advance()

    def finish(self, ending: Ending, waited_s: float) -> Finding:
        """Judge what was seen, given how the read stopped after ``waited_s`` seconds."""
        if self._verdict is None:
            self._verdict = self._unfinished(ending, waited_s)
        behaviour, detail = self._verdict
        status = self._head.status if self._head is not None else None
        return Finding(behaviour, detail, status, self.received, bytes(self._evidence))

    # -- the response, step by step -------------------------------------------------------

    def _decide(self, behaviour: Behaviour, detail: str) -> None:
        self._verdict = (behaviour, detail)
        self._buf.clear()

    def _advance(self) -> None:
        while self._verdict is None:
            if self._head is None:
                if not self._read_head():
                    return
            elif self._framing == "length":
                self._read_fixed()
                return
            elif self._framing == "close":
                self._count_body(len(self._buf))
                self._buf.clear()
                return
            elif not self._read_chunked():
                return

    def _read_head(self) -> bool:
        head = parse_response_head(bytes(self._buf), self.head_cap)
        if head is None:
            return False
        if isinstance(head, HeadError):
            if head.reason.startswith("response head exceeds"):
                self._decide(Behaviour.ENDLESS, f"response head over {self.head_cap} bytes "
                             "without its closing blank line (endless header lines)")
            else:
                self._decide(Behaviour.GARBAGE, head.reason)
            return False
        del self._buf[: head.length]
        if 100 <= head.status < 200 and head.status != 101:
            return True  # interim response: the final one follows
        self._head = head
        self._frame(head)
        return True

    def _frame(self, head: ResponseHead) -> None:
        if head.status in (101, 204, 304):
            self._decide(Behaviour.ANSWERED, f"answered {head.status}")
            return
        media = (head.get(b"content-type") or b"").split(b";")[0].strip().lower()
        if media == b"text/event-stream":
            # An event stream never ends by design (WHATWG HTML "Server-sent events"): a
            # well-formed head is the whole answer a health GET can expect.
            self._decide(Behaviour.ANSWERED, f"answered {head.status} (an event stream)")
            return
        codings = [c.strip().lower() for v in head.get_all(b"transfer-encoding")
                   for c in v.split(b",") if c.strip()]
        if codings:
            self._framing = "chunked" if codings[-1] == b"chunked" else "close"
            return
        lengths = {v.strip() for value in head.get_all(b"content-length")
                   for v in value.split(b",")}
        if not lengths:
            self._framing = "close"
            return
        if len(lengths) != 1 or not next(iter(lengths)).isdigit() or len(next(iter(lengths))) > 18:
            self._decide(Behaviour.GARBAGE, "invalid Content-Length "
                         f"{b', '.join(sorted(lengths))[:80]!r} (RFC 9112 §6.3: the framing is "
                         "invalid)")
            return
        self._framing = "length"
        self._remaining = int(next(iter(lengths)))
        if self._remaining == 0:
            self._done()

    def _read_fixed(self) -> None:
        take = min(self._remaining, len(self._buf))
        self._remaining -= take
        self._body += take
        del self._buf[:take]
        if self._remaining == 0:
            self._done()
        elif self._body >= self.body_cap:
            # A declared, finite length still arriving: a big answer, not a broken one.
            assert self._head is not None
            self._decide(Behaviour.ANSWERED, f"answered {self._head.status} (a "
                         f"{self._body + self._remaining}-byte body, read to {self._body})")

    def _read_chunked(self) -> bool:
        """One step of chunked decoding; False when more bytes are needed."""
        buf = self._buf
        if self._chunk_phase == "data":
            take = min(self._remaining, len(buf))
            self._remaining -= take
            del buf[:take]
            self._count_body(take)
            if self._remaining:
                return False
            self._chunk_phase = "crlf"
            return True
        newline = buf.find(b"\n")
        if newline < 0:
            if len(buf) > _LINE_CAP:
                self._decide(Behaviour.GARBAGE, f"chunk line over {_LINE_CAP} bytes")
            return False
        line = bytes(buf[:newline]).rstrip(b"\r")
        del buf[: newline + 1]
        if self._chunk_phase == "trailers":
            if not line:
                self._done()
                return False
            self._trailers += newline + 1
            if self._trailers > _LINE_CAP:
                self._decide(Behaviour.ENDLESS, f"trailer section over {_LINE_CAP} bytes")
            return True
        if self._chunk_phase == "crlf":
            if line:
                self._decide(Behaviour.GARBAGE, f"chunk data not followed by CRLF: {line[:40]!r}")
                return False
            self._chunk_phase = "size"
            return True
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            self._decide(Behaviour.GARBAGE, f"bad chunk-size line {line[:40]!r} (RFC 9112 §7.1)")
            return False
        size = int(match.group(1), 16)
        if size == 0:
            self._chunk_phase = "trailers"
            return True
        self._remaining = size
        self._chunk_phase = "data"
        return True

    def _count_body(self, n: int) -> None:
        self._body += n
        if self._body > self.body_cap and self._verdict is None:
            self._decide(Behaviour.ENDLESS, f"body over {self.body_cap} bytes and still going")

    def _done(self) -> None:
        assert self._head is not None
        self._decide(Behaviour.ANSWERED, f"answered {self._head.status} "
                     f"({self._body} body bytes)")

    def _unfinished(self, ending: Ending, waited_s: float) -> tuple[Behaviour, str]:
        """The read stopped before the response was complete: which kind of broken."""
        how = {Ending.EOF: "closed the connection", Ending.RESET: "reset the connection",
               Ending.DEADLINE: f"was still open after {waited_s:.1f} s"}[ending]
        if self.received == 0:
            if ending is Ending.DEADLINE:
                return Behaviour.SILENT, ("accepted the connection but sent nothing in "
                                          f"{waited_s:.1f} s")
            return Behaviour.SILENT, f"{how} without sending a byte"
        if self._head is None:
            if ending is Ending.DEADLINE:
                return Behaviour.ENDLESS, (f"response head unfinished after {waited_s:.1f} s "
                                           f"({self.received} bytes, no closing blank line)")
            return Behaviour.GARBAGE, f"{how} in the middle of the response head (truncated)"
        if self._framing == "close" and ending is not Ending.DEADLINE:
            return Behaviour.ANSWERED, (f"answered {self._head.status} "
                                        f"({self._body} body bytes, ended by close)")
        if ending is Ending.DEADLINE:
            return Behaviour.ENDLESS, (f"{self._head.status} response body unfinished after "
                                       f"{waited_s:.1f} s ({self._body} body bytes so far)")
        return Behaviour.GARBAGE, (f"{how} after {self._body} body bytes of an unfinished "
                                   f"{self._framing} body (truncated response)")
