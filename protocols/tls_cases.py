"""The TLS-level torture catalogue: what each case sends to a TLS port, how, and what the
RFC lets the server answer.

How this works: a case is data. ``build`` makes its bytes from a ``CaseInput`` (SNI, Host,
path and the walker's PRNG, so a run replays exactly); ``delivery`` says how they go out
(at once, dripped a byte at a time within ``drip_s``, or half of them and then nothing
while the control request runs); ``leave`` says when and how the client walks away. Every
case is followed - and the dripped and stalled ones accompanied - by a control request (a
fresh TLS connection and a ``GET`` of the health path): whatever the case did, the server
must keep answering it (I-TLS-LIVE, HIGH). That is the verdict that matters; the reaction
to the case's own bytes is judged by ``protocols.tls_judge`` against ``must_terminate``
and ``expected_alert``, grounded in the quoted RFC 8446 text.

Plaintext HTTP on a TLS port is answered with an HTTP 400 by nginx; RFC-wise the record
type is unknown and the connection MUST be terminated with an alert, but an HTTP answer is
a close with an explanation, so it is lenient there, never a failure.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from protocols.tls_hello import (
    MAX_CIPHERTEXT_TLS12,
    MAX_PLAINTEXT,
    AlertDescription,
    ContentType,
    HelloSpec,
    client_hello,
    handshake_records,
    record,
    rng_bytes,
)


class Delivery(enum.Enum):
    """How a case's bytes go out."""

    #: All at once.
    WHOLE = "whole"
    #: One byte per interval, all within the walker's ``tls_drip_s``: the peek-bound attack
    #: (a server that blocks on peeking a whole ClientHello serves no one meanwhile).
    DRIP = "drip"
    #: The first half, then nothing until the control request is done; then an RST.
    STALL = "stall"


class Leave(enum.Enum):
    """When and how the client walks away."""

    #: FIN (half-close) right after sending; what the server then says is still read.
    FIN_AFTER_SEND = "fin_after_send"
    #: RST right after sending; nothing is read.
    RST_AFTER_SEND = "rst_after_send"
    #: Read the server's first record (ServerHello, alert, ...), then FIN.
    FIN_AFTER_REPLY = "fin_after_reply"
    #: Read the server's first record, then RST.
    RST_AFTER_REPLY = "rst_after_reply"

    @property
    def reads(self) -> bool:
        return self is not Leave.RST_AFTER_SEND

    @property
    def resets(self) -> bool:
        return self in (Leave.RST_AFTER_SEND, Leave.RST_AFTER_REPLY)


@dataclass(frozen=True)
class CaseInput:
    server_name: str | None
    host_header: str
    path: str
    rng: random.Random


@dataclass(frozen=True)
class TlsCase:
    name: str
    summary: str
    rfc: str
    quote: str
    #: "MUST" when ``must_terminate`` grounds a MED verdict, else "invariant" (liveness only).
    requirement: str
    build: Callable[[CaseInput], bytes]
    delivery: Delivery = Delivery.WHOLE
    leave: Leave = Leave.FIN_AFTER_REPLY
    #: The RFC requires the server to end the connection: a ServerHello is a MUST miss.
    must_terminate: bool = False
    #: The alert the RFC names for it (another alert or a bare close is lenient).
    expected_alert: AlertDescription | None = None

    @property
    def control_during(self) -> bool:
        """The control request runs while the case holds its connection mid-handshake."""
        return self.delivery is not Delivery.WHOLE


#: Over 32 KiB: RFC 8446 puts no bound on a ClientHello, servers cap it (OpenSSL 128 KiB).
OVERSIZED_HELLO = 40 * 1024
#: One record this long is over every limit a server may apply before the version is
#: agreed: RFC 8446's 2^14 (plaintext) and 2^14 + 256 (ciphertext), and RFC 5246's
#: 2^14 + 2048 for a TLS 1.2 TLSCiphertext - the only bound TLS 1.2 makes the receiver
#: enforce ("record_overflow: A TLSCiphertext record was received that had a length more
#: than 2^14+2048 bytes", §7.2.2). A record between the two would fail a server that
#: reads the ClientHello by TLS 1.2's rules, which RFC 5246 allows.
OVERFLOW_RECORD = MAX_CIPHERTEXT_TLS12 + 256

Q_FRAGMENT = ('RFC 8446 §5.1: "Handshake messages MAY be coalesced into a single TLSPlaintext '
              'record or fragmented across several records"')
Q_OVERFLOW = ('RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes. An endpoint that '
              'receives a record that exceeds this length MUST terminate the connection with '
              'a "record_overflow" alert." and RFC 5246 §7.2.2 (TLS 1.2): "record_overflow '
              'A TLSCiphertext record was received that had a length more than 2^14+2048 '
              'bytes [...] This message is always fatal"')
Q_UNEXPECTED = ('RFC 8446 §5: "If a TLS implementation receives an unexpected record type, '
                'it MUST terminate the connection with an "unexpected_message" alert."')
Q_DECODE = ('RFC 8446 §6: "Peers which receive a message which cannot be parsed according to '
            'the syntax (e.g., have a length extending beyond the message boundary or contain '
            'an out-of-range length) MUST terminate the connection with a "decode_error" '
            'alert." and §4.1.2: "opaque legacy_session_id<0..32>;"')
