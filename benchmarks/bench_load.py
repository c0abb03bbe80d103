"""assay load against k6 (open model) and against hey and wrk (closed model), per core.

How this works: the machinery is bench_markov's, imported (the nginx setup, the pinned
``Bench`` runner with its hey and wrk drivers, the ``/proc`` ``Sampler``, the rotating
round order); this script adds the fixed-delay server, the k6 and ``assay load`` drivers
and the two reports.

1. **Open-model accuracy** (``--part open``). A fixed-delay server (``--server``: ``c``,
   ``fixed_delay_server.c``, by default; ``node``, ``fixed_delay_server.js``; see
   ``delay_servers.py``) answers every request after exactly ``--delay-ms`` D (10 ms),
   pinned to core 1 (``--server-core``).
   At each asked rate (``--rates``, 200, 1000, 2000 req/s)
   ``assay load --rate R --procs 1`` and ``k6 run`` with a generated
   ``constant-arrival-rate`` script run one after the other, each pinned to core 0
   (``--client-core``), for ``--seconds``, with the same pre-allocated VUs
   (``2 x R x D``) and the same most in flight (10x that, at least 100). The order
   rotates from round to round. Per tool and rate: achieved rate (k6: ``http_reqs`` rate
   from ``--summary-export``; assay: ``rate_achieved``), dropped, errors, p50/p99 of
   latency and of service time *minus D* (the tool's error), assay's schedule lag
   p50/p99, and the tool's CPU-seconds per 1000 requests (its process tree's CPU over
   the requests the server counted, in the steady middle of the run). Latency is from
   the arrival's due time (assay, coordinated-omission correct); k6 measures no such
   thing (``http_req_duration`` starts when the request is sent), so for k6 only the
   service columns exist. The server measures what it really held each request (its
   ``/stats``): the ``srv`` column, the floor of every tool's error; ``p99-srv`` is the
   tool's p99 over the server's own p99 hold (its true service time).
2. **Closed-model rate per core** (``--part closed``). bench_markov's nginx (one worker,
   core 1) with one more location, ``/varying``, answering ``return 200 "$request_id"``
   (a body that differs on every request), beside the static file ``/static.txt``. For
   each path: ``assay load --vus C --procs 1`` (full response validation), ``hey -z Ns
   -c C`` and ``wrk -t1 -cC -dNs``, all on core 0. Figures: req/s on the pinned core and
   req/CPU-s (requests per second of the tool's own CPU, steady middle, as bench_markov),
   and the same-round ratios assay/hey and assay/wrk, medians over the rounds.
   ``--with-markov`` adds ``assay run --slices markov`` (bench_markov's driver, same
   connections) as a reference for the load walker's hot path (ratio assay/assay-markov).

Targets (the issue): assay's p99 latency within 1 ms of D at 1000 req/s; assay >= 1.0x hey
per core on varying responses.

Run: ``python benchmarks/bench_load.py [--part open|closed|both] [--rounds 3 --seconds 10]
[--json FILE]``. Exit 0 when the benchmark ran (whatever the figures), 2 when a tool it
needs (taskset; k6 and cc, or node with --server node, for the open part; nginx, hey and
wrk for the closed one) is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_markov
from bench_markov import (
    Bench,
    Measurement,
    _median,
    nginx,
    round_order,
)
from delay_servers import (
    SERVERS,
    default_kind,
    delay_server,
    missing_tool,
    server_stats,
)

HERE = Path(__file__).resolve().parent
OPEN_TOOLS = ["assay", "k6"]
CLOSED_TOOLS = ["assay", "hey", "wrk"]
#: With --with-markov: ``assay run --slices markov`` (bench_markov's driver), same
#: connections, as a reference for the load walker's hot path.
MARKOV = "assay-markov"
PATHS = {"varying": "/varying", "static": "/static.txt"}
#: bench_markov's nginx config gains this location (a body that differs on every request).
VARYING = '        location = /varying {{ return 200 "$request_id"; }}\n'
ANCHOR = "        location = /ok "
K6_SCRIPT = """\
import http from 'k6/http';

export const options = {{
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(99)', 'p(99.9)'],
  scenarios: {{
    open: {{
      executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s',
      duration: '{seconds}s', preAllocatedVUs: {vus}, maxVUs: {max_vus},
    }},
  }},
}};

