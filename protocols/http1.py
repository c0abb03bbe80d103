"""A fast, strict, bounded HTTP/1.1 client: request builder and incremental response parser.

How this works: ``build_request`` formats one request from validated parts (it refuses
CR/LF and other injection: that would be *our* bug, so it raises ``RequestBuildError``, a
``HarnessError``). ``ResponseParser`` is a sans-IO state machine: the caller registers the
method of each request it sends with ``expect``, feeds whatever the socket returned with
``feed`` / ``feed_eof`` and pulls complete ``Response`` values out of ``next_response``.

The parser is a loop over *readers*, one per state (head, fixed-length body, chunk size,
chunk data, chunk CRLF, trailers, read-until-close, switched protocols). A reader returns a
``Response``, ``None`` (needs more bytes) or ``_AGAIN`` (it moved to another state; run the
next reader). Body bytes are consumed as soon as they arrive, so between calls the buffer
holds at most a partial head (<= ``max_header_bytes``) or one partial chunk-size line, plus
the last read: feed, then drain ``next_response`` until ``None``, and memory stays bounded by
the caps plus one read whatever the server sends.

Speed: the head is found with ``bytes.find`` (resuming where the last scan stopped), checked
for forbidden control bytes with one regex search over the whole block, split once, and each
field line is cut with ``partition``; a field name is a token iff deleting every tchar with
``translate`` leaves nothing. No per-byte Python loops, no per-line regex. Servers repeat
themselves (a route is answered with the same head, but for its Date, a second at a time),
and parsing is a pure function of the bytes, so results are memoised, bounded: a head seen
before is one dict lookup, framing fields included; a response whose head and body repeat
the previous one built from that head is that (frozen) response again; and an idle parser
fed exactly the bytes of its last response gets that response back after one comparison.

Errors the server causes are ``ResponseError`` subclasses (``TargetError``):
``ResponseProtocolError`` (malformed: its ``ResponseIncomplete`` subclass means the
connection closed mid-message) and ``ResponseTooLarge`` (a cap was hit). After raising, the
parser is dead: every later ``next_response`` re-raises the same error.

Deliberate departures, each from RFC 9112:
* §2.2 allows a recipient to accept a bare LF as line terminator: we do (as h11 does), but a
  bare CR anywhere in the head is an error.
* §5.2 obs-fold is rejected outright (a user agent MAY replace it; we report it).
* §6.1: Transfer-Encoding in an HTTP/1.0 response and Transfer-Encoding together with
  Content-Length are both treated as faulty framing (errors), since §6.3 says they "ought to
  be handled as an error" and a validator should say so.
* §4: status codes outside 100..599 are malformed (RFC 9110 §15).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.errors import HarnessError, TargetError

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#                          "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TCHAR_STR = _TCHAR.decode()
_HEXDIG = b"0123456789abcdefABCDEF"
# RFC 9110 §5.5: field-value = *field-content, built from VCHAR / obs-text / SP / HTAB.
# In the head, after CRLF -> LF normalisation, every other control byte is forbidden.
_FORBIDDEN_IN_HEAD = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
# RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#                  chunk-ext-val = token / quoted-string
_CHUNK_EXT = re.compile(
    rb"""(?:[ \t]*;[ \t]*[-!#$%&'*+.^_`|~0-9A-Za-z]+
         (?:[ \t]*=[ \t]*(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\.)*"))?
        )*""",
    re.VERBOSE,
)
_NO_BODY_STATUS = frozenset({204, 304})
_FRAMING_FIELDS = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_HEADERS = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
#: A chunk-size line (size + extensions) longer than this is an attack, not a message.
MAX_CHUNK_LINE = 4096
#: Interim (1xx) responses tolerated before one final response.
MAX_INTERIM = 32


class RequestBuildError(HarnessError, ValueError):
    """A request part would inject or break framing: the caller's bug."""


class ResponseError(TargetError):
    """Base of everything the server's bytes can make the parser raise."""


class ResponseProtocolError(ResponseError):
    """The response is not valid HTTP/1.x (status line, field line, framing, chunking)."""


class ResponseIncomplete(ResponseProtocolError):
    """The connection closed before the response was complete."""


class ResponseTooLarge(ResponseError):
    """The head, the number of fields, or the body exceeded the parser's caps."""


@dataclass(frozen=True, slots=True)
class Response:
    """One final (or 101) response. Field names are lowercased; values are as received."""

    status: int
    reason: bytes
    #: b"1.1" or b"1.0" (the digits after ``HTTP/``).
    http_version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    #: Whether the connection may carry another request (RFC 9112 §9.3).
    keep_alive: bool
    #: Trailer fields of a chunked body (RFC 9112 §7.1.2), names lowercased.
    trailers: tuple[tuple[bytes, bytes], ...] = ()

    def header(self, name: str | bytes) -> bytes | None:
        """First value of field ``name`` (case-insensitive), or None."""
        key = (name.encode("ascii") if isinstance(name, str) else name).lower()
        for field_name, value in self.headers:
            if field_name == key:
                return value
        return None

    def header_values(self, name: str | bytes) -> list[bytes]:
        """Every value of field ``name`` in order received (one per field line)."""
        key = (name.encode("ascii") if isinstance(name, str) else name).lower()
        return [value for field_name, value in self.headers if field_name == key]


def build_request(
    method: str,
    target: str,
    host: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """Serialise one HTTP/1.1 request.

    Adds ``Host`` and, when a body is given (or the method is POST/PUT/PATCH, RFC 9110
    §8.6), ``Content-Length``; callers must not pass either.

    Raises:
        RequestBuildError: a method that is not a token, a target with whitespace or
            controls, a header name that is not a token, a value with CR/LF/NUL or other
            controls, a non-ASCII part, or a caller-supplied Host/Content-Length.
    """
    if not method or method.strip(_TCHAR_STR):
        raise RequestBuildError(f"method is not a token: {method!r}")
    if not target or _TARGET_FORBIDDEN.search(target):
        raise RequestBuildError(f"request target has whitespace or controls: {target!r}")
    if not host or _TARGET_FORBIDDEN.search(host):
        raise RequestBuildError(f"host has whitespace or controls: {host!r}")
    lines = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
    for name, value in headers:
        if not name or name.strip(_TCHAR_STR):
            raise RequestBuildError(f"header name is not a token: {name!r}")
        if _VALUE_FORBIDDEN.search(value):
            raise RequestBuildError(f"header {name} value has CR/LF or controls: {value!r}")
        if name.lower() in ("host", "content-length"):
            raise RequestBuildError(f"{name} is set by build_request, not by the caller")
        lines += (name, ": ", value, "\r\n")
    if body is not None:
        lines += ("Content-Length: ", str(len(body)), "\r\n\r\n")
    elif method in _BODY_METHODS:
        lines.append("Content-Length: 0\r\n\r\n")
    else:
        lines.append("\r\n")
    try:
        head = "".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise RequestBuildError("request head must be ASCII (percent-encode the target)") from None
    return head + body if body else head


class _Again:
    """Sentinel: the reader changed state; run the next one."""


_AGAIN = _Again()


class ResponseParser:
    """Incremental HTTP/1.1 response parser with hard memory caps.

    Usage (one request; the caller's cancel scope bounds the wait)::

        parser.expect("GET")
        send(build_request("GET", "/", host))
        while (response := parser.next_response()) is None:
            data = receive()
            if data:
                parser.feed(data)
            else:
                parser.feed_eof()
                if (response := parser.next_response()) is None:
                    ...  # closed cleanly before any byte of a response: the "eof" outcome
                break

    ``ResponseIncomplete`` (a subclass of ``ResponseProtocolError``) means the server closed
    part-way through a response. Several ``expect`` calls may be queued for pipelined
    requests; without one, a response is parsed as if it answered a GET.
    """

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body_bytes = max_body_bytes
        self._buffer_limit = max_header_bytes + max_body_bytes + MAX_CHUNK_LINE
        self._buf = bytearray()
        self._eof = False
        self._expected: deque[str] = deque()
        self._reader = self._read_head
        self._error: ResponseError | None = None
        self._scan_from = 0
        self._interim = 0
        # The response being assembled once its head is parsed.
        self._head: tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...], bool] | None = None
        self._body = bytearray()
        self._remaining = 0
        self._idle = self._read_head  # ``_reader`` between messages
        # (raw bytes, framing method, response) of the last response parsed from an idle
        # parser whose buffer held exactly that response: see ``next_response``.
        self._memo: tuple[bytes, str, Response] | None = None

    # -- public API ------------------------------------------------------------------------

    def expect(self, method: str) -> None:
        """Register the method of the next request sent (HEAD/CONNECT change framing)."""
        self._expected.append(method)

    def feed(self, data: bytes) -> None:
        """Append bytes received from the server (call ``next_response`` after each feed)."""
        if self._eof:
            raise HarnessError("feed() after feed_eof()")
        if self._error is not None or not data:
            return  # a dead parser keeps nothing
        self._buf += data
        if len(self._buf) > self._buffer_limit:
            # The caller fed without draining next_response(); refuse to hoard.
            self._error = ResponseTooLarge("unparsed input exceeds the parser's caps")
            self._buf.clear()

    def feed_eof(self) -> None:
        """The server closed its side: completes a close-delimited body."""
        self._eof = True

    @property
    def eof(self) -> bool:
        """Whether ``feed_eof`` was called."""
        return self._eof

    @property
    def idle(self) -> bool:
        """No partial response is buffered (between messages)."""
        return self._reader == self._read_head and not self._buf

    @property
    def switched(self) -> bool:
        """A 101 (or 2xx to CONNECT) ended HTTP on this connection."""
        return self._reader == self._read_switched

    @property
    def buffered_bytes(self) -> int:
        """Bytes held right now (unparsed input plus the partial body): bounded by the caps."""
        return len(self._buf) + len(self._body)

    @property
    def trailing_data(self) -> bytes:
        """Bytes buffered after a 101/CONNECT head (they belong to the new protocol)."""
        return bytes(self._buf)

    def next_response(self) -> Response | None:
        """The next complete response, or None when more bytes (or EOF) are needed.

        Raises:
            ResponseProtocolError: the server's bytes are not a valid response
                (``ResponseIncomplete`` when the connection closed mid-response).
            ResponseTooLarge: head, field count or body exceeded the caps.
        """
        if self._error is not None:
            raise self._error
        # A keep-alive connection to one route mostly receives the very bytes it received
        # last time (the Date field changes once a second). Parsing is a pure function of
        # (bytes, state, whether the method is HEAD or CONNECT), so when an idle parser
        # holds exactly the bytes of the last response it parsed from idle, for a method
        # that frames alike, the result is that (frozen) response again, and the buffer is
        # consumed just as the full parse would consume it.
        buf = self._buf
        memo = self._memo
        expected = self._expected
        if (memo is not None and buf == memo[0] and self._reader == self._idle
                and not self._interim and not self._eof
                and _framing_method(expected[0] if expected else "GET") == memo[1]):
            if expected:
                expected.popleft()
            buf.clear()
            return memo[2]
        raw = None
        if buf and len(buf) <= _MEMO_MAX_RAW and self._reader == self._idle and not self._eof:
            raw, method = bytes(buf), _framing_method(expected[0] if expected else "GET")
        try:
            while True:
                result = self._reader()
                if result is not _AGAIN:
                    if (raw is not None and result is not None and not buf
                            and self._reader == self._idle and not self._interim):
                        self._memo = (raw, method, result)  # type: ignore[assignment]
                    return result  # type: ignore[return-value]
        except ResponseError as exc:
            self._error = exc
            self._buf.clear()
            self._body.clear()
            raise

    # -- head ------------------------------------------------------------------------------

    def _find_section_end(self) -> tuple[int, int]:
        """(length of the section incl. its last LF, bytes to consume) or (-1, 0)."""
        buf = self._buf
        start = self._scan_from
        crlf = buf.find(b"\n\r\n", start)
        stop = crlf if crlf >= 0 else len(buf)
        lf = buf.find(b"\n\n", start, stop + 1)
        if lf >= 0:
            return lf + 1, lf + 2
        if crlf >= 0:
            return crlf + 1, crlf + 3
        self._scan_from = max(0, len(buf) - 2)
        return -1, 0

    def _read_head(self) -> Response | _Again | None:
        buf = self._buf
        if not buf:
            if self._eof and self._interim:
                raise ResponseIncomplete("connection closed between interim and final response")
            return None
        end, consumed = self._find_section_end()
        if end < 0:
            if len(buf) > self.max_header_bytes:
                raise ResponseTooLarge(f"response head exceeds {self.max_header_bytes} bytes")
            if self._eof:
                raise ResponseIncomplete("connection closed inside the response head")
            return None
        if consumed > self.max_header_bytes:
            raise ResponseTooLarge(f"response head exceeds {self.max_header_bytes} bytes")
        block = bytes(buf[:end])
        del buf[:consumed]
        self._scan_from = 0
        status, reason, version, headers, framing = _parse_head_cached(block, self.max_headers)

        if status < 200 and status != 101:
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise ResponseTooLarge(f"more than {MAX_INTERIM} interim (1xx) responses")
            return _AGAIN
        self._interim = 0
        method = self._expected.popleft() if self._expected else "GET"
        return self._frame(status, reason, version, headers, method, framing)

    def _frame(
        self,
        status: int,
        reason: bytes,
        version: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        method: str,
        framing: _Framing,
    ) -> Response | _Again:
        """Decide the body length (RFC 9112 §6.3) and keep-alive (§9.3)."""
        te, cl, keep_alive = framing.te, framing.cl, framing.keep_alive
        if status == 101 or (method == "CONNECT" and 200 <= status < 300):
            self._reader = self._read_switched
            return _new_response(status, reason, version, headers, b"", False)
        if method == "HEAD" or status in _NO_BODY_STATUS:
            return _new_response(status, reason, version, headers, b"", keep_alive)
        if te:
            if version == b"1.0":
                raise ResponseProtocolError("Transfer-Encoding in an HTTP/1.0 response")
            if cl:
                raise ResponseProtocolError("both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for v in te for c in v.split(b",")]
            if b"" in codings:
                raise ResponseProtocolError("empty transfer coding")
            chunked = codings.count(b"chunked")
            if chunked > 1:
                raise ResponseProtocolError("chunked applied more than once")
            self._head = (status, reason, version, headers, keep_alive)
            self._body = bytearray()
            if chunked and codings[-1] == b"chunked":
                self._reader = self._read_chunk_size
            else:  # chunked not final: the body runs until close (§6.3 item 4)
                self._head = (status, reason, version, headers, False)
                self._reader = self._read_until_eof
            return _AGAIN
        if cl:
            length = framing.length
            if length is None:
                length = _content_length(cl)
            if length > self.max_body_bytes:
                raise ResponseTooLarge(
                    f"Content-Length {length} exceeds {self.max_body_bytes} bytes"
                )
            buf = self._buf
            if len(buf) >= length:  # fast path: the whole body is here
                last = framing.last
                if last is not None and len(last.body) == length and buf.startswith(last.body):
                    del buf[:length]
                    return last  # same head, same body: an equal (frozen) response
                body = bytes(buf[:length])
                del buf[:length]
                response = _new_response(status, reason, version, headers, body, keep_alive)
                if length <= _MEMO_MAX_BODY:
                    framing.last = response
                return response
            self._head = (status, reason, version, headers, keep_alive)
            self._body = bytearray()
            self._remaining = length
            self._reader = self._read_fixed
            return _AGAIN
        self._head = (status, reason, version, headers, False)
        self._body = bytearray()
        self._reader = self._read_until_eof
        return _AGAIN

    def _finish(self, trailers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
        assert self._head is not None
        status, reason, version, headers, keep_alive = self._head
        response = _new_response(
            status, reason, version, headers, bytes(self._body), keep_alive, trailers
        )
        self._head = None
        self._body = bytearray()
        self._reader = self._read_head
        return response

    # -- bodies ----------------------------------------------------------------------------

    def _read_fixed(self) -> Response | None:
        buf = self._buf
        take = min(len(buf), self._remaining)
        if take:
            self._body += buf[:take]
            del buf[:take]
            self._remaining -= take
        if self._remaining == 0:
            return self._finish()
        if self._eof:
            raise ResponseIncomplete(f"connection closed with {self._remaining} body bytes due")
        return None

    def _read_until_eof(self) -> Response | None:
        buf = self._buf
        if buf:
            if len(self._body) + len(buf) > self.max_body_bytes:
                raise ResponseTooLarge(f"body exceeds {self.max_body_bytes} bytes")
            self._body += buf
            buf.clear()
        if self._eof:
            response = self._finish()
            self._reader = self._read_closed
            return response
        return None

    def _read_chunk_size(self) -> Response | _Again | None:
        buf = self._buf
        end = buf.find(b"\n", 0, MAX_CHUNK_LINE + 1)
        if end < 0:
            if len(buf) > MAX_CHUNK_LINE:
                raise ResponseProtocolError("chunk-size line too long")
            if self._eof:
                raise ResponseIncomplete("connection closed inside a chunked body")
            return None
        line = bytes(buf[: end - 1 if end and buf[end - 1] == 13 else end])
        del buf[: end + 1]
        size_part, semi, ext = line.partition(b";")
        if semi:
            size_part = size_part.rstrip(b" \t")
            if _CHUNK_EXT.fullmatch(b";" + ext) is None:
                raise ResponseProtocolError(f"malformed chunk extension: {line[:80]!r}")
        if not size_part or len(size_part) > 16 or size_part.translate(None, _HEXDIG):
            raise ResponseProtocolError(f"malformed chunk size: {line[:80]!r}")
        size = int(size_part, 16)
        if size == 0:
            self._reader = self._read_trailers
            return _AGAIN
        if len(self._body) + size > self.max_body_bytes:
            raise ResponseTooLarge(f"chunked body exceeds {self.max_body_bytes} bytes")
        self._remaining = size
        self._reader = self._read_chunk_data
        return _AGAIN

    def _read_chunk_data(self) -> _Again | None:
        buf = self._buf
        take = min(len(buf), self._remaining)
        if take:
            self._body += buf[:take]
            del buf[:take]
            self._remaining -= take
        if self._remaining == 0:
            self._reader = self._read_chunk_crlf
            return _AGAIN
        if self._eof:
            raise ResponseIncomplete("connection closed inside a chunk")
        return None

    def _read_chunk_crlf(self) -> _Again | None:
        buf = self._buf
        if buf[:2] == b"\r\n":
            del buf[:2]
        elif buf[:1] == b"\n":
            del buf[:1]
        elif buf == b"\r" or not buf:
            if self._eof:
                raise ResponseIncomplete("connection closed after chunk data")
            return None
        else:
            raise ResponseProtocolError("chunk data not followed by CRLF")
        self._reader = self._read_chunk_size
        return _AGAIN

    def _read_trailers(self) -> Response | None:
        buf = self._buf
        if buf[:2] == b"\r\n" or buf[:1] == b"\n":  # no trailer fields
            del buf[: 2 if buf[0] == 13 else 1]
            return self._finish()
        if buf == b"\r":
            end = -1
        else:
            end, consumed = self._find_section_end()
        if end < 0:
            if len(buf) > self.max_header_bytes:
                raise ResponseTooLarge(f"trailer section exceeds {self.max_header_bytes} bytes")
            if self._eof:
                raise ResponseIncomplete("connection closed inside the trailer section")
            return None
        if consumed > self.max_header_bytes:
            raise ResponseTooLarge(f"trailer section exceeds {self.max_header_bytes} bytes")
        block = bytes(buf[:end])
        del buf[:consumed]
        self._scan_from = 0
        return self._finish(_parse_fields(block, self.max_headers, "trailer"))

    def _read_switched(self) -> None:
        return None

    def _read_closed(self) -> None:
        if self._buf:  # pragma: no cover - feed() after EOF is refused
            raise ResponseProtocolError("data after the connection closed")
        return None


# Field lines repeat across responses (same server, same headers), so validated lines are
# memoised: a steady-state head costs one dict lookup per line. The caches are bounded (cleared
# when full) and only hold short lines, so a hostile server cannot grow them.
_FIELD_CACHE: dict[bytes, tuple[bytes, bytes]] = {}
_STATUS_CACHE: dict[bytes, tuple[int, bytes, bytes]] = {}
_CACHE_MAX_ENTRIES = 1024
_CACHE_MAX_LINE = 256
# Forbidden inside one line: every control except HTAB (CR and LF included).
_FORBIDDEN_IN_LINE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class _Framing:
    """What one head says about framing, worked out once per distinct head."""

    __slots__ = ("cl", "keep_alive", "last", "length", "te")

    def __init__(self, te: tuple[bytes, ...], cl: tuple[bytes, ...], keep_alive: bool) -> None:
        self.te = te  # Transfer-Encoding values
        self.cl = cl  # Content-Length values
        self.keep_alive = keep_alive  # RFC 9112 §9.3
        #: ``_content_length(cl)`` when that is one plain number (else worked out, or
        #: refused, where the framing needs it).
        self.length = int(cl[0]) if len(cl) == 1 and cl[0].isdigit() and len(cl[0]) <= 18 else None
        #: The last response built from this head with a whole Content-Length body of at
        #: most ``_MEMO_MAX_BODY`` bytes. A response is frozen, so when the next one has
        #: the same head and the same body it can be that very object: a server that
        #: answers a route the same way every time costs no allocation per response.
        self.last: Response | None = None


_MEMO_MAX_BODY = 4096
#: The longest response ``ResponseParser.next_response`` remembers whole.
_MEMO_MAX_RAW = 8192


def _framing_method(method: str) -> str:
    """The method as far as framing cares (RFC 9112 §6.3 items 1 and 2): HEAD, CONNECT or
    any other."""
    return method if method == "HEAD" or method == "CONNECT" else ""
_Head = tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...], _Framing]
# Whole heads repeat too (same server, same route: only Date changes, once a second), so a
# parsed head and its framing fields are memoised by the head's bytes: the same bytes always
# parse to the same result, so this is a cache, not a shortcut past validation. Small and
# bounded like the caches above; a head is cached only once it parsed without error.
_HEAD_CACHE: dict[bytes, _Head] = {}
_HEAD_CACHE_MAX_ENTRIES = 64
_HEAD_CACHE_MAX_BYTES = 2048


def _parse_head_cached(block: bytes, max_headers: int) -> _Head:
    """``_parse_head`` plus the framing fields of its header section, memoised."""
    head = _HEAD_CACHE.get(block)
    if head is not None and len(head[3]) <= max_headers:
        return head
    status, reason, version, headers = _parse_head(block, max_headers)
    te: list[bytes] = []
    cl: list[bytes] = []
    conn: list[bytes] = []
    for name, value in headers:
        if name in _FRAMING_FIELDS:
            if name == b"content-length":
                cl.append(value)
            elif name == b"transfer-encoding":
                te.append(value)
            else:
                conn.append(value)
    keep_alive = _keep_alive(conn, version) if conn else version != b"1.0"
    head = (status, reason, version, headers, _Framing(tuple(te), tuple(cl), keep_alive))
    if len(block) <= _HEAD_CACHE_MAX_BYTES:
        if len(_HEAD_CACHE) >= _HEAD_CACHE_MAX_ENTRIES:
            _HEAD_CACHE.clear()
        _HEAD_CACHE[block] = head
    return head


def _parse_head(
    block: bytes, max_headers: int
) -> tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]]:
    """(status, reason, version, fields) of a head ``block`` that ends with LF."""
    lines = block.split(b"\r\n")
    if lines[-1] or len(lines) - 2 > max_headers:
        return _parse_head_slow(block, max_headers)  # bare LFs, or too many fields
    status_line = lines[0]
    status = _STATUS_CACHE.get(status_line)
    if status is None:
        if _FORBIDDEN_IN_LINE.search(status_line) is not None:
            return _parse_head_slow(block, max_headers)
        status = _parse_status_line(status_line)
        if len(_STATUS_CACHE) >= _CACHE_MAX_ENTRIES:
            _STATUS_CACHE.clear()
        _STATUS_CACHE[status_line] = status
    get = _FIELD_CACHE.get
    fields = [get(line) for line in lines[1:-1]]
    if not all(fields):
        for index, pair in enumerate(fields):
            if pair is None:
                line = lines[index + 1]
                if _FORBIDDEN_IN_LINE.search(line) is not None:
                    return _parse_head_slow(block, max_headers)
                pair = fields[index] = _parse_field_line(line, "header")
                if len(line) <= _CACHE_MAX_LINE:
                    if len(_FIELD_CACHE) >= _CACHE_MAX_ENTRIES:
                        _FIELD_CACHE.clear()
                    _FIELD_CACHE[line] = pair
    return status[0], status[1], status[2], tuple(fields)  # type: ignore[arg-type]


