"""permessage-deflate negotiation and codec (protocols.ws_deflate), bytes only."""

from __future__ import annotations

import zlib

import pytest

from protocols.ws_deflate import (
    TAIL,
    DeflateOffer,
    DeflateParams,
    Deflater,
    Inflater,
    Status,
    negotiate,
    zeros_bomb,
)


def test_offer_header_lists_every_parameter() -> None:
    offer = DeflateOffer(True, True, 10, True)
    assert offer.header() == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits"
    )
    assert DeflateOffer().header() == "permessage-deflate"


def test_declined_and_accepted() -> None:
    assert negotiate(DeflateOffer(), []).status is Status.DECLINED
    got = negotiate(DeflateOffer(server_max_window_bits=10),
                    [b"permessage-deflate; server_max_window_bits=9"])
    assert got.status is Status.ACCEPTED
    assert got.params == DeflateParams(server_max_window_bits=9)
    quoted = negotiate(DeflateOffer(client_max_window_bits=True),
                       [b'permessage-deflate; client_max_window_bits="12"'])
    assert quoted.params == DeflateParams(client_max_window_bits=12)
    # our client_no_context_takeover binds us even when the answer omits it (§7.1.1.2)
    ours = negotiate(DeflateOffer(client_no_context_takeover=True), [b"permessage-deflate"])
    assert ours.params is not None and ours.params.client_no_context_takeover


@pytest.mark.parametrize(
    ("offer", "answer", "rfc"),
    [
        (DeflateOffer(), b"permessage-deflate; client_max_window_bits=10", "§7.1.2.2"),
        (DeflateOffer(server_max_window_bits=10),
         b"permessage-deflate; server_max_window_bits=12", "§7.1.2.1"),
        (DeflateOffer(), b"permessage-deflate; server_max_window_bits=7", "§7"),
        (DeflateOffer(), b"permessage-deflate; server_max_window_bits=010", "§7"),
        (DeflateOffer(), b"permessage-deflate; server_max_window_bits", "§7"),
        (DeflateOffer(), b"permessage-deflate; server_no_context_takeover=1", "§7"),
        (DeflateOffer(), b"permessage-deflate; x_unknown", "§7"),
        (DeflateOffer(), b"permessage-deflate; server_no_context_takeover; "
                         b"server_no_context_takeover", "§7"),
        (DeflateOffer(), b"x-webkit-deflate-frame", "RFC 6455 §9.1"),
        (DeflateOffer(), b"permessage-deflate, permessage-deflate", "§7"),
    ],
)
def test_invalid_answers_cite_the_rule(offer: DeflateOffer, answer: bytes, rfc: str) -> None:
    got = negotiate(offer, [answer])
    assert got.status is Status.INVALID and rfc in got.rfc and "MUST" in got.quote


def test_round_trip_with_and_without_context_takeover() -> None:
    for reset in (False, True):
        deflater, inflater = Deflater(10, reset), Inflater(10, reset)
        for message in (b"hello hello hello", b"hello hello hello", b""):
            payload = deflater.compress(message)
            assert not payload.endswith(TAIL)
            assert inflater.inflate(payload, 1000).data == message
    taken = Deflater()
    first, second = taken.compress(b"abcdefgh" * 8), taken.compress(b"abcdefgh" * 8)
    assert len(second) < len(first)  # the second refers back into the first
    fresh = Inflater(no_context_takeover=True)
    fresh.inflate(first, 1000)
    assert fresh.inflate(second, 1000).error  # without the context it does not inflate


def test_window_8_uses_stored_blocks() -> None:
    payload = Deflater(8).compress(b"x" * 600)
    assert Inflater(8).inflate(payload, 1000).data == b"x" * 600


def test_inflate_is_capped_and_bad_data_is_a_value() -> None:
    bomb = zeros_bomb(4 << 20)
    assert len(bomb) < 8000
    got = Inflater().inflate(bomb, 1 << 16)
    assert got.over_limit and len(got.data) == 1 << 16
    bad = Inflater().inflate(b"\xff\xff\xff\xff", 100)
    assert bad.error.startswith("invalid deflate data")
    obj = zlib.decompressobj(-15)
    assert obj.decompress(bomb + TAIL, 10) == bytes(10)
