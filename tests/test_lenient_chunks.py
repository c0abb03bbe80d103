"""The ``lenient-chunk-size`` defect's stream rewriter, on bytes only (whole, byte by byte,
with trailing data): it reads sizes as Python's ``int(x, 16)`` does, and nothing else."""

from __future__ import annotations

import h11
import pytest

from protocols.adversarial_cases import BY_NAME
from refapp.lenient_chunks import LenientChunkSizes

HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def rewrite(data: bytes, byte_by_byte: bool = False) -> bytes:
    rewriter = LenientChunkSizes(max_head=65536)
    if not byte_by_byte:
        return rewriter.feed(data)
    return b"".join(rewriter.feed(data[i:i + 1]) for i in range(len(data)))


def h11_bodies(data: bytes) -> list[bytes]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    bodies, body = [], b""
    while (event := conn.next_event()) is not h11.NEED_DATA:
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            bodies.append(body)
            body = b""
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
    return bodies


@pytest.mark.parametrize("size", [b"0x5", b"0X5", b"+5", b"0_5", b" 5", b"5 ", b"5\t"])
@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_lenient_sizes_become_canonical(size: bytes, byte_by_byte: bool) -> None:
    data = HEAD + size + b"\r\nhello\r\n0\r\n\r\n"
    assert rewrite(data, byte_by_byte) == HEAD + b"5\r\nhello\r\n0\r\n\r\n"


def test_minus_zero_is_a_last_chunk_and_what_follows_is_a_new_request() -> None:
    data = BY_NAME["chunk-size-minus-zero-smuggle"].build("a", "/")
    out = rewrite(data)
    assert len(h11_bodies(out)) == 2  # the body, then the smuggled request


@pytest.mark.parametrize("name", ["chunked-many-chunks", "chunked-trailer", "chunked-extension",
                                  "pipeline-after-chunked-body", "pipeline-after-cl-body",
                                  "pipeline-get-3", "chunked-large-chunk"])
def test_valid_streams_mean_the_same_after_rewriting(name: str) -> None:
    data = BY_NAME[name].build("a", "/")
    assert h11_bodies(rewrite(data)) == h11_bodies(data)
    assert rewrite(data, byte_by_byte=True) == rewrite(data)


def test_sizes_python_refuses_pass_through_for_h11_to_reject() -> None:
    data = HEAD + b"5g\r\nhello\r\n0\r\n\r\n"
    assert rewrite(data) == data
    with pytest.raises(h11.RemoteProtocolError):
        h11_bodies(rewrite(data))


def test_trailing_data_and_flush() -> None:
    rewriter = LenientChunkSizes(max_head=65536)
    assert rewriter.feed(HEAD + b"0x") == HEAD  # a partial size line is held back
    assert rewriter.has_pending()
    assert rewriter.flush() == b"0x" and not rewriter.has_pending()
    assert rewriter.feed(b"anything") == b"anything"  # after a flush: pass-through
    over = LenientChunkSizes(max_head=16)
    assert over.feed(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 32).startswith(b"GET /")