def _parse_head_slow(
    block: bytes, max_headers: int
) -> tuple[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]]:
    """Any head: bare-LF line ends, and a precise error for whatever is wrong."""
    lines = _split_lines(block, "response head")
    if len(lines) - 2 > max_headers:
        raise ResponseTooLarge(f"more than {max_headers} header fields")
    status, reason, version = _parse_status_line(lines[0])
    fields = tuple(_parse_field_line(line, "header") for line in lines[1:-1])
    return status, reason, version, fields


def _parse_fields(block: bytes, max_fields: int, what: str) -> tuple[tuple[bytes, bytes], ...]:
    """Field lines of a trailer ``block`` (ends with LF, no start line)."""
    lines = _split_lines(block, f"{what} section")
    if len(lines) - 1 > max_fields:
        raise ResponseTooLarge(f"more than {max_fields} {what} fields")
    return tuple(_parse_field_line(line, what) for line in lines[:-1])


def _parse_field_line(line: bytes, what: str) -> tuple[bytes, bytes]:
    # RFC 9112 §5: field-line = field-name ":" OWS field-value OWS; no whitespace before ":".
    name, colon, value = line.partition(b":")
    if not colon or not name or name.translate(None, _TCHAR):
        if line[:1] in (b" ", b"\t"):
            raise ResponseProtocolError(f"obsolete line folding in {what} section")
        raise ResponseProtocolError(f"malformed {what} line: {line[:80]!r}")
    return name.lower(), value.strip(b" \t")


