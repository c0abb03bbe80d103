"""What the reference server reads out of a request head: the path, the header fields
(with their size), a valid Host, and whether the client asks for h2c.

Separate from the connection loop (``refapp.server``) because these are pure functions of
the head's bytes, with their RFC rules beside them, and the cycle only calls them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from refapp.app import Request

# RFC 9110 §7.2: Host = uri-host [ ":" port ], with (RFC 3986 §3.2.2)
#   uri-host = IP-literal / IPv4address / reg-name
#   reg-name = *( unreserved / pct-encoded / sub-delims )
# An empty value is allowed. Repeated Host lines arrive joined with ", " and so fail too.
HOST = re.compile(rb"(?:\[[0-9A-Za-z:.%~_-]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::[0-9]*)?")


def request_path(target: bytes) -> str:
    """The path of a request target: origin-form or absolute-form (RFC 9112 §3.2)."""
    if target[:1] != b"/" and target[:8].lower().startswith((b"http://", b"https://")):
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    return target.partition(b"?")[0].decode("ascii", "replace")


def header_fields(raw: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], int]:
    """Header dict and the section's approximate size in bytes.

    Repeated fields are joined as RFC 9110 §5.3 allows (cookies with ``; ``). The size is
    needed because h11 enforces ``max_incomplete_event_size`` only on a head that is still
    incomplete: one that arrives whole in a single read is parsed whatever its size.
    """
    headers: dict[bytes, bytes] = {}
    size = 0
    for name, value in raw:
        size += len(name) + len(value) + 4
        if name in headers:
            headers[name] += (b"; " if name == b"cookie" else b", ") + value
        else:
            headers[name] = value
    return headers, size


def is_h2c_upgrade(request: Request) -> bool:
    """Whether the request asks to upgrade to HTTP/2 over cleartext (RFC 7540 §3.2)."""
    upgrade = request.headers.get(b"upgrade")
    return upgrade is not None and b"h2c" in upgrade.lower()
