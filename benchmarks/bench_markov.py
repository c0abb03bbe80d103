"""Requests per second per core: assay's Markov slice against hey, locust and wrk.

How this works: one nginx (``worker_processes 1``, ``daemon off``, temp config on an
ephemeral loopback port) is pinned to core 1 (``--server-core``) for the whole benchmark.
Every load generator is pinned to core 0 (``--client-core``) and driven at the same
concurrency against the same URL for the same number of seconds, one after the other:

* ``assay``: ``python -m coordinator run --procs 1 --slices markov`` -- one actor process
  doing the Markov slice with full response validation (every response parsed, status
  classes judged, keep-alive honoured, latencies recorded as histograms). The coordinator
  shares the client core; it is idle during the run (tally merge 4x/s, health probe 1x/s),
  and the table shows how much of that core it took.
* ``assay-norec``: the same with ``ASSAY_BENCH_NO_RECORDING=1``, which the actor reads once
  at start to turn tally counters and latency recording into no-ops. Its rate comes from
  nginx's request counter (``stub_status``), since it records nothing itself.
* ``assay-baseline`` (with ``--baseline DIR``): assay from another checkout.
* ``locust``: one headless locust process with a generated ``FastHttpUser`` locustfile.
* ``hey`` (``-z Ns -c C``) and ``wrk`` (``-t1 -cC -dNs``, the ceiling).

A round runs every tool once. The order rotates from round to round, so that drift on a
shared host does not always hit the same tool, and the assay variants run back to back.
Ratios (assay/locust, assay/hey, ...) are taken within a round and the table reports their
median: only same-run ratios mean anything on a noisy host.

Two figures per measurement: req/s on the pinned core, and req/CPU-s, the requests per
second of the tool's own CPU time (process tree) in the steady middle of the run (found
from nginx's request counter, sampled with /proc every 250 ms): what the tool does with a
whole core even when other processes or the hypervisor took part of it. The table also
shows each core's busy %, the VM steal time, and "other": CPU burnt meanwhile by processes
other than the tool and nginx. The load average is printed at the start and end.

Run: ``python benchmarks/bench_markov.py [--rounds 3 --seconds 10 --concurrency 32]``.
Exit 0 when the benchmark ran (whatever the figures), 2 when nginx or taskset is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("assay", "assay-norec", "locust", "hey", "wrk")
BASELINE = "assay-baseline"
STATIC_BODY = b"assay benchmark: a small static file served by nginx.\n"
NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location = /ok {{ return 200 "ok\\n"; }}
        location = /close {{ keepalive_timeout 0; return 200 "ok\\n"; }}
        location = /nginx-status {{ stub_status; }}
    }}
}}
"""
LOCUSTFILE = """\
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class Walker(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get({path!r})
"""


@dataclass
class Measurement:
    tool: str
    round: int
    rps: float = 0.0
    ok: bool = True
    note: str = ""
    core_busy: tuple[float, ...] = ()
    steal_pct: float = 0.0
    other_cpu_pct: float = 0.0
    coordinator_pct: float | None = None
    #: Requests per second of the tool's own CPU, in the steady middle of the run.
    per_cpu_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


# -- machine sampling ----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_times() -> dict[str, list[int]]:
    """/proc/stat jiffies per cpu line: user nice system idle iowait irq softirq steal."""
    times = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu"):
                name, *values = line.split()
                times[name] = [int(v) for v in values[:8]]
    return times


