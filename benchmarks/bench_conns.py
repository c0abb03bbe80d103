"""How many held and slow connections does one actor core sustain? Memory per connection.

How this works: starts its own nginx (one worker, ``worker_connections 65536``,
``worker_rlimit_nofile 70000``; bench_markov's nginx allows only 4096) on a free port, then
runs, each with ``--procs 1`` and ``RLIMIT_NOFILE`` raised to 70000 in the child:

1. ``assay hold --connections N --delay 0.1ms --hold 5s`` for N = 1 (the baseline) and each
   ``--hold-connections`` (default 10000 and 20000), reading ``--summary-json``
   (established, still open) and sampling the actor process's VmRSS (the ``-m actors``
   child of the coordinator) every 50 ms. Memory per held connection = (actor peak RSS
   - actor peak RSS of the 1-connection baseline) / still open.
2. ``assay loris --mode headers --connections N --rate 2000/s --interval 10s
   --duration 15s --control-rate 10/s`` (default N = 5000): still open at the end,
   actor peak RSS and CPU seconds.
3. ``slowhttptest -c N -H -i 10 -r 2000 -l 15 -u URL -g -o PREFIX`` when installed: its
   own CSV (connected / pending / closed per second), its peak RSS and CPU seconds.

Run: ``python benchmarks/bench_conns.py [--hold-connections 10000,20000
--loris-connections 5000 --json out.json]``. Exit 0 when it ran, 2 when nginx is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_markov

REPO = Path(__file__).resolve().parent.parent
NOFILE = 70000
TARGET_HELD = 10000

NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log crit;
events {{ worker_connections 65536; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 600s;
    client_header_timeout 600s;
    client_body_timeout 600s;
    server {{
        listen 127.0.0.1:{port} backlog=65535;
        root {tmp}/www;
        location = /ok {{ return 200 "ok\\n"; }}
    }}
}}
"""


def _raise_nofile() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@contextlib.contextmanager
def nginx(tmp: Path) -> Iterator[int]:
    """bench_markov's nginx on this file's configuration, unpinned, with the open-file limit
    raised in the child; yields its port."""
    with bench_markov.nginx(None, tmp, NGINX_CONF, _raise_nofile, nofile=NOFILE) as (port, _):
        yield port


class Watch:
    """Samples, every 50 ms, peak RSS and CPU of the processes ``pick`` chooses in a tree."""

    def __init__(self, root: int, pick) -> None:
        self.root, self.pick = root, pick
        self.peak_rss = 0
        self.first_rss: int | None = None
        self.cpu: dict[int, float] = {}
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _procs(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        out = []
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                if self.pick(proc.cmdline()):
                    out.append(proc)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = 0
            for proc in self._procs():
                with contextlib.suppress(psutil.Error):
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[proc.pid] = times.user + times.system
                    self.pids.add(proc.pid)
            if rss:
                if self.first_rss is None:
                    self.first_rss = rss
                self.peak_rss = max(self.peak_rss, rss)
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())


def _is_actor(cmd: list[str]) -> bool:
    return "actors" in cmd and "-m" in cmd


def _run(cmd: list[str], pick, timeout: float, out: Path) -> tuple[int, Watch, float]:
    start = time.monotonic()
    with open(out, "wb") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, preexec_fn=_raise_nofile)
        watch = Watch(proc.pid, pick)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        watch.stop()
    return rc, watch, time.monotonic() - start


def run_hold(port: int, n: int, tmp: Path) -> dict:
    summary = tmp / f"hold-{n}.json"
    cmd = [sys.executable, "-m", "coordinator", "hold", "--target", f"127.0.0.1:{port}",
           "--connections", str(n), "--delay", "0.1ms", "--hold", "5s", "--procs", "1",
           "--results", str(tmp / "results"), "--summary-json", str(summary)]
    rc, watch, wall = _run(cmd, _is_actor, 120, tmp / f"hold-{n}.out")
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return {"tool": "assay hold", "connections": n, "rc": rc, "wall_s": round(wall, 1),
            "established": data.get("established"), "still_open": data.get("still_open"),
            "failed": data.get("connect_failed"), "closed_by_peer": data.get("closed_by_peer"),
            "fd_capacity": data.get("fd_capacity"),
            "never_dialed_fd_limit": data.get("never_dialed_fd_limit"),
            "actor_peak_rss_mib": round(watch.peak_rss / 2**20, 1),
            "actor_first_rss_mib": round((watch.first_rss or 0) / 2**20, 1),
            "actor_cpu_s": round(watch.cpu_s, 2), "_peak": watch.peak_rss}


