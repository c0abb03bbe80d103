"""Injectable defects: bugs that real servers ship, switched on one by one with ``--defect``.

Every defect exists so that a test (or a demo run) can show that assay notices it: each entry
names the invariant it is meant to trip. A defect changes only the code path it names; with no
``--defect`` flag refapp is meant to pass every invariant.

The registry is data. Code asks ``"lost-write" in config.defects``; nothing else about a defect
lives here, so the list doubles as the documentation printed by ``--list-defects``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Defect:
    """One injectable bug: its flag name, what it does, and what should catch it."""

    name: str
    description: str
    invariant: str


DEFECTS: tuple[Defect, ...] = (
    Defect(
        "lost-write",
        "every 3rd PUT /items/{id} and every 4th POST /items's tags are acknowledged but not "
        "stored",
        "I-DRV-1",
    ),
    Defect(
        "accept-conflicting-content-length",
        "a lenient parser front-end keeps the first of several different Content-Length values",
        "I-ADV-ACCEPTED",
    ),
    Defect(
        "accept-space-before-colon",
        "a lenient parser front-end accepts 'Name : value' header lines (RFC 9112 §5.1 "
        "requires a 400)",
        "I-ADV-ACCEPTED",
    ),
    Defect(
        "cl-te-desync",
        "with both Content-Length and Transfer-Encoding: chunked, Content-Length wins "
        "(request smuggling)",
        "I-ADV-DESYNC",
    ),
    Defect(
        "lenient-chunk-size",
        "chunk sizes are read with int(size, 16): '0x5', '+5', '0_5' and '-0' are taken as "
        "numbers (RFC 9112 §7.1: chunk-size = 1*HEXDIG), so a smuggled request is answered",
        "I-ADV-DESYNC",
    ),
    Defect(
        "drop-pipelined",
        "requests pipelined behind the first on a connection are dropped unanswered and the "
        "connection kept open (RFC 9112 §9.3.2)",
        "I-ADV-MUST",
    ),
    Defect(
        "merge-trailers",
        "trailer fields of a chunked request body are merged into the header fields the "
        "application sees (POST /echo shows them); RFC 9112 §7.1.2 forbids merging "
        "Host, Authorization, Content-Length or Transfer-Encoding",
        "I-ADV-MUST",
    ),
    Defect(
        "h2c-crash",
        "an Upgrade: h2c client that vanishes before its response kills the accept loop",
        "I-H2C-CRASHED",
    ),
    Defect(
        "ws-accept-unmasked",
        "unmasked client WebSocket frames are accepted and echoed",
        "I-WS-ACCEPTED",
    ),
    Defect(
        "ws-deflate-bomb",
        "permessage-deflate messages are inflated without limit and echoed: a 32 KiB "
        "compressed frame becomes 32 MiB although plain messages over 1 MiB are refused",
        "I-WS-MUST",
    ),
    Defect(
        "ws-drop-empty",
        "empty WebSocket text and binary messages are dropped unanswered, the connection "
        "kept open (daphne 4 does this; RFC 6455 §5.2 allows a zero-length payload)",
        # No MUST binds an application echo: reported lenient (LOW), no invariant fails.
        "ws.echo_missing",
    ),
    Defect(
        "ws-echo-close-code",
        "a client Close with a code RFC 6455 §7.4 does not define (0, 999, 1016, 5000, ...) "
        "or forbids (1005, 1006, 1015) is answered with a Close repeating that code (tornado "
        "6 does this), breaking §5.5.1 (§7.4.1 for the forbidden ones)",
        "I-WS-MUST",
    ),
    Defect(
        "ws-drop-large",
        "a valid WebSocket message over the 1 MiB limit gets no Close 1009: the TCP "
        "connection is dropped and the message lost (daphne 4 does this from 4 MiB on)",
        "I-WS-DROP",
    ),
    Defect(
        "ws-hang-on-bad-frame",
        "a protocol-violating WebSocket frame gets neither a Close frame nor a TCP close",
        "I-WS-HANG",
    ),
    Defect(
        "sse-leak-on-reset",
        "SSE broker slots of disconnected subscribers are never released; 503 after 64 leaks",
        "I-SSE-LEAK",
    ),
    Defect(
        "sse-leak-on-rst-only",
        "an SSE subscriber that leaves with RST keeps its broker slot (one that leaves with "
        "FIN is released); 503 after 64 leaks",
        "I-SSE-LEAK",
    ),
    Defect(
        "fd-leak-mid-header",
        "a client that leaves before finishing its request head keeps its socket and its "
        "connection slot forever; once 256 slots leaked, new connections wait unanswered",
        "I-CONN-LEAK",
    ),
    Defect(
        "worker-pool-starvation",
        "a thread-per-connection server: a connection holds one of 32 workers from its accept "
        "until its request head and body are read, with no header or body timeout; once slow "
        "clients hold every worker, new connections wait unanswered",
        # Not an invariant of a run: the verdict of `assay loris` (the control traffic's
        # success %, 95 % by default) is what catches it.
        "loris.control_success",
    ),
    Defect(
        "api-delete-leaves-readable",
        "DELETE /items/{id} answers 204 but keeps the item: GET and PUT still answer 200",
        "I-API-USE-AFTER-DELETE",
    ),
    Defect(
        "api-double-delete-500",
        "a second DELETE /items/{id} of a deleted item is answered 500 instead of 404",
        "I-API-DOUBLE-DELETE",
    ),
    Defect(
        "api-invalid-body-creates",
        "POST /items with a body that breaks the item schema is answered 422, but an item "
        "is stored anyway (a half-validated write)",
        "I-API-INVALID-SIDE-EFFECT",
    ),
    Defect(
        "hang-after",
        "after --defect-after seconds (default 5) connections are accepted but never answered",
        "I-HANG",
    ),
    Defect(
        "crash-after",
        "after --defect-after seconds (default 5) the process exits abruptly with status 70",
        "I-LIVENESS",
    ),
    Defect(
        "leak-on-reset-mid-body",
        "a request body cut short by the client leaks a pool slot; every request gets 503 "
        "after 20 leaks",
        "I-LIVENESS",
    ),
    Defect(
        "crash-on-long-header-line",
        "a request-head line longer than 16 KiB makes the process exit abruptly (status 70), "
        "as an unchecked fixed-size line buffer would",
        "I-LIVENESS",
    ),
    Defect(
        "crash-on-ws-close-code",
        "a WebSocket Close frame with a code RFC 6455 §7.4 forbids on the wire (0-999, 1005, "
        "1006, 1015, >4999) makes the process exit abruptly (status 70), as a close-code "
        "lookup table indexed without a bound check would",
        "I-LIVENESS",
    ),
)

BY_NAME: dict[str, Defect] = {defect.name: defect for defect in DEFECTS}

#: Leaked SSE broker slots after which ``sse-leak-on-reset`` refuses new subscribers.
SSE_LEAK_LIMIT = 64
#: Leaked body-pool slots after which ``leak-on-reset-mid-body`` answers everything with 503.
BODY_POOL_SIZE = 20
#: Connection slots of ``fd-leak-mid-header``; a connection waits for one before it is read.
CONNECTION_SLOTS = 256
#: Workers of ``worker-pool-starvation``; a connection waits for one before it is read.
WORKER_POOL_SIZE = 32
#: Exit status of ``crash-after`` (EX_SOFTWARE from sysexits.h).
CRASH_EXIT_STATUS = 70
#: Longest request-head line ``crash-on-long-header-line`` survives.
LONG_LINE_LIMIT = 16 * 1024


class UnknownDefectError(ValueError):
    """A ``--defect`` name that is not in the registry (a usage error, exit status 2)."""


def parse_defects(names: Iterable[str]) -> frozenset[str]:
    """Validate defect flag values and return them as a set.

    Raises:
        UnknownDefectError: naming the first unknown value and listing the valid ones, in one
            line, because the CLI prints it as is.
    """
    chosen = frozenset(names)
    for name in sorted(chosen):
        if name not in BY_NAME:
            valid = ", ".join(defect.name for defect in DEFECTS)
            raise UnknownDefectError(f"unknown defect {name!r} (valid: {valid})")
    return chosen
