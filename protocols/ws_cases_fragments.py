"""WebSocket catalogue: fragmentation (RFC 6455 §5.4), valid and invalid.

Why these: a fragmented message is a small state machine (start frame, continuations, a
final frame, control frames allowed anywhere in between) and each transition has its own
bug: an orphan continuation taken as a message, a new data frame accepted inside an open
message, a control frame between fragments that resets the reassembly, a fragmented control
frame. Valid shapes (1-byte fragments, empty fragments, Pings and Pongs between fragments)
MUST be reassembled and echoed whole.
"""

from __future__ import annotations

from protocols import websocket_quotes as q
from protocols.websocket_case_model import WsCase
from protocols.websocket_frames import Frame, Opcode, close_payload
from protocols.ws_case_kit import echo_case, fail_case

C = Opcode.CONTINUATION


def _split(opcode: int, data: bytes, sizes: list[int]) -> tuple[Frame, ...]:
    """``data`` as a fragmented message whose fragments have ``sizes`` (the rest last)."""
    frames, pos = [], 0
    for size in sizes:
        frames.append(Frame(opcode if not frames else C, data[pos : pos + size], fin=False))
        pos += size
    frames.append(Frame(opcode if not frames else C, data[pos:]))
    return tuple(frames)


def _valid_cases() -> list[WsCase]:
    cases = []
    text = b"assay-one-byte-fragments"
    for opcode, label in ((Opcode.TEXT, "text"), (Opcode.BINARY, "binary")):
        cases.append(echo_case(f"fragments_1_byte_{label}",
                               _split(opcode, text, [1] * (len(text) - 1)),
                               "RFC 6455 §5.4", q.Q_FRAGMENT))
        msg = f"assay-two-fragments-{label}".encode()
        cases.append(echo_case(f"fragments_two_{label}", _split(opcode, msg, [7]),
                               "RFC 6455 §5.4", q.Q_FRAGMENT))
        empty_first = (Frame(opcode, b"", fin=False), Frame(C, f"assay-ef-{label}".encode()))
        cases.append(echo_case(f"fragments_empty_first_{label}", empty_first,
                               "RFC 6455 §5.4", q.Q_FRAGMENT))
        empty_last = (Frame(opcode, f"assay-el-{label}".encode(), fin=False), Frame(C, b""))
        cases.append(echo_case(f"fragments_empty_last_{label}", empty_last,
                               "RFC 6455 §5.4", q.Q_FRAGMENT))
        all_empty = (Frame(opcode, b"", fin=False), Frame(C, b"", fin=False), Frame(C, b""))
        cases.append(echo_case(f"fragments_all_empty_{label}", all_empty,
                               "RFC 6455 §5.4", q.Q_FRAGMENT))
    between = (
        ("ping", (Frame(Opcode.PING, b"assay-between"),)),
        ("empty_ping", (Frame(Opcode.PING, b""),)),
        ("pong", (Frame(Opcode.PONG, b"assay-between-pong"),)),
        ("ping_pong", (Frame(Opcode.PING, b"assay-b1"), Frame(Opcode.PONG, b"assay-b2"))),
        ("ping_125", (Frame(Opcode.PING, b"assay-125-" + b"m" * 115),)),
        ("five_pings", tuple(Frame(Opcode.PING, b"assay-p%d" % i) for i in range(5))),
    )
    for label, controls in between:
        for opcode, kind in ((Opcode.TEXT, "text"), (Opcode.BINARY, "binary")):
            cases.append(echo_case(
                f"{label}_between_fragments_{kind}",
                (Frame(opcode, b"assay-ctl-", fin=False), *controls,
                 Frame(C, b"mid-", fin=False), *controls, Frame(C, b"end")),
                "RFC 6455 §5.4", q.Q_CONTROL_MIDDLE,
            ))
    cases.append(echo_case(
        "ping_before_first_fragment_ends",
        (Frame(Opcode.TEXT, b"assay-", fin=False), Frame(Opcode.PING, b"assay-x"),
         Frame(C, b"after-ping")),
        "RFC 6455 §5.4", q.Q_CONTROL_MIDDLE,
    ))
    return cases


