"""Pure builders of the adversarial catalogue's bytes: ``(host, path) -> bytes``.

How this works: every case's ``build`` is made here by a small factory (``get``, ``post``,
``chunked``, ``te_split`` ...) from field lines written as text, where ``{h}`` and ``{p}``
stand for the Host value and the target path. Text is encoded as latin-1, so a ``"\\x0b"``
in a table row is exactly one VT octet on the wire. Nothing here judges anything.

The bytes of the cases that existed before this module are pinned by Tier 3 seed digests
(``corpus.workload`` draws them by name): a factory that an old case uses must keep
producing the same octets. New shapes get new factories rather than new defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocols.case_model import BODY, CANARY_PARAM, SMUGGLED_PATH, Builder
from protocols.tls_hello import minimal_client_hello

#: A valid chunked body carrying ``BODY``.
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"


def message(start: str, fields: Sequence[str], body: bytes = b"", eol: str = "\r\n") -> bytes:
    """Start line, field lines and the blank line, ``eol``-terminated; latin-1 keeps bytes."""
    head = start + eol + "".join(field + eol for field in fields) + eol
    return head.encode("latin-1") + body


def smuggled_request(host: str) -> bytes:
    """The complete request hidden in framing cases (seen only by a desynced parser)."""
    return f"GET {SMUGGLED_PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1")


def baseline_request(method: str, host: str, path: str) -> bytes:
    """A valid request to the same route, for the routing trap (404 vs 404 is acceptance)."""
    if method == "GET":
        return message(f"GET {path} HTTP/1.1", [f"Host: {host}"])
    return message(f"{method} {path} HTTP/1.1", [f"Host: {host}", "Content-Length: 5"], BODY)


def canary_request(host: str, path: str, nonce: str) -> bytes:
    """The valid request sent after a framing case on the same connection."""
    sep = "&" if "?" in path else "?"
    return message(f"GET {path}{sep}{CANARY_PARAM}={nonce} HTTP/1.1", [f"Host: {host}"])


def _fill(text: str, host: str, path: str) -> str:
    return text.replace("{h}", host).replace("{p}", path)


def get(*fields: str, start: str = "GET {p} HTTP/1.1", eol: str = "\r\n") -> Builder:
    """A GET with ``Host`` first and extra ``fields`` ({h}/{p} are substituted)."""

    def build(host: str, path: str) -> bytes:
        lines = [f"Host: {host}", *(_fill(f, host, path) for f in fields)]
        return message(_fill(start, host, path), lines, eol=eol)

    return build


def raw(start: str, *fields: str, body: bytes = b"") -> Builder:
    """Exactly these lines (no implicit Host): {h}/{p} are substituted."""

    def build(host: str, path: str) -> bytes:
        lines = [_fill(f, host, path) for f in fields]
        return message(_fill(start, host, path), lines, body)

    return build


def post(*fields: str, body: bytes = BODY) -> Builder:
    """A POST with Host and the given framing ``fields``, then ``body`` verbatim."""
    return raw("POST {p} HTTP/1.1", "Host: {h}", *fields, body=body)


def chunked(body: bytes, te: str = "Transfer-Encoding: chunked") -> Builder:
    """A POST whose body is ``body`` under the Transfer-Encoding line ``te``."""
    return post(te, body=body)


def cl_pair(template: str) -> Builder:
    """Two lengths: 5 (just ``hello``) and the whole body (``hello`` + smuggled request)."""

    def build(host: str, path: str) -> bytes:
        body = BODY + smuggled_request(host)
        header = template.format(short=len(BODY), long=len(body))
        return message(f"POST {path} HTTP/1.1", [f"Host: {host}", *header.split("\n")], body)

    return build


def hidden_te(hide: str) -> Builder:
    """A Content-Length covering ``0 CRLF CRLF`` + smuggled request, and a Transfer-Encoding
    that only a misparsing server sees (``hide`` is the field line that smuggles it)."""

    def build(host: str, path: str) -> bytes:
        body = b"0\r\n\r\n" + smuggled_request(host)
        if hide.startswith(" "):  # whitespace-preceded line right after the request line
            fields = [hide, f"Host: {host}", f"Content-Length: {len(body)}"]
        else:
            fields = [f"Host: {host}", hide, f"Content-Length: {len(body)}"]
        return message(f"POST {path} HTTP/1.1", fields, body)

    return build


def cl_te_split(te_first: bool, version: str = "HTTP/1.1", keep_alive: bool = False) -> Builder:
    """CL and TE disagree: chunked data holds the smuggled request; CL ends before it."""
    return te_split("Transfer-Encoding: chunked", te_first=te_first, version=version,
                    keep_alive=keep_alive)


def te_split(*te_lines: str, te_first: bool = False, version: str = "HTTP/1.1",
             keep_alive: bool = False) -> Builder:
    """``te_lines`` and a Content-Length that ends after the chunk-size line.

    A server that frames by Content-Length (it ignored or misread the Transfer-Encoding)
    sees the smuggled request next; one that decodes chunked sees it as chunk data.
    """

    def build(host: str, path: str) -> bytes:
        data = smuggled_request(host)
        size_line = f"{len(data):x}\r\n".encode()
        body = size_line + data + b"\r\n0\r\n\r\n"
        cl = f"Content-Length: {len(size_line)}"
        fields = [f"Host: {host}", *([*te_lines, cl] if te_first else [cl, *te_lines])]
        if keep_alive:
            fields.append("Connection: keep-alive")
        return message(f"POST {path} {version}", fields, body)

    return build


def chunked_then_smuggle(size: str) -> Builder:
    """A chunk of declared ``size`` holding ``hello``, the last chunk, then the smuggled
    request: correct parsers read the smuggled bytes as chunk data (or reject)."""

    def build(host: str, path: str) -> bytes:
        body = f"{size}\r\n".encode() + BODY + b"\r\n0\r\n\r\n" + smuggled_request(host)
        return message(f"POST {path} HTTP/1.1", [f"Host: {host}", "Transfer-Encoding: chunked"],
                       body)

    return build


def chunk_smuggle(size: str, data: bytes = BODY) -> Builder:
    """A chunked body whose first chunk-size is the malformed ``size`` (holding ``data``),
    then the last chunk and the smuggled request.

    Only a server that took ``size`` as a number (``0x5`` read as 5) ends the body before
    the smuggled request and answers it; a conforming one rejects the chunk-size line.
    """

    def build(host: str, path: str) -> bytes:
        # An empty ``data`` makes ``size`` the last chunk: its blank line ends the body.
        rest = data + b"\r\n0\r\n\r\n" if data else b"\r\n"
        body = size.encode("latin-1") + b"\r\n" + rest
        return message(f"POST {path} HTTP/1.1", [f"Host: {host}", "Transfer-Encoding: chunked"],
                       body + smuggled_request(host))

    return build


def overflow_cl(modulus: int = 2**64) -> Builder:
    """A Content-Length that wraps to 5 modulo ``modulus``; the body is ``hello`` + smuggled."""

    def build(host: str, path: str) -> bytes:
        body = BODY + smuggled_request(host)
        fields = [f"Host: {host}", f"Content-Length: {modulus + len(BODY)}"]
        return message(f"POST {path} HTTP/1.1", fields, body)

    return build


def with_body(start: str, *fields: str, body_of: Builder) -> Builder:
    """``start`` and ``fields`` (Host first) with a Content-Length body of ``body_of``'s bytes."""

    def build(host: str, path: str) -> bytes:
        body = body_of(host, path)
        lines = [f"Host: {host}", *(_fill(f, host, path) for f in fields),
                 f"Content-Length: {len(body)}"]
        return message(_fill(start, host, path), lines, body)

    return build


