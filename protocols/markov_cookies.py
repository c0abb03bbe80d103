"""The Markov walker's cookie jar rules: one Set-Cookie header applied to a name->value jar.

Separate from the session because cookie parsing (RFC 6265 §5.2, reduced to what a walker
needs) is its own small grammar with its own limits, and has nothing to do with the walk.
"""

from __future__ import annotations

import email.utils
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocols.http1 import Response

MAX_COOKIES = 64
MAX_COOKIE_VALUE = 4096
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_COOKIE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*\Z")  # printable ASCII except ';'


def store_cookie(jar: dict[str, str], text: str, response: Response) -> bool:
    """Apply one Set-Cookie to ``jar``; True if the jar changed.

    Minimal RFC 6265 §5.2: name=value, deletion by Max-Age<=0 or a past Expires.
    """
    pair, _, attributes = text.partition(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not _COOKIE_NAME.match(name):
        return False
    if len(value) > MAX_COOKIE_VALUE or not _COOKIE_VALUE.match(value):
        return False
    expired = False
    max_age_seen = False
    for attribute in attributes.split(";"):
        key, _, arg = attribute.partition("=")
        key = key.strip().lower()
        if key == "max-age":
            arg = arg.strip()
            if arg.lstrip("-").isdigit():
                max_age_seen = True
                expired = int(arg) <= 0
        elif key == "expires" and not max_age_seen:
            expired = _expired(arg.strip(), response)
    if expired:
        return jar.pop(name, None) is not None
    if name not in jar and len(jar) >= MAX_COOKIES:
        return False
    if jar.get(name) == value:
        return False
    jar[name] = value
    return True


def _expired(expires: str, response: Response) -> bool:
    """Expires in the past, judged by the response's own Date (no clock in sans-IO code)."""
    try:
        when = email.utils.parsedate_to_datetime(expires)
    except (TypeError, ValueError, IndexError):
        return False
    date = response.header(b"date")
    if date is not None:
        try:
            return when <= email.utils.parsedate_to_datetime(date.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            pass
    return when.year < 2000  # the conventional "Thu, 01 Jan 1970" deletion
