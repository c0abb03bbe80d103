"""Login sessions: a cookie token maps to a user, that user's items and a rate limiter.

Sessions live in memory, keyed by a random token. The table is bounded (least recently used
sessions go first) because load walkers log in again after every 401 and over a soak would
otherwise grow it without end. The bound is far above the number of concurrent walkers, so
a live walker is never evicted in practice.

The rate limiter is a token bucket per session: ``rate`` tokens a second, holding at most
``rate`` (one second of burst). It throttles a session, not an address, because every walker
of a load run shares one loopback address.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from refapp.items import ItemStore

MAX_SESSIONS = 65_536
COOKIE_NAME = "session"


class TokenBucket:
    """``rate`` requests a second with a burst of ``rate``."""

    __slots__ = ("_last", "_rate", "_tokens")

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._last = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one; refills continuously since the last call."""
        tokens = min(self._rate, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False


class Session:
    """One login: who, their items, their request budget."""

    __slots__ = ("bucket", "items", "user")

    def __init__(self, user: str, rate: float, now: float) -> None:
        self.user = user
        self.items = ItemStore()
        self.bucket = TokenBucket(rate, now)


class SessionStore:
    """Token -> Session, least recently used first, at most ``capacity`` entries."""

    def __init__(self, rate: float, capacity: int = MAX_SESSIONS) -> None:
        self._rate = rate
        self._capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, user: str) -> str:
        """Open a session for ``user`` and return its cookie token."""
        token = secrets.token_urlsafe(24)
        self._sessions[token] = Session(user, self._rate, time.monotonic())
        while len(self._sessions) > self._capacity:
            self._sessions.popitem(last=False)
        return token

    def lookup(self, token: str | None) -> Session | None:
        """The live session for ``token``, marked as recently used; None if unknown."""
        if token is None:
            return None
        session = self._sessions.get(token)
        if session is not None:
            self._sessions.move_to_end(token)
        return session

    def drop(self, token: str | None) -> bool:
        """Invalidate a session; True if it existed."""
        return token is not None and self._sessions.pop(token, None) is not None


def session_token(cookie_header: bytes | None) -> str | None:
    """The ``session`` cookie value from a ``Cookie`` header (RFC 6265 §4.2.1), if any."""
    if not cookie_header:
        return None
    for pair in cookie_header.split(b";"):
        name, sep, value = pair.strip().partition(b"=")
        if sep and name == b"session":
            try:
                return value.decode("ascii")
            except UnicodeDecodeError:
                return None
    return None
