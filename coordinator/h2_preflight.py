"""The HTTP/2 gate: the h2 and h2flood slices run only against a target that speaks HTTP/2.

Why a gate: without it, a target that does not offer HTTP/2 (no ALPN "h2", no prior
knowledge, no h2c upgrade) would have its h2 walkers count nothing and its HTTP/2
invariants read "passed" or "not judged" for no stated reason. The gate asks once, before
planning (``actors.h2_discover``: ALPN h2 for https; prior knowledge, then the h2c upgrade
for http), moves the walkers to markov with a "not judged: ..." note when the answer is no,
and hands the way that worked to the walkers in the run settings (``h2_via``).
"""

from __future__ import annotations

from typing import Any

import trio

from actors.h2_discover import discover
from actors.walker import Target

#: Slices that need an HTTP/2 target (the flood slice joins when it is registered).
H2_SLICES = ("h2", "h2flood")


def speaks_h2(url: str, timeout: float, path: str = "/") -> tuple[str | None, str]:
    """(the way, as ``actors.h2_link.Via``'s value, "") or (None, why not)."""
    via, why = trio.run(discover, Target.from_url(url), timeout, path)
    return (via.value if via is not None else None), why


def gate(url: str, wanted: list[str], timeout: float = 5.0) -> tuple[dict[str, str],
                                                                     dict[str, Any]]:
    """(slices that cannot run -> "not judged: why", settings for those that can)."""
    needing = [name for name in H2_SLICES if name in wanted]
    if not needing:
        return {}, {}
    path = Target.from_url(url).base_path or "/"
    via, why = speaks_h2(url, timeout, path)
    if via is None:
        return {name: f"not judged: the target does not speak HTTP/2 ({why})"
                for name in needing}, {}
    return {}, {"h2_via": via}