Q_CLOSE = ('RFC 8446 §6.1: "Either party MAY initiate a close of its write side of the '
           'connection by sending a "close_notify" alert." A client that leaves without one '
           'is rude, not exotic: the server must shed it and keep serving others')
Q_HELLO = ('RFC 8446 §4.1.2: "When a client first connects to a server, it is REQUIRED to '
           'send the ClientHello as its first TLS message." Nothing bounds how fast it '
           'arrives: the server must keep serving others while one trickles in')


def hello(context: CaseInput, size: int = 0) -> bytes:
    """A valid ClientHello in records of at most 2^14 bytes."""
    spec = HelloSpec(server_name=context.server_name, size=size)
    return handshake_records(client_hello(spec, context.rng))


def _overflow(context: CaseInput) -> bytes:
    spec = HelloSpec(server_name=context.server_name, size=OVERFLOW_RECORD)
    return record(ContentType.HANDSHAKE, client_hello(spec, context.rng))


def _session_id(context: CaseInput) -> bytes:
    spec = HelloSpec(server_name=context.server_name, session_id=rng_bytes(context.rng, 255))
    return handshake_records(client_hello(spec, context.rng))


def _garbage(context: CaseInput) -> bytes:
    return record(0x63, rng_bytes(context.rng, 64), version=0x0303)


def _plaintext(context: CaseInput) -> bytes:
    return (f"GET {context.path} HTTP/1.1\r\nHost: {context.host_header}\r\n"
            "Connection: close\r\n\r\n").encode("latin-1")


CASES: tuple[TlsCase, ...] = (
    TlsCase("dripped_hello", "a valid ClientHello, one byte at a time", "RFC 8446 §4.1.2",
            Q_HELLO, "invariant", hello, delivery=Delivery.DRIP),
    TlsCase("stalled_hello", "half a ClientHello, then silence while the control request "
            "runs, then RST", "RFC 8446 §4.1.2", Q_HELLO, "invariant", hello,
            delivery=Delivery.STALL, leave=Leave.RST_AFTER_SEND),
    TlsCase("oversized_hello", f"a {OVERSIZED_HELLO // 1024} KiB ClientHello (padding) over "
            "three records", "RFC 8446 §5.1", Q_FRAGMENT, "invariant",
            lambda context: hello(context, OVERSIZED_HELLO)),
    TlsCase("plaintext_http", "an HTTP/1.1 GET on the TLS port", "RFC 8446 §5", Q_UNEXPECTED,
            "MUST", _plaintext, must_terminate=True,
            expected_alert=AlertDescription.UNEXPECTED_MESSAGE),
    TlsCase("abandon_fin_after_hello", "a ClientHello, then FIN at once", "RFC 8446 §6.1",
            Q_CLOSE, "invariant", hello, leave=Leave.FIN_AFTER_SEND),
    TlsCase("abandon_rst_after_hello", "a ClientHello, then RST at once", "RFC 8446 §6.1",
            Q_CLOSE, "invariant", hello, leave=Leave.RST_AFTER_SEND),
    TlsCase("abandon_fin_after_server_hello", "a ClientHello, the ServerHello read, then FIN",
            "RFC 8446 §6.1", Q_CLOSE, "invariant", hello, leave=Leave.FIN_AFTER_REPLY),
    TlsCase("abandon_rst_after_server_hello", "a ClientHello, the ServerHello read, then RST",
            "RFC 8446 §6.1", Q_CLOSE, "invariant", hello, leave=Leave.RST_AFTER_REPLY),
    TlsCase("garbage_record", "a record of unknown content type 99 with 64 random bytes",
            "RFC 8446 §5", Q_UNEXPECTED, "MUST", _garbage, must_terminate=True,
            expected_alert=AlertDescription.UNEXPECTED_MESSAGE),
    TlsCase("record_overflow", f"a ClientHello in one {OVERFLOW_RECORD}-byte record (over "
            f"{MAX_PLAINTEXT})", "RFC 8446 §5.1", Q_OVERFLOW, "MUST", _overflow,
            must_terminate=True, expected_alert=AlertDescription.RECORD_OVERFLOW),
    TlsCase("huge_session_id", "a ClientHello whose legacy_session_id is 255 bytes (<0..32>)",
            "RFC 8446 §6", Q_DECODE, "MUST", _session_id, must_terminate=True,
            expected_alert=AlertDescription.DECODE_ERROR),
)

BY_NAME: dict[str, TlsCase] = {case.name: case for case in CASES}


def drip_interval(size: int, drip_s: float, floor_s: float = 0.002) -> float:
    """Seconds between two dripped bytes so ``size`` bytes take at most ``drip_s`` (but no
    less than ``floor_s`` apart: a drip faster than that is just a slow send)."""
    return max(floor_s, drip_s / max(1, size))


def dripped_bytes(size: int, drip_s: float, floor_s: float = 0.002) -> int:
    """How many of ``size`` bytes a drip sends one by one (the rest follow at once, so a
    drip is bounded by ``drip_s`` whatever the floor)."""
    return min(size, int(drip_s / drip_interval(size, drip_s, floor_s)))
