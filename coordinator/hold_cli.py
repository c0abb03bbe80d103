"""``assay hold``: open N connections across the actors and keep them open (tcpgoon).

The flags become a ``protocols.hold_stats.HoldPlan``; bad input (a target, count or
duration that does not parse) is a ``ConfigError``: one line, exit 2. The run is an
ordinary fleet run (``load_cli.config_for``) with one hold walker per actor; what the
coordinator does differently is ``coordinator.hold_run``.

The target may be a plain TCP server: without ``--send-http`` the pre-flight is a TCP
connect, not assay's usual GET (``"preflight": "tcp"`` in the fleet settings; nothing
accepting is exit 3, as for every run). The health monitor's once-a-second probes are
off (``"health_probes": False``): each would take one of the connection slots being
measured, and a silent TCP target would read as hung. Only ``--target-pid`` liveness is
watched. An ``https://`` target speaks HTTP over TLS: its pre-flight is the usual GET (an
untrusted certificate is exit 3 at once, not N failed handshakes), and every held
connection completes a TLS handshake first (``actors.hold_walker``). ``HOST:PORT`` stays
plain TCP.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any
from urllib.parse import urlsplit

from coordinator import logs
from coordinator.config_values import ConfigError, parse_duration, validate_target_url
from coordinator.extensions import add_output_options
from coordinator.load_cli import config_for
from protocols.hold_stats import HoldPlan
from protocols.http1 import RequestBuildError, build_request

EXIT_USAGE = 2
#: Most connections one run may ask for (a bound on every loop; far above one host's ports).
MAX_CONNECTIONS = 10_000_000
#: Interval lines come from merged tallies, which actors send every 250 ms.
MIN_INTERVAL_S = 0.25
_ZERO = re.compile(r"0+(\.0+)?(ms|s|m|h)?")
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>\S+)")


def add_hold_parser(sub: Any) -> None:
    hold = sub.add_parser("hold", help="open N connections and keep them open (tcpgoon "
                          "style): dialed, established, closed by peer, reset, still open")
    add = hold.add_argument
    add("--target", help="HOST:PORT (any TCP server), http://HOST:PORT/PATH (the path "
        "--send-http requests) or https://HOST:PORT/PATH (each connection completes TLS "
        "first)")
    add("--connections", default="100", help="connections in total, across all actors "
        "(default 100)")
    add("--delay", default="10ms", help="between two dials, fleet-wide: connection j is "
        "dialed j*delay after the start (default 10ms; 0 = all at once)")
    add("--interval", default="1s", help="how often a stats line is printed (default 1s)")
    add("--hold", default="10s", help="how long every connection is held after the last "
        "one is dialed (default 10s)")
    add("--send-http", action="store_true", help="send one keep-alive GET on each "
        "connection first and read the answer (a Connection: close answer counts as closed "
        "by peer)")
    add("--connect-timeout", default="10s", help="a dial not established by then failed "
        "(default 10s)")
    add("--launch", metavar="CMD", help="shell command serving the target on "
        "127.0.0.1:{port} (assay starts and stops it)")
    add("--launch-path", help="with --launch: the path --send-http requests (default /)")
    add("--target-pid", help="pid of the target process: its death is I-LIVENESS")
    add_output_options(add)


def parse_target(text: str) -> tuple[str, str]:
    """``HOST:PORT`` (plain TCP: http), ``http://`` or ``https://HOST:PORT/PATH`` ->
    (URL, request path).

    Raises:
        ConfigError: anything else, a port outside 1..65535.
    """
    text = text.strip()
    if "://" in text:
        url = validate_target_url(text)
        return url, urlsplit(url).path or "/"
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        raise ConfigError(f"--target {text!r} is not HOST:PORT or http://HOST:PORT/PATH")
    port = parse_port(match["port"], text)
    host = f"[{match['v6']}]" if match["v6"] else match["host"]
    return validate_target_url(f"http://{host}:{port}/"), "/"


def parse_port(text: str, target: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"--target {target!r}: port {text!r} is not a number in 1..65535")
    return int(text)


def parse_delay(text: str) -> float:
    """A duration that may be zero (all connections at once)."""
    if _ZERO.fullmatch(str(text).strip().lower()):
        return 0.0
    return parse_duration(text, "--delay")


def parse_connections(text: str) -> int:
    try:
        count = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"--connections {text!r} is not an integer") from None
    if not 1 <= count <= MAX_CONNECTIONS:
        raise ConfigError(f"--connections must be 1..{MAX_CONNECTIONS} (got {count})")
    return count


def build_plan(args: argparse.Namespace) -> tuple[HoldPlan, str | None]:
    """The plan, and the target URL (None with --launch). Bad input: ConfigError."""
    target = args.target or os.environ.get("ASSAY_TARGET")
    if target and args.launch:
        raise ConfigError("--launch and --target do not go together")
    if not target and not args.launch:
        raise ConfigError("--target HOST:PORT (or --launch CMD) is required")
    url, path = parse_target(target) if target else (None, args.launch_path or "/")
    interval = parse_duration(args.interval, "--interval")
    if interval < MIN_INTERVAL_S:
        raise ConfigError(f"--interval must be at least {MIN_INTERVAL_S * 1000:g}ms (the "
                          f"actors report every 250 ms; got {args.interval!r})")
    plan = HoldPlan(connections=parse_connections(args.connections),
                    delay_s=parse_delay(args.delay),
                    hold_s=parse_duration(args.hold, "--hold"), interval_s=interval,
                    connect_timeout_s=parse_duration(args.connect_timeout, "--connect-timeout"),
                    send_http=bool(args.send_http), path=path)
    if plan.send_http:
        try:
            build_request("GET", path, "localhost")
        except RequestBuildError as exc:
            raise ConfigError(f"--send-http: path {path!r} cannot be requested: {exc}") from None
    return plan, url


def run_hold(args: argparse.Namespace) -> int:
    from coordinator.execute import execute_run

    plan, url = build_plan(args)
    args.target = url
    config = config_for(args, "hold", plan.end_s, slices=("hold",))
    logs.configure(config.log_format)
    settings: dict[str, Any] = {
        "hold": plan.to_wire(),
        # A plain TCP target has no HTTP to pre-flight; --send-http says it speaks HTTP,
        # and so does https (the GET also checks the certificate once, up front).
        "preflight": "http" if plan.send_http or (url or "").startswith("https:") else "tcp",
        "health_probes": False,
    }
    if args.summary_json is not None:
        if not args.summary_json.parent.is_dir():
            sys.stderr.write(f"assay: error: --summary-json {args.summary_json}: its "
                             "directory does not exist\n")
            return EXIT_USAGE
        settings["hold_summary_json"] = str(args.summary_json)
    return execute_run(config, fleet=settings)
