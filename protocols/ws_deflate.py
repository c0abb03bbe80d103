"""permessage-deflate (RFC 7692) for a hostile client: the offer, the answer, the codec.

How this works, in three parts:

* The offer. ``DeflateOffer`` is one ``permessage-deflate`` element of the client's
  ``Sec-WebSocket-Extensions`` header, with the four parameters RFC 7692 §7.1 defines.
  Each deflate case offers its own variant, so one run covers the parameters a server may
  be asked to honour.
* The answer. ``negotiate(offer, values)`` reads every ``Sec-WebSocket-Extensions`` value of
  the 101 and says: declined (no ``permessage-deflate`` in it; the cases are then not
  applicable), accepted with the agreed ``DeflateParams``, or invalid, with the sentence the
  answer breaks. RFC 7692 §7: "A client MUST _Fail the WebSocket Connection_ if the peer
  server accepted an extension negotiation offer for this extension with an extension
  negotiation response meeting any of the following conditions" (``Q_RESPONSE``).
* The codec. ``Deflater`` compresses one message the way §7.2.1 says (DEFLATE, then the
  trailing ``00 00 ff ff`` of the sync flush removed); ``Inflater`` undoes it per §7.2.2
  ("Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload of the message",
  then inflate) with a cap on the output, because a server's compressed answer is no more
  trusted than its frames. Both keep the LZ77 window between messages unless the agreed
  parameters say "no context takeover".

zlib cannot compress with an 8-bit raw window (it silently uses 9), so a client window of 8
is honoured with stored blocks (level 0), which refer to no window at all. Nothing here does
I/O.
"""

from __future__ import annotations

import enum
import functools
import re
import zlib
from dataclasses import dataclass

