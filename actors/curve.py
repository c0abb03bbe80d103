"""CURVE keys for ZeroMQ sockets that leave loopback: the actor fleet and the forensics agent.

Why: tallies, control and forensics replies are unauthenticated msgpack. On loopback only
local users can reach them; on a real network anyone who can connect could inject tallies
(forging a pass) or read the target's memory map. So every socket bound or connected
off loopback needs CURVE (libsodium encryption plus ZAP authentication of the client's
public key), and a caller refuses to go on without keys instead of falling back to plain
TCP.

Keys are given either as certificate files (as written by ``zmq.auth.create_certificates``
or ``assay keygen``: ``NAME.key`` public, ``NAME.key_secret`` secret) or as the 40-character
Z85 text, so they can come from flags, TOML or the environment alike.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

#: An actor's keys, when not given as flags: the coordinator's public key and its own secret.
SERVER_KEY_ENV = "ASSAY_ACTOR_SERVER_KEY"
SECRET_KEY_ENV = "ASSAY_ACTOR_SECRET_KEY"


class CurveKeyError(ValueError):
    """A key that cannot be loaded, or keys missing where they are required; one line."""


def endpoint_is_loopback(endpoint: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` endpoint stays on this machine."""
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return False
    return host_is_loopback(host)


def host_is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (``[::1]`` with or without brackets); a name
    other than ``localhost`` is not assumed to be one."""
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_key(value: str | Path | None, secret: bool) -> bytes | None:
    """A key given as Z85 text or as a certificate file: its public or its secret part."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    path = Path(text)
    if path.exists():
        try:
            public, secret_key = zmq.auth.load_certificate(str(path))
        except (OSError, ValueError) as exc:
            raise CurveKeyError(f"cannot load certificate {path}: {exc}") from None
        key = secret_key if secret else public
        if key is None:
            raise CurveKeyError(
                f"certificate {path} has no {'secret' if secret else 'public'} key")
        return key
    if len(text) != 40:
        shown = "the secret key given" if secret else repr(text[:60])  # never echo a secret
        raise CurveKeyError(f"{shown} is neither a certificate file nor a 40-character Z85 "
                            f"key (got {len(text)} characters)")
    return text.encode("ascii")


def load_authorized(directory: Path | None, listed: Iterable[str] = ()) -> list[bytes]:
    """Public keys allowed in: every ``*.key`` in ``directory`` plus ``listed`` Z85 keys."""
    keys: list[bytes] = []
    if directory is not None:
        if not directory.is_dir():
            raise CurveKeyError(f"{directory} is not a directory of public keys")
        for path in sorted(directory.glob("*.key")):
            try:
                public, _ = zmq.auth.load_certificate(str(path))
            except (OSError, ValueError) as exc:
                raise CurveKeyError(f"cannot load certificate {path}: {exc}") from None
            keys.append(public)
    for key in listed:
        key = key.strip()
        if key:
            if len(key) != 40:
                raise CurveKeyError(f"authorized key {key[:60]!r} is not 40 Z85 characters")
            keys.append(key.encode("ascii"))
    return keys


class AllowListed:
    """ZAP credentials provider: only the listed client public keys (Z85) get in."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self.keys = set(keys)

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


def start_authenticator(context: zmq.Context, clients: Iterable[bytes]) -> ThreadAuthenticator:
    """Run ZAP in a thread on ``context`` so that only ``clients`` pass; ``.stop()`` it."""
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve_callback("*", AllowListed(clients))
    return authenticator


def make_server(sock: zmq.Socket, secret: bytes) -> None:
    """Before ``bind``: the socket accepts only CURVE clients (authenticated by ZAP)."""
    sock.curve_secretkey = secret
    sock.curve_publickey = zmq.curve_public(secret)
    sock.curve_server = True


def make_client(sock: zmq.Socket, server_public: bytes, secret: bytes) -> None:
    """Before ``connect``: talk CURVE to the server holding ``server_public``."""
    sock.curve_serverkey = server_public
    sock.curve_secretkey = secret
    sock.curve_publickey = zmq.curve_public(secret)


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public) and ``NAME.key_secret`` (secret, mode 0600) into
    ``directory``; refuses to overwrite an existing pair."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise CurveKeyError(f"{public} or {secret} exists already; not overwriting keys")
    previous = os.umask(0o077)  # the secret is never readable by others, not even briefly
    try:
        zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(previous)
    secret.chmod(0o600)
    public.chmod(0o644)
    return public, secret
