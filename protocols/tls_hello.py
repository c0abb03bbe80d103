"""TLS records and ClientHello messages as bytes, and the server's first records read back.

How this works: the TLS-level torture cases (``protocols.tls_cases``) must send what a
real client sends - and bend it - before any TLS library is involved, so the bytes are
built here from the RFC 8446 structures: a record header (§5.1 ``TLSPlaintext``), a
``Handshake`` header (§4), and a ``ClientHello`` (§4.1.2) with the extensions a modern
client offers (SNI, ALPN, supported_versions, supported_groups, signature_algorithms,
key_share with an x25519 share, padding to reach a size). The key share is 32 bytes from
the caller's PRNG: any 32 bytes are an x25519 public key to the server, so the server
answers with a real ServerHello (which is all a case ever reads).

Reading goes the other way: ``records(data)`` splits what the server sent into plaintext
records, never raising; ``first_reaction`` in ``protocols.tls_cases`` judges them.
No I/O here.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

#: RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes."
MAX_PLAINTEXT = 2 ** 14
#: RFC 8446 §5.2: "The length MUST NOT exceed 2^14 + 256 bytes."
MAX_CIPHERTEXT = 2 ** 14 + 256
#: RFC 5246 §6.2.3 (TLS 1.2): "The length MUST NOT exceed 2^14 + 2048."
MAX_CIPHERTEXT_TLS12 = 2 ** 14 + 2048
RECORD_HEADER = 5


class ContentType(enum.IntEnum):
    """RFC 8446 §5.1 ``ContentType``."""

    INVALID = 0
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


class AlertLevel(enum.IntEnum):
    """RFC 8446 §6 ``AlertLevel``."""

    WARNING = 1
    FATAL = 2


class AlertDescription(enum.IntEnum):
    """RFC 8446 §6 ``AlertDescription`` (the ones a server may send a hostile client)."""

    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    ILLEGAL_PARAMETER = 47
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    INAPPROPRIATE_FALLBACK = 86
    USER_CANCELED = 90
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    UNRECOGNIZED_NAME = 112
    CERTIFICATE_REQUIRED = 116
    NO_APPLICATION_PROTOCOL = 120


def alert_name(description: int) -> str:
    """``record_overflow`` for 22; the number itself for a value RFC 8446 does not name."""
    try:
        return AlertDescription(description).name.lower()
    except ValueError:
        return str(description)


class HandshakeType(enum.IntEnum):
    """RFC 8446 §4 ``HandshakeType`` (the two a case meets)."""

    CLIENT_HELLO = 1
    SERVER_HELLO = 2


class Extension(enum.IntEnum):
    """RFC 8446 §4.2 ``ExtensionType`` values the builder sends."""

    SERVER_NAME = 0
    SUPPORTED_GROUPS = 10
    EC_POINT_FORMATS = 11
    SIGNATURE_ALGORITHMS = 13
    ALPN = 16
    PADDING = 21
    SUPPORTED_VERSIONS = 43
    PSK_KEY_EXCHANGE_MODES = 45
    KEY_SHARE = 51


X25519 = 0x001D
SECP256R1 = 0x0017
TLS12 = 0x0303
TLS13 = 0x0304
#: TLS 1.3 suites (RFC 8446 §B.4) then the ECDHE-GCM suites of TLS 1.2.
CIPHER_SUITES = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030)
#: ECDSA P-256, RSA-PSS, RSA PKCS#1 (RFC 8446 §4.2.3): what a test or real cert signs with.
SIGNATURE_ALGORITHMS = (0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601)


def vector(data: bytes, width: int) -> bytes:
    """A TLS vector: ``width`` length bytes, then the data (RFC 8446 §3.4)."""
    return len(data).to_bytes(width, "big") + data


def record(content_type: int, fragment: bytes, version: int = 0x0301) -> bytes:
    """One ``TLSPlaintext`` record. Nothing is checked: a case may want it too long.
    ``legacy_record_version`` 0x0301 is what RFC 8446 §5.1 says a first ClientHello may
    carry ("MAY be 0x0301 for an initial ClientHello")."""
    return (bytes([content_type]) + version.to_bytes(2, "big")
            + len(fragment).to_bytes(2, "big") + fragment)


def handshake_records(message: bytes, fragment_size: int = MAX_PLAINTEXT) -> bytes:
    """``message`` fragmented over records of at most ``fragment_size`` bytes (RFC 8446
    §5.1: "Handshake messages MAY be coalesced into a single TLSPlaintext record or
    fragmented across several records")."""
    size = max(1, fragment_size)
    return b"".join(record(ContentType.HANDSHAKE, message[at:at + size])
                    for at in range(0, len(message), size))


def _extension(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + vector(body, 2)


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


@dataclass(frozen=True)
class HelloSpec:
    """What goes into one ClientHello. ``size`` pads the Handshake message to that many
    bytes with the padding extension (RFC 7685) when it is larger than the message."""

    server_name: str | None = None
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    size: int = 0
    #: The legacy_session_id's length byte and content; RFC 8446 §4.1.2 allows <0..32>.
    session_id_length: int | None = None
    session_id: bytes = b""


def client_hello(spec: HelloSpec, rng: random.Random) -> bytes:
    """The ClientHello ``Handshake`` message (type, 24-bit length, body), not a record."""
    client_random = rng_bytes(rng, 32)
    extensions = _extensions(spec, rng)
    session_length = len(spec.session_id) if spec.session_id_length is None \
        else spec.session_id_length

    def message(exts: bytes) -> bytes:
        body = (TLS12.to_bytes(2, "big") + client_random
                + bytes([session_length & 0xFF]) + spec.session_id
                + vector(_u16s(CIPHER_SUITES), 2) + vector(b"\x00", 1) + vector(exts, 2))
        return bytes([HandshakeType.CLIENT_HELLO]) + vector(body, 3)

    plain = message(extensions)
    if spec.size <= len(plain) + 4:
        return plain
    padding = _extension(Extension.PADDING, bytes(spec.size - len(plain) - 4))
    return message(extensions + padding)


def _extensions(spec: HelloSpec, rng: random.Random) -> bytes:
    parts = []
    if spec.server_name:
        name = spec.server_name.encode("idna")
        parts.append(_extension(Extension.SERVER_NAME, vector(b"\x00" + vector(name, 2), 2)))
    parts.append(_extension(Extension.SUPPORTED_GROUPS, vector(_u16s((X25519, SECP256R1)), 2)))
    parts.append(_extension(Extension.EC_POINT_FORMATS, vector(b"\x00", 1)))
    parts.append(_extension(Extension.SIGNATURE_ALGORITHMS,
                            vector(_u16s(SIGNATURE_ALGORITHMS), 2)))
    if spec.alpn:
        protocols = b"".join(vector(p.encode("ascii"), 1) for p in spec.alpn)
        parts.append(_extension(Extension.ALPN, vector(protocols, 2)))
    parts.append(_extension(Extension.SUPPORTED_VERSIONS, vector(_u16s((TLS13, TLS12)), 1)))
    parts.append(_extension(Extension.PSK_KEY_EXCHANGE_MODES, vector(b"\x01", 1)))
    share = X25519.to_bytes(2, "big") + vector(rng_bytes(rng, 32), 2)
    parts.append(_extension(Extension.KEY_SHARE, vector(share, 2)))
    return b"".join(parts)


def rng_bytes(rng: random.Random, count: int) -> bytes:
    return rng.getrandbits(8 * count).to_bytes(count, "big")


def minimal_client_hello(server_name: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello record: what an https client sends first, as the
    plaintext port's adversarial case sends it (fixed bytes: no PRNG)."""
    sni = vector(vector(b"\x00" + vector(server_name, 2), 2), 2)
    extensions = b"\x00\x00" + sni + b"\x00\x0a" + vector(vector(b"\x00\x1d", 2), 2)
    hello = (b"\x03\x03" + bytes(32) + vector(b"", 1) + vector(b"\xc0\x2f", 2)
             + vector(b"\x00", 1) + vector(extensions, 2))
    return record(ContentType.HANDSHAKE, b"\x01" + vector(hello, 3))


@dataclass(frozen=True)
class Record:
    content_type: int
    version: int
    fragment: bytes


def records(data: bytes) -> Iterator[Record | bytes]:
    """The complete records at the start of ``data``, then (if any) the bytes left over
    that are not a complete record. Never raises."""
    at = 0
    while len(data) - at >= RECORD_HEADER:
        length = int.from_bytes(data[at + 3:at + 5], "big")
        end = at + RECORD_HEADER + length
        if end > len(data):
            break
        yield Record(data[at], int.from_bytes(data[at + 1:at + 3], "big"),
                     data[at + RECORD_HEADER:end])
        at = end
    if at < len(data):
        yield data[at:]
