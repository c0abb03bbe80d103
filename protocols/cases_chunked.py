"""Chunked-body cases: chunk-size and chunk-extension grammar, line ends, trailer sections.

How this works: RFC 9112 §7.1 defines ``chunk-size = 1*HEXDIG`` and gives no room for a
sign, a ``0x`` prefix, an underscore or surrounding whitespace. A parser that reads such a
size as a number anyway (``int(x, 16)`` in Python takes ``0x5``, ``+5`` and ``0_5``) frames
differently from one that stops at the first non-hex digit (``0x5`` read as 0): a request
smuggling vector. Those cases therefore carry the smuggled request right after a body that
only a lenient parser sees as complete (``chunk_smuggle``): a server that answers it is
caught by the desync check (HIGH), whatever the grading of the case itself, and a server
that rejects passes.

Where the RFC's own text on a reaction is a SHOULD (RFC 9112 §2.2: "SHOULD respond with a
400 (Bad Request) response and close the connection" for bytes outside the grammar), the
case stays SHOULD and is graded LOW: acceptance is information, misframing is caught by the
canary. Where leniency does not change the size (whitespace around it) no smuggled request
is sent: a server that accepts ``5 `` frames exactly like one that rejects it would have.

Trailer cases: RFC 9110 §6.5.1 forbids merging trailer fields such as Content-Length,
Transfer-Encoding, Host or Authorization into the header section. Merging is invisible
without an echo route, so these are framing cases that allow any refusal or acceptance and
catch only what shows on the wire (a 5xx, a hang, a lost canary, a desync). The
``trailer-merge-*`` cases look for the merge itself (RFC 9112 §7.1.2): a marker field in the
header section, the prohibited field in the trailer section, and ``forbid_merge`` naming
both, so that a body route which echoes the header fields its application saw (refapp's
``POST /echo``) shows whether the trailer field landed among them
(``protocols.trailer_merge``). Refusing the message or discarding the trailer field are both
correct (§7.1.2: a recipient "MAY selectively retain or discard" trailer fields); a route
that echoes no header fields leaves the merge unobserved, never a violation.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    CHUNK,
    CHUNKED,
    HIGH,
    HUGE_BODY,
    LOW,
    MAY,
    MED,
    MUST,
    NOT_IMPL,
    POST,
    REFUSALS,
    REFUSE_OR_ACCEPT,
    SHOULD,
    SMUGGLE,
    AdversarialCase,
    case,
)
from protocols.trailer_merge import FieldMarker

S71, S711 = "RFC 9112 §7.1", "RFC 9112 §7.1.1"


def _chunked(body: bytes) -> b.Builder:
    return b.chunked(body)


def _grammar(name: str, body: bytes, rfc: str = S71, quote: str = q.Q_CHUNK_GRAMMAR,
             allowed: frozenset = REFUSALS, requirement: object = SHOULD) -> AdversarialCase:
    """A chunked body outside the grammar that no parser reads as a different size."""
    severity = MED if requirement is MUST else LOW
    return case(name, CHUNKED, _chunked(body), allowed, requirement, severity, rfc, quote,
                **CHUNK)


def _lenient_size(name: str, size: str, data: bytes = b.BODY) -> AdversarialCase:
    """A chunk-size a lenient integer parser takes as ``len(data)``: the smuggled request
    behind the body is answered only by such a parser."""
    return case(name, CHUNKED, b.chunk_smuggle(size, data), REFUSALS, SHOULD, HIGH, S71,
                q.Q_CHUNK_GRAMMAR, body_defect=True, **POST, **SMUGGLE)


def _trailer(name: str, *lines: bytes, allowed: frozenset = REFUSE_OR_ACCEPT,
             requirement: object = MUST, quote: str = q.Q_TRAILER_MERGE,
             rfc: str = "RFC 9110 §6.5.1") -> AdversarialCase:
    body = b"5\r\nhello\r\n0\r\n" + b"".join(lines) + b"\r\n"
    severity = MED if requirement is MUST else LOW
    return case(name, CHUNKED, _chunked(body), allowed, requirement, severity, rfc, quote,
                **CHUNK)


# Re-graded MED -> LOW: RFC 9112 §2.2 makes the refusal a SHOULD, so a wrong answer is never
# failed; the smuggling variants below carry the weight (desync is HIGH).
OLD: tuple[AdversarialCase, ...] = (
    _grammar("chunk-size-hex-prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-invalid", b"5g\r\nhello\r\n0\r\n\r\n"),
    case("chunk-size-overflow", CHUNKED, b.chunked_then_smuggle("10000000000000005"), HUGE_BODY,
         MUST, HIGH, S71, q.Q_CHUNK_BIG, body_defect=True, **POST, **SMUGGLE),
    _grammar("chunk-data-overrun", b"3\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-bare-lf", b"5\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-data-bare-lf", b"5\r\nhello\n0\r\n\r\n"),
    _grammar("chunk-ext-invalid", b'5;assay="open\r\nhello\r\n0\r\n\r\n', S711, q.Q_CHUNK_EXT),
    _grammar("chunk-ext-bare-lf", b"5;assay\nhello\r\n0\r\n\r\n", S711, q.Q_CHUNK_EXT),
    case("chunk-missing-last", CHUNKED, _chunked(b"5\r\nhello\r\n"), HUGE_BODY, MAY, LOW,
         "RFC 9112 §8", q.Q_INCOMPLETE, body_defect=True, **POST),
)

LENIENT_SIZES: tuple[AdversarialCase, ...] = (
    _lenient_size("chunk-size-0x-smuggle", "0x5"),
    _lenient_size("chunk-size-0x-upper-smuggle", "0X5"),
    _lenient_size("chunk-size-plus-smuggle", "+5"),
    _lenient_size("chunk-size-underscore-smuggle", "0_5"),
    _lenient_size("chunk-size-inner-underscore-smuggle", "5_0", b"a" * 0x50),
    _lenient_size("chunk-size-minus-zero-smuggle", "-0", b""),
    case("chunk-size-overflow-32bit", CHUNKED, b.chunked_then_smuggle("100000005"), HUGE_BODY,
         MUST, HIGH, S71, q.Q_CHUNK_BIG, body_defect=True, **POST, **SMUGGLE),
)

GRAMMAR: tuple[AdversarialCase, ...] = (
    _grammar("chunk-size-leading-space", b" 5\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-trailing-tab", b"5\t\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-empty", b"\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-size-many-digits", b"0000000000000000000005\r\nhello\r\n0\r\n\r\n",
             quote=q.Q_CHUNK_BIG, allowed=REFUSE_OR_ACCEPT, requirement=MAY),
    _grammar("chunk-data-underrun", b"9\r\nhello\r\n0\r\n\r\n"),
    _grammar("chunk-data-no-crlf", b"5\r\nhello0\r\n\r\n"),
    _grammar("chunk-last-bare-lf", b"5\r\nhello\r\n0\n\r\n", rfc="RFC 9112 §2.2",
             quote=q.Q_BARE_LF, allowed=REFUSE_OR_ACCEPT, requirement=MAY),
    _grammar("chunk-size-bare-cr", b"5\rhello\r\n0\r\n\r\n", rfc="RFC 9112 §2.2",
             quote=q.Q_BARE_CR, requirement=MUST),
    _grammar("chunk-ext-bare-cr", b"5;assay=a\rb\r\nhello\r\n0\r\n\r\n", rfc="RFC 9112 §2.2",
             quote=q.Q_BARE_CR, allowed=REFUSE_OR_ACCEPT, requirement=MUST),
    _grammar("chunk-ext-no-name", b"5;=1\r\nhello\r\n0\r\n\r\n", S711, q.Q_CHUNK_EXT),
    _grammar("chunk-ext-oversized", b"5;assay=" + b"a" * 65536 + b"\r\nhello\r\n0\r\n\r\n",
             S711, q.Q_CHUNK_EXT_LIMIT, allowed=REFUSE_OR_ACCEPT, requirement=MAY),
    _grammar("chunk-ext-many", b"5" + b";a" * 4096 + b"\r\nhello\r\n0\r\n\r\n", S711,
             q.Q_CHUNK_EXT_LIMIT, allowed=REFUSE_OR_ACCEPT, requirement=MAY),
)

TRAILERS: tuple[AdversarialCase, ...] = (
    _trailer("trailer-content-length", b"Content-Length: 50\r\n"),
    _trailer("trailer-transfer-encoding", b"Transfer-Encoding: chunked\r\n"),
    _trailer("trailer-host", b"Host: assay-other.invalid\r\n"),
    _trailer("trailer-authorization", b"Authorization: Basic YXNzYXk6YXNzYXk=\r\n"),
    _trailer("trailer-bare-lf", b"X-Assay-Trailer: 1\n", allowed=REFUSE_OR_ACCEPT,
             requirement=MAY, quote=q.Q_BARE_LF, rfc="RFC 9112 §2.2"),
    _trailer("trailer-no-colon", b"X-Assay-Trailer 1\r\n", allowed=REFUSALS,
             requirement=SHOULD, quote=q.Q_GRAMMAR, rfc="RFC 9112 §2.2"),
    _trailer("trailer-obs-fold", b"X-Assay-Trailer: a\r\n", b" b\r\n",
             allowed=REFUSE_OR_ACCEPT, quote=q.Q_OBS_FOLD, rfc="RFC 9112 §5.2"),
)

#: The field a ``trailer-merge-*`` case carries in its header section (value: ``hdr-<name>``).
ECHO_MARKER = b"X-Assay-Echo"


def _merge(name: str, trailer: FieldMarker, **extra: object) -> AdversarialCase:
    """A valid chunked POST: ``X-Assay-Echo: hdr-<name>`` in the header section, ``trailer``
    in the trailer section; the echoed header fields must not hold ``trailer``."""
    header = (ECHO_MARKER, b"hdr-" + name.encode("ascii"))
    body = b"5\r\nhello\r\n0\r\n" + trailer[0] + b": " + trailer[1] + b"\r\n\r\n"
    build = b.post("Transfer-Encoding: chunked", f"{ECHO_MARKER.decode()}: {header[1].decode()}",
                   body=body)
    return case(name, CHUNKED, build, REFUSE_OR_ACCEPT, MUST, MED, "RFC 9112 §7.1.2",
                q.Q_TRAILER_NO_MERGE, forbid_merge=(header, trailer), **CHUNK, **extra)


MERGE: tuple[AdversarialCase, ...] = (
    _merge("trailer-merge-content-length", (b"Content-Length", b"31337")),
    # A coding the server does not know, so a merge is told apart from the header's
    # ``chunked``; RFC 9112 §6.1 names 501 for an unknown coding (h11 answers it here too).
    _merge("trailer-merge-transfer-encoding", (b"Transfer-Encoding", b"assay-trailer"),
           rejection_statuses=NOT_IMPL),
    _merge("trailer-merge-host", (b"Host", b"assay-trailer.invalid")),
    _merge("trailer-merge-authorization", (b"Authorization", b"Bearer assay-trailer-auth")),
)

CASES: tuple[AdversarialCase, ...] = OLD + LENIENT_SIZES + GRAMMAR + TRAILERS + MERGE
