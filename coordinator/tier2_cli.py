"""``assay tier2``: stateful OpenAPI fuzzing on its own (argument parsing and exit codes).

``--plan`` prints the inferred dependency graph and sends nothing. Otherwise a campaign
runs against ``--target`` (default: the built-in refapp, with ``--refapp-defect``s) for
``--budget``, and ``validate-results.json`` in ``--out`` holds the ``tier_2`` section,
beside one reproducer file per finding bucket. Exit 0 no finding, 1 a finding, 2 a bad
spec, override file or flag (or a setup that never succeeded, so nothing was judged), 3 a
target that cannot be reached (or stopped answering).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3
REFAPP_SPEC = Path(__file__).resolve().parent.parent / "refapp" / "openapi.yaml"


def add_tier2_parser(sub: Any) -> None:
    tier2 = sub.add_parser("tier2", help="stateful OpenAPI fuzzing (RESTler-style sequences)")
    add = tier2.add_argument
    add("--spec", type=Path, help="OpenAPI 3 document (default with no --target: refapp's)")
    add("--target", help="http:// or https:// URL of the API (default: start the built-in refapp)")
    add("--budget", default="1m", help="time for generating sequences (default 1m; "
        "shrinking the findings comes after)")
    add("--seed", default="1", help="seed of the payloads (default 1)")
    add("--max-length", type=int, default=4, help="steps per sequence, setup excluded "
        "(default 4)")
    add("--plan", action="store_true", help="print the inferred dependency graph and exit")
    add("--overrides", type=Path, help="TOML/YAML file correcting the inferred graph")
    add("--out", type=Path, help="results directory (default ./assay-tier2-<time>)")
    add("--no-shrink", action="store_true", help="report findings without shrinking them")
    add("--refapp-defect", action="append", default=[], metavar="NAME",
        help="without --target: inject a defect into the built-in refapp (repeatable)")


def _error(message: str, code: int) -> int:
    sys.stderr.write(f"assay: error: {message}\n")
    return code


def run_tier2(args: argparse.Namespace) -> int:
    from coordinator.config_values import ConfigError, parse_duration, parse_seed
    from coordinator.tier2_run import load_graph
    from protocols.errors import SourceError
    from protocols.load_errors import LoadInputError
    from protocols.tier2_graph import plan_text

    spec_path = args.spec or (REFAPP_SPEC if args.target is None else None)
    if spec_path is None:
        return _error("--target needs --spec (the OpenAPI document of that API)", EXIT_USAGE)
    try:
        budget = parse_duration(args.budget, "--budget")
        seed = parse_seed(args.seed)
        if not 1 <= args.max_length <= 16:
            raise ConfigError(f"--max-length {args.max_length} must be 1..16")
        spec_text = spec_path.read_text("utf-8")
        extra = None
        if args.overrides is not None:
            extra = (str(args.overrides), args.overrides.read_text("utf-8"))
        api, graph, overrides = load_graph(spec_text, str(spec_path), extra)
    except (ConfigError, SourceError, LoadInputError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except (OSError, UnicodeDecodeError) as exc:
        return _error(f"cannot read {getattr(exc, 'filename', '') or 'file'}: "
                      f"{getattr(exc, 'strerror', None) or exc}", EXIT_USAGE)
    if args.plan:
        sys.stdout.write(plan_text(graph, api))
        return EXIT_PASS
    if not graph.fuzzable(api.by_id()):
        return _error(f"{spec_path}: no operation to fuzz", EXIT_USAGE)
    out = args.out or Path(f"assay-tier2-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    refapp = None
    url = args.target
    try:
        if url is None:
            from refapp.defects import UnknownDefectError, parse_defects
            from refapp.launch import RefappStartError, start_refapp

            try:
                defects = parse_defects(args.refapp_defect)
                refapp = start_refapp(defects=sorted(defects))
            except UnknownDefectError as exc:
                return _error(str(exc), EXIT_USAGE)
            except RefappStartError as exc:
                return _error(str(exc), EXIT_INFRA)
            url = refapp.url
        elif args.refapp_defect:
            return _error("--refapp-defect needs the built-in refapp (no --target)", EXIT_USAGE)
        return _campaign(args, api, graph, overrides, url, budget, seed, spec_path,
                         spec_text, extra, out)
    finally:
        if refapp is not None:
            refapp.stop()


def _campaign(args: argparse.Namespace, api: Any, graph: Any, overrides: Any, url: str,
              budget: float, seed: int, spec_path: Path, spec_text: str,
              extra: tuple[str, str] | None, out: Path) -> int:
    import trio

    from actors.tier2_exec import reachable
    from actors.walker import Target
    from coordinator.config_values import ConfigError, validate_target_url
    from coordinator.tier2_run import Campaign, run_campaign

    try:
        validate_target_url(url)
    except ConfigError as exc:
        return _error(str(exc), EXIT_USAGE)
    target = Target.from_url(url)
    why = trio.run(reachable, target)
    if why is not None:
        return _error(f"target unreachable: {url}: {why}", EXIT_INFRA)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--out {out}: {exc.strerror or exc}", EXIT_USAGE)
    campaign = Campaign(
        api=api, graph=graph, target=target, seed=seed, budget_s=budget,
        max_length=args.max_length, setup_body=overrides.setup_body,
        shrink=not args.no_shrink, spec_text=(str(spec_path), spec_text),
        overrides_text=extra,
        target_info={"url": url, "builtin": args.target is None,
                     "defects": sorted(args.refapp_defect)})
    try:
        run_campaign(campaign, out)
    finally:
        section = campaign.report()
        (out / "validate-results.json").write_text(
            json.dumps({"tier_2": section}, indent=2) + "\n", "utf-8")
    _print_summary(section, out)
    if section["findings"]:
        return EXIT_FAIL
    setup = section.get("setup")
    if setup and not any(s.startswith("2") for s in
                         section["coverage"]["statuses"].get(setup, {})):
        return _error(f"nothing judged: setup {setup} never answered 2xx", EXIT_USAGE)
    if campaign.stopped.startswith("target"):
        return _error(campaign.stopped, EXIT_INFRA)
    return EXIT_PASS


def _print_summary(section: dict[str, Any], out: Path) -> None:
    cov = section["coverage"]
    print(f"tier2: {section['sequences']} sequences ({section['sequences_per_s']}/s), "
          f"{section['requests']} requests in {section['elapsed_s']} s; operations "
          f"{cov['operations_2xx']}/{cov['operations']} answered 2xx, "
          f"{cov['status_pairs']} operation/status pairs")
    setup = section.get("setup")
    if setup and not any(s.startswith("2") for s in cov["statuses"].get(setup, {})):
        sys.stderr.write(f"assay: warning: setup {setup} never answered 2xx, so no sequence "
                         "got past it (give setup_body in an --overrides file)\n")
    for f in section["findings"]:
        print(f"  {f['severity']:4} {f['bucket']} x{f['count']}: {f['detail']}")
        if f["minimal_sequence"]:
            ops = " -> ".join(s["op"] + (f"[{s['payload']}]" if s["payload"].startswith(
                "invalid") else "") for s in f["minimal_sequence"])
            print(f"       minimal ({f['minimal_length']} steps): {ops}")
        if f["repro"]:
            print(f"       replay: assay replay {f['repro']} --target URL")
    print(f"results: {out / 'validate-results.json'}")
