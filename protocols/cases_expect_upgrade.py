"""Expect and Upgrade cases: interim responses and protocol switches a server must not send.

How this works: two things are judged here that no status code shows. A 1xx interim
response is skipped by the response parser, so the oracle looks for one in the raw bytes
(``forbid_interim``): RFC 9110 §15.2 forbids any 1xx to an HTTP/1.0 client, and §10.1.1
says a 100-continue expectation in an HTTP/1.0 request MUST be ignored. A 101 ends HTTP on
the connection (``forbid_switch``): RFC 9110 §7.8 says an Upgrade in an HTTP/1.0 request
MUST be ignored, and RFC 6455 §4.2.1 that a WebSocket handshake without ``Connection:
Upgrade`` or on another method than GET MUST be refused.

``expect-100-early-smuggle`` is a framing case: its Content-Length body is a complete
request. A server may answer before reading the body (RFC 9110 §10.1.1), but the body is
still the body: a server that then parses it as the next request answers the smuggled one.
"""

from __future__ import annotations

from protocols import case_builders as b
from protocols import rfc_quotes as q
from protocols.case_model import (
    EXPECT,
    FRAMING,
    HIGH,
    LOW,
    MAY,
    MED,
    MUST,
    POST,
    REFUSE_OR_ACCEPT,
    SMUGGLE,
    UPGRADE,
    AdversarialCase,
    case,
)

WS_KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
WS_FIELDS = ("Upgrade: websocket", "Connection: Upgrade", WS_KEY, "Sec-WebSocket-Version: 13")
H2C_FIELDS = ("Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings",
              "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA")
S152, S1011, S78 = "RFC 9110 §15.2", "RFC 9110 §10.1.1", "RFC 9110 §7.8"
NO_1XX = {"forbid_interim": True}
NO_101 = {"forbid_switch": True}


def _expect_post(version: str, *fields: str) -> b.Builder:
    return b.raw(f"POST {{p}} {version}", "Host: {h}", *fields, "Content-Length: 5",
                 body=b.BODY)


EXPECTATIONS: tuple[AdversarialCase, ...] = (
    case("expect-100-http10", EXPECT, _expect_post("HTTP/1.0", "Expect: 100-continue"),
         REFUSE_OR_ACCEPT, MUST, MED, S152, q.Q_NO_1XX_HTTP10, **POST, **NO_1XX),
    case("expect-100-http10-keep-alive", EXPECT,
         _expect_post("HTTP/1.0", "Connection: keep-alive", "Expect: 100-continue"),
         REFUSE_OR_ACCEPT, MUST, MED, S1011, q.Q_EXPECT_HTTP10, **POST, **NO_1XX),
    case("expect-100-http11", EXPECT, _expect_post("HTTP/1.1", "Expect: 100-continue"),
         REFUSE_OR_ACCEPT, MUST, MED, S1011, q.Q_EXPECT_100, **POST, **FRAMING),
    case("expect-100-mixed-case", EXPECT, _expect_post("HTTP/1.1", "Expect: 100-Continue"),
         REFUSE_OR_ACCEPT, MUST, MED, S1011, q.Q_EXPECT_100, **POST, **FRAMING),
    case("expect-100-get-no-body", EXPECT, b.get("Expect: 100-continue"), REFUSE_OR_ACCEPT,
         MAY, LOW, S1011, q.Q_EXPECT_OMIT, **FRAMING),
    case("expect-unknown", EXPECT, b.get("Expect: assay-unknown"), REFUSE_OR_ACCEPT, MAY, LOW,
         S1011, q.Q_EXPECT_UNKNOWN, preferred_status=frozenset({417})),
    case("expect-100-early-smuggle", EXPECT,
         b.with_body("POST {p} HTTP/1.1", "Expect: 100-continue",
                     body_of=lambda host, path: b.smuggled_request(host)),
         REFUSE_OR_ACCEPT, MUST, HIGH, "RFC 9112 §6.3 (6)", q.Q_CL_VALID, **POST, **SMUGGLE),
)

UPGRADES: tuple[AdversarialCase, ...] = (
    case("upgrade-ws-http10", UPGRADE, b.raw("GET {p} HTTP/1.0", "Host: {h}", *WS_FIELDS),
         REFUSE_OR_ACCEPT, MUST, MED, S78, q.Q_UPGRADE_HTTP10, **NO_101),
    case("upgrade-h2c-http10", UPGRADE, b.raw("GET {p} HTTP/1.0", "Host: {h}", *H2C_FIELDS),
         REFUSE_OR_ACCEPT, MUST, MED, S78, q.Q_UPGRADE_HTTP10, **NO_101),
    case("upgrade-ws-no-connection", UPGRADE,
         b.get("Upgrade: websocket", WS_KEY, "Sec-WebSocket-Version: 13"),
         REFUSE_OR_ACCEPT, MUST, MED, "RFC 6455 §4.2.1", q.Q_WS_HANDSHAKE, **NO_101),
    case("upgrade-ws-post", UPGRADE, b.post(*WS_FIELDS, "Content-Length: 5"),
         REFUSE_OR_ACCEPT, MUST, MED, "RFC 6455 §4.2.1", q.Q_WS_HANDSHAKE, **POST, **NO_101,
         **FRAMING),
    case("upgrade-unknown-protocol", UPGRADE,
         b.get("Upgrade: assay-unknown/1", "Connection: Upgrade"), REFUSE_OR_ACCEPT, MAY, LOW,
         S78, q.Q_UPGRADE_IGNORE, **NO_101, **FRAMING),
    case("upgrade-empty", UPGRADE, b.get("Upgrade: ", "Connection: Upgrade"),
         REFUSE_OR_ACCEPT, MAY, LOW, S78, q.Q_UPGRADE_IGNORE, **NO_101, **FRAMING),
)

CASES: tuple[AdversarialCase, ...] = EXPECTATIONS + UPGRADES
