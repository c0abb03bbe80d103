"""How assay's clients speak TLS to an ``https://`` target: the user's choices, as data.

The coordinator parses them once (``coordinator.tls_flags``), checks the files, installs
them in its own process and ships them to every actor in the Plan, so every connection a
run makes - walkers, health probes, forensics, replay - verifies (or, with ``--insecure``,
does not verify) the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: ALPN protocol ids (RFC 7301; RFC 9113 §3.2 for "h2").
ALPN_HTTP1 = ("http/1.1",)
ALPN_H2 = ("h2",)


def no_passphrase() -> bytes:
    """The ``password`` for ``load_cert_chain``: assay takes unencrypted keys only. Without
    a callback OpenSSL prompts for a passphrase on the terminal, which hangs every actor
    (and the coordinator's flag check) waiting for input no one gives; an encrypted key
    fails to load instead."""
    return b""


@dataclass(frozen=True)
class TlsOptions:
    #: Skip certificate and host name verification (curl ``-k``).
    insecure: bool = False
    #: PEM bundle of trusted CAs instead of the system store.
    ca_file: str | None = None
    #: Server name to send and verify instead of the URL's host.
    sni: str | None = None
    #: Client certificate chain (PEM) and its private key (PEM; may be in ``cert``).
    cert: str | None = None
    key: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}

    @classmethod
    def from_wire(cls, data: Any) -> TlsOptions:
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in ("insecure", "ca_file", "sni", "cert", "key") if k in data}
        return cls(**known)

    def describe(self) -> str:
        parts = ["insecure" if self.insecure else "verified"]
        parts += [f"{name}={value}" for name, value in
                  (("ca-file", self.ca_file), ("sni", self.sni), ("cert", self.cert))
                  if value]
        return ", ".join(parts)
