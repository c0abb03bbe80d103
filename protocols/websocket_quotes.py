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
Q_CLOSE_BODY = (
    "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer "
    "(in network byte order) representing a status code with value /code/ defined in "
    "Section 7.4."
)
Q_CLOSE_REASON = (
    "Following the 2-byte integer, the body MAY contain UTF-8-encoded data with value "
    "/reason/, the interpretation of which is not defined by this specification."
)
Q_CODE_RANGES = (
    "Status codes in the range 0-999 are not used. ... Status codes in the range 1000-2999 "
    "are reserved for definition by this protocol ... Status codes in the range 3000-3999 "
    "are reserved for use by libraries, frameworks, and applications. ... Status codes in "
    "the range 4000-4999 are reserved for private use"
)
Q_CLOSE_ECHO = (
    "(When sending a Close frame in response, the endpoint typically echos the status code "
    "it received.)"
)
Q_CLOSE_DISCARD = (
    "After sending a control frame indicating the connection should be closed, a peer does "
    "not send any further data; after receiving a control frame indicating the connection "
    "should be closed, a peer discards any further data received."
)
Q_CONTROL_MIDDLE = (
    "An endpoint MUST be capable of handling control frames in the middle of a fragmented "
    "message."
)
Q_PONG_UNSOLICITED = (
    "A Pong frame MAY be sent unsolicited. This serves as a unidirectional heartbeat. A "
    "response to an unsolicited Pong frame is not expected."
)
Q_LENGTH = (
    "The length of the \"Payload data\", in bytes: if 0-125, that is the payload length. If "
    "126, the following 2 bytes interpreted as a 16-bit unsigned integer are the payload "
    "length. If 127, the following 8 bytes interpreted as a 64-bit unsigned integer (the "
    "most significant bit MUST be 0) are the payload length."
)
Q_MINIMAL_LENGTH = (
    "Note that in all cases, the minimal number of bytes MUST be used to encode the length, "
    "for example, the length of a 124-byte-long string can't be encoded as the sequence "
    "126, 0, 124."
)
Q_TEXT = "Text: The \"Payload data\" is text data encoded as UTF-8."
Q_BINARY = "Binary: The \"Payload data\" is arbitrary binary data"
