"""Lenient HTTP parser front-end: how the parser-level defects are simulated. Sans-IO.

h11 and wsproto are strict and cannot be told to accept what the RFCs forbid. A real server
with a lenient hand-written parser can, so the defects that need one put a small rewriting
stage in front of the strict parser, which then sees bytes that mean what the lenient parser
would have understood:

* ``HeadRewriter`` holds bytes back until a whole request head has arrived and rewrites its
  framing headers: several different ``Content-Length`` values collapse to the first one
  (``accept-conflicting-content-length``); a ``Transfer-Encoding`` next to a
  ``Content-Length`` is dropped so that the length wins (``cl-te-desync``). Everything after
  the head passes through untouched; ``Name : value`` loses its space before the colon
  (``accept-space-before-colon``); the caller hands the rewriter the next head's bytes at
  the start of every request cycle.
* ``ws-accept-unmasked`` works the same way on WebSocket frames; it lives with the frame
  scanner in ``wsframes.py``.

Nothing here runs unless one of those defects is switched on.
"""

from __future__ import annotations

import re

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")
#: Bytes that can begin a request (after optional empty lines): a method starts with a letter.
#: Anything else (a TLS ClientHello, binary junk) goes to the strict parser at once, so that
#: the front-end does not turn an immediate 400 into a wait for a head that never ends.
_PLAUSIBLE_START = re.compile(rb"(?:\r?\n)*(?:[A-Za-z]|\r?$)")


def _header_name(line: bytes) -> bytes:
    """The field name, lower-cased, exactly as sent: ``Name :`` stays malformed for h11."""
    return line.split(b":", 1)[0].lower()


_SPACE_BEFORE_COLON = re.compile(rb"^([^\s:]+)[ \t]+:")


def rewrite_head(
    head: bytes,
    *,
    first_length_wins: bool,
    length_beats_chunked: bool,
    space_before_colon: bool = False,
) -> bytes:
    """Rewrite the framing headers of one request head (request line and headers, no body).

    Args:
        head: bytes up to and including the blank line that ends the head.
        first_length_wins: keep only the first of several Content-Length values.
        length_beats_chunked: drop Transfer-Encoding when a Content-Length is present.
        space_before_colon: accept ``Name : value`` by dropping the whitespace (RFC 9112
            §5.1 says a server MUST reject such a request with 400).

    Returns:
        The head to give the strict parser; unchanged when no rule applies.
    """
    lines = _LINE.findall(head)
    if space_before_colon:
        lines = lines[:1] + [_SPACE_BEFORE_COLON.sub(rb"\1:", line) for line in lines[1:]]
        head = b"".join(lines)
    lengths = [line for line in lines[1:] if _header_name(line) == b"content-length"]
    if not lengths:
        return head
    out = lines
    if length_beats_chunked:
        out = [line for line in out if _header_name(line) != b"transfer-encoding"]
    if first_length_wins:
        values = [v.strip() for line in lengths for v in line.split(b":", 1)[1].split(b",")]
        if len(set(values)) > 1:
            first = lengths[0]
            out = [line for line in out if line is first or line not in lengths]
            out[out.index(first)] = b"Content-Length: " + values[0] + b"\r\n"
    return b"".join(out)


class HeadRewriter:
    """Buffers the start of a request cycle until its head is complete, then rewrites it."""

    def __init__(
        self,
        *,
        first_length_wins: bool,
        length_beats_chunked: bool,
        max_head: int,
        space_before_colon: bool = False,
    ) -> None:
        self._rules = {
            "first_length_wins": first_length_wins,
            "length_beats_chunked": length_beats_chunked,
            "space_before_colon": space_before_colon,
        }
        self._max_head = max_head
        self._pending = bytearray()
        self._passing = False

    def start_cycle(self) -> None:
        """The next bytes fed begin a new request head."""
        self._passing = False
        self._pending.clear()

    def feed(self, data: bytes) -> bytes:
        """Bytes for the strict parser; empty while a head is still incomplete.

        An over-long head is released unchanged so that the strict parser rejects it (431).
        """
        if self._passing:
            return data
        self._pending += data
        match = _HEAD_END.search(self._pending)
        if match is None:
            plausible = _PLAUSIBLE_START.match(self._pending) is not None
            if plausible and len(self._pending) <= self._max_head:
                return b""
            out = bytes(self._pending)
        else:
            head = bytes(self._pending[: match.end()])
            out = rewrite_head(head, **self._rules) + self._pending[match.end() :]
        self._passing = True
        self._pending.clear()
        return bytes(out)

    def has_pending(self) -> bool:
        """Whether part of a head is held back (so an EOF now cuts a request short)."""
        return bool(self._pending)

    def flush(self) -> bytes:
        """Release held-back bytes unchanged, e.g. at EOF so the strict parser sees them."""
        out = bytes(self._pending)
        self._pending.clear()
        self._passing = True
        return out
