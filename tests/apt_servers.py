"""apache2 and lighttpd from Debian, each on an ephemeral loopback port, serving one file.

Beside nginx (``tests.servers``), the two servers the conformance issue names from apt.
Each runs in the foreground with a configuration of its own (nothing of the system's is
read), so a test owns its process and its port. A server that is not installed is skipped.
apache2 refuses to serve as root, so its document root lives in a world-readable temporary
directory its ``www-data`` workers can read (pytest's own are 0700).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port, wait_for_port

APACHE_MODULES = Path("/usr/lib/apache2/modules")
APACHE_CONF = """
ServerRoot {root}
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule dir_module {modules}/mod_dir.so
{user}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
DocumentRoot {root}/www
ServerName 127.0.0.1
DirectoryIndex index.html
"""
LIGHTTPD_CONF = """
server.document-root = "{root}/www"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{root}/error.log"
index-file.names = ( "index.html" )
"""


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}")
                                   else None)
    if found is None:
        pytest.skip(f"{name} not installed")
    return found


@contextmanager
def _served(argv_for: Callable[[Path], list[str]], conf_text: str, name: str,
            scheme: str = "http") -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix=f"assay-{name}-"))
    try:
        os.chmod(root, 0o755)
        (root / "www").mkdir(mode=0o755)
        (root / "www" / "index.html").write_text(f"<html><body>assay {name} target</body></html>\n")
        os.chmod(root / "www" / "index.html", 0o644)
        port = free_port()
        conf = root / f"{name}.conf"
        conf.write_text(conf_text.format(root=root, port=port, modules=APACHE_MODULES,
                                         user=_apache_user()))
        proc = subprocess.Popen(argv_for(conf), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(port, 15)
            yield f"{scheme}://127.0.0.1:{port}/"
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _apache_user() -> str:
    return "User www-data\nGroup www-data" if os.geteuid() == 0 else ""


def _stop(proc: subprocess.Popen) -> None:
    """Stop the whole process group (apache2 forks its workers)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def apache2() -> Iterator[str]:
    """apache2 (event MPM, static files only) in the foreground."""
    binary = _binary("apache2")
    if not (APACHE_MODULES / "mod_mpm_event.so").exists():
        pytest.skip("apache2 modules not found")
    with _served(lambda conf: [binary, "-f", str(conf), "-DFOREGROUND"], APACHE_CONF,
                 "apache2") as url:
        yield url


@contextmanager
def lighttpd() -> Iterator[str]:
    """lighttpd (static files only) in the foreground."""
    binary = _binary("lighttpd")
    with _served(lambda conf: [binary, "-D", "-f", str(conf)], LIGHTTPD_CONF,
                 "lighttpd") as url:
        yield url


# --- HTTP/2: the same servers with h2 (TLS + ALPN) or h2c (prior knowledge, upgrade) -------

#: mod_http2 on top of APACHE_CONF: h2 over TLS, h2c on cleartext, HTTP/1.1 beside both.
APACHE_H2 = """
LoadModule http2_module {modules}/mod_http2.so
Protocols h2 h2c http/1.1
"""
APACHE_TLS = """
LoadModule ssl_module {modules}/mod_ssl.so
SSLEngine on
SSLCertificateFile {cert}
SSLCertificateKeyFile {key}
"""
#: lighttpd >= 1.4.59 speaks h2 itself; the feature flags make it explicit (h2c included).
LIGHTTPD_H2 = """
server.feature-flags += ( "server.h2proto" => "enable", "server.h2c" => "enable" )
"""
LIGHTTPD_TLS = """
server.modules += ( "mod_openssl" )
ssl.engine = "enable"
ssl.pemfile = "{cert}"
ssl.privkey = "{key}"
"""


def _with_tls(conf_text: str, tls_text: str, certs: Any) -> str:
    """The TLS block with the certificate paths in (braces doubled: _served formats it)."""
    if certs is None:
        return conf_text
    def literal(path: Any) -> str:
        return str(path).replace("{", "{{").replace("}", "}}")
    return conf_text + tls_text.replace("{cert}", literal(certs.cert)).replace(
        "{key}", literal(certs.key))


@contextmanager
def apache2_h2(certs: Any = None, direct: bool = True) -> Iterator[str]:
    """apache2 with mod_http2: h2c on http, or TLS (mod_ssl) with ALPN h2 when ``certs``
    (``tests.tls_certs.TestCerts``) is given; the URL's scheme says which. ``direct=False``
    turns prior knowledge off (``H2Direct off``): cleartext HTTP/2 only by the upgrade."""
    binary = _binary("apache2")
    needed = ["mod_mpm_event.so", "mod_http2.so"] + (["mod_ssl.so"] if certs else [])
    missing = [m for m in needed if not (APACHE_MODULES / m).exists()]
    if missing:
        pytest.skip(f"apache2 modules not found: {', '.join(missing)}")
    conf = _with_tls(APACHE_CONF + APACHE_H2 + ("" if direct else "H2Direct off\n"),
                     APACHE_TLS, certs)
    with _served(lambda path: [binary, "-f", str(path), "-DFOREGROUND"], conf, "apache2",
                 "https" if certs else "http") as url:
        yield url


@contextmanager
def lighttpd_h2(certs: Any = None) -> Iterator[str]:
    """lighttpd with h2 and h2c enabled: cleartext, or TLS (mod_openssl) when ``certs``."""
    binary = _binary("lighttpd")
    if certs is not None and not _lighttpd_has_openssl(binary):
        pytest.skip("lighttpd without mod_openssl")
    conf = _with_tls(LIGHTTPD_CONF + LIGHTTPD_H2, LIGHTTPD_TLS, certs)
    with _served(lambda path: [binary, "-D", "-f", str(path)], conf, "lighttpd",
                 "https" if certs else "http") as url:
        yield url


def _lighttpd_has_openssl(binary: str) -> bool:
    libdir = Path("/usr/lib/lighttpd")
    return (libdir / "mod_openssl.so").exists() or b"(ssl)" in subprocess.run(
        [binary, "-V"], capture_output=True, timeout=10).stdout
