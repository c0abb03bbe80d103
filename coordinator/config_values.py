"""One user-given value at a time: parse it, or say in one line why it cannot be used.

Separate from ``coordinator.config`` (which layers whole runs: defaults < TOML < environment
< flags) because every other command's options (``assay hold``, ``watch``, ``slo``, ``tier2``,
``replay``...) check their values with these same parsers and the same ``ConfigError``,
without building a ``RunConfig``. Nothing here touches the network or the target.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

MAX_SEED = 2**64 - 1


class ConfigError(ValueError):
    """The user's input cannot be used; the message is one line, shown as is (exit 2)."""


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """'30s', '10m', '24h', '1h30m', '250ms' or plain seconds; must be > 0."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            seconds = float(raw)
        else:
            parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", raw)
            if not parts or "".join(n + u for n, u in parts) != raw:
                raise ConfigError(f"{what} {text!r} is not a duration (examples: 30s, 10m, 24h)")
            scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
            seconds = sum(float(n) * scale[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"{what} must be greater than zero (got {text!r})")
    return seconds


def parse_positive_int(value: Any, what: str) -> int:
    return _parse_int(value, what, minimum=1)


def parse_count(value: Any, what: str) -> int:
    """An integer that may be 0 (``--remote-actors``)."""
    return _parse_int(value, what, minimum=0)


def _parse_int(value: Any, what: str, minimum: int) -> int:
    try:
        number = int(str(value), 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r} is not an integer") from None
    if number < minimum:
        limit = "at least 1" if minimum == 1 else f"{minimum} or more"
        raise ConfigError(f"{what} must be {limit} (got {number})")
    return number


def parse_seed(value: Any) -> int:
    try:
        seed = int(str(value), 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"seed {value!r} is not an integer (decimal or 0x hex)") from None
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed {value!r} is outside 0..2^64-1")
    return seed


def parse_procs(value: Any) -> int:
    if str(value).strip().lower() == "auto":
        return 0
    return parse_positive_int(value, "--procs")


def validate_target_url(url: str) -> str:
    """Accept http:// and https:// URLs with a host (TLS: ``coordinator.tls_flags``)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"target URL {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "(none)"
        raise ConfigError(f"target URL {url!r} has scheme {scheme}; "
                          "only http:// and https:// are supported")
    if not parts.hostname:
        raise ConfigError(f"target URL {url!r} has no host")
    if port == 0:
        raise ConfigError(f"target URL {url!r} has port 0")
    if parts.query or parts.fragment:
        raise ConfigError(f"target URL {url!r} must not carry a query or fragment")
    host = parts.hostname
    if not re.fullmatch(r"[A-Za-z0-9.\-]+", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"target URL {url!r} has an invalid host {host!r}") from None
    return url


def parse_bind(value: Any) -> str:
    """``tcp://HOST:PORT`` for the coordinator's tally socket; control listens on PORT+1.
    PORT 0 picks two free ports. HOST is an address (``0.0.0.0``, ``::``, ``*`` for all)."""
    text = str(value).strip()
    match = re.fullmatch(r"tcp://(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})", text)
    if match is None:
        raise ConfigError(f"--bind {text!r} must look like tcp://HOST:PORT "
                          "(tcp://0.0.0.0:5555, tcp://127.0.0.1:0)")
    port = int(match.group(2))
    if port > 65534:
        raise ConfigError(f"--bind {text!r}: port must be 0..65534 (control uses PORT+1)")
    return text


def parse_size(value: Any, what: str) -> int:
    """Bytes: ``16MiB``, ``512KiB``, ``4M``, ``1048576`` or ``0`` (off); at most 1 GiB."""
    raw = str(value).strip()
    match = re.fullmatch(r"(\d+)\s*([KMG]i?B?|B)?", raw, flags=re.IGNORECASE)
    if not match:
        raise ConfigError(f"{what} {value!r} is not a size (examples: 16MiB, 512KiB, 0)")
    unit = (match.group(2) or "B")[0].upper()
    size = int(match.group(1)) * {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
    if size > 1 << 30:
        raise ConfigError(f"{what} must be at most 1GiB (got {value!r})")
    return size


def validate_path(path: str, what: str) -> str:
    if not path.startswith("/") or any(c in path for c in " \r\n\t\x00"):
        raise ConfigError(f"{what} {path!r} must start with '/' and contain no whitespace")
    return path


def parse_paths(value: Any, what: str) -> tuple[str, ...]:
    """A list of paths (TOML array, repeated flag) or one comma-separated string (env)."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    paths = tuple(validate_path(str(item).strip(), what) for item in items if str(item).strip())
    if not paths:
        raise ConfigError(f"{what} needs at least one path (got {value!r})")
    return paths

