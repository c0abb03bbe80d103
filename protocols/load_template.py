"""Request templates for ``assay load``: validate once, then render tens of thousands a second.

How this works: ``compile_request`` checks a ``RequestTemplate`` (method a token, path
from ``/``, header names tokens, no CR/LF/NUL or other controls anywhere in the head) and
cuts the whole request into alternating literal byte chunks and placeholder *ops*, the
small closures that turn ``(seq, rng, vu)`` into bytes. Rendering is then a join over
that list: no regex, no parsing, no validation at render time. A request without
placeholders is built once and ``render`` returns that very bytes object.

Placeholders, in the path, header values and a UTF-8 body (a body that is not UTF-8 is
sent verbatim)::

    {seq}         the request's sequence number (given at render time)
    {vu}          the VU number (given at render time)
    {rand:A..B}   a uniform int in [A, B], drawn from the render's random.Random
    {uuid}        a version-4 UUID drawn from that same Random, so a seeded run replays
    {{            a literal brace where one would read as a placeholder (``{{seq}``)

Any other brace is literal, so a JSON body needs no escaping (``{"agent": {rand:1..9}}``).

Every value is digits, or hex and dashes, so a rendered path never needs escaping.
``Content-Length`` is computed (after rendering, when the body has placeholders); a user's
``Host`` takes the generated one's place, first in the head; a user's ``Content-Length``
must match a fixed body. No ``Connection: close``: keep-alive is the point of a load run.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from typing import Final

from protocols.load_errors import LoadInputError
from protocols.load_model import RequestTemplate

#: Renders one placeholder: (seq, rng, vu) -> bytes.
Op = Callable[[int, random.Random, int], bytes]

# RFC 9110 §5.6.2: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
#                  "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TCHAR: Final = frozenset("!#$%&'*+-.^_`|~0123456789"
                          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 9112 §3.2: request-target has no whitespace; RFC 3986 is ASCII only.
_PATH_FORBIDDEN: Final = re.compile(r"[^\x21-\x7e]")
# RFC 9110 §5.5: field-value is VCHAR / obs-text / SP / HTAB: no other control byte.
_VALUE_FORBIDDEN: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_RAND: Final = re.compile(r"rand:(\d+)\.\.(\d+)")
#: What makes a brace a placeholder: a name, then the closing brace, a colon, or the end
#: of the text (an unclosed placeholder, an error).
_PLACEHOLDER_START: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?:[}:]|$)")
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def _op_seq(seq: int, rng: random.Random, vu: int) -> bytes:
    return b"%d" % seq


def _op_vu(seq: int, rng: random.Random, vu: int) -> bytes:
    return b"%d" % vu


def _op_uuid(seq: int, rng: random.Random, vu: int) -> bytes:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode("ascii")


def _op_rand(low: int, high: int) -> Op:
    def op(seq: int, rng: random.Random, vu: int) -> bytes:
        return b"%d" % rng.randint(low, high)
    return op


_NAMED_OPS: Final[dict[str, Op]] = {"seq": _op_seq, "vu": _op_vu, "uuid": _op_uuid}


class CompiledRequest:
    """A validated request, ready to render. ``static`` is the bytes when nothing varies."""

    __slots__ = ("_body", "_body_first", "_head", "_head_first", "method", "static")

    def __init__(self, method: str, head: list[bytes | Op], body: list[bytes | Op] | None
                 ) -> None:
        """``head`` ends at the blank line unless ``body`` is given: a templated body, whose
        Content-Length is only known once it is rendered."""
        #: For the response parser's ``expect`` (a HEAD response has no body).
        self.method = method
        self._head_first, self._head = _pairs(head)
        self._body_first, self._body = _pairs(body) if body is not None else (b"", None)
        self.static: bytes | None = None
        if not self._head and self._body is None:
            self.static = self._head_first

    def render(self, seq: int, rng: random.Random, vu: int) -> bytes:
        """The complete request. Draws from ``rng`` in a fixed order (path, headers, body)."""
        if self.static is not None:
            return self.static
        parts = [self._head_first]
        append = parts.append
        for op, literal in self._head:
            append(op(seq, rng, vu))
            append(literal)
        if self._body is None:
            return b"".join(parts)
        body = [self._body_first]
        for op, literal in self._body:
            body.append(op(seq, rng, vu))
            body.append(literal)
        rendered = b"".join(body)
        append(b"Content-Length: %d\r\n\r\n" % len(rendered))
        append(rendered)
        return b"".join(parts)


def _pairs(chunks: list[bytes | Op]) -> tuple[bytes, tuple[tuple[Op, bytes], ...]]:
    """The first literal, then (op, the literal after it) pairs; adjacent literals joined."""
    literals: list[bytes] = [b""]
    ops: list[Op] = []
    for chunk in chunks:
        if isinstance(chunk, bytes):
            literals[-1] += chunk
        else:
            ops.append(chunk)
            literals.append(b"")
    return literals[0], tuple(zip(ops, literals[1:], strict=True))


def parse_placeholders(text: str, where: str, encoding: str = "ascii") -> list[bytes | Op]:
    """Cut ``text`` into literal chunks (encoded) and ops; ``where`` names it in errors.

    A placeholder is ``{`` + a name (letters, digits, ``_``) + ``}`` or ``:``...``}``; any
    other brace is literal, so a JSON body (``{"id": {seq}}``) needs no escaping. ``{{`` is
    a literal ``{``, for text that would otherwise read as a placeholder (``{{seq}``).

    Raises:
        LoadInputError: an unknown placeholder, a bad ``{rand:A..B}``, an unclosed one.
    """
    out: list[bytes | Op] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
            continue
        start = _PLACEHOLDER_START.match(text, i) if char == "{" else None
        if start is None:
            literal.append(char)
            i += 1
            continue
        close = text.find("}", i + 1)
        if close < 0:
            raise LoadInputError(f"unclosed placeholder {text[i:i + 20]!r} in {where} "
                                 "(write {{ for a literal brace)")
        name = text[i + 1:close]
        out += ("".join(literal).encode(encoding), _make_op(name, where))
        literal = []
        i = close + 1
    out.append("".join(literal).encode(encoding))
    return out


def _make_op(name: str, where: str) -> Op:
    if name in _NAMED_OPS:
        return _NAMED_OPS[name]
    shown = "{" + name + "}"
    shown = repr(shown if len(shown) <= 40 else shown[:37] + "...")  # one line, short
    rand = _RAND.fullmatch(name)
    if rand is None and name.startswith("rand"):
        raise LoadInputError(f"placeholder {shown} in {where}: write {{rand:A..B}} with "
                             "integers 0 <= A <= B")
    if rand is None:
        raise LoadInputError(f"unknown placeholder {shown} in {where} (use {{seq}}, {{vu}}, "
                             "{uuid}, {rand:A..B}; write {{ for a literal brace)")
    low, high = int(rand[1]), int(rand[2])
    if low > high:
        raise LoadInputError(f"placeholder {shown} in {where}: {low} is above {high}")
    return _op_rand(low, high)


def compile_request(template: RequestTemplate, host_header: str) -> CompiledRequest:
    """Validate ``template`` and precompile it for ``render``.

    Raises:
        LoadInputError: a method that is not a token, a path not starting with ``/`` or
            with whitespace, controls or non-ASCII, a header name that is not a token, a
            value with CR/LF/NUL or controls, a placeholder error, Host or Content-Length
            given twice, a Content-Length that does not match a fixed body (or is given
            for a templated one: it varies), or Content-Length with Transfer-Encoding.
    """
    method, path = template.method, template.path
    if not method or not _TCHAR.issuperset(method):
        raise LoadInputError(f"method is not a token: {method!r}")
    if not path.startswith("/") or _PATH_FORBIDDEN.search(path):
        raise LoadInputError(f"path must start with / and be printable ASCII without spaces "
                             f"(percent-encode the rest): {path!r}")
    if not host_header or _PATH_FORBIDDEN.search(host_header):
        raise LoadInputError(f"host must be printable ASCII without spaces: {host_header!r}")
    user_host: list[bytes | Op] | None = None
    once: set[str] = set()
    headers: list[bytes | Op] = []
    user_length: str | None = None
    chunked = False
    for name, value in template.headers:
        if not name or not _TCHAR.issuperset(name):
            raise LoadInputError(f"header name is not a token: {name!r}")
        if _VALUE_FORBIDDEN.search(value):
            raise LoadInputError(f"header {name} value has CR/LF, controls or characters "
                                 f"beyond latin-1: {value!r}")
        lower = name.lower()
        if lower in once:
            raise LoadInputError(f"header {name} given twice")
        if lower in ("host", "content-length"):
            once.add(lower)
        rendered = parse_placeholders(value, f"header {name}", "latin-1")
        if lower == "host":
            user_host = rendered  # RFC 9112 §3.2: Host goes first, where ours would be
            continue
        if lower == "content-length":
            user_length = value.strip()
        chunked = chunked or lower == "transfer-encoding"
        headers += (name.encode("ascii"), b": ", *rendered, b"\r\n")
    host = user_host if user_host is not None else [host_header.encode("ascii")]
    return _assemble(template, method, path, host, headers, user_length, chunked)


def _assemble(template: RequestTemplate, method: str, path: str, host: list[bytes | Op],
              headers: list[bytes | Op], user_length: str | None,
              chunked: bool) -> CompiledRequest:
    head: list[bytes | Op] = [method.encode("ascii"), b" ",
                              *parse_placeholders(path, "path"), b" HTTP/1.1\r\nHost: ",
                              *host, b"\r\n", *headers]
    body = template.body
    parts: list[bytes | Op] | None = None
    if body is not None:
        try:
            parts = parse_placeholders(body.decode("utf-8"), "body", "utf-8")
        except UnicodeDecodeError:
            parts = [body]  # not text: sent verbatim, as the docstring promises
    templated = parts is not None and any(not isinstance(p, bytes) for p in parts)
    if chunked and templated:
        raise LoadInputError("Transfer-Encoding cannot frame a templated body (its chunk "
                             "sizes would not match): drop the header")
    if user_length is not None:
        if chunked:
            raise LoadInputError("Content-Length with Transfer-Encoding: send one of them")
        if templated:
            raise LoadInputError("Content-Length cannot be given with a templated body "
                                 "(its length varies; it is computed)")
        size = len(b"".join(p for p in parts or () if isinstance(p, bytes)))
        if user_length != str(size):
            raise LoadInputError(f"Content-Length {user_length!r} does not match the "
                                 f"{size}-byte body (it would desync keep-alive)")
    if templated:
        return CompiledRequest(method, head, parts)
    fixed = b"".join(p for p in parts or () if isinstance(p, bytes))
    if user_length is None and not chunked and (body is not None or method in _BODY_METHODS):
        head.append(b"Content-Length: %d\r\n" % len(fixed))
    head += (b"\r\n", fixed)
    return CompiledRequest(method, head, None)
