"""Real servers for integration tests, each on an ephemeral loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from refapp.launch import stop_child

# What every test nginx starts with: one worker under the test's own prefix, no logs.
NGINX_HEAD = """
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
"""
NGINX_CONF = NGINX_HEAD + """    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port}{listen_options};
        root {prefix}/www;
        location = /healthz {{ return 200 "ok\\n"; }}
{allow_405}
{extra}
    }}
}}
"""
# RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
# response". Stock nginx's static handler answers POST with a 405 that has none (assay
# reports it as the response rule allow_on_405); the test target is configured to comply.
NGINX_ALLOW_405 = """\
        error_page 405 @method_not_allowed;
        location @method_not_allowed { add_header Allow "GET, HEAD" always; return 405; }"""


# RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any ...
# request message that contains ... a Host header field with an invalid field value." Stock
# nginx takes "Host: user@host", a path, a query, a bad port (tests/test_conformance_servers.py
# shows it); the test target is configured to refuse what is outside uri-host [":" port].
NGINX_HOST_GRAMMAR = """
        if ($http_host !~ "^[A-Za-z0-9._~!&()*+,;=%-]*(:[0-9]*)?$") { return 400; }"""


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Ask ``proc`` to stop with ``sig``; kill it if it has not after ``timeout`` s."""
    stop_child(proc, sig, grace=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)
    if found is None:
        if os.environ.get("ASSAY_REQUIRE_NGINX"):
            pytest.fail("nginx is required (ASSAY_REQUIRE_NGINX is set) but not installed")
        pytest.skip("nginx not installed")
    return found


@contextmanager
def _running_nginx(binary: str, prefix: Path, conf: Path, port: int):
    """nginx on ``conf`` under ``prefix`` until the block ends (then a graceful SIGQUIT)."""
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-e",
                             str(prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield proc
    finally:
        stop(proc, signal.SIGQUIT)


# TLS with HTTP/2 over ALPN (nginx 1.22 spells it on the listen line); h2 and http/1.1.
NGINX_TLS = """
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;"""


@contextmanager
def nginx(tmp: Path, stock: bool = False, extra: str = "", tls: bool = False):
    """nginx on a free port; ``stock``: without the configuration that adds Allow to 405;
    ``extra``: more directives for the server block (``{prefix}`` is the nginx prefix);
    ``tls``: https with HTTP/2 (ALPN h2 and http/1.1), certificate from
    ``tests.tls_certs.test_certs()`` (its ``ca`` is what ``--ca-file`` trusts)."""
    binary = nginx_binary()
    prefix = tmp / "nginx"
    (prefix / "www").mkdir(parents=True)
    (prefix / "www" / "index.html").write_text("<html><body>assay nginx target</body></html>\n")
    port = free_port()
    conf = prefix / "nginx.conf"
    # As root, workers would drop to 'nobody' and could not read pytest's 0700 tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    compliant = "" if stock else NGINX_ALLOW_405 + NGINX_HOST_GRAMMAR
    listen_options = ""
    if tls:
        from tests.tls_certs import test_certs

        certs = test_certs()
        listen_options = " ssl http2"
        extra = NGINX_TLS.format(cert=certs.cert, key=certs.key) + extra
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, user=user,
                                      allow_405=compliant, listen_options=listen_options,
                                      extra=extra.replace("{prefix}", str(prefix))))
    with _running_nginx(binary, prefix, conf, port) as proc:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/", proc


NGINX_PROXY_CONF = NGINX_HEAD + """    upstream backends {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@contextmanager
def nginx_proxy(tmp: Path, upstream_ports: list[int]):
    """nginx as a reverse proxy to ``upstream_ports`` on 127.0.0.1 (keep-alive upstream
    connections). Yields (url, reconfigure): ``reconfigure(ports)`` rewrites the upstream
    set and runs ``nginx -s reload``."""
    binary = nginx_binary()
    prefix = tmp / "nginx-proxy"
    prefix.mkdir(parents=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""

    def write(ports: list[int]) -> None:
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        conf.write_text(NGINX_PROXY_CONF.format(prefix=prefix, port=port, user=user,
                                                servers=servers))

    def reconfigure(ports: list[int]) -> None:
        write(ports)
        subprocess.run([binary, "-p", str(prefix), "-c", str(conf), "-e",
                        str(prefix / "error.log"), "-s", "reload"], check=True,
                       capture_output=True, timeout=10)

    write(upstream_ports)
    with _running_nginx(binary, prefix, conf, port):
        yield f"http://127.0.0.1:{port}/", reconfigure