export default function () {{
  http.get('{url}');
}}
"""


def k6_binary() -> str | None:
    """k6 from PATH, or the one ``pip install k6`` put next to this interpreter."""
    found = shutil.which("k6")
    if found:
        return found
    beside = Path(sys.executable).parent / "k6"
    return str(beside) if beside.exists() else None


# -- servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def nginx_varying(core: int, tmp: Path) -> Iterator[tuple[int, list[int]]]:
    """bench_markov's nginx with the ``/varying`` location added to its config (the
    template is read when nginx starts, and put back at once)."""
    original = bench_markov.NGINX_CONF
    if ANCHOR not in original:
        raise SystemExit("bench_load: bench_markov.NGINX_CONF changed shape (no /ok location)")
    bench_markov.NGINX_CONF = original.replace(ANCHOR, VARYING + ANCHOR, 1)
    try:
        with nginx(core, tmp) as found:
            bench_markov.NGINX_CONF = original
            yield found
    finally:
        bench_markov.NGINX_CONF = original


# -- open model ------------------------------------------------------------------------------


def open_vus(rate: int, delay_ms: float) -> tuple[int, int]:
    """(pre-allocated VUs, most in flight) for ``rate``: twice the requests in flight at D,
    and ten times that (at least 100)."""
    pre = max(2, math.ceil(2 * rate * delay_ms / 1000))
    return pre, max(100, 10 * pre)


def _less(value: float | None, delay_ms: float) -> float | None:
    return None if value is None else value - delay_ms


def run_open(bench: Bench, m: Measurement, rate: int, delay_ms: float, k6: str) -> None:
    """One open-model measurement of ``m.tool`` at ``rate``; fills ``m.extra``."""
    pre, most = open_vus(rate, delay_ms)
    server_stats(bench.port, reset=True)
    stem = bench.tmp / f"{m.tool}-{rate}-{m.round}"
    x = m.extra
    x.update(rate_asked=float(rate), vus=pre, max_vus=most)
    if m.tool == "assay":
        summary = stem.with_suffix(".json")
        command = bench.pinned(
            sys.executable, "-m", "coordinator", "load", "--target", bench.url,
            "--rate", str(rate), "--vus", str(pre), "--max-vus", str(most),
            "--duration", f"{bench.seconds}s", "--procs", "1",
            "--summary-json", str(summary), "--results", str(bench.tmp / "results"),
            "--log-format", "json")
        rc, text, _ = bench.launch(m, command)
        if not summary.exists():
            m.ok, m.note = False, f"rc={rc}, no summary: {text.strip()[-160:]}"
            return
        doc = json.loads(summary.read_text())
        lat, svc, lag = doc["latency_ms"], doc["service_ms"], doc["schedule_lag_ms"] or {}
        x.update(requests=doc["requests"], achieved=doc["rate_achieved"],
                 dropped=doc["dropped"], errors=doc["errors"],
                 lat_p50=_less(lat["p50"], delay_ms), lat_p99=_less(lat["p99"], delay_ms),
                 svc_p50=_less(svc["p50"], delay_ms), svc_p99=_less(svc["p99"], delay_ms),
                 lag_p50=lag.get("p50"), lag_p99=lag.get("p99"))
    else:
        script = stem.with_suffix(".js")
        script.write_text(K6_SCRIPT.format(rate=rate, seconds=bench.seconds, vus=pre,
                                           max_vus=most, url=bench.url))
        export = stem.with_suffix(".json")
        env = {**os.environ, "K6_NO_USAGE_REPORT": "true"}
        command = bench.pinned(k6, "run", "--quiet", "--no-color", "--summary-export",
                               str(export), str(script))
        rc, text, _ = bench.launch(m, command, env, cwd=bench.tmp)
        if not export.exists():
            m.ok, m.note = False, f"rc={rc}, no summary export: {text.strip()[-160:]}"
            return
        metrics = json.loads(export.read_text())["metrics"]
        duration = metrics["http_req_duration"]
        failed = metrics.get("http_req_failed", {}).get("passes", 0)
        x.update(requests=metrics["http_reqs"]["count"], achieved=metrics["http_reqs"]["rate"],
                 dropped=metrics.get("dropped_iterations", {}).get("count", 0),
                 errors=failed, lat_p50=None, lat_p99=None,
                 svc_p50=_less(duration["med"], delay_ms),
                 svc_p99=_less(duration["p(99)"], delay_ms), lag_p50=None, lag_p99=None)
    held = server_stats(bench.port)["hold_ms"]
    x.update(srv_p50=_less(held["p50"], delay_ms), srv_p99=_less(held["p99"], delay_ms))
    # The tool's p99 over the server's own p99 hold (the "true service time"): assay's
    # latency from the due time, k6's service time (it has nothing from the due time).
    own = x["lat_p99"] if x.get("lat_p99") is not None else x.get("svc_p99")
    x["over_srv_p99"] = None if own is None else own - x["srv_p99"]
    x["cpu_s_per_1k"] = 1000 / m.per_cpu_s if m.per_cpu_s else None
    m.rps = float(x["achieved"])
    if rc or x["errors"]:
        m.ok, m.note = False, f"rc={rc} errors={x['errors']}"


def open_part(args: argparse.Namespace, tmp: Path, k6: str) -> list[Measurement]:
    results = []
    with delay_server(args.server, args.server_core, args.delay_ms, args.coarse_timer,
                      tmp) as (port, pids):
        bench = Bench(port, "/delay", args.seconds, 0, args.client_core, pids, tmp)
        print(f"open model: {args.server} fixed-delay server (D={args.delay_ms:g} ms, pid "
              f"{pids[0]}) on {bench.url}")
        for round_no in range(1, args.rounds + 1):
            for rate in args.rates:
                for tool in round_order(OPEN_TOOLS, round_no):
                    m = Measurement(tool, round_no)
                    run_open(bench, m, rate, args.delay_ms, k6)
                    results.append(m)
                    x = m.extra
                    print(f"  round {round_no} {rate:>5}/s {tool:<6} achieved "
                          f"{m.rps:8.1f}/s  svc p99-D {_fmt(x.get('svc_p99'))} ms  lat p99-D "
                          f"{_fmt(x.get('lat_p99'))} ms  srv p99-D {_fmt(x.get('srv_p99'))}"
                          + ("" if m.ok else f"  !! {m.note}"), flush=True)
    return results


def _fmt(value: float | None, width: int = 6, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


OPEN_COLUMNS = (("achieved", "achieved", 9, 1), ("dropped", "drop", 6, 0),
                ("errors", "err", 5, 0), ("lat_p50", "lat p50", 8, 2),
                ("lat_p99", "lat p99", 8, 2), ("svc_p50", "svc p50", 8, 2),
                ("svc_p99", "svc p99", 8, 2), ("lag_p50", "lag p50", 8, 2),
                ("lag_p99", "lag p99", 8, 2), ("srv_p99", "srv p99", 8, 2),
                ("over_srv_p99", "p99-srv", 8, 2),
                ("cpu_s_per_1k", "CPU-s/1k", 9, 3), ("other_cpu_pct", "other%", 7, 0))


def open_summary(results: list[Measurement], rates: list[int]) -> dict[str, dict[str, Any]]:
    """Medians over the rounds, per ``tool@rate``."""
    summary: dict[str, dict[str, Any]] = {}
    for rate in rates:
        for tool in OPEN_TOOLS:
            ms = [m for m in results if m.tool == tool and m.extra.get("rate_asked") == rate]
            if not ms:
                continue
            row: dict[str, Any] = {"runs": len(ms), "flagged": sum(not m.ok for m in ms)}
            for key, *_ in OPEN_COLUMNS:
                values = [m.other_cpu_pct if key == "other_cpu_pct" else m.extra.get(key)
                          for m in ms]
                values = [v for v in values if v is not None]
                row[key] = _median(values) if values else None
            summary[f"{tool}@{rate}"] = row
    return summary


def open_report(summary: dict[str, dict[str, Any]], delay_ms: float, rounds: int) -> None:
    print(f"\nopen model, medians over {rounds} round(s); latency (from the due time), service "
          f"time (from the send)\nand srv (what the server held) are minus D = {delay_ms:g} ms; "
          "lag: how late assay dispatched an arrival;\np99-srv: the tool's p99 (assay: "
          "latency from the due time; k6: service time) minus the server's p99 hold;\n"
          "CPU-s/1k: the tool's CPU seconds per 1000 requests (steady middle); k6 has no "
          "due-time latency")
    header = f"{'asked':>6} {'tool':<6}" + "".join(f"{label:>{w + 1}}" for _, label, w, _ in
                                                  OPEN_COLUMNS)
    print(header)
    for key, row in summary.items():
        tool, _, rate = key.partition("@")
        cells = "".join(" " + _fmt(row[k], w, d) for k, _, w, d in OPEN_COLUMNS)
        print(f"{rate:>6} {tool:<6}{cells}" + (f"  ({row['flagged']} flagged)"
                                                 if row["flagged"] else ""))
    target = summary.get("assay@1000", {}).get("lat_p99")
    if target is not None:
        verdict = "met" if target <= 1.0 else f"missed by {target - 1.0:.2f} ms"
        print(f"target: assay p99 latency within 1 ms of D at 1000 req/s: p99 - D = "
              f"{target:.2f} ms, {verdict}")
    over = summary.get("assay@1000", {}).get("over_srv_p99")
    if over is not None:
        verdict = "met" if over <= 1.0 else f"missed by {over - 1.0:.2f} ms"
        print(f"target: ... within 1 ms of the server's true service time (its own p99 hold):"
              f" {over:.2f} ms over it, {verdict}")


# -- closed model ----------------------------------------------------------------------------


def run_closed_assay(bench: Bench, m: Measurement) -> None:
    summary = bench.tmp / f"assay-closed-{m.extra['path']}-{m.round}.json"
    command = bench.pinned(
        sys.executable, "-m", "coordinator", "load", "--target", bench.url,
        "--vus", str(bench.concurrency), "--duration", f"{bench.seconds}s", "--procs", "1",
        "--summary-json", str(summary), "--results", str(bench.tmp / "results"),
        "--log-format", "json")
    rc, text, _ = bench.launch(m, command)
    if not summary.exists():
        m.ok, m.note = False, f"rc={rc}, no summary: {text.strip()[-160:]}"
        return
    doc = json.loads(summary.read_text())
    m.rps = doc["requests"] / bench.seconds
    m.extra.update(errors=doc["errors"], latency_p99_ms=doc["latency_ms"]["p99"])
    if rc or doc["errors"]:
        m.ok, m.note = False, f"rc={rc} errors={doc['errors']}"


def closed_part(args: argparse.Namespace, tmp: Path) -> list[Measurement]:
    results = []
    tools = [*CLOSED_TOOLS, MARKOV] if args.with_markov else CLOSED_TOOLS
    with nginx_varying(args.server_core, tmp) as (port, pids):
        print(f"closed model: nginx pids {pids} on 127.0.0.1:{port}, {args.vus} connections")
        for round_no in range(1, args.rounds + 1):
            for name, path in PATHS.items():
                bench = Bench(port, path, args.seconds, args.vus, args.client_core, pids, tmp)
                runners = {"assay": run_closed_assay, "hey": Bench.run_hey,
                           "wrk": Bench.run_wrk, MARKOV: Bench.run_assay}
                for tool in round_order(tools, round_no):
                    m = Measurement(tool, round_no, extra={"path": name})
                    runners[tool](bench, m)
                    results.append(m)
                    per_cpu = f"{m.per_cpu_s:9.0f}" if m.per_cpu_s else f"{'-':>9}"
                    print(f"  round {round_no} {name:<8} {tool:<12} {m.rps:9.0f} req/s "
                          f"{per_cpu} req/CPU-s  other {m.other_cpu_pct:4.0f}%  steal "
                          f"{m.steal_pct:4.1f}%" + ("" if m.ok else f"  !! {m.note}"),
                          flush=True)
    return results


def closed_summary(results: list[Measurement], rounds: int) -> dict[str, dict[str, Any]]:
    by = {(m.extra["path"], m.tool, m.round): m for m in results}
    summary: dict[str, dict[str, Any]] = {}
    for name in PATHS:
        block: dict[str, Any] = {}
        for tool in [*CLOSED_TOOLS, MARKOV]:
            ms = [m for m in results if m.extra["path"] == name and m.tool == tool]
            if ms:
                block[tool] = {"rps": _median([m.rps for m in ms]),
                               "rps_min": min(m.rps for m in ms),
                               "rps_max": max(m.rps for m in ms),
                               "per_cpu_s": _median([m.per_cpu_s for m in ms if m.per_cpu_s]),
                               "flagged": sum(not m.ok for m in ms)}
        for other in ("hey", "wrk", MARKOV):
            for metric in ("rps", "per_cpu_s"):
                values = []
                for r in range(1, rounds + 1):
                    a, b = by.get((name, "assay", r)), by.get((name, other, r))
                    if a and b and getattr(a, metric) and getattr(b, metric):
                        values.append(getattr(a, metric) / getattr(b, metric))
                if values:
                    block[f"assay/{other}_{metric}"] = {"median": _median(values),
                                                        "rounds": values}
        summary[name] = block
    return summary


def closed_report(summary: dict[str, dict[str, Any]], vus: int, rounds: int) -> None:
    print(f"\nclosed model, {vus} connections, medians over {rounds} round(s): req/s on one "
          "pinned core;\nreq/CPU-s: requests per second of the tool's own CPU (steady middle)")
    for name, block in summary.items():
        print(f"{name} ({PATHS[name]})")
        for tool in [*CLOSED_TOOLS, MARKOV]:
            row = block.get(tool)
            if row:
                print(f"  {tool:<12}{row['rps']:>9.0f} req/s (min {row['rps_min']:.0f}, max "
                      f"{row['rps_max']:.0f}) {row['per_cpu_s']:>9.0f} req/CPU-s"
                      + (f"  ({row['flagged']} flagged)" if row["flagged"] else ""))
        for other in ("hey", "wrk", MARKOV):
            if f"assay/{other}_rps" not in block:
                continue
            rps = block[f"assay/{other}_rps"]
            cpu = block.get(f"assay/{other}_per_cpu_s", {"median": float("nan")})
            per_round = " ".join(f"{v:.2f}" for v in rps["rounds"])
            print(f"  {'assay/' + other:<18} {rps['median']:5.2f} req/s  {cpu['median']:5.2f} "
                  f"req/CPU-s   rounds (req/s): {per_round}")
    varying = summary.get("varying", {})
    if "assay/hey_rps" in varying:
        ratio = varying["assay/hey_rps"]["median"]
        cpu = varying.get("assay/hey_per_cpu_s", {"median": float("nan")})["median"]
        verdict = "met" if ratio >= 1.0 else f"missed by {100 * (1 - ratio):.0f} %"
        print(f"target: assay >= 1.0x hey per core on varying responses: {ratio:.2f} (req/s), "
              f"{cpu:.2f} (req/CPU-s), {verdict}")


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("open", "closed", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rates", default="200,1000,2000",
                        help="open model: asked rates, req/s, comma-separated")
    parser.add_argument("--delay-ms", type=float, default=10.0,
                        help="open model: the server's fixed delay D")
    parser.add_argument("--server", choices=SERVERS, default=default_kind(),
                        help="open model: the fixed-delay server (default: c where cc is "
                             "installed; see delay_servers.py)")
    parser.add_argument("--coarse-timer", action="store_true",
                        help="open model, --server node: a bare setTimeout(D) (about +-1 ms) "
                             "instead of a timer plus a precise last stretch")
    parser.add_argument("--vus", type=int, default=32, help="closed model: connections")
    parser.add_argument("--with-markov", action="store_true",
                        help="closed model: also run assay run --slices markov (reference)")
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 300:
        parser.error("--rounds must be 1..20 and --seconds 1..300")
    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--rates: integers, comma-separated (got {args.rates!r})")
    if not args.rates or min(args.rates) < 1:
        parser.error("--rates: at least one rate, each at least 1")

    k6 = k6_binary()
    needed = {"taskset": shutil.which("taskset")}
    if args.part in ("open", "both"):
        needed.update(k6=k6)
        lacking = missing_tool(args.server)
        if lacking:
            needed[lacking] = None
    if args.part in ("closed", "both"):
        needed.update(nginx=shutil.which("nginx"), hey=shutil.which("hey"),
                      wrk=shutil.which("wrk"))
    missing = [name for name, path in needed.items() if path is None]
    if missing:
        print(f"bench_load: not installed: {', '.join(missing)}", file=sys.stderr)
        return 2

    print(f"bench_load: part {args.part}, {args.rounds} round(s) x {args.seconds} s, clients on "
          f"core {args.client_core}, server on core {args.server_core}, {os.cpu_count()} cores")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    document: dict[str, Any] = {"args": {k: (str(v) if isinstance(v, Path) else v)
                                         for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="assay-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        if args.part in ("open", "both"):
            results = open_part(args, tmp, k6 or "k6")
            summary = open_summary(results, args.rates)
            document["open"] = {"measurements": [dataclasses.asdict(m) for m in results],
                                "summary": summary}
        if args.part in ("closed", "both"):
            closed = closed_part(args, tmp)
            document["closed"] = {"measurements": [dataclasses.asdict(m) for m in closed],
                                  "summary": closed_summary(closed, args.rounds)}
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "open" in document:
        open_report(document["open"]["summary"], args.delay_ms, args.rounds)
    if "closed" in document:
        closed_report(document["closed"]["summary"], args.vus, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(document, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
