"""Shared reaction sets and case constructors for the grown WebSocket catalogue modules.

Why a kit: the catalogue is split along concepts (``ws_cases_framing``, ``ws_cases_fragments``,
``ws_cases_utf8``, ``ws_cases_close``), and every module grades the same few shapes of case
the same way. Writing the reaction sets once keeps the RFC reading in one place:

* a frame the server MUST fail (``fail_case``): a Close with the named code, FIN or RST
  passes; a Close with another valid code is lenient (the code is a SHOULD, §7.4.1);
  carrying on or hanging violates.
* a valid message or Ping (``echo_case``, ``ping_case``): the echo or the Pong passes;
  closing instead or staying alive without an echo is the server's choice (lenient); no
  answer at all misses the §5.5.2 MUST for the canary Ping.
* a Close (``close_case``): valid bodies MUST be answered with a Close (§5.5.1); invalid
  bodies pass with any ending that fails the connection.
"""

from __future__ import annotations

from protocols import websocket_quotes as q
from protocols.outcome import Requirement, Severity
from protocols.websocket_case_model import CaseKind, WsCase, WsReaction
from protocols.websocket_frames import CloseCode, Frame, Opcode

FAILED = frozenset({WsReaction.CLOSED_EXPECTED, WsReaction.SILENT_CLOSE, WsReaction.RESET})
#: Another valid code (a SHOULD miss). ``CLOSED_UNDEFINED`` is not here: a code §7.4 does
#: not define breaks §5.5.1 in any case (``websocket_oracle.SERVER_FAULTS``).
ODD_CLOSE = frozenset({WsReaction.CLOSED_OTHER})
ANY_CLOSE = FAILED | ODD_CLOSE
#: A valid message may be refused by policy (any close) or not echoed; only silence fails.
ANSWER_OPTIONAL = ANY_CLOSE | frozenset({WsReaction.ALIVE_NO_ECHO})


def fail_case(
    name: str,
    frames: tuple[Frame, ...],
    rfc: str,
    quote: str,
    *,
    codes: frozenset[int] = frozenset({CloseCode.PROTOCOL_ERROR}),
    bad_payload: bytes = b"",
) -> WsCase:
    """A frame sequence the server MUST fail (HIGH: carrying on lets the violation through)."""
    return WsCase(
        name=name,
        kind=CaseKind.BAD_FRAME,
        frames=frames,
        allowed=FAILED,
        tolerated=ODD_CLOSE,
        rfc=rfc,
        quote=quote,
        requirement=Requirement.MUST,
        severity=Severity.HIGH,
        codes=codes,
        bad_payload=bad_payload,
    )


def echo_case(
    name: str,
    frames: tuple[Frame, ...],
    rfc: str,
    quote: str,
    *,
    may_fail: bool = False,
) -> WsCase:
    """A valid message the echo endpoint sends back; the canary Ping's Pong is the MUST.

    ``may_fail``: the RFC lets the server fail the connection instead (e.g. a length the
    sender encoded against a MUST that binds only the sender), so any close passes.
    """
    allowed = frozenset({WsReaction.RESPONDED}) | (ANY_CLOSE if may_fail else frozenset())
    return WsCase(
        name=name,
        kind=CaseKind.ECHO,
        frames=frames,
        allowed=allowed,
        tolerated=ANSWER_OPTIONAL - allowed,
        rfc=rfc,
        # What fails the case is the canary Ping left unanswered (§5.5.2), hence q.Q_PING.
        quote=f"{quote} [§5.5.2] {q.Q_PING}",
        requirement=Requirement.MUST,
        severity=Severity.MED,
    )


def ping_case(name: str, frames: tuple[Frame, ...], rfc: str, quote: str) -> WsCase:
    """Frames ending in a Ping whose Pong MUST come back with the same payload (§5.5.2)."""
    assert frames[-1].opcode == Opcode.PING, name
    return WsCase(
        name=name,
        kind=CaseKind.PING_FLOOD,
        frames=frames,
        allowed=frozenset({WsReaction.RESPONDED}),
        tolerated=ANSWER_OPTIONAL,
        rfc=rfc,
        quote=quote if quote == q.Q_PING else f"{quote} [§5.5.2] {q.Q_PING}",
        requirement=Requirement.MUST,
        severity=Severity.MED,
    )


def client_close_case(
    name: str, frames: tuple[Frame, ...], rfc: str, quote: str, codes: frozenset[int]
) -> WsCase:
    """A valid Close (possibly with frames around it) the server MUST answer with a Close."""
    return WsCase(
        name=name,
        kind=CaseKind.CLIENT_CLOSE,
        frames=frames,
        allowed=frozenset({WsReaction.CLOSED_EXPECTED, WsReaction.CLOSED_OTHER}),
        # RST can destroy a Close frame already in flight; FIN alone cannot.
        tolerated=frozenset({WsReaction.RESET}),
        rfc=rfc,
        quote=quote if quote == q.Q_CLOSE_REPLY else f"{quote} [§5.5.1] {q.Q_CLOSE_REPLY}",
        requirement=Requirement.MUST,
        severity=Severity.MED,
        codes=codes,
    )


def bad_close_case(
    name: str,
    payload: bytes,
    rfc: str,
    quote: str,
    *,
    codes: frozenset[int] = frozenset({CloseCode.PROTOCOL_ERROR}),
    before: tuple[Frame, ...] = (),
) -> WsCase:
    """A Close whose body breaks a MUST: failing the connection passes, any Close is at
    worst lenient (it still ends the session), silence hangs (HIGH)."""
    return WsCase(
        name=name,
        kind=CaseKind.BAD_CLOSE,
        frames=(*before, Frame(Opcode.CLOSE, payload)),
        allowed=FAILED,
        tolerated=ODD_CLOSE,
        rfc=rfc,
        quote=f"{quote} [§5.5.1] {q.Q_CLOSE_REPLY}",
        requirement=Requirement.MUST,
        severity=Severity.HIGH,
        codes=codes,
    )
