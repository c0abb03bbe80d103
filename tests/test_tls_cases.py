"""TLS-level catalogue, ClientHello builder and judge: bytes only, no sockets."""

from __future__ import annotations

import random
import ssl

import pytest

from protocols.tls_cases import (
    BY_NAME,
    CASES,
    OVERFLOW_RECORD,
    OVERSIZED_HELLO,
    CaseInput,
    Delivery,
    Leave,
    drip_interval,
    dripped_bytes,
)
from protocols.tls_hello import (
    MAX_CIPHERTEXT_TLS12,
    MAX_PLAINTEXT,
    AlertDescription,
    ContentType,
    Extension,
    HelloSpec,
    Record,
    alert_name,
    client_hello,
    handshake_records,
    record,
    records,
)
from protocols.tls_judge import (
    Reaction,
    ReactionKind,
    Transport,
    Verdict,
    judge,
    observe,
    reply_complete,
)


def _input(seed: int = 1, server_name: str | None = "localhost") -> CaseInput:
    return CaseInput(server_name, "localhost:8443", "/health", random.Random(seed))


def _extensions(message: bytes) -> dict[int, bytes]:
    """Parse a ClientHello message back into its extensions (a test-side reader)."""
    assert message[0] == 1 and int.from_bytes(message[1:4], "big") == len(message) - 4
    at = 4 + 2 + 32
    at += 1 + message[at]  # session id
    at += 2 + int.from_bytes(message[at:at + 2], "big")  # cipher suites
    at += 1 + message[at]  # compression
    end = at + 2 + int.from_bytes(message[at:at + 2], "big")
    assert end == len(message)
    at += 2
    found = {}
    while at < end:
        kind = int.from_bytes(message[at:at + 2], "big")
        size = int.from_bytes(message[at + 2:at + 4], "big")
        found[kind] = message[at + 4:at + 4 + size]
        at += 4 + size
    assert at == end
    return found


def _reassemble(data: bytes) -> bytes:
    parts = list(records(data))
    assert all(isinstance(p, Record) and p.content_type == ContentType.HANDSHAKE
               for p in parts)
    return b"".join(p.fragment for p in parts)  # type: ignore[union-attr]


def test_client_hello_carries_what_a_modern_client_offers() -> None:
    message = client_hello(HelloSpec(server_name="localhost"), random.Random(3))
    extensions = _extensions(message)
    assert b"localhost" in extensions[Extension.SERVER_NAME]
    assert b"\x02h2\x08http/1.1" in extensions[Extension.ALPN]
    assert extensions[Extension.SUPPORTED_VERSIONS] == b"\x04\x03\x04\x03\x03"
    share = extensions[Extension.KEY_SHARE]
    assert share[2:4] == b"\x00\x1d" and len(share) == 2 + 2 + 2 + 32
    # the same seed gives the same bytes (runs replay); another seed another key share
    assert client_hello(HelloSpec(server_name="localhost"), random.Random(3)) == message
    other = client_hello(HelloSpec(server_name="localhost"), random.Random(4))
    assert _extensions(other)[Extension.KEY_SHARE] != share
    assert Extension.SERVER_NAME not in _extensions(client_hello(HelloSpec(), random.Random(3)))


def test_padding_reaches_the_size_and_big_hellos_span_records() -> None:
    message = client_hello(HelloSpec(server_name="x", size=OVERSIZED_HELLO), random.Random(1))
    assert len(message) == OVERSIZED_HELLO > 32 * 1024
    assert Extension.PADDING in _extensions(message)
    wire = BY_NAME["oversized_hello"].build(_input())
    parts = list(records(wire))
    assert len(parts) == 3 and all(len(p.fragment) <= MAX_PLAINTEXT for p in parts)  # type: ignore[union-attr]
    assert len(_reassemble(wire)) == OVERSIZED_HELLO


def test_bent_cases_are_bent_where_they_say() -> None:
    overflow = BY_NAME["record_overflow"].build(_input())
    (only,) = list(records(overflow))
    # over TLS 1.2's bound too (RFC 5246 §6.2.3: 2^14 + 2048): a record under it may be
    # read by a server that takes the ClientHello by TLS 1.2's rules
    assert isinstance(only, Record)
    assert len(only.fragment) == OVERFLOW_RECORD > MAX_CIPHERTEXT_TLS12
    session = _reassemble(BY_NAME["huge_session_id"].build(_input()))
    assert session[4 + 2 + 32] == 255
    garbage = list(records(BY_NAME["garbage_record"].build(_input())))
    assert isinstance(garbage[0], Record) and garbage[0].content_type == 0x63
    plain = BY_NAME["plaintext_http"].build(_input())
    assert plain.startswith(b"GET /health HTTP/1.1\r\nHost: localhost:8443\r\n")


def test_catalogue_is_consistent() -> None:
    assert len(BY_NAME) == len(CASES) >= 10
    for case in CASES:
        assert case.rfc.startswith("RFC 8446 §") and '"' in case.quote
        assert case.requirement == ("MUST" if case.must_terminate else "invariant")
        assert case.must_terminate == (case.expected_alert is not None)
        assert case.control_during == (case.delivery is not Delivery.WHOLE)
        assert case.build(_input(5)) == case.build(_input(5))
    assert BY_NAME["stalled_hello"].leave is Leave.RST_AFTER_SEND


def test_valid_hello_is_answered_by_a_real_tls_server() -> None:
    """OpenSSL (through a memory BIO, no socket) answers the builder's ClientHello with a
    ServerHello: the cases' valid hellos are hellos a server accepts."""
    from tests.tls_certs import test_certs

    certs = test_certs()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    for name in ("dripped_hello", "oversized_hello"):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        server = context.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(BY_NAME[name].build(_input()))
        with pytest.raises(ssl.SSLWantReadError):
            server.do_handshake()
        answer = outgoing.read()
        assert observe(answer, Transport.OPEN).kind is ReactionKind.SERVER_HELLO, name


