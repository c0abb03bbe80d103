"""Reading raw response bytes leniently, for the response rules.

How this works: ``parse_exchange(method, received, closed=...)`` walks a buffer that holds
everything one request got back: each response head (interim 1xx heads, then the final one)
is split into lines and fields *without refusing anything*, because a field-syntax fault is
a finding of ``protocols.response_rules`` here, not a reason to stop reading (the strict
client parser, ``protocols.http1``, refuses such heads). After the final head the body is
framed as a client would frame it (RFC 9112 §6.3: HEAD/1xx/204/304 end at the head,
chunked, Content-Length, or until close), which tells how many bytes arrived past the
message's end (``BodyFacts.excess``) and whether a Content-Length body was cut short by a
close. ``request_facts(sent)`` reads the method and version from the request line.

Never raises on any input (fuzz-tested): garbage yields fewer or no heads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.response_rules import BodyFacts, RequestFacts, ResponseFacts, excess_bytes


def _values(headers: tuple[tuple[bytes, bytes], ...], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
#                          "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field-value characters are VCHAR / obs-text / SP / HTAB.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?:[ \t]|$)")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) \S+ HTTP/(\d\.\d)\r?$")
#: The longest head ``parse_exchange`` reads.
HEAD_LIMIT = 65536
#: Interim heads read before giving up on a buffer.
MAX_HEADS = 8


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One response head found in a raw buffer, with what followed it."""

    head: ResponseFacts
    body: BodyFacts | None
    #: The head's bytes, for examples.
    raw_head: bytes


def request_facts(sent: bytes) -> RequestFacts | None:
    """Method and version from the request line of ``sent`` (None if it has none)."""
    line = sent.split(b"\n", 1)[0]
    match = _REQUEST_LINE.match(line)
    if match is None:
        return None
    version = match.group(2)
    head = sent.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    options = {o.strip().lower() for field in head.split(b"\n")[1:]
               if field.lower().startswith(b"connection:")
               for o in field.split(b":", 1)[1].split(b",")}
    persistent = (b"close" not in options
                  and (version != b"1.0" or b"keep-alive" in options))
    return RequestFacts(match.group(1).decode("ascii"), version, persistent)


def _find_head_end(data: bytes, start: int) -> tuple[int, int]:
    """(end of the last head line incl. its LF, offset after the blank line) or (-1, -1)."""
    stop = min(len(data), start + HEAD_LIMIT)
    probe = data.find(b"\n", start, stop)
    while probe >= 0:
        rest = data[probe + 1: probe + 3]
        if rest[:1] == b"\n":
            return probe + 1, probe + 2
        if rest == b"\r\n":
            return probe + 1, probe + 3
        probe = data.find(b"\n", probe + 1, stop)
    return -1, -1


def parse_head(block: bytes) -> ResponseFacts | None:
    """A head ``block`` (status line through its last field line's LF), read leniently:
    syntax faults are recorded in ``syntax`` rather than refused. None: no status line."""
    syntax: set[str] = set()
    body = block[:-1] if block.endswith(b"\n") else block
    raw_lines = body.split(b"\n")
    lines: list[bytes] = []
    for raw in raw_lines:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        else:
            syntax.add("crlf_line_endings")
        if b"\r" in raw:
            syntax.add("no_bare_cr")
        lines.append(raw)
    match = _STATUS_LINE.match(lines[0].replace(b"\r", b""))
    if match is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            syntax.add("no_obs_fold")
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, (value + b" " + line.strip(b" \t\r")).strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            syntax.add("field_name_token")
            continue
        if name != name.rstrip(b" \t"):
            syntax.add("no_whitespace_before_colon")
            name = name.rstrip(b" \t")
        if _TOKEN.fullmatch(name) is None:
            syntax.add("field_name_token")
        if _BAD_VALUE.search(value.replace(b"\r", b"")) is not None:
            syntax.add("field_value_chars")
        headers.append((name.lower(), value.strip(b" \t\r")))
    return ResponseFacts(int(match.group(3)), match.group(1) + b"." + match.group(2),
                         tuple(headers), frozenset(syntax))


def _keep_alive(head: ResponseFacts) -> bool:
    options = {o.strip().lower() for v in _values(head.headers, b"connection")
               for o in v.split(b",")}
    if b"close" in options:
        return False
    return head.version != b"1.0" or b"keep-alive" in options


def _chunked_length(data: bytes, start: int) -> int | None:
    """Offset just past a complete chunked body starting at ``start``, or None."""
    pos = start
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            return None
        size_text = data[pos:end].split(b";", 1)[0].strip(b" \t\r")
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF") or len(size_text) > 16:
            return None
        size = int(size_text, 16)
        pos = end + 1
        if size == 0:
            while True:  # trailer section up to the empty line
                end = data.find(b"\n", pos)
                if end < 0:
                    return None
                line, pos = data[pos:end], end + 1
                if line in (b"", b"\r"):
                    return pos
        pos += size
        if data[pos:pos + 2] == b"\r\n":
            pos += 2
        elif data[pos:pos + 1] == b"\n":
            pos += 1
        else:
            return None


def _excess(data: bytes, start: int) -> int:
    return excess_bytes(data[start:])


def parse_exchange(method: str, received: bytes, *, closed: bool,
                   stream: bool = False, persistent: bool = True) -> list[RawResponse]:
    """Every response head in ``received`` (interim heads, then the final one).

    Args:
        method: the request's method (HEAD and CONNECT change framing).
        received: everything read for one request (and any grace period after it).
        closed: the server closed the connection after these bytes.
        stream: the body is a stream or another protocol's frames (SSE, WebSocket): judge
            the head only.
        persistent: the request asked for a persistent connection (``RequestFacts``); a
            response to one that did not is never read on a reused connection.
    """
    found: list[RawResponse] = []
    pos = 0
    while len(found) < MAX_HEADS and pos < len(received):
        block_end, body_start = _find_head_end(received, pos)
        if block_end < 0:
            break
        raw_head = received[pos:block_end]
        head = parse_head(raw_head)
        if head is None:
            break
        pos = body_start
        if 100 <= head.status < 200 and head.status != 101:
            found.append(RawResponse(head, None, raw_head))
            continue
        found.append(RawResponse(head, None if stream or head.status == 101 else
                                 _body_facts(method, head, received, body_start, closed,
                                             persistent),
                                 raw_head))
        break
    return found


def _body_facts(method: str, head: ResponseFacts, data: bytes, start: int,
                closed: bool, persistent: bool = True) -> BodyFacts | None:
    reused = persistent and _keep_alive(head) and not closed
    if method == "HEAD" or head.status in (204, 304):
        return BodyFacts(0, _excess(data, start), reused)
    te = _values(head.headers, b"transfer-encoding")
    if te:
        codings = [c.strip().lower() for v in te for c in v.split(b",")]
        if codings and codings[-1] == b"chunked":
            end = _chunked_length(data, start)
            if end is not None:
                return BodyFacts(end - start, _excess(data, end), reused)
        return None
    cl = {v.strip() for value in _values(head.headers, b"content-length")
          for v in value.split(b",")}
    if len(cl) != 1:
        return None
    (text,) = cl
    if not text.isdigit() or len(text) > 18:
        return None
    length, available = int(text), len(data) - start
    if available < length:  # still arriving unless the server closed
        return BodyFacts(available, 0, reused, truncated=True) if closed else None
    return BodyFacts(length, _excess(data, start + length), reused)