def _proc_cpu(pid: int) -> float | None:
    """utime + stime of one process, in seconds (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
    return found


class Sampler:
    """Samples, every ``interval``: CPU of a tool's process tree, of nginx, of the machine,
    and nginx's request counter -- so that a run's steady middle can be told apart from
    the tool's start-up and wind-down."""

    def __init__(
        self, tool_pid: int, nginx_pids: list[int], port: int, interval: float = 0.25
    ) -> None:
        self.tool_pid = tool_pid
        self.nginx_pids = nginx_pids
        self.port = port
        self.interval = interval
        self.tool_cpu: dict[int, float] = {}  # pid -> CPU seconds when last seen alive
        # (elapsed s, tool tree CPU s, tool root pid CPU s, nginx requests so far)
        self.series: list[tuple[float, float, float, int]] = []
        self.nginx_cpu = {pid: _proc_cpu(pid) or 0.0 for pid in nginx_pids}
        self.nginx_start = dict(self.nginx_cpu)
        self.start = _cpu_times()
        self.started_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._sample()
        self._thread.start()

    def _sample(self) -> None:
        for pid in _descendants(self.tool_pid):  # all born after the sampler started
            cpu = _proc_cpu(pid)
            if cpu is not None:
                self.tool_cpu[pid] = cpu
        for pid in self.nginx_pids:
            cpu = _proc_cpu(pid)
            if cpu is not None:
                self.nginx_cpu[pid] = cpu
        with contextlib.suppress(OSError, ValueError, IndexError):
            served = nginx_requests(self.port)
            self.series.append((time.monotonic() - self.started_at, sum(self.tool_cpu.values()),
                                self.tool_cpu.get(self.tool_pid, 0.0), served))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def steady(self) -> tuple[int, int] | None:
        """Indices (first, last) of the samples that bound the run's steady middle: the
        intervals where nginx served at least a third of the busiest interval's requests,
        less the first and the last of them (ramp-up, wind-down)."""
        series = self.series
        deltas = [b[3] - a[3] for a, b in itertools.pairwise(series)]
        if not deltas or max(deltas) <= 0:
            return None
        active = [i for i, d in enumerate(deltas) if d >= max(deltas) / 3]
        first, last = active[0] + 1, active[-1]
        return (first, last) if last - first >= 2 else None

    def finish(self, measurement: Measurement, coordinator_pid: int | None = None) -> None:
        self._stop.set()
        self._thread.join()
        end = _cpu_times()
        wall = time.monotonic() - self.started_at
        cores = sorted((k for k in end if k != "cpu"), key=lambda k: int(k[3:]))
        busy = []
        for core in cores:
            delta = [b - a for a, b in zip(self.start[core], end[core], strict=True)]
            total = sum(delta) or 1
            busy.append(100.0 * (total - delta[3] - delta[4] - delta[7]) / total)
        delta = [b - a for a, b in zip(self.start["cpu"], end["cpu"], strict=True)]
        all_busy_s = (sum(delta) - delta[3] - delta[4] - delta[7]) / _TICK  # steal aside
        tool_s = sum(self.tool_cpu.values())
        nginx_s = sum(self.nginx_cpu[p] - self.nginx_start[p] for p in self.nginx_pids)
        measurement.core_busy = tuple(busy)
        measurement.steal_pct = 100.0 * delta[7] / (sum(delta) or 1)
        measurement.other_cpu_pct = max(0.0, 100.0 * (all_busy_s - tool_s - nginx_s) / wall)
        window = self.steady()
        if window is None:
            return
        (t0, cpu0, root0, req0), (t1, cpu1, root1, req1) = (self.series[i] for i in window)
        if cpu1 > cpu0:
            # Requests per second of the tool's own CPU: what it does with a whole core,
            # however much of the core other processes took meanwhile.
            measurement.per_cpu_s = (req1 - req0) / (cpu1 - cpu0)
        if coordinator_pid is not None:
            measurement.coordinator_pct = 100.0 * (root1 - root0) / (t1 - t0)


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def nginx(core: int | None, tmp: Path, conf_template: str | None = None,
          preexec_fn: Callable[[], None] | None = None,
          **fields: object) -> Iterator[tuple[int, list[int]]]:
    """Start nginx (pinned to ``core`` unless None); yield (port, [master pid, worker pid]).

    ``conf_template`` (default: ``NGINX_CONF`` as it is at the call, which bench_load
    patches) is formatted with ``user``, ``tmp``, ``port`` and ``fields``; ``preexec_fn``
    runs in the child before nginx starts (bench_conns raises its open-file limit there)."""
    for name in ("www", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir(exist_ok=True)
    (tmp / "www" / "static.txt").write_bytes(STATIC_BODY)
    port = _free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text((conf_template or NGINX_CONF).format(user=user, tmp=tmp, port=port,
                                                         **fields))
    log = open(tmp / "nginx.out", "wb")  # noqa: SIM115
    pin = ["taskset", "-c", str(core)] if core is not None else []
    proc = subprocess.Popen(
        [*pin, "nginx", "-c", str(conf), "-p", str(tmp)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=preexec_fn,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"nginx exited: {(tmp / 'nginx.out').read_text()[-400:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit("nginx did not start listening within 10 s")
            time.sleep(0.05)
        yield port, _descendants(proc.pid)
    finally:
        stop(proc, signal.SIGQUIT)
        log.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Ask ``proc`` to stop with ``sig``; SIGKILL it after ``grace`` seconds."""
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nginx_requests(port: int) -> int:
    """nginx's own count of requests handled (stub_status), this request included."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /nginx-status HTTP/1.0\r\nHost: bench\r\n\r\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    body = b"".join(chunks).partition(b"\r\n\r\n")[2].decode()
    return int(body.splitlines()[2].split()[2])


# -- the tools -------------------------------------------------------------------------------


@dataclass
class Bench:
    port: int
    path: str
    seconds: int
    concurrency: int
    client_core: int
    nginx_pids: list[int]
    tmp: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def pinned(self, *command: str) -> list[str]:
        return ["taskset", "-c", str(self.client_core), *command]

    def launch(
        self, m: Measurement, command: list[str], env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> tuple[int, str, Sampler]:
        """Run ``command`` (bounded by a timeout) while sampling; (rc, output, sampler)."""
        out = self.tmp / f"{m.tool}-{m.round}.out"
        with open(out, "wb") as sink:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd)
            sampler = Sampler(proc.pid, self.nginx_pids, self.port)
            try:
                rc = proc.wait(self.seconds + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
                m.ok, m.note = False, "timed out"
            sampler.finish(m, proc.pid if m.tool.startswith("assay") else None)
        return rc, out.read_text(errors="replace"), sampler

    def run_wrk(self, m: Measurement) -> None:
        c = str(self.concurrency)
        rc, text, _ = self.launch(m, self.pinned("wrk", "-t1", f"-c{c}", f"-d{self.seconds}s",
                                                 self.url))
        m.rps = _number_after(text, "Requests/sec:")
        if rc or "Non-2xx" in text or "Socket errors" in text:
            m.ok, m.note = False, f"rc={rc} " + _line_with(text, "Non-2xx", "Socket errors")

    def run_hey(self, m: Measurement) -> None:
        rc, text, _ = self.launch(m, self.pinned("hey", "-z", f"{self.seconds}s", "-c",
                                                 str(self.concurrency), self.url))
        m.rps = _number_after(text, "Requests/sec:")
        codes = text.partition("Status code distribution:")[2].split("\n\n")[0]
        if rc or "[200]" not in codes or codes.count("[") != 1:
            m.ok, m.note = False, f"rc={rc} status codes: {' '.join(codes.split())[:60]}"

    def run_locust(self, m: Measurement) -> None:
        locustfile = self.tmp / "locustfile.py"
        locustfile.write_text(LOCUSTFILE.format(path=self.path))
        prefix = self.tmp / f"locust-{m.round}"
        c = str(self.concurrency)
        command = self.pinned(
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", c, "-r", c, "--run-time", f"{self.seconds}s", "--host",
            f"http://127.0.0.1:{self.port}", "--csv", str(prefix), "--only-summary",
            "--loglevel", "WARNING", "--exit-code-on-error", "1",
        )
        rc, text, _ = self.launch(m, command)
        stats = Path(f"{prefix}_stats.csv")
        if not stats.exists():
            m.ok, m.note = False, f"rc={rc}, no stats CSV: {text.strip()[-120:]}"
            return
        rows = stats.read_text().splitlines()
        header = rows[0].split(",")
        total = next(r.split(",") for r in rows[1:] if ",Aggregated," in r)
        count = int(total[header.index("Request Count")])
        failures = int(total[header.index("Failure Count")])
        m.rps = count / self.seconds
        if rc or failures:
            m.ok, m.note = False, f"rc={rc} failures={failures}"

    def run_assay(self, m: Measurement, recording: bool = True, tree: Path = REPO) -> None:
        """assay from the checkout ``tree`` (``--baseline`` runs another one, same run)."""
        results = self.tmp / f"results-{m.tool}-{m.round}"
        env = dict(os.environ)
        env.pop("ASSAY_BENCH_NO_RECORDING", None)
        if not recording:
            env["ASSAY_BENCH_NO_RECORDING"] = "1"
        command = self.pinned(
            sys.executable, "-m", "coordinator", "run", "--target", self.url, "--procs", "1",
            "--concurrency", str(self.concurrency), "--slices", "markov",
            "--duration", f"{self.seconds}s", "--results", str(results),
            "--log-format", "json",
        )
        before = nginx_requests(self.port)
        rc, text, _ = self.launch(m, command, env, cwd=tree)
        served = nginx_requests(self.port) - before - 1
        m.extra["nginx_rps"] = served / self.seconds
        found = sorted(results.glob("*/validate-results.json"))
        if not found:
            m.ok, m.note = False, f"rc={rc}, no results: {text.strip()[-160:]}"
            return
        doc = json.loads(found[-1].read_text())
        counters = doc["tier_1"]["slices"].get("markov", {}).get("counters", {})
        requests = counters.get("markov.requests", 0)
        if not recording:
            m.rps = m.extra["nginx_rps"]
            if requests:
                m.ok, m.note = False, "recording was not switched off"
            return
        m.rps = requests / self.seconds
        bad = requests - counters.get("markov.status_2xx", 0)
        if rc or bad or doc["tier_1"]["totals"].get("harness_errors"):
            m.ok, m.note = False, f"rc={rc} non-2xx/errors={bad}"


def _number_after(text: str, label: str) -> float:
    for line in text.splitlines():
        if label in line:
            with contextlib.suppress(ValueError, IndexError):
                return float(line.split(label)[1].split()[0])
    return 0.0


def _line_with(text: str, *needles: str) -> str:
    return " ".join(ln.strip() for ln in text.splitlines() if any(n in ln for n in needles))


# -- report ----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: list[Measurement], tools: list[str], rounds: int) -> None:
    print("\nper measurement -- req/s: on one pinned client core; req/CPU-s: requests per "
          "second of the\ntool's own CPU in the steady middle of the run; cores: busy % per "
          "core; other: CPU\nused by processes other than the tool and nginx (% of one core); "
          "coord: assay's coordinator")
    for m in results:
        cores = " ".join(f"{b:3.0f}" for b in m.core_busy)
        coord = f" coord {m.coordinator_pct:4.1f}%" if m.coordinator_pct is not None else ""
        per_cpu = f"{m.per_cpu_s:>9.0f}" if m.per_cpu_s else f"{'-':>9}"
        flag = "" if m.ok else f"  !! {m.note}"
        print(f"  round {m.round} {m.tool:<14} {m.rps:>9.0f} req/s {per_cpu} req/CPU-s  "
              f"cores [{cores}]  steal {m.steal_pct:4.1f}%  other {m.other_cpu_pct:5.1f}%"
              f"{coord}{flag}")

    by = {(m.tool, m.round): m for m in results}

    def ratios(a: str, b: str, metric: str) -> list[float]:
        found = []
        for r in range(1, rounds + 1):
            x, y = by.get((a, r)), by.get((b, r))
            if x and y and getattr(x, metric) and getattr(y, metric):
                found.append(getattr(x, metric) / getattr(y, metric))
        return found

    print(f"\n{'tool':<16}{'req/s (1 core)':>15}{'min':>8}{'max':>8}{'req/CPU-s':>12}   runs")
    for tool in tools:
        ms = [m for m in results if m.tool == tool]
        values = [m.rps for m in ms]
        per_cpu = [m.per_cpu_s for m in ms if m.per_cpu_s]
        failed = sum(not m.ok for m in ms)
        print(f"{tool:<16}{_median(values):>15.0f}{min(values):>8.0f}{max(values):>8.0f}"
              f"{_median(per_cpu):>12.0f}   {len(values)}"
              + (f" ({failed} flagged)" if failed else ""))

    print(f"\n{'same-round ratio':<24}{'req/s':>7}{'req/CPU-s':>11}   per round (req/s)   target")
    targets = {("assay", "locust"): ">= 3.0", ("assay", "hey"): ">= 0.7",
               ("assay", "wrk"): "", ("assay", "assay-norec"): ">= 0.9 (recording <= 10 %)",
               ("assay", BASELINE): "(this checkout / --baseline)"}
    for (a, b), target in targets.items():
        values = ratios(a, b, "rps")
        if values:
            per_cpu = ratios(a, b, "per_cpu_s")
            rounds_text = " ".join(f"{v:.2f}" for v in values)
            print(f"{a + '/' + b:<24}{_median(values):>7.2f}{_median(per_cpu):>11.2f}   "
                  f"{rounds_text:<20}{target}")
    overhead = ratios("assay", "assay-norec", "rps")
    if overhead:
        per_cpu = ratios("assay", "assay-norec", "per_cpu_s")
        print(f"\nrecording cost (tally counters + latency histograms): "
              f"{100 * (1 - _median(overhead)):.1f} % of throughput in req/s, "
              f"{100 * (1 - _median(per_cpu)):.1f} % in req/CPU-s (budget 10 %)")
    coords = [m.coordinator_pct for m in results if m.coordinator_pct is not None]
    if coords:
        print(f"coordinator on the client core: median {_median(coords):.1f} % of that core")
    others = [m.other_cpu_pct for m in results]
    if others and _median(others) > 10:
        print(f"WARNING: other processes used a median {_median(others):.0f} % of a core during "
              "the measurements: the machine was not quiet, absolute figures are noisy")
    steals = [m.steal_pct for m in results]
    if steals and max(steals) > 5:
        print(f"WARNING: the hypervisor stole up to {max(steals):.0f} % of the CPU time (median "
              f"{_median(steals):.0f} %): req/s figures of those runs are low; req/CPU-s (the "
              "tool's own CPU time) much less so")


def round_order(tools: list[str], round_no: int) -> list[str]:
    """The tools in the order round ``round_no`` runs them: rotated by one each round, with
    the assay variants kept next to each other (their order rotated too), so that the
    ratios between them compare runs taken seconds apart."""
    variants = [t for t in tools if t.startswith("assay")]
    units: list[list[str]] = [[t] for t in tools if not t.startswith("assay")]
    if variants:
        shift = (round_no - 1) % len(variants)
        units.insert(0, variants[shift:] + variants[:shift])
    shift = (round_no - 1) % len(units)
    return [tool for unit in units[shift:] + units[:shift] for tool in unit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--path", default="/static.txt",
                        help="URL path: /static.txt (small static file), /ok (return 200) or "
                             "/close (return 200 with Connection: close)")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help=f"also run assay from this other checkout ({BASELINE}), to "
                             "compare two versions in the same run")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 300:
        parser.error("--rounds must be 1..20 and --seconds 1..300")

    for needed in ("nginx", "taskset"):
        if shutil.which(needed) is None:
            print(f"bench_markov: {needed} is not installed", file=sys.stderr)
            return 2
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {sorted(unknown)}")
    missing = {"hey": shutil.which("hey"), "wrk": shutil.which("wrk")}
    with contextlib.suppress(ImportError):
        import locust  # noqa: F401

        missing["locust"] = "ok"
    if args.baseline is not None:
        if not (args.baseline / "coordinator" / "__main__.py").exists():
            parser.error(f"--baseline {args.baseline}: not an assay checkout")
        tools.insert(1, BASELINE)
    skipped = [t for t in tools if t in missing and missing[t] is None]
    tools = [t for t in tools if t not in skipped]

    print(f"bench_markov: {args.rounds} rounds x {args.seconds} s, concurrency "
          f"{args.concurrency}, clients on core {args.client_core}, nginx on core "
          f"{args.server_core}, {os.cpu_count()} cores")
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with nginx(args.server_core, tmp) as (port, nginx_pids):
            bench = Bench(port, args.path, args.seconds, args.concurrency, args.client_core,
                          nginx_pids, tmp)
            print(f"nginx pids {nginx_pids} on {bench.url}")
            runners = {"assay": bench.run_assay,
                       "assay-norec": lambda m: bench.run_assay(m, recording=False),
                       "locust": bench.run_locust, "hey": bench.run_hey, "wrk": bench.run_wrk,
                       BASELINE: lambda m: bench.run_assay(m, tree=args.baseline)}
            for round_no in range(1, args.rounds + 1):
                for tool in round_order(tools, round_no):
                    m = Measurement(tool, round_no)
                    runners[tool](m)
                    results.append(m)
                    print(f"  round {round_no} {tool:<12} {m.rps:>9.0f} req/s"
                          + ("" if m.ok else f"  !! {m.note}"), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    report(results, tools, args.rounds)
    if args.json:
        args.json.write_text(json.dumps([m.__dict__ for m in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
