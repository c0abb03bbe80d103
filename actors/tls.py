"""TLS for every client connection assay makes to an ``https://`` target.

One set of ``TlsOptions`` per process (``install``): the coordinator installs what the
user asked for, each actor installs what the Plan carries. Contexts are built once per ALPN
list and cached: loading a CA bundle costs milliseconds, a handshake must not pay it.

Two ways in, one per kind of caller:
- ``handshake`` wraps a trio stream in a ``trio.SSLStream`` (the walkers that use
  ``actors.net``: adversarial, WebSocket, SSE, h2, probes);
- ``wrap_nonblocking`` turns the hot path's non-blocking stdlib socket into a non-blocking
  ``ssl.SSLSocket`` and completes the handshake with trio's low-level waits
  (``actors.keepalive``: Markov, load), so a request over TLS costs two C calls, as over
  TCP.
Failures become ``net.TransportError`` causes: ``tls_verify`` (the certificate was not
trusted, with OpenSSL's reason), ``tls_handshake`` (anything else the handshake refused),
``tls_timeout``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl

import trio
from trio.lowlevel import wait_readable, wait_writable

from actors.walker import Target
from protocols.tls_options import ALPN_HTTP1, TlsOptions, no_passphrase

_options = TlsOptions()


def install(options: TlsOptions) -> None:
    global _options
    _options = options
    client_context.cache_clear()


def installed() -> TlsOptions:
    return _options


@functools.cache
def client_context(alpn: tuple[str, ...] = ALPN_HTTP1) -> ssl.SSLContext:
    """The client context for ``alpn`` under the installed options. Raises ``OSError`` /
    ``ssl.SSLError`` for unreadable files (``coordinator.tls_flags`` checks them first)."""
    options = _options
    context = ssl.create_default_context(cafile=options.ca_file)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.cert:
        context.load_cert_chain(options.cert, options.key, password=no_passphrase)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def server_hostname(target: Target) -> str:
    """The name verified (and sent as SNI unless it is an address literal: RFC 6066 §3
    "Literal IPv4 and IPv6 addresses are not permitted in 'HostName'", which Python's
    ssl module honours)."""
    return _options.sni or target.host


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(cause, detail) of a failed handshake."""
    inner = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        reason = inner.verify_message or inner.reason or str(inner)
        return "tls_verify", (f"certificate verify failed: {reason} "
                              "(trust it with --ca-file, or skip checks with --insecure)")
    if isinstance(inner, ssl.SSLEOFError):  # a FIN where the ServerHello should be
        return "eof", "closed during the TLS handshake"
    if isinstance(inner, ssl.SSLError):
        return "tls_handshake", inner.reason or str(inner)
    if isinstance(inner, (ConnectionResetError, BrokenPipeError)):
        return "reset", "during the TLS handshake"
    if isinstance(exc, trio.BrokenResourceError) and inner is None:
        return "eof", "closed during the TLS handshake"
    return "tls_handshake", str(inner or exc) or type(exc).__name__


async def handshake(stream: trio.SocketStream, target: Target, alpn: tuple[str, ...],
                    timeout: float) -> trio.SSLStream[trio.SocketStream]:
    """TLS over ``stream`` within ``timeout``; on failure the stream is closed and a
    ``TransportError`` raised."""
    from actors.net import TransportError, aclose_quietly

    try:
        # ssl refuses some names as server_hostname (a leading dot, a label over 63
        # bytes) with a ValueError: counted like any other refused handshake.
        tls = trio.SSLStream(stream, client_context(alpn),
                             server_hostname=server_hostname(target), https_compatible=True)
        with trio.fail_after(max(0.0, timeout)):  # what is left of a deadline may be < 0
            await tls.do_handshake()
    except trio.TooSlowError:
        await aclose_quietly(stream)
        raise TransportError("tls_timeout", f"no TLS handshake within {timeout:.1f} s") from None
    except (trio.BrokenResourceError, OSError, ValueError) as exc:
        await aclose_quietly(stream)
        cause, detail = describe_failure(exc)
        raise TransportError(cause, detail) from None
    except BaseException:
        # The caller's deadline (a cancel) or anything else: close the socket now, not at
        # garbage collection, or the server keeps a half-done handshake open meanwhile.
        await aclose_quietly(stream)
        raise
    return tls


async def wrap_nonblocking(sock: socket.socket, target: Target,
                           alpn: tuple[str, ...] = ALPN_HTTP1) -> ssl.SSLSocket:
    """Handshake on a connected non-blocking socket; the caller's cancel scope holds the
    deadline. The returned socket stays non-blocking: its ``send``/``recv`` raise
    ``ssl.SSLWantWriteError`` / ``ssl.SSLWantReadError`` where a plain socket would raise
    ``BlockingIOError``."""
    from actors.net import TransportError

    try:
        tls = client_context(alpn).wrap_socket(sock, server_hostname=server_hostname(target),
                                               do_handshake_on_connect=False)
    except (OSError, ValueError) as exc:  # a server name ssl refuses (see ``handshake``)
        sock.close()
        cause, detail = describe_failure(exc)
        raise TransportError(cause, detail) from None
    fd = tls.fileno()
    try:
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                await wait_readable(fd)
            except ssl.SSLWantWriteError:
                await wait_writable(fd)
    except BaseException as exc:
        tls.close()
        if isinstance(exc, OSError):
            cause, detail = describe_failure(exc)
            raise TransportError(cause, detail) from None
        raise


def negotiated_alpn(stream: object) -> str | None:
    """The ALPN protocol the server chose, None for cleartext or no ALPN."""
    if isinstance(stream, trio.SSLStream):
        return stream.selected_alpn_protocol()
    if isinstance(stream, ssl.SSLSocket):
        return stream.selected_alpn_protocol()
    return None