def get_with_body(host: str, path: str) -> bytes:
    body = smuggled_request(host)
    return message(f"GET {path} HTTP/1.1", [f"Host: {host}", f"Content-Length: {len(body)}"],
                   body)


def cl_te_aligned(host: str, path: str) -> bytes:
    body = CHUNKED_HELLO
    fields = [f"Host: {host}", f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"]
    return message(f"POST {path} HTTP/1.1", fields, body)


def request_line_of(octets: int) -> Builder:
    """A GET whose request line (without CRLF) is exactly ``octets`` long (a long query)."""

    def build(host: str, path: str) -> bytes:
        sep = "&" if "?" in path else "?"
        start = f"GET {path}{sep}assay= HTTP/1.1"
        pad = "a" * max(0, octets - len(start))
        return message(f"GET {path}{sep}assay={pad} HTTP/1.1", [f"Host: {host}"])

    return build


def pipeline(*parts: Builder) -> Builder:
    """Several requests in one write (RFC 9112 §9.3.2 pipelining)."""
    return lambda host, path: b"".join(part(host, path) for part in parts)


def prefixed(prefix: bytes, inner: Builder) -> Builder:
    return lambda host, path: prefix + inner(host, path)


def suffixed(inner: Builder, suffix: bytes) -> Builder:
    return lambda host, path: inner(host, path) + suffix


def const(data: bytes) -> Builder:
    return lambda host, path: data


def many_fields(count: int) -> Builder:
    return get(*(f"X-Assay-{i}: {i}" for i in range(count)))


def http09(host: str, path: str) -> bytes:
    """An HTTP/0.9 simple request: a request line without a version, nothing else."""
    return f"GET {path}\r\n".encode("latin-1")


#: Deterministic non-HTTP bytes: none is a token character at the start, no CRLF inside.
JUNK = bytes((0x80 + (i * 151) % 0x7F) for i in range(256))
#: What an https client sends first on a plaintext port.
TLS_CLIENT_HELLO = minimal_client_hello(b"assay.invalid")
#: RFC 9113 §3.4 client preface followed by an empty SETTINGS frame.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