def test_records_never_raise_whole_byte_by_byte_and_with_trailing_data() -> None:
    alert = record(ContentType.ALERT, b"\x02\x16", 0x0303)
    hello = handshake_records(b"\x02" + bytes(60))
    stream = alert + hello
    assert list(records(stream)) == [Record(21, 0x0303, b"\x02\x16"),
                                     Record(22, 0x0301, b"\x02" + bytes(60))]
    for cut in range(len(stream) + 1):  # byte by byte: every prefix splits back into itself
        parts = list(records(stream[:cut]))
        rebuilt = b"".join(p if isinstance(p, bytes) else record(p.content_type, p.fragment,
                                                                  p.version) for p in parts)
        assert rebuilt == stream[:cut]
    assert list(records(alert + b"\x17\x03"))[-1] == b"\x17\x03"


@pytest.mark.parametrize(("data", "transport", "kind"), [
    (b"", Transport.EOF, ReactionKind.CLOSED),
    (b"", Transport.RESET, ReactionKind.RESET),
    (b"", Transport.OPEN, ReactionKind.SILENT),
    (b"", Transport.NOT_READ, ReactionKind.NOT_READ),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", Transport.EOF, ReactionKind.HTTP),
    (b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", Transport.OPEN, ReactionKind.SERVER_HELLO),
    (b"\x16\x03\x03\x00\x50\x02\x00", Transport.EOF, ReactionKind.SERVER_HELLO),
    (b"\x15\x03\x03\x00\x02\x02\x32", Transport.EOF, ReactionKind.ALERT),
    (b"\x16\x09\x09\x00\x01\x02", Transport.EOF, ReactionKind.OTHER),
    (b"\x17\x03\x03\x00\x01\x00", Transport.EOF, ReactionKind.OTHER),
    (b"SSH-2.0-x\r\n", Transport.EOF, ReactionKind.OTHER),
])
def test_observe(data: bytes, transport: Transport, kind: ReactionKind) -> None:
    assert observe(data, transport).kind is kind


def test_alert_is_read_with_level_and_description() -> None:
    reaction = observe(b"\x15\x03\x03\x00\x02\x02\x16", Transport.EOF)
    assert (reaction.alert_level, reaction.alert_description) == (2, 22)
    assert reaction.describe() == "alert record_overflow (level 2)"
    assert alert_name(200) == "200"


def test_observe_and_reply_complete_take_any_bytes() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 24)))
        if rng.random() < 0.5:
            data = bytes([rng.choice((21, 22)), 3, 3]) + data
        for transport in Transport:
            assert isinstance(observe(data, transport), Reaction)
        assert isinstance(reply_complete(data), bool)


def test_reply_complete_waits_for_a_whole_first_record() -> None:
    alert = b"\x15\x03\x03\x00\x02\x02\x16"
    assert [reply_complete(alert[:n]) for n in range(len(alert) + 1)] == [False] * 7 + [True]
    assert not reply_complete(b"HTTP/1.1 400") and reply_complete(b"HTTP/1.1 400 Bad\r\n")
    assert reply_complete(b"\x00junk")


ALERT = Reaction(ReactionKind.ALERT, 2, AlertDescription.RECORD_OVERFLOW)


@pytest.mark.parametrize(("reaction", "verdict"), [
    (Reaction(ReactionKind.SERVER_HELLO), Verdict.VIOLATION),
    (ALERT, Verdict.PASS),
    (Reaction(ReactionKind.ALERT, 2, AlertDescription.DECODE_ERROR), Verdict.LENIENT),
    (Reaction(ReactionKind.ALERT, 1, AlertDescription.RECORD_OVERFLOW), Verdict.LENIENT),
    (Reaction(ReactionKind.CLOSED), Verdict.LENIENT),
    (Reaction(ReactionKind.RESET), Verdict.LENIENT),
    (Reaction(ReactionKind.SILENT), Verdict.LENIENT),
    (Reaction(ReactionKind.HTTP, detail="HTTP/1.1 400"), Verdict.LENIENT),
])
def test_a_must_terminate_case_fails_only_on_a_server_hello(reaction: Reaction,
                                                            verdict: Verdict) -> None:
    judgement = judge(BY_NAME["record_overflow"], reaction)
    assert judgement.verdict is verdict
    if verdict is Verdict.VIOLATION:
        assert "record_overflow" in judgement.reason and "ServerHello" in judgement.reason


def test_nginx_answering_http_on_its_tls_port_is_never_a_failure() -> None:
    reaction = observe(b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n", Transport.EOF)
    for name in ("plaintext_http", "garbage_record"):
        assert judge(BY_NAME[name], reaction).verdict is Verdict.LENIENT


@pytest.mark.parametrize("kind", list(ReactionKind))
def test_other_cases_pass_any_reaction(kind: ReactionKind) -> None:
    for case in CASES:
        if not case.must_terminate:
            assert judge(case, Reaction(kind)).verdict is Verdict.PASS


def test_drip_is_bounded() -> None:
    assert drip_interval(200, 2.0) == pytest.approx(0.01)
    assert dripped_bytes(200, 2.0) == 200
    # a big message: the floor holds, only what fits in the drip time goes byte by byte
    assert drip_interval(40000, 2.0) == 0.002 and dripped_bytes(40000, 2.0) == 1000
    assert dripped_bytes(0, 2.0) == 0
