"""The reference server's parser input: h11 fed through the parser-level defects.

How this works: without defects one h11 connection serves the whole socket and bytes go
straight in. The parser-level defects (``refapp.lenient``, ``refapp.lenient_chunks``,
``refapp.long_line``, ``drop-pipelined``) sit in front of it: a ``HeadRewriter`` rewrites the
start of each cycle and then needs a fresh h11 connection per cycle, lenient chunk sizes are
rewritten before h11 sees them, and an over-long header line may crash the process. Separate
from the request cycle (``refapp.server``) because what reaches the parser, and what is
still buffered, is one concern; reading events from it is another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h11

from refapp.config import MAX_HEAD_BYTES
from refapp.lenient import HeadRewriter
from refapp.lenient_chunks import LenientChunkSizes
from refapp.long_line import LongLineCrash

if TYPE_CHECKING:
    from refapp.config import ServerConfig


class HttpInput:
    """The h11 connection of one socket and the defect filters in front of it."""

    conn: h11.Connection

    def _init_input(self, config: ServerConfig) -> None:
        """Set up the filters the run's defects ask for, then the first h11 connection."""
        self._long_line = LongLineCrash() if config.has("crash-on-long-header-line") else None
        first_length_wins = config.has("accept-conflicting-content-length")
        length_beats_chunked = config.has("cl-te-desync")
        space_before_colon = config.has("accept-space-before-colon")
        self._rewriter = (
            HeadRewriter(
                first_length_wins=first_length_wins,
                length_beats_chunked=length_beats_chunked,
                space_before_colon=space_before_colon,
                max_head=MAX_HEAD_BYTES,
            )
            if first_length_wins or length_beats_chunked or space_before_colon
            else None
        )
        self._drop_pipelined = config.has("drop-pipelined")
        self._chunk_sizes = (LenientChunkSizes(MAX_HEAD_BYTES)
                             if config.has("lenient-chunk-size") else None)
        self.conn = self._new_parser()

    @staticmethod
    def _new_parser() -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def _next_cycle(self) -> None:
        """Ready the parser for the next request, carrying over what was already received."""
        if self._drop_pipelined:  # the defect: whatever the client pipelined is forgotten
            self.conn = self._new_parser()
            if self._rewriter is not None:
                self._rewriter.start_cycle()
            return
        if self._rewriter is None:
            self.conn.start_next_cycle()
            return
        leftover, closed = self.conn.trailing_data
        self.conn = self._new_parser()
        self._rewriter.start_cycle()
        if leftover:
            self._feed(leftover, fresh=False)
        if closed:
            self._feed_eof()

    def _feed(self, data: bytes, fresh: bool = True) -> None:
        """Received bytes, through the defect filters, into h11 (``fresh``: not yet filtered)."""
        if self._long_line is not None and self.conn.their_state is h11.IDLE:
            self._long_line.feed(data)  # the defect: may exit the process
        if fresh and self._chunk_sizes is not None:  # ``lenient-chunk-size``
            data = self._chunk_sizes.feed(data)
            if not data:
                return
        if self._rewriter is not None:
            data = self._rewriter.feed(data)
            if not data:
                return
        self.conn.receive_data(data)

    def _feed_eof(self) -> None:
        if self._chunk_sizes is not None and self._chunk_sizes.has_pending():
            self._feed(self._chunk_sizes.flush(), fresh=False)
        if self._rewriter is not None and self._rewriter.has_pending():
            self.conn.receive_data(self._rewriter.flush())
        self.conn.receive_data(b"")

    def _buffered(self) -> bool:
        """Whether part of the next request has already been received."""
        if self._chunk_sizes is not None and self._chunk_sizes.has_pending():
            return True
        if self._rewriter is not None and self._rewriter.has_pending():
            return True
        return bool(self.conn.trailing_data[0])
