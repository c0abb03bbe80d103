"""The h2 slice's judge: (case, frames received, how the read ended) -> reaction and verdict.

How this works: ``H2Oracle`` is fed the server's frames as they arrive (``feed``) and says
when the answer is decided (``decided``): a GOAWAY, a close, garbage, or the answer to the
PING the walker sends after every case (frames are processed in order, §5, so whatever the
case provoked comes before that PING's ACK). For a malformed request the stream's own
outcome (RST_STREAM or a final response) may lag the PING ACK (the application answers), so
the oracle keeps reading until the stream settles or the walker's grace runs out.
``finish(ending)`` then reduces what was seen to one ``H2Reaction`` and judges it:

* connection error: GOAWAY with the code the RFC names (or a generic one, §5.4), or a close
  without GOAWAY (h2spec accepts both), passes; GOAWAY with another code is lenient.
* stream error: RST_STREAM with the code, or any connection error (§5.4.1 "An endpoint can
  end a connection at any time"), passes; another RST code is lenient.
* ignore: only "the PING is still answered, nothing reset or closed" passes.
* malformed: a reset, a close or a 4xx passes; a 2xx/3xx is the server serving it (HIGH).

Never raises: any input (garbage frames, undecodable header blocks) yields a judgement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import hpack

from protocols import h2_frames as fr
from protocols.h2_case_model import Expect, H2Case, H2Reaction
from protocols.outcome import Requirement, Severity, Verdict

R = H2Reaction
SLICE = "h2"
#: Every MED miss (a MUST-level reaction not seen): I-H2-MUST.
MUST_COUNTER = f"{SLICE}.must_violation"
#: A malformed request served with 2xx/3xx: I-H2-ACCEPTED (HIGH).
ACCEPTED_COUNTER = f"{SLICE}.accepted_malformed"
#: Informational: a SHOULD/MAY missed or an allowed race (never fails a run).
LENIENT_COUNTER = f"{SLICE}.lenient"
COUNTER_SEVERITY = {MUST_COUNTER: Severity.MED, ACCEPTED_COUNTER: Severity.HIGH,
                    LENIENT_COUNTER: Severity.LOW}

_CONNECTION_PASS = frozenset({R.GOAWAY_EXPECTED, R.CLOSED})
_ERROR_LENIENT = frozenset({R.GOAWAY_OTHER, R.GOAWAY_GRACEFUL, R.RST_OTHER, R.SERVER_ERROR})
ALLOWED: dict[Expect, frozenset[H2Reaction]] = {
    Expect.CONNECTION_ERROR: _CONNECTION_PASS,
    Expect.STREAM_ERROR: _CONNECTION_PASS | {R.RST_EXPECTED},
    Expect.IGNORE: frozenset({R.ALIVE}),
    Expect.MALFORMED: _CONNECTION_PASS | {R.RST_EXPECTED, R.REFUSED},
    Expect.MALFORMED_LATE: _CONNECTION_PASS | {R.RST_EXPECTED, R.REFUSED},
}
#: Graded lenient whatever the case: the server reported an error, with another code than
#: the RFC names (a SHOULD-level detail next to the MUST of reacting at all), or shut down
#: gracefully. For IGNORE cases only a graceful GOAWAY is lenient (§5.4.1: a connection can
#: end at any time); an error report there is a violation.
LENIENT: dict[Expect, frozenset[H2Reaction]] = {
    Expect.CONNECTION_ERROR: _ERROR_LENIENT,
    Expect.STREAM_ERROR: _ERROR_LENIENT,
    Expect.IGNORE: frozenset({R.GOAWAY_GRACEFUL}),
    Expect.MALFORMED: _ERROR_LENIENT,
    Expect.MALFORMED_LATE: _ERROR_LENIENT,
}
_MALFORMED = (Expect.MALFORMED, Expect.MALFORMED_LATE)


@dataclass(frozen=True)
class H2Judgement:
    reaction: H2Reaction
    verdict: Verdict
    detail: str
    #: The counter this judgement moves (None for a pass or an unjudged answer).
    counter: str | None = None
    error_code: int | None = None
    status: int | None = None


@dataclass
class H2Oracle:
    """Feed frames as they come; ``finish`` once ``decided`` or at the deadline."""

    case: H2Case
    #: Opaque data of the PING sent after the case.
    canary: bytes
    #: Streams that are not the case's (stream 1 of an h2c upgrade).
    skip_streams: frozenset[int] = frozenset()
    goaway: fr.Frame | None = None
    rst_code: int | None = None
    status: int | None = None
    final_response: bool = False
    alive: bool = False
    echoed: bool = False
    undecodable: bool = False
    frames_seen: int = 0
    _decoder: hpack.Decoder = field(default_factory=hpack.Decoder)
    _block: bytearray = field(default_factory=bytearray)
    _block_stream: int = 0

    def feed(self, frames: Iterable[fr.Frame]) -> None:
        for frame in frames:
            self.frames_seen += 1
            try:
                self._one(frame)
            except Exception:  # a judge that raises on server bytes would be a harness bug
                self.undecodable = True

    def _one(self, frame: fr.Frame) -> None:
        kind = frame.type
        if kind == fr.FrameType.GOAWAY and self.goaway is None:
            self.goaway = frame
        elif kind == fr.FrameType.PING and frame.flags & fr.FLAG_ACK:
            if frame.payload == self.canary:
                self.alive = True
            elif self.case.never_echo and frame.payload == self.case.never_echo:
                self.echoed = True
        elif kind == fr.FrameType.RST_STREAM and frame.stream_id not in self.skip_streams:
            code = frame.error_code()
            if code not in (None, fr.ErrorCode.NO_ERROR) and self.rst_code is None:
                self.rst_code = code
        elif kind in (fr.FrameType.HEADERS, fr.FrameType.CONTINUATION):
            self._header_fragment(frame)
        elif kind == fr.FrameType.PUSH_PROMISE:
            self._header_fragment(frame, promise=True)

    def _header_fragment(self, frame: fr.Frame, promise: bool = False) -> None:
        """Decode response field blocks in order (one HPACK context per connection, §4.3)."""
        if frame.type == fr.FrameType.CONTINUATION:
            if frame.stream_id != self._block_stream or not self._block:
                self._block.clear()
                return
            self._block += frame.payload
        else:
            self._block = bytearray(fr.field_block_fragment(frame))
            self._block_stream = frame.stream_id
        if not frame.flags & fr.FLAG_END_HEADERS:
            return
        block, stream = bytes(self._block), self._block_stream
        self._block.clear()
        try:
            fields = self._decoder.decode(block)
        except Exception:  # garbage from the server: status unknown, reported as such
            self.undecodable = True
            return
        if promise or stream in self.skip_streams or stream == 0:
            return
        status = _status(fields)
        if status is not None and status >= 200 and self.status is None:
            self.status = status
            self.final_response = True

    @property
    def decided(self) -> bool:
        if self.goaway is not None or self.echoed:
            return True
        if not self.alive:
            return False
        if self.case.expect in _MALFORMED:
            return self.rst_code is not None or self.final_response
        return True

    def finish(self, ending: str, garbage: str = "") -> H2Judgement:
        """``ending``: "eof", "reset", "open" (deadline) or "cap"; ``garbage``: the frame
        reader's problem, if any."""
        reaction, code = self._reaction(ending, garbage)
        return _judge(self.case, reaction, code, self.status, self._detail(reaction, ending,
                                                                           garbage))

    def _reaction(self, ending: str, garbage: str) -> tuple[H2Reaction, int | None]:
        expect = self.case.expect
        accepted = self.status is not None and 200 <= self.status < 400
        if expect is Expect.MALFORMED and accepted:
            return R.ACCEPTED, None
        if self.echoed:  # the one reaction a never-answer case forbids, whatever follows
            return R.PING_ECHOED, None
        if self.goaway is not None:
            code = self.goaway.error_code()
            if code == fr.ErrorCode.NO_ERROR:
                return R.GOAWAY_GRACEFUL, code
            if code in self.case.accepted_codes():
                return R.GOAWAY_EXPECTED, code
            return R.GOAWAY_OTHER, code
        if self.rst_code is not None:
            expected = self.rst_code in self.case.accepted_codes()
            return (R.RST_EXPECTED if expected else R.RST_OTHER), self.rst_code
        if expect in _MALFORMED and self.status is not None:
            if 400 <= self.status < 500:
                return R.REFUSED, None
            if self.status >= 500:
                return R.SERVER_ERROR, None
        if garbage:
            return R.GARBAGE, None
        if ending in ("eof", "reset"):
            return R.CLOSED, None
        if ending == "cap":
            return R.OVERFLOW, None
        if expect is Expect.MALFORMED_LATE and accepted:
            return R.ACCEPTED, None
        return (R.ALIVE if self.alive else R.HANG), None

    def _detail(self, reaction: H2Reaction, ending: str, garbage: str) -> str:
        parts = [f"{reaction.value} after {self.frames_seen} frame(s), read ended: {ending}"]
        if self.goaway is not None:
            parts.append(f"first GOAWAY: {self.goaway.describe()}")
        if self.rst_code is not None:
            parts.append(f"RST_STREAM code {_code_name(self.rst_code)}")
        if self.status is not None:
            parts.append(f"response status {self.status}")
        if garbage:
            parts.append(f"garbage: {garbage}")
        if self.undecodable:
            parts.append("a response field block did not decode")
        return "; ".join(parts)


