"""``assay stress URL``: the post-deploy harness - sanity probe, then three tests in order.

1. concurrent baseline: a closed model of ``concurrent_workers`` keep-alive connections
   (hey -c), judged by its error %;
2. sustained rate: an open model at ``sustained_rate`` (vegeta), judged by its success %
   and p99 latency from the due time;
3. slow loris with control traffic (slowhttptest + vegeta): ``assay loris``'s run,
   judged by the control traffic's success %.

Each test is one ordinary fleet run (``assay load`` / ``assay loris``) in its own
directory under the stress results directory, and leaves ``<test>.txt`` (what a person
reads) and ``<test>.json`` (its summary, settings and verdict) beside it. One PASS/FAIL
line per test and one overall. Exit 0 pass, 1 a threshold breached (or an invariant
such as I-LIVENESS failed during a test), 2 bad arguments, 3 the target never answered
the sanity probe or a test could not run. Ctrl-C stops at once and still writes what was
measured (exit 130). With ``--launch CMD`` the target is started once for all three
tests and stopped at the end, unless ``--no-cleanup`` (then its pid and URL are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from coordinator import logs
from coordinator.config_values import ConfigError, validate_target_url
from coordinator.load_cli import add_common_options, config_for
from coordinator.load_report import render as render_load
from coordinator.results import ResultsError, create_run_dir, write_json_atomic
from protocols.load_errors import LoadInputError
from protocols.load_model import (
    CONSTANT_ARRIVAL_RATE,
    CONSTANT_VUS,
    Executor,
    LoadPlan,
    RequestTemplate,
    Scenario,
)
from protocols.stress import (
    OVERRIDES,
    StressSettings,
    TestVerdict,
    flag_name,
    judge_concurrent,
    judge_sustained,
    resolve,
)

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def add_stress_parser(sub: Any) -> None:
    stress = sub.add_parser("stress", help="the post-deploy harness: sanity probe, "
                            "concurrent baseline, sustained rate, slow loris with control "
                            "traffic; one PASS/FAIL per test")
    stress.add_argument("url", nargs="?", help="http:// or https:// URL of the deployed target")
    add_common_options(stress)
    stress.add_argument("--preset", default="laptop", help="laptop (default) or same-network")
    stress.add_argument("--no-cleanup", action="store_true", help="with --launch: leave the "
                        "target running afterwards, for inspection")
    for setting, (variable, _) in OVERRIDES.items():
        stress.add_argument(flag_name(setting), dest=setting, metavar=variable,
                            help=f"overrides the preset and ${variable}")


def _plan(kind: str, path: str, s: StressSettings) -> LoadPlan:
    if kind == "concurrent":
        executor = Executor(CONSTANT_VUS, vus=s.concurrent_workers,
                            duration_s=s.concurrent_duration_s)
    else:
        executor = Executor(CONSTANT_ARRIVAL_RATE, vus=10,
                            max_vus=max(100, int(s.sustained_rate)),
                            rate=s.sustained_rate, duration_s=s.sustained_duration_s)
    return LoadPlan((Scenario(kind, executor, RequestTemplate(path=path)),),
                    source=f"assay stress ({kind})")


class Stress:
    def __init__(self, args: argparse.Namespace, settings: StressSettings, url: str,
                 top: Path) -> None:
        self.args = args
        self.settings = settings
        self.url = url
        self.top = top
        self.verdicts: list[TestVerdict] = []

    def _run(self, name: str, duration_s: float, slices: tuple[str, ...],
             fleet: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """One fleet run in ``<top>/<name>``: (its exit code, its validate-results)."""
        from coordinator.execute import execute_run

        config = config_for(self.args, "stress", duration_s, slices)
        run_dir = self.top / name
        run_dir.mkdir()
        code = execute_run(config, run_dir=run_dir, fleet={**fleet, "load_quiet": True})
        results = run_dir / "validate-results.json"
        document = json.loads(results.read_text()) if results.exists() else None
        return code, document

    def _record(self, name: str, verdict: TestVerdict, document: dict[str, Any] | None,
                block: dict[str, Any], text: list[str]) -> None:
        invariants = [f"invariant {e['id']} failed: {e['meaning']}"
                      for e in (document or {}).get("invariants", {}).get("failed", [])]
        if invariants:
            verdict = TestVerdict(verdict.name, False, verdict.checks + tuple(invariants))
        self.verdicts.append(verdict)
        word = "PASS" if verdict.passed else "FAIL"
        line = f"{name:<11} {word}  " + "; ".join(verdict.checks)
        write_json_atomic(self.top / f"{name}.json", {
            "test": name, "passed": verdict.passed, "checks": list(verdict.checks),
            "settings": self.settings.to_json(), "summary": block,
            "run_dir": str(self.top / name)})
        (self.top / f"{name}.txt").write_text("\n".join([line, *text]) + "\n")
        print(line, flush=True)

    def load_test(self, name: str) -> int:
        s = self.settings
        plan = _plan(name, self.args.path, s)
        code, document = self._run(name, plan.duration_s, ("load",),
                                   {"load_plan": plan.to_wire()})
        if document is None or code not in (EXIT_PASS, EXIT_FAIL):
            return code
        block = document.get("load", {})
        judge = judge_concurrent if name == "concurrent" else judge_sustained
        self._record(name, judge(block, s), document, block, render_load(block))
        return code

    def loris_test(self) -> int:
        from coordinator.loris_cli import stress_loris

        return stress_loris(self)


def run_stress(args: argparse.Namespace) -> int:
    url = args.url or args.target
    try:
        if url is None and args.launch is None:
            raise ConfigError("give the target URL (assay stress http://HOST:PORT/) or "
                              "--launch CMD")
        if url is not None and args.launch is not None:
            raise ConfigError("give the target URL or --launch, not both")
        if url is not None:
            validate_target_url(url)
        settings = resolve(args.preset, os.environ, {k: getattr(args, k) for k in OVERRIDES})
    except LoadInputError as exc:
        raise ConfigError(str(exc)) from None
    logs.configure(args.log_format or "console")
    try:
        top = create_run_dir(Path(args.results or "results"), "stress", args.label or "stress")
    except ResultsError as exc:
        raise ConfigError(str(exc)) from None
    launched = None
    if args.launch is not None:
        from coordinator.launch import launch_for_run

        launched = launch_for_run(args.launch, top)
        if isinstance(launched, str):
            sys.stderr.write(f"assay stress: error: {launched}\n")
            return EXIT_INFRA
        url = launched.url.rstrip("/") + (args.launch_path or "/")
        args.target_pid = str(launched.pid)
    assert url is not None
    args.target, args.launch, args.launch_path = url, None, None
    from urllib.parse import urlsplit

    args.path = urlsplit(url).path or "/"
    try:
        return _run_all(args, settings, url, top)
    finally:
        if launched is not None:
            if args.no_cleanup:
                print(f"target left running (--no-cleanup): {url} pid {launched.pid}")
            else:
                launched.stop()


def _run_all(args: argparse.Namespace, settings: StressSettings, url: str, top: Path) -> int:
    from coordinator import inputs as prep

    try:
        prep.ensure_reachable(url, args.health_path or args.path, 10.0)
    except (prep.TargetUnavailable, prep.TargetBroken) as exc:
        sys.stderr.write(f"assay stress: error: sanity probe of {url} failed: {exc}\n")
        return EXIT_INFRA
    print(f"assay stress {url} (preset {args.preset}): sanity probe ok", flush=True)
    stress = Stress(args, settings, url, top)
    code = EXIT_PASS
    try:
        for test in ("concurrent", "sustained", "loris"):
            code = stress.load_test(test) if test != "loris" else stress.loris_test()
            if code not in (EXIT_PASS, EXIT_FAIL):
                break
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    write_json_atomic(top / "stress.json", {
        "url": url, "preset": args.preset, "settings": settings.to_json(),
        "tests": [{"test": v.name, "passed": v.passed, "checks": list(v.checks)}
                  for v in stress.verdicts]})
    passed = len(stress.verdicts) == 3 and all(v.passed for v in stress.verdicts)
    if code not in (EXIT_PASS, EXIT_FAIL):
        why = "interrupted" if code in (130, 143) else f"a test could not run (exit {code})"
        print(f"overall     INCOMPLETE: {why}")
    else:
        print(f"overall     {'PASS' if passed else 'FAIL'}")
        code = EXIT_PASS if passed else EXIT_FAIL
    print(f"results     {top}")
    return code
