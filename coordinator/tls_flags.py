"""The TLS flags every command with a ``--target`` takes, checked before anything starts.

``add_tls_options`` is applied by ``coordinator.cli.build_parser`` to each sub-command that
has ``--target``, so a new command gets TLS without a line of its own. ``install_from_args``
runs once after parsing: it checks the files (a CA bundle that does not load, a certificate
without its key: exit 2 with one line), installs the options in this process
(``actors.tls``) and returns them for the Plan that carries them to the actors.
"""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

from coordinator.config import ConfigError
from protocols.tls_options import TlsOptions, no_passphrase


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument_group("TLS (https:// targets)").add_argument
    add("--insecure", "-k", action="store_true",
        help="do not verify the server certificate or host name (as curl -k)")
    add("--ca-file", metavar="PEM", help="trust the CA certificates in this PEM file "
        "instead of the system store")
    add("--sni", metavar="NAME", help="server name to send and verify (default: the URL host)")
    add("--cert", metavar="PEM", help="client certificate chain (PEM)")
    add("--key", metavar="PEM", help="private key of --cert (default: in the --cert file)")


def options_from_args(args: argparse.Namespace) -> TlsOptions:
    options = TlsOptions(
        insecure=bool(getattr(args, "insecure", False)),
        ca_file=getattr(args, "ca_file", None),
        sni=getattr(args, "sni", None),
        cert=getattr(args, "cert", None),
        key=getattr(args, "key", None),
    )
    check(options)
    return options


def check(options: TlsOptions) -> None:
    """Load what the options name, the way the actors will; a failure is a ConfigError."""
    if options.key and not options.cert:
        raise ConfigError("--key needs --cert")
    if options.sni is not None and (not options.sni or any(c in options.sni for c in " /\x00")):
        raise ConfigError(f"--sni {options.sni!r} is not a host name")
    if options.sni is not None:
        try:  # what every handshake will do with it (a ValueError there is no OSError)
            ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(),
                                                  server_hostname=options.sni)
        except ValueError as exc:
            raise ConfigError(f"--sni {options.sni!r} is not a host name ssl can send "
                              f"({exc})") from None
    for flag, path in (("--ca-file", options.ca_file), ("--cert", options.cert),
                       ("--key", options.key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    context = ssl.create_default_context()
    if options.ca_file:
        try:
            context.load_verify_locations(cafile=options.ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(f"--ca-file {options.ca_file}: not a PEM CA bundle "
                              f"({_reason(exc)})") from None
    if options.cert:
        asked: list[bool] = []

        def passphrase() -> bytes:
            asked.append(True)
            return no_passphrase()

        try:
            context.load_cert_chain(options.cert, options.key, password=passphrase)
        except (ssl.SSLError, OSError, ValueError) as exc:
            reason = ("the key is encrypted; assay needs an unencrypted key" if asked
                      else _reason(exc))
            raise ConfigError(f"--cert {options.cert}: cannot load the certificate and key "
                              f"({reason})") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return str(exc) or type(exc).__name__


def install_from_args(args: argparse.Namespace) -> TlsOptions:
    from actors import tls

    options = options_from_args(args)
    tls.install(options)
    return options
