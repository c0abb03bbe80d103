"""Requests per second per core over TLS: assay's Markov slice against hey and wrk.

The same harness as ``bench_markov.py`` (nginx pinned to one core, every client pinned to
the other, same concurrency and seconds, rounds in rotating order, ratios taken within a
round), with nginx serving https (TLS 1.3, a throw-away certificate from ``trustme``) and
two paths, so that no per-response memo carries the figure:

* ``/static.txt``: a small static file, byte-identical on every request;
* ``/varying``: ``return 200 "$request_id"``, a body that differs on every request.

assay runs with ``--insecure`` as hey (which skips verification) and wrk (which never
verifies) do: the cost measured is the TLS record layer and the handshake, not a
certificate check that happens once per connection anyway.

Run: ``python benchmarks/bench_tls.py [--rounds 3 --seconds 10 --concurrency 32]``.
Exit 0 when the benchmark ran (whatever the figures), 2 when nginx, taskset or trustme is
missing. The issue's target: assay >= 0.7x hey per core over TLS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_markov
from bench_markov import Bench, Measurement, report, round_order

TOOLS = ("assay", "hey", "wrk")
PATHS = ("/static.txt", "/varying")
TLS_CONF = bench_markov.NGINX_CONF.replace(
    "        listen 127.0.0.1:{port};\n",
    "        listen 127.0.0.1:{port} ssl;\n"
    "        ssl_certificate {tmp}/cert.pem;\n"
    "        ssl_certificate_key {tmp}/key.pem;\n"
    "        ssl_protocols TLSv1.3;\n"
    '        location = /varying {{ return 200 "$request_id"; }}\n',
)


def nginx_requests_tls(port: int) -> int:
    """nginx's request counter (stub_status) over TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw) as sock:
        sock.sendall(b"GET /nginx-status HTTP/1.0\r\nHost: bench\r\n\r\n")
        chunks = []
        with contextlib.suppress(ssl.SSLError):
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    body = b"".join(chunks).partition(b"\r\n\r\n")[2].decode()
    return int(body.splitlines()[2].split()[2])


class TlsBench(Bench):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"

    def pinned(self, *command: str) -> list[str]:
        # assay skips verification as hey and wrk do (see the module docstring).
        if "coordinator" in command:
            command = (*command, "--insecure")
        return super().pinned(*command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 300:
        parser.error("--rounds must be 1..20 and --seconds 1..300")
    for needed in ("nginx", "taskset"):
        if shutil.which(needed) is None:
            print(f"bench_tls: {needed} is not installed", file=sys.stderr)
            return 2
    try:
        import trustme
    except ImportError:
        print("bench_tls: trustme is not installed (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    tools = [t for t in TOOLS if t == "assay" or shutil.which(t)]
    bench_markov.nginx_requests = nginx_requests_tls  # the Sampler reads it at call time
    print(f"bench_tls: {args.rounds} rounds x {args.seconds} s, concurrency "
          f"{args.concurrency}, clients on core {args.client_core}, nginx on core "
          f"{args.server_core}, {os.cpu_count()} cores, tools {', '.join(tools)}")
    for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
        results: list[Measurement] = []
        with tempfile.TemporaryDirectory(prefix="assay-bench-tls-") as tmp_name:
            tmp = Path(tmp_name)
            cert = trustme.CA().issue_cert("127.0.0.1")
            cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
            cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
            with bench_markov.nginx(args.server_core, tmp, TLS_CONF) as (port, pids):
                bench = TlsBench(port, path, args.seconds, args.concurrency,
                                 args.client_core, pids, tmp)
                print(f"\n== {bench.url} (nginx pids {pids})")
                runners = {"assay": bench.run_assay, "hey": bench.run_hey,
                           "wrk": bench.run_wrk}
                for round_no in range(1, args.rounds + 1):
                    for tool in round_order(tools, round_no):
                        m = Measurement(tool, round_no)
                        runners[tool](m)
                        results.append(m)
                        print(f"  round {round_no} {tool:<8} {m.rps:>9.0f} req/s"
                              + ("" if m.ok else f"  !! {m.note}"), flush=True)
        report(results, tools, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
