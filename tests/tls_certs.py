"""Certificates for TLS tests: a throw-away CA and a server certificate for the loopback
names, made with ``trustme`` (python-trio's test-CA library) once per test process."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TestCerts:
    #: The CA that signed ``cert`` (what ``--ca-file`` trusts).
    ca: Path
    #: Server certificate chain for 127.0.0.1, ::1 and localhost, and its key.
    cert: Path
    key: Path
    #: A client certificate signed by the same CA, and its key.
    client_cert: Path
    client_key: Path
    #: A second CA that signed nothing here: trusting it must fail verification.
    other_ca: Path


@functools.cache
def test_certs() -> TestCerts:
    where = Path(tempfile.mkdtemp(prefix="assay-tls-"))
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "::1", "localhost")
    client = ca.issue_cert("assay-client@example.test")
    paths = {name: where / f"{name}.pem" for name in
             ("ca", "cert", "key", "client_cert", "client_key", "other_ca")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(paths["cert"]), append=True)
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other_ca"]))
    return TestCerts(**paths)


# Named for what they are, not tests: keep pytest from collecting them where imported.
TestCerts.__test__ = False  # type: ignore[attr-defined]
test_certs.__test__ = False  # type: ignore[attr-defined]


@contextlib.contextmanager
def trusting_test_ca() -> Iterator[None]:
    """This process's clients trust the test CA for the block (walkers driven in-process)."""
    from actors import tls
    from protocols.tls_options import TlsOptions

    tls.install(TlsOptions(ca_file=str(test_certs().ca)))
    try:
        yield
    finally:
        tls.install(TlsOptions())
