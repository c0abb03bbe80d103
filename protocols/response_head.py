"""Reading an HTTP/1.x response head from raw bytes, for the torture slices (ws, sse, h2c).

How this works: ``parse_response_head(buf)`` looks at everything received so far and returns
``None`` while the head is incomplete, a ``ResponseHead`` once the blank line that ends it has
arrived, or a ``HeadError`` when the bytes cannot be an HTTP/1.x response head (garbage) or
the head outgrows its cap. It decides "garbage" as early as it can: a buffer that is not a
prefix of ``HTTP/`` is garbage after five bytes, so a server that answers an h2c upgrade with
raw HTTP/2 frames is classified at once rather than at the deadline.

Grammar (RFC 9112 §4 and §5.1), with the departures a client reading hostile servers needs:

    status-line = HTTP-version SP status-code SP [ reason-phrase ]
    field-line  = field-name ":" OWS field-value OWS

* A bare LF ends a line: "a recipient MAY recognize a single LF as a line terminator and
  ignore any preceding CR" (RFC 9112 §2.2).
* The SP before an empty reason phrase may be missing (common in the wild).
* Obsolete line folding and whitespace before the colon make the head malformed (RFC 9112
  §5.1: "No whitespace is allowed between the field name and colon").

The body is not this module's business: callers that need it use h11 or their own framing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Largest response head we read before calling the server hostile.
HEAD_CAP = 16384

_PREFIX = b"HTTP/"
# RFC 9112 §4: HTTP-version SP status-code SP [ reason-phrase ]  (SP may be absent, see above)
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
# RFC 9110 §5.1: field-name = token
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class ResponseHead:
    """A parsed response head; header names are lower-cased, values stripped of OWS."""

    version: tuple[int, int]
    status: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    #: Bytes the head took in the buffer, blank line included; what follows is body/frames.
    length: int

    def get(self, name: bytes) -> bytes | None:
        """The first value of ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def has_token(self, name: bytes, token: bytes) -> bool:
        """Whether any ``name`` header lists ``token`` (comma-separated, case-insensitive)."""
        token = token.lower()
        for value in self.get_all(name):
            if any(part.strip().lower() == token for part in value.split(b",")):
                return True
        return False


@dataclass(frozen=True)
class HeadError:
    """The bytes are not (or no longer) a plausible response head."""

    reason: str


def parse_response_head(buf: bytes, cap: int = HEAD_CAP) -> ResponseHead | HeadError | None:
    """Parse the response head at the start of ``buf``.

    Returns:
        ``None`` when more bytes are needed, a ``ResponseHead`` when complete, a
        ``HeadError`` when the bytes cannot be a response head. Never raises on input.
    """
    probe = buf[: len(_PREFIX)]
    if not _PREFIX.startswith(probe):
        return HeadError(f"not an HTTP/1.x response: {bytes(buf[:16])!r}")
    end = _END.search(buf, 0, cap + 4)
    if end is None:
        if len(buf) > cap:
            return HeadError(f"response head exceeds {cap} bytes")
        first_line_end = buf.find(b"\n")
        if first_line_end >= 0 and not _STATUS_LINE.fullmatch(buf[:first_line_end].rstrip(b"\r")):
            return HeadError(f"bad status line: {bytes(buf[:first_line_end][:80])!r}")
        return None
    return _parse_head(buf[: end.start()], end.end())


def _parse_head(head: bytes, length: int) -> ResponseHead | HeadError:
    lines = [line[:-1] if line.endswith(b"\r") else line for line in head.split(b"\n")]
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        return HeadError(f"bad status line: {lines[0][:80]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            return HeadError(f"bad header line: {line[:80]!r}")
        if b"\r" in value or b"\0" in value:
            return HeadError(f"bad header value: {line[:80]!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return ResponseHead(
        version=(int(match.group(1)), int(match.group(2))),
        status=int(match.group(3)),
        reason=match.group(4) or b"",
        headers=tuple(headers),
        length=length,
    )
