"""``assay load --http2``: a load request sent as an HTTP/2 stream.

The load walker renders each request as HTTP/1.1 bytes (``protocols.load_template``: the
placeholders, Host and Content-Length are filled there); over HTTP/2 the same request is
split back into fields and body (``protocols.h2_client.split_http1_request``) and sent on
the actor's shared connections (``actors.h2_session``). A fixed request is split once.
Everything the walker counts stays the walker's: this module only moves the request.
"""

from __future__ import annotations

from actors.h2_session import H2Member
from actors.walker import Target
from protocols.h2_client import request_fields, split_http1_request
from protocols.http1 import Response

#: Split requests kept (a fixed request is one entry; templated ones vary).
_CACHE_SIZE = 64


class H2Sender:
    """Sends rendered requests through one pool member."""

    def __init__(self, member: H2Member, target: Target) -> None:
        self.member = member
        self.scheme = target.scheme
        self.authority = target.host_header
        self._split: dict[bytes, tuple[list[tuple[bytes, bytes]], bytes | None]] = {}

    def fields_of(self, wire: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        cached = self._split.get(wire)
        if cached is not None:
            return cached
        method, target, headers, body = split_http1_request(wire)
        authority = next((v for n, v in headers if n.lower() == "host"), self.authority)
        fields = request_fields(method, target, authority, self.scheme, headers, body)
        if len(self._split) >= _CACHE_SIZE:
            self._split.clear()
        self._split[wire] = (fields, body)
        return fields, body

    async def send(self, wire: bytes) -> Response:
        """One request; raises ``net.TransportError`` as the HTTP/1.1 path does."""
        fields, body = self.fields_of(wire)
        return await self.member.request(fields, body)