def _split_lines(block: bytes, what: str) -> list[bytes]:
    """Split a block that ends with LF into lines (last element b""); CRLF or bare LF."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            raise ResponseProtocolError(f"bare CR in {what}")
    if _FORBIDDEN_IN_HEAD.search(block) is not None:
        raise ResponseProtocolError(f"control character in {what}")
    return block.split(b"\n")


def _parse_status_line(line: bytes) -> tuple[int, bytes, bytes]:
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    # (a missing final SP is tolerated, as by most clients).
    if len(line) < 12 or line[:7] != b"HTTP/1." or line[8] != 0x20 or not 0x30 <= line[7] <= 0x39:
        if line[:5] == b"HTTP/" and line[5:6].isdigit() and line[5:6] != b"1":
            raise ResponseProtocolError(f"unsupported HTTP version: {line[:20]!r}")
        raise ResponseProtocolError(f"malformed status line: {line[:80]!r}")
    code = line[9:12]
    if not code.isdigit() or (len(line) > 12 and line[12] != 0x20):
        raise ResponseProtocolError(f"malformed status line: {line[:80]!r}")
    status = int(code)
    if not 100 <= status <= 599:
        raise ResponseProtocolError(f"status code out of range: {status}")
    return status, line[13:], line[5:8]


def _keep_alive(connection: list[bytes], version: bytes) -> bool:
    # RFC 9112 §9.3: "close" ends persistence; HTTP/1.1 persists by default, 1.0 only with
    # the keep-alive option. Connection options are case-insensitive tokens in a list.
    if len(connection) == 1:
        option = connection[0].lower()
        if option == b"close":
            return False
        if option == b"keep-alive":
            return True
    options = {o.strip().lower() for value in connection for o in value.split(b",")}
    return b"close" not in options and (version != b"1.0" or b"keep-alive" in options)


def _content_length(values: Sequence[bytes]) -> int:
    # RFC 9112 §6.3 item 5: a list or repeated field with one distinct valid value is that
    # value; anything else is unrecoverable framing.
    if len(values) == 1:
        text = values[0]
        if text.isdigit() and len(text) <= 18:
            return int(text)
    distinct = {v.strip(b" \t") for value in values for v in value.split(b",")}
    if len(distinct) != 1:
        raise ResponseProtocolError(f"conflicting Content-Length values: {sorted(distinct)!r}")
    (text,) = distinct
    if not text.isdigit() or len(text) > 18:
        raise ResponseProtocolError(f"malformed Content-Length: {text[:40]!r}")
    return int(text)


_object_new = object.__new__
_SETTERS = tuple(
    Response.__dict__[name].__set__
    for name in ("status", "reason", "http_version", "headers", "body", "keep_alive", "trailers")
)


def _new_response(
    status: int,
    reason: bytes,
    version: bytes,
    headers: tuple[tuple[bytes, bytes], ...],
    body: bytes,
    keep_alive: bool,
    trailers: tuple[tuple[bytes, bytes], ...] = (),
) -> Response:
    """``Response(...)`` minus the frozen dataclass's per-field ``object.__setattr__``.

    Writes each slot through its member descriptor: the same object at about half the cost,
    which matters at tens of thousands of responses per second.
    """
    response = _object_new(Response)
    s0, s1, s2, s3, s4, s5, s6 = _SETTERS
    s0(response, status)
    s1(response, reason)
    s2(response, version)
    s3(response, headers)
    s4(response, body)
    s5(response, keep_alive)
    s6(response, trailers)
    return response