def _judge(case: H2Case, reaction: H2Reaction, code: int | None, status: int | None,
           detail: str) -> H2Judgement:
    if reaction is R.OVERFLOW:
        return H2Judgement(reaction, Verdict.UNJUDGED, detail, None, code, status)
    if case.preface is not None and reaction is R.GARBAGE:
        # §3.4: "an invalid preface indicates that the peer is not using HTTP/2": a server
        # answering in HTTP/1.1 (and closing) treats it as the error it is.
        return H2Judgement(reaction, Verdict.PASS, detail, None, code, status)
    if reaction in ALLOWED[case.expect]:
        return H2Judgement(reaction, Verdict.PASS, detail, None, code, status)
    lenient = (reaction in LENIENT[case.expect] or reaction in case.tolerated
               or case.requirement is not Requirement.MUST)
    if lenient:
        return H2Judgement(reaction, Verdict.LENIENT, detail, LENIENT_COUNTER, code, status)
    served_high = reaction is R.ACCEPTED and case.severity is Severity.HIGH
    counter = ACCEPTED_COUNTER if served_high else MUST_COUNTER
    return H2Judgement(reaction, Verdict.VIOLATION, detail, counter, code, status)


def _status(fields: list[tuple[object, object]]) -> int | None:
    for name, value in fields:
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if key == ":status":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return int(text) if text.isdigit() else None
    return None


def _code_name(code: int) -> str:
    member = fr.ErrorCode._value2member_map_.get(code)
    return member.name if member is not None else hex(code)