def _invalid_cases() -> list[WsCase]:
    cases = []
    orphans = (
        ("empty", Frame(C, b"")),
        ("no_fin", Frame(C, b"assay-orphan-nofin", fin=False)),
        ("after_message", None),
    )
    for label, frame in orphans:
        if frame is None:
            frames = (Frame(Opcode.TEXT, b"assay-complete"), Frame(C, b"assay-orphan-after"))
            bad = b"assay-orphan-after"
        else:
            frames, bad = (frame,), frame.payload
        cases.append(fail_case(f"continuation_without_start_{label}", frames,
                               "RFC 6455 §5.4", q.Q_FRAGMENT, bad_payload=bad))
    cases.append(fail_case(
        "continuation_after_finished_fragments",
        (Frame(Opcode.TEXT, b"assay-a-", fin=False), Frame(C, b"assay-b"),
         Frame(C, b"assay-stray")),
        "RFC 6455 §5.4", q.Q_FRAGMENT, bad_payload=b"assay-stray",
    ))
    pairs = ((Opcode.TEXT, Opcode.BINARY, "binary_in_text"),
             (Opcode.BINARY, Opcode.TEXT, "text_in_binary"),
             (Opcode.BINARY, Opcode.BINARY, "binary_in_binary"))
    for first, second, label in pairs:
        cases.append(fail_case(
            f"interleaved_{label}",
            (Frame(first, b"assay-open-", fin=False), Frame(second, b"assay-interleaved-2")),
            "RFC 6455 §5.4", q.Q_INTERLEAVE, bad_payload=b"assay-interleaved-2",
        ))
    cases.append(fail_case(
        "interleaved_unfinished_text_in_text",
        (Frame(Opcode.TEXT, b"assay-open-", fin=False),
         Frame(Opcode.TEXT, b"assay-nested-", fin=False), Frame(C, b"assay-tail")),
        "RFC 6455 §5.4", q.Q_INTERLEAVE, bad_payload=b"assay-nested-",
    ))
    cases.append(fail_case(
        "interleaved_empty_text_in_text",
        (Frame(Opcode.TEXT, b"assay-open-", fin=False), Frame(Opcode.TEXT, b""),
         Frame(C, b"assay-tail2")),
        "RFC 6455 §5.4", q.Q_INTERLEAVE, bad_payload=b"assay-open-assay-tail2",
    ))
    # Control frames MUST NOT be fragmented (§5.5), alone or inside a data message.
    for opcode, label in ((Opcode.PONG, "pong"), (Opcode.PING, "ping")):
        cases.append(fail_case(
            f"fragmented_{label}_three_parts",
            (Frame(opcode, b"assay-f1", fin=False), Frame(C, b"assay-f2", fin=False),
             Frame(C, b"assay-f3")),
            "RFC 6455 §5.5", q.Q_CONTROL, bad_payload=b"assay-f2",
        ))
        cases.append(fail_case(
            f"fragmented_{label}_inside_message",
            (Frame(Opcode.TEXT, b"assay-host-", fin=False),
             Frame(opcode, b"assay-ctl-frag", fin=False), Frame(C, b"assay-host-end")),
            "RFC 6455 §5.5", q.Q_CONTROL, bad_payload=b"assay-host-assay-host-end",
        ))
        cases.append(fail_case(
            f"fragmented_{label}_empty",
            (Frame(opcode, b"", fin=False), Frame(C, b"")),
            "RFC 6455 §5.5", q.Q_CONTROL,
        ))
    cases.append(fail_case("fragmented_pong", (Frame(Opcode.PONG, b"assay-pf", fin=False),
                                               Frame(C, b"assay-pong-rest")),
                           "RFC 6455 §5.5", q.Q_CONTROL, bad_payload=b"assay-pong-rest"))
    cases.append(fail_case(
        "fragmented_close",
        (Frame(Opcode.CLOSE, close_payload(1000, b"assay-"), fin=False),
         Frame(C, b"close-rest")),
        "RFC 6455 §5.5", q.Q_CONTROL,
    ))
    return cases


CASES: tuple[WsCase, ...] = (*_valid_cases(), *_invalid_cases())
