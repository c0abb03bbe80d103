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
def _served(argv_for: Callable[[Path], list[str]], conf_text: str, name: str) -> Iterator[str]:
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
            yield f"http://127.0.0.1:{port}/"
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
