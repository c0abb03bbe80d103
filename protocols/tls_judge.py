"""What a server did with a TLS-level case, and whether the RFC allows it.

How this works: ``observe(data, transport)`` turns the server's first bytes and how the
connection ended into a ``Reaction`` (a ServerHello, an alert with its level and
description, an HTTP answer, a bare close, a reset, silence, or bytes that are none of
these). ``judge(case, reaction)`` gives the verdict for the case's own bytes:

* a case the RFC says MUST end the connection (``TlsCase.must_terminate``) fails (MED)
  only when the server carried on with a ServerHello; the named alert passes; another
  alert, a bare close, an HTTP answer or silence within the read window is lenient
  (terminated without the named alert, or maybe later: nothing to fail a server for);
* any other case passes whatever the server did: a valid ClientHello may be served,
  refused with an alert, or dropped (a slow client timed out); its verdict is liveness,
  judged from the control request by the walker.

Both functions take any bytes and never raise. No I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.tls_cases import TlsCase
from protocols.tls_hello import (
    RECORD_HEADER,
    AlertLevel,
    ContentType,
    HandshakeType,
    Record,
    alert_name,
    records,
)

#: How much of a reply is read at most: one ServerHello flight or an alert is far less.
REPLY_CAP = 64 * 1024


class Transport(enum.Enum):
    """How the read of the reply ended."""

    EOF = "eof"
    RESET = "reset"
    #: The read window passed with the connection still open (or the read stopped itself).
    OPEN = "open"
    #: Nothing was read: the case left before any reply (RST right after sending).
    NOT_READ = "not_read"


class ReactionKind(enum.Enum):
    #: RFC 8446 §4.1.3: the handshake went on (a HelloRetryRequest is one too).
    SERVER_HELLO = "server_hello"
    #: RFC 8446 §6: a plaintext alert record.
    ALERT = "alert"
    #: An HTTP/1.x answer (nginx's 400 to plaintext on its TLS port).
    HTTP = "http"
    #: FIN with nothing said.
    CLOSED = "closed"
    RESET = "reset"
    #: Nothing within the read window, connection still open.
    SILENT = "silent"
    #: Bytes that are neither a TLS record the case expects nor HTTP.
    OTHER = "other"
    #: The case left before reading.
    NOT_READ = "not_read"


class Verdict(enum.Enum):
    """Per case; counted as ``tls.case.<name>.<verdict>``."""

    PASS = "pass"
    #: Allowed, but not what the RFC names (a bare close where an alert is due, ...).
    LENIENT = "lenient"
    #: A MUST missed (``tls.must_violation``) or the control request failed
    #: (``tls.control_failed``).
    VIOLATION = "violation"


@dataclass(frozen=True)
class Reaction:
    kind: ReactionKind
    alert_level: int | None = None
    alert_description: int | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.kind is ReactionKind.ALERT:
            return f"alert {alert_name(self.alert_description or 0)} (level {self.alert_level})"
        return self.kind.value + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str


_BY_TRANSPORT = {
    Transport.EOF: ReactionKind.CLOSED,
    Transport.RESET: ReactionKind.RESET,
    Transport.OPEN: ReactionKind.SILENT,
    Transport.NOT_READ: ReactionKind.NOT_READ,
}
_TLS_TYPES = frozenset(int(t) for t in ContentType if t is not ContentType.INVALID)


def reply_complete(data: bytes) -> bool:
    """Enough of a reply to judge: a whole first record, an HTTP status line, or a first
    byte that no TLS record starts with."""
    if not data:
        return False
    if data.startswith(b"HTTP/"):
        return b"\r\n" in data
    if data[0] not in _TLS_TYPES:
        return True
    first = next(records(data))
    return isinstance(first, Record)


def observe(data: bytes, transport: Transport) -> Reaction:
    """The server's reaction from what it sent and how the read ended. Never raises."""
    if not data:
        return Reaction(_BY_TRANSPORT[transport])
    if data.startswith(b"HTTP/"):
        line = data.split(b"\r\n", 1)[0][:80].decode("latin-1")
        return Reaction(ReactionKind.HTTP, detail=line)
    first = next(records(data))
    if isinstance(first, Record):
        return _of_record(first)
    # An incomplete first record: judge by what its start says it is.
    if len(data) > RECORD_HEADER and data[0] == ContentType.HANDSHAKE \
            and data[1] == 3 and data[RECORD_HEADER] == HandshakeType.SERVER_HELLO:
        return Reaction(ReactionKind.SERVER_HELLO, detail="incomplete record")
    return Reaction(ReactionKind.OTHER, detail=f"first bytes {data[:16].hex()}")


def _of_record(first: Record) -> Reaction:
    major = first.version >> 8
    if major != 3:
        return Reaction(ReactionKind.OTHER, detail=f"record version 0x{first.version:04x}")
    if first.content_type == ContentType.ALERT and len(first.fragment) == 2:
        return Reaction(ReactionKind.ALERT, first.fragment[0], first.fragment[1])
    if first.content_type == ContentType.HANDSHAKE and first.fragment[:1] == bytes(
            [HandshakeType.SERVER_HELLO]):
        return Reaction(ReactionKind.SERVER_HELLO)
    return Reaction(ReactionKind.OTHER, detail=f"record type {first.content_type}, "
                    f"{len(first.fragment)} bytes")


def judge(case: TlsCase, reaction: Reaction) -> Judgement:
    """The verdict on the server's reaction to the case's own bytes (liveness apart)."""
    kind = reaction.kind
    if not case.must_terminate:
        return Judgement(Verdict.PASS, f"{reaction.describe()}: allowed (nothing in the case "
                         "obliges the server; liveness is judged by the control request)")
    expected = alert_name(case.expected_alert) if case.expected_alert is not None else "an"
    if kind is ReactionKind.SERVER_HELLO:
        return Judgement(Verdict.VIOLATION, f"{case.rfc}: the connection MUST be terminated "
                         f"with a {expected} alert; the server answered with a ServerHello")
    if kind is ReactionKind.ALERT and reaction.alert_level == AlertLevel.FATAL and (
            case.expected_alert is None or reaction.alert_description == case.expected_alert):
        return Judgement(Verdict.PASS, f"{reaction.describe()}, as {case.rfc} requires")
    if kind is ReactionKind.NOT_READ:
        return Judgement(Verdict.PASS, "the case left before any reply")
    return Judgement(Verdict.LENIENT, f"{reaction.describe()}: {case.rfc} names a {expected} "
                     "alert; the server did not carry on, which is what matters")
