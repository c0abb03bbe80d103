"""``assay proxy``: the cases sent through a proxy to the ``assay backend``s behind it.

How this works: every case is a byte string built around a run marker, so what a backend
records can be traced to the case (and the run) that caused it. A case's own request goes
to ``/assay-proxy/RUN/CASE``; a request hidden in a body, which a proxy that frames the
message as RFC 9112 requires never forwards as a request, goes to
``/assay-smuggled/RUN/CASE``. A backend that records a request to an ``assay-smuggled``
target received a request assay never sent as one: the proxy and the backend disagreed
on where a message ends (``protocols.proxy_oracle`` judges). Each case quotes the text
that makes the hidden request body bytes (or makes the whole message an error) under
every reading the RFC allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

OWN_PREFIX = "/assay-proxy"
SMUGGLED_PREFIX = "/assay-smuggled"
HOP_FIELD = "X-Assay-Hop"
#: End-to-end fields the rewrite case sends; each must arrive as sent. ``no-transform``
#: is what makes the body's bytes binding: RFC 9110 §7.7 "A proxy MAY transform the
#: content of a message that does not contain a no-transform cache directive" and "A
#: proxy MUST NOT transform the content (Section 6.4) of a message that contains a
#: no-transform cache directive".
E2E_FIELDS = (("X-Assay-Case-Field", "kept as sent"), ("Accept-Language", "en;q=0.5"),
              ("Cache-Control", "no-cache, no-transform"))
REWRITE_BODY = b'{"assay": "body kept byte for byte"}'


def own_target(run: str, case: str) -> str:
    return f"{OWN_PREFIX}/{run}/{case}"


def smuggled_target(run: str, case: str) -> str:
    return f"{SMUGGLED_PREFIX}/{run}/{case}"


def _inner(run: str, case: str) -> bytes:
    return f"GET {smuggled_target(run, case)} HTTP/1.1\r\nHost: backend\r\n\r\n".encode()


def _cl_te(run: str, case: str) -> bytes:
    body = b"0\r\n\r\n" + _inner(run, case)
    return (f"POST {own_target(run, case)} HTTP/1.1\r\nHost: proxy\r\n"
            f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n").encode() + body


def _te_cl(run: str, case: str) -> bytes:
    inner = _inner(run, case)
    chunk = b"%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"
    return (f"POST {own_target(run, case)} HTTP/1.1\r\nHost: proxy\r\n"
            f"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n").encode() + chunk


def _double_cl(run: str, case: str) -> bytes:
    inner = _inner(run, case)
    return (f"POST {own_target(run, case)} HTTP/1.1\r\nHost: proxy\r\nContent-Length: 0\r\n"
            f"Content-Length: {len(inner)}\r\n\r\n").encode() + inner


def _chunked_body(run: str, case: str) -> bytes:
    inner = _inner(run, case)
    chunk = b"%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"
    return (f"POST {own_target(run, case)} HTTP/1.1\r\nHost: proxy\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode() + chunk


def _hop(run: str, case: str) -> bytes:
    return (f"GET {own_target(run, case)} HTTP/1.1\r\nHost: proxy\r\n"
            f"Connection: keep-alive, {HOP_FIELD}\r\n{HOP_FIELD}: {run}\r\n\r\n").encode()


def _rewrite(run: str, case: str) -> bytes:
    fields = "".join(f"{name}: {value}\r\n" for name, value in E2E_FIELDS)
    return (f"POST {own_target(run, case)}?q=1&r=%2F HTTP/1.1\r\nHost: proxy\r\n{fields}"
            f"Content-Type: application/json\r\nContent-Length: {len(REWRITE_BODY)}\r\n"
            "\r\n").encode() + REWRITE_BODY


@dataclass(frozen=True)
class ProxyCase:
    name: str
    rfc: str
    quote: str
    build: Callable[[str, str], bytes]
    #: Carries a hidden request (``assay-smuggled``) that must never reach a backend.
    smuggles: bool = False
    #: Its body must arrive as sent (I-PROXY-REWRITE), its target and end-to-end fields
    #: should (I-PROXY-ALTERED).
    compares: bool = False
    #: Names a field in Connection that must not be forwarded (I-PROXY-HOP).
    hop: bool = False

    def bytes_for(self, run: str) -> bytes:
        return self.build(run, self.name)


CASES: tuple[ProxyCase, ...] = (
    ProxyCase("cl_te", "RFC 9112 §6.1",
              "A server MAY reject a request that contains both Content-Length and "
              "Transfer-Encoding or process such a request in accordance with the "
              "Transfer-Encoding alone. Regardless, the server MUST close the connection "
              "after responding to such a request to avoid the potential attacks.",
              _cl_te, smuggles=True),
    ProxyCase("te_cl", "RFC 9112 §6.3",
              "If a message is received with both a Transfer-Encoding and a Content-Length "
              "header field, the Transfer-Encoding overrides the Content-Length.",
              _te_cl, smuggles=True),
    ProxyCase("double_cl", "RFC 9112 §6.3",
              "If a message is received without Transfer-Encoding and with an invalid "
              "Content-Length header field, then the message framing is invalid and the "
              "recipient MUST treat it as an unrecoverable error",
              _double_cl, smuggles=True),
    ProxyCase("chunked_body", "RFC 9112 §7.1",
              "The chunked transfer coding wraps content in order to transfer it as a "
              "series of chunks, each with its own size indicator",
              _chunked_body, smuggles=True),
    ProxyCase("hop_by_hop", "RFC 9110 §7.6.1",
              "Intermediaries MUST parse a received Connection header field before a "
              "message is forwarded and, for each connection-option in this field, remove "
              "any header or trailer field(s) from the message with the same name as the "
              "connection-option",
              _hop, hop=True),
    ProxyCase("end_to_end", "RFC 9110 §7.6",
              "A proxy MUST NOT modify the \"absolute-path\" and \"query\" parts of the "
              "received target when forwarding it to the next inbound server",
              _rewrite, compares=True),
)
