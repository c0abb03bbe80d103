"""RFC 6455 sentences the WebSocket catalogues rest on, quoted verbatim (``...`` marks a cut).

Kept apart from the case tables so that a table reads as data: name, frames, reactions, and
the sentence that grants them (``protocols.websocket_cases``).
"""

from __future__ import annotations

Q_UNMASKED = (
    "The server MUST close the connection upon receiving a frame that is not masked. In "
    "this case, a server MAY send a Close frame with a status code of 1002 (protocol error)"
)
Q_RSV = (
    "If a nonzero value is received and none of the negotiated extensions defines the "
    "meaning of such a nonzero value, the receiving endpoint MUST _Fail the WebSocket "
    "Connection_."
)
Q_OPCODE = (
    "If an unknown opcode is received, the receiving endpoint MUST _Fail the WebSocket "
    "Connection_."
)
Q_CONTROL = (
    "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be "
    "fragmented."
)
Q_FRAGMENT = (
    "A fragmented message consists of a single frame with the FIN bit clear and an opcode "
    "other than 0, followed by zero or more frames with the FIN bit clear and the opcode set "
    "to 0, and terminated by a single frame with the FIN bit set and an opcode of 0."
)
Q_INTERLEAVE = (
    "The fragments of one message MUST NOT be interleaved between the fragments of another "
    "message unless an extension has been negotiated that can interpret the interleaving."
)
Q_UTF8 = (
    "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream "
    "is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket "
    "Connection_."
)
Q_CLOSE_REPLY = (
    "If an endpoint receives a Close frame and did not previously send a Close frame, the "
    "endpoint MUST send a Close frame in response."
)
Q_PING = (
    "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response, unless it "
    "already received a Close frame. [§5.5.3] A Pong frame sent in response to a Ping frame "
    "must have identical \"Application data\" ... the endpoint MAY elect to send a Pong frame "
    "for only the most recently processed Ping frame."
)
Q_SIZE = (
    "Implementations that have implementation- and/or platform-specific limitations "
    "regarding the frame size or total message size after reassembly from multiple frames "
    "MUST protect themselves against exceeding those limits. ... Such an implementation "
    "SHOULD impose a limit on frame sizes"
)
Q_MSB = (
    "If 127, the following 8 bytes interpreted as a 64-bit unsigned integer (the most "
    "significant bit MUST be 0) are the payload length."
)