def run_loris(port: int, n: int, tmp: Path) -> dict:
    summary = tmp / f"loris-{n}.json"
    cmd = [sys.executable, "-m", "coordinator", "loris", "--target",
           f"http://127.0.0.1:{port}/ok", "--mode", "headers", "--connections", str(n),
           "--rate", "2000/s", "--interval", "10s", "--duration", "15s",
           "--control-rate", "10/s", "--procs", "1", "--results", str(tmp / "results"),
           "--summary-json", str(summary)]
    rc, watch, wall = _run(cmd, _is_actor, 120, tmp / f"loris-{n}.out")
    data = json.loads(summary.read_text()) if summary.exists() else {}
    return {"tool": "assay loris", "connections": n, "rc": rc, "wall_s": round(wall, 1),
            "opened": data.get("opened"), "connected": data.get("connected"),
            "still_open": data.get("still_open"), "closed": data.get("closed_by_server"),
            "control_success_pct": data.get("control_success_pct"),
            "actor_peak_rss_mib": round(watch.peak_rss / 2**20, 1),
            "actor_cpu_s": round(watch.cpu_s, 2)}


def run_slowhttptest(port: int, n: int, tmp: Path) -> dict:
    prefix = tmp / "slowhttptest"
    cmd = ["slowhttptest", "-c", str(n), "-H", "-i", "10", "-r", "2000", "-l", "15",
           "-u", f"http://127.0.0.1:{port}/ok", "-g", "-o", str(prefix)]
    rc, watch, wall = _run(cmd, lambda c: bool(c) and "slowhttptest" in c[0], 120,
                           tmp / "slowhttptest.out")
    rows = []
    with contextlib.suppress(OSError), open(f"{prefix}.csv") as f:
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k}
                for r in csv.DictReader(f)]

    def col(row: dict, name: str) -> int | None:
        value = row.get(name)
        return int(value) if value and value.isdigit() else None

    last = rows[-1] if rows else {}
    peak = max((col(r, "connected") or 0 for r in rows), default=None)
    return {"tool": "slowhttptest", "connections": n, "rc": rc, "wall_s": round(wall, 1),
            "connected_at_end": col(last, "connected"), "pending_at_end": col(last, "pending"),
            "closed_at_end": col(last, "closed"), "peak_connected": peak,
            "peak_rss_mib": round(watch.peak_rss / 2**20, 1),
            "cpu_s": round(watch.cpu_s, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-connections", default="10000,20000")
    parser.add_argument("--loris-connections", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("nginx") is None:
        print("bench_conns: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 2
    _raise_nofile()
    result: dict = {"hold": [], "loris": None, "slowhttptest": None}
    with tempfile.TemporaryDirectory(prefix="bench-conns-") as name:
        tmp = Path(name)
        with nginx(tmp) as port:
            base = run_hold(port, 1, tmp)
            result["baseline"] = {k: v for k, v in base.items() if k != "_peak"}
            for n in (int(x) for x in args.hold_connections.split(",") if x):
                row = run_hold(port, n, tmp)
                held = row["still_open"] or 0
                row["kib_per_held_conn"] = (
                    round((row["_peak"] - base["_peak"]) / held / 1024, 2) if held else None)
                row["meets_10k"] = held >= TARGET_HELD
                del row["_peak"]
                result["hold"].append(row)
            result["loris"] = run_loris(port, args.loris_connections, tmp)
            if shutil.which("slowhttptest"):
                result["slowhttptest"] = run_slowhttptest(port, args.loris_connections, tmp)
            else:
                result["slowhttptest"] = {"skipped": "slowhttptest not installed"}

    print(f"baseline (1 connection): actor peak RSS {result['baseline']['actor_peak_rss_mib']}"
          " MiB")
    print("| tool | asked | established/connected | still open | actor peak RSS MiB "
          "| KiB/held conn | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for r in result["hold"]:
        print(f"| assay hold | {r['connections']} | {r['established']} | {r['still_open']} "
              f"| {r['actor_peak_rss_mib']} | {r['kib_per_held_conn']} | {r['actor_cpu_s']} |")
    lo = result["loris"]
    print(f"| assay loris headers | {lo['connections']} | {lo['connected']} "
          f"| {lo['still_open']} | {lo['actor_peak_rss_mib']} | - | {lo['actor_cpu_s']} |")
    sh = result["slowhttptest"]
    if "skipped" in sh:
        print(f"slowhttptest: {sh['skipped']}")
    else:
        print(f"| slowhttptest -H | {sh['connections']} | peak {sh['peak_connected']} "
              f"| {sh['connected_at_end']} (pending {sh['pending_at_end']}) "
              f"| {sh['peak_rss_mib']} | - | {sh['cpu_s']} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
