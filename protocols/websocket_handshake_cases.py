"""Malformed opening handshakes: what a client sends, and how RFC 6455 §4.2 lets a server refuse.

How this works: each ``HandshakeCase`` says whether the request carries a key and which
``Sec-WebSocket-Version``; ``protocols.websocket_oracle.judge_handshake`` reads the answer
with the generic HTTP ``Reaction`` vocabulary. Any 4xx refuses properly (426 is only the
RFC's example); 5xx, FIN and RST refuse without "an appropriate error code" (lenient).
``severity`` grades a miss of the case's own requirement; a 101 (the handshake accepted) is
HIGH in any case, through ``ws.accepted_bad_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.outcome import Reaction, Requirement, Severity


@dataclass(frozen=True)
class HandshakeCase:
    """A malformed opening handshake; the server MUST refuse it with an HTTP error."""

    name: str
    #: Send a Sec-WebSocket-Key (a fresh random one) or omit it.
    with_key: bool
    #: The Sec-WebSocket-Version value, or None to omit the header.
    version: str | None
    #: A header the refusal MUST carry (lower-case), or None.
    required_header: bytes | None
    allowed: frozenset[Reaction]
    tolerated: frozenset[Reaction]
    rfc: str
    quote: str
    requirement: Requirement
    severity: Severity


_REFUSED = frozenset({Reaction.REJECTED_CLOSED, Reaction.REJECTED_KEPT_ALIVE})
_LENIENT_REFUSAL = frozenset({Reaction.SERVER_ERROR, Reaction.SILENT_CLOSE, Reaction.RESET})

HANDSHAKE_CASES: tuple[HandshakeCase, ...] = (
    HandshakeCase(
        name="handshake_missing_key",
        with_key=False,
        version="13",
        required_header=None,
        allowed=_REFUSED,
        tolerated=_LENIENT_REFUSAL,
        rfc="RFC 6455 §4.2.1",
        quote="If the server, while reading the handshake, finds that the client did not "
        "send a handshake that matches the description below ... the server MUST stop "
        "processing the client's handshake and return an HTTP response with an appropriate "
        "error code (such as 400 Bad Request).",
        requirement=Requirement.MUST,
        severity=Severity.HIGH,
    ),
    HandshakeCase(
        name="handshake_wrong_version",
        with_key=True,
        version="12",
        required_header=b"sec-websocket-version",
        allowed=_REFUSED,
        tolerated=_LENIENT_REFUSAL,
        rfc="RFC 6455 §4.2.2",
        quote="If this version does not match a version understood by the server, the server "
        "MUST abort the WebSocket handshake described in this section and instead send an "
        "appropriate HTTP error code (such as 426 Upgrade Required) and a "
        "|Sec-WebSocket-Version| header field indicating the version(s) the server is "
        "capable of understanding.",
        requirement=Requirement.MUST,
        # Refusing without the header misses a MUST with no security weight: MED. Accepting
        # the unknown version (101) is still HIGH, through ws.accepted_bad_frame.
        severity=Severity.MED,
    ),
)