EXTENSION = "permessage-deflate"
#: RFC 7692 §7.2.1: the sync-flush marker a sender removes and a receiver appends back.
TAIL = b"\x00\x00\xff\xff"
#: RFC 7692 §7.1.2.1/§7.1.2.2: window bits are a decimal integer 8..15, no leading zero.
_BITS = re.compile(r"^(8|9|1[0-5])$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

Q_RESPONSE = (
    "A client MUST _Fail the WebSocket Connection_ if the peer server accepted an extension "
    "negotiation offer for this extension with an extension negotiation response meeting any "
    "of the following conditions: * The negotiation response contains an extension parameter "
    "not defined for use in a response. * The negotiation response contains an extension "
    "parameter with an invalid value. * The negotiation response contains multiple extension "
    "parameters with the same name. * The client does not support the configuration that "
    "the response represents."
)
Q_CLIENT_BITS = (
    "If a received extension negotiation offer doesn't have the \"client_max_window_bits\" "
    "extension parameter, the corresponding extension negotiation response to the offer MUST "
    "NOT include the \"client_max_window_bits\" extension parameter."
)
Q_SERVER_BITS = (
    "A server accepts an extension negotiation offer with this parameter by including the "
    "\"server_max_window_bits\" extension parameter in the extension negotiation response to "
    "send back to the client with the same or smaller value as the offer. [§7] A client MUST "
    "_Fail the WebSocket Connection_ if ... * The client does not support the configuration "
    "that the response represents."
)
Q_UNOFFERED = (
    "the use of an extension that was not present in the client's handshake (the server has "
    "indicated an extension not requested by the client), the client MUST _Fail the "
    "WebSocket Connection_."
)


@dataclass(frozen=True)
class DeflateOffer:
    """One ``permessage-deflate`` offer (RFC 7692 §7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    #: True offers the parameter without a value ("I can honour any window you pick").
    client_max_window_bits: int | bool = False

    def header(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value that carries this offer."""
        parts = [EXTENSION]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is True:
            parts.append("client_max_window_bits")
        elif self.client_max_window_bits:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


@dataclass(frozen=True)
class DeflateParams:
    """The agreed parameters: what each side's compressor may do (RFC 7692 §7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    #: The window the server compresses with at most (15 when the answer names none).
    server_max_window_bits: int = 15
    #: The window our compressor may use at most.
    client_max_window_bits: int = 15


class Status(enum.Enum):
    #: No permessage-deflate in the answer: the deflate cases do not apply to this server.
    DECLINED = "declined"
    ACCEPTED = "accepted"
    #: The answer breaks RFC 7692 §7 (or RFC 6455 §9.1): a MUST the server missed.
    INVALID = "invalid"


@dataclass(frozen=True)
class Negotiation:
    status: Status
    params: DeflateParams | None = None
    problem: str = ""
    rfc: str = ""
    quote: str = ""


def _split_params(element: str) -> tuple[str, list[tuple[str, str | None]]] | str:
    """``name; p1; p2=v`` into (name, params); a string says why it does not parse."""
    name, *raw = (part.strip() for part in element.split(";"))
    params: list[tuple[str, str | None]] = []
    for item in raw:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]  # RFC 6455 §9.1: a quoted-string value is allowed
        if not _TOKEN.match(key) or (eq and not value):
            return f"malformed extension parameter {item!r}"
        params.append((key.lower(), value if eq else None))
    if not _TOKEN.match(name):
        return f"malformed extension name {name!r}"
    return name.lower(), params


def negotiate(offer: DeflateOffer, values: list[bytes]) -> Negotiation:
    """Read the 101's ``Sec-WebSocket-Extensions`` values against our single offer."""
    text = ",".join(v.decode("latin-1") for v in values)
    elements = [e.strip() for e in text.split(",") if e.strip()]
    if not elements:
        return Negotiation(Status.DECLINED)
    parsed = []
    for element in elements:
        split = _split_params(element)
        if isinstance(split, str):
            return _invalid(split, "RFC 7692 §7", Q_RESPONSE)
        parsed.append(split)
    names = [name for name, _ in parsed]
    others = [n for n in names if n != EXTENSION]
    if others:
        return _invalid(f"extension {others[0]!r} was never offered", "RFC 6455 §9.1",
                        Q_UNOFFERED)
    if len(parsed) > 1:
        return _invalid("permessage-deflate accepted twice for one offer", "RFC 7692 §7",
                        Q_RESPONSE)
    return _accepted(offer, parsed[0][1])


def _accepted(offer: DeflateOffer, params: list[tuple[str, str | None]]) -> Negotiation:
    seen: set[str] = set()
    agreed: dict[str, object] = {}
    for key, value in params:
        if key in seen:
            return _invalid(f"parameter {key} twice", "RFC 7692 §7", Q_RESPONSE)
        seen.add(key)
        if key in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return _invalid(f"{key} with a value ({value!r})", "RFC 7692 §7", Q_RESPONSE)
            agreed[key] = True
        elif key in ("server_max_window_bits", "client_max_window_bits"):
            if value is None or not _BITS.match(value):
                return _invalid(f"{key}={value!r} is not 8..15", "RFC 7692 §7", Q_RESPONSE)
            agreed[key] = int(value)
        else:
            return _invalid(f"parameter {key!r} is not defined for a response", "RFC 7692 §7",
                            Q_RESPONSE)
    client_bits = agreed.get("client_max_window_bits")
    if client_bits is not None and offer.client_max_window_bits is False:
        return _invalid("client_max_window_bits in the answer to an offer without it",
                        "RFC 7692 §7.1.2.2", Q_CLIENT_BITS)
    if isinstance(offer.client_max_window_bits, int) and offer.client_max_window_bits > 1:
        if client_bits is not None and int(str(client_bits)) > offer.client_max_window_bits:
            return _invalid("client_max_window_bits larger than offered", "RFC 7692 §7",
                            Q_RESPONSE)
    server_bits = agreed.get("server_max_window_bits")
    wanted = offer.server_max_window_bits
    if wanted is not None and server_bits is not None and int(str(server_bits)) > wanted:
        return _invalid(f"server_max_window_bits={server_bits} exceeds the offered {wanted}",
                        "RFC 7692 §7.1.2.1, §7", Q_SERVER_BITS)
    result = DeflateParams(
        server_no_context_takeover=bool(agreed.get("server_no_context_takeover", False)),
        # RFC 7692 §7.1.1.2: once we offered it we keep to it, whatever the answer says.
        client_no_context_takeover=bool(agreed.get("client_no_context_takeover", False))
        or offer.client_no_context_takeover,
        server_max_window_bits=int(str(server_bits or 15)),
        client_max_window_bits=int(str(client_bits or 15)),
    )
    return Negotiation(Status.ACCEPTED, result)


def _invalid(problem: str, rfc: str, quote: str) -> Negotiation:
    return Negotiation(Status.INVALID, problem=problem, rfc=rfc, quote=quote)


# --- the codec ---------------------------------------------------------------------------


class Deflater:
    """Compresses whole messages for one direction (RFC 7692 §7.2.1)."""

    def __init__(self, window_bits: int = 15, no_context_takeover: bool = False) -> None:
        self._bits = window_bits
        self._reset = no_context_takeover
        self._obj = self._new()

    def _new(self) -> zlib._Compress:
        if self._bits < 9:
            return zlib.compressobj(0, zlib.DEFLATED, -9)  # stored blocks: no window used
        return zlib.compressobj(9, zlib.DEFLATED, -self._bits)

    def compress(self, message: bytes) -> bytes:
        """The payload of one compressed message (the sync-flush tail removed)."""
        if self._reset:
            self._obj = self._new()
        out = self._obj.compress(message) + self._obj.flush(zlib.Z_SYNC_FLUSH)
        return out[: -len(TAIL)] if out.endswith(TAIL) else out


@dataclass(frozen=True)
class Inflated:
    data: bytes
    #: Why the payload does not inflate ("" when it does).
    error: str = ""
    #: The output passed the cap: ``data`` holds only its first ``limit`` bytes.
    over_limit: bool = False


class Inflater:
    """Inflates whole messages from one direction, never past a caller's cap (§7.2.2)."""

    def __init__(self, window_bits: int = 15, no_context_takeover: bool = False) -> None:
        self._bits = max(window_bits, 8)
        self._reset = no_context_takeover
        self._obj = zlib.decompressobj(-self._bits)
        self.broken = False

    def inflate(self, payload: bytes, limit: int) -> Inflated:
        """One message's payload, with the §7.2.2 tail appended, inflated up to ``limit``."""
        if self.broken:
            return Inflated(b"", "an earlier message did not inflate")
        if self._reset:
            self._obj = zlib.decompressobj(-self._bits)
        # Output in window-sized steps: zlib checks a distance against the window only when
        # it reaches back past the current output buffer, so one big buffer would let a
        # server's too-large window pass unnoticed.
        step = 1 << self._bits
        pending, out = payload + TAIL, bytearray()
        try:
            while len(out) <= limit:
                want = min(step, limit + 1 - len(out))
                chunk = self._obj.decompress(pending, want)
                out += chunk
                pending = self._obj.unconsumed_tail
                if not pending and len(chunk) < want:
                    break
        except zlib.error as exc:
            self.broken = True
            return Inflated(b"", f"invalid deflate data: {exc}")
        data = bytes(out)
        if len(data) > limit or pending:
            self.broken = True
            return Inflated(data[:limit], over_limit=True)
        return Inflated(data)


@functools.cache
def zeros_bomb(size: int) -> bytes:
    """A compressed message payload that inflates to ``size`` zero bytes (about 1/1000).

    One MiB of zeros is compressed once and ended with a full flush, which byte-aligns the
    output and forgets the window, so the same segment can simply be repeated.
    """
    segment_size = 1 << 20
    obj = zlib.compressobj(9, zlib.DEFLATED, -9)
    segment = obj.compress(bytes(segment_size)) + obj.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, segment_size)
    tail_obj = zlib.compressobj(9, zlib.DEFLATED, -9)
    tail = tail_obj.compress(bytes(rest)) + tail_obj.flush(zlib.Z_SYNC_FLUSH)
    out = segment * whole + tail
    return out[: -len(TAIL)] if out.endswith(TAIL) else out
