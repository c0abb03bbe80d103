"""``assay slo``: latency at SLO - the highest sustained arrival rate whose merged p99 stays
under each SLO.

How this works: ``protocols.slo_search.SloSearch`` decides which rate to measure next; each
measurement (a *step*) is ``--runs`` ordinary ``assay load`` fleet runs at that constant
arrival rate, each ``--warmup`` + ``--step-duration`` long with the warm-up's latencies
left out (``Scenario.measure_after_s``). The runs' latency histograms are merged *as
histograms* (never their percentiles), so the step's p99 is the p99 of every measured
request of every run and actor. Each run is a directory under the slo results directory;
``slo.json`` holds the search (every step, every SLO's bracket), ``slo-histograms.json``
the merged histogram of each step, ``slo-table.txt`` the table printed at the end.

A target that cannot keep up is a measurement: the exit code is 0 whatever the table
says, 2 for bad input, 3 when a step could not run (target gone, actors failed); the
table measured until then is written either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from coordinator import logs
from coordinator.config_values import ConfigError, parse_duration, parse_positive_int
from coordinator.load_cli import add_common_options, config_for, target_path
from coordinator.load_report import merge
from coordinator.results import ResultsError, create_run_dir, write_json_atomic
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
)
from protocols.slo_search import SloSearch, StepResult, parse_slos
from protocols.tally import latency_summary

EXIT_PASS, EXIT_USAGE, EXIT_INFRA = 0, 2, 3
SCENARIO = "slo"


def add_slo_parser(sub: Any) -> None:
    slo = sub.add_parser("slo", help="latency at SLO: the highest sustained rate whose p99 "
                         "stays under each SLO")
    add_common_options(slo)
    add = slo.add_argument
    add("--slo", default="10ms,50ms,100ms,500ms,1000ms", help="p99 bounds (default "
        "10ms,50ms,100ms,500ms,1000ms)")
    add("--warmup", default="30s", help="per run, before measuring (default 30s)")
    add("--step-duration", default="20s", help="measured time per run (default 20s)")
    add("--runs", default="5", help="runs per step, histograms merged (default 5)")
    add("--start-rate", default="50", help="first rate tried, req/s (default 50)")
    add("--max-rate", default="100000", help="highest rate tried, req/s (default 100000)")
    add("--max-vus", default="1000", help="requests in flight at most (default 1000)")
    add("--max-steps", default="40", help="rates measured at most (default 40)")
    add("--resolution", default="0.05", help="relative width a bracket must shrink to "
        "(default 0.05)")


def _positive_float(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a number") from None
    if not number > 0:
        raise ConfigError(f"{what} must be greater than zero (got {value!r})")
    return number


def _step_plan(path: str, rate: float, warmup_s: float, measured_s: float,
               max_vus: int) -> LoadPlan:
    executor = Executor(kind=CONSTANT_ARRIVAL_RATE, vus=min(max_vus, 10), max_vus=max_vus,
                        rate=rate, duration_s=warmup_s + measured_s)
    return LoadPlan(scenarios=(Scenario(name=SCENARIO, executor=executor,
                                        request=RequestTemplate(path=path),
                                        measure_after_s=warmup_s),),
                    source="assay slo")


def _read_run(run_dir: Path) -> tuple[dict[str, Any], HdrHistogram | None]:
    summary = json.loads((run_dir / "summary.json").read_text())
    encoded = json.loads((run_dir / "histograms.json").read_text()).get(
        f"load.{SCENARIO}.latency")
    hist = HdrHistogram.decode(encoded.encode("ascii")) if encoded else None
    return summary, hist


def run_slo(args: argparse.Namespace) -> int:
    from coordinator.execute import execute_run

    try:
        slos = parse_slos(args.slo)
        warmup_s = 0.0 if str(args.warmup).strip() in ("0", "0s") else parse_duration(
            args.warmup, "--warmup")
        measured_s = parse_duration(args.step_duration, "--step-duration")
        runs = parse_positive_int(args.runs, "--runs")
        max_vus = parse_positive_int(args.max_vus, "--max-vus")
        search = SloSearch(slos, start_rate=_positive_float(args.start_rate, "--start-rate"),
                           max_rate=_positive_float(args.max_rate, "--max-rate"),
                           resolution=_positive_float(args.resolution, "--resolution"),
                           max_steps=parse_positive_int(args.max_steps, "--max-steps"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    path = target_path(args)
    config = config_for(args, "slo", warmup_s + measured_s)
    logs.configure(config.log_format)
    try:
        top = create_run_dir(config.results_dir, "slo", config.label or "slo")
    except ResultsError as exc:
        raise ConfigError(str(exc)) from None
    step_histograms: dict[str, str] = {}
    code = EXIT_PASS
    while (rate := search.next_rate()) is not None:
        step = len(search.steps) + 1
        merged: list[HdrHistogram | None] = []
        requests = errors = dropped = scheduled = 0
        for run in range(1, runs + 1):
            run_dir = top / f"step{step:02d}-{rate:.1f}rps-run{run}"
            run_dir.mkdir()
            plan = _step_plan(path, rate, warmup_s, measured_s, max_vus)
            status = execute_run(config, run_dir=run_dir,
                                 fleet={"load_plan": plan.to_wire(), "load_quiet": True})
            try:
                summary, hist = _read_run(run_dir) if status in (0, 1) else ({}, None)
            except (OSError, ValueError):  # no summary: the pre-flight found it broken
                status = EXIT_INFRA
            if status not in (0, 1):
                sys.stderr.write(f"assay slo: error: the run at {rate:.1f} req/s ended with "
                                 f"exit {status} and no measurement; table so far in "
                                 f"{top}\n")
                code = EXIT_INFRA
                break
            requests += summary["requests"]
            errors += summary["errors"]
            dropped += summary["dropped"]
            scheduled += summary["scheduled"]
            merged.append(hist)
        if code != EXIT_PASS:
            break
        hist = merge(merged)
        p99 = latency_summary(hist, {"p99": 99.0}).get("p99") if hist.get_total_count() \
            else None
        # Answered requests per arrival due in the measured windows, as a rate: a window
        # of a second or two holds a whole number of arrivals, so dividing by its length
        # would understate a low rate (7 arrivals due in 1.5 s at 5/s read as 4.7/s).
        achieved = rate * requests / scheduled if scheduled else 0.0
        search.record(StepResult(rate=rate, p99_ms=p99, achieved_rate=achieved,
                                 dropped=dropped, requests=requests, errors=errors))
        step_histograms[f"step{step:02d}-{rate:.3f}rps"] = hist.encode().decode("ascii")
        shown = "-" if p99 is None else f"{p99:.2f} ms"
        print(f"step {step}: {rate:.1f} req/s asked, {achieved:.1f} achieved, p99 {shown}, "
              f"{errors} failed, {dropped} dropped", flush=True)
    table = search.render_table()
    write_json_atomic(top / "slo.json", search.to_json())
    write_json_atomic(top / "slo-histograms.json", step_histograms)
    (top / "slo-table.txt").write_text(table + "\n")
    print(table)
    print(f"results  {top}")
    return code
