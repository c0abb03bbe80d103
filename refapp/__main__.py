"""``python -m refapp``: the built-in reference target.

Prints exactly one line, ``assay-refapp listening on http://HOST:PORT``, once it accepts, and
exits 0 on SIGTERM or SIGINT. ``main`` is also what ``assay refapp`` calls.
"""

from __future__ import annotations

import argparse
import logging
import sys

import trio

from actors.orphans import die_with_parent
from refapp.config import ServerConfig
from refapp.defects import DEFECTS, UnknownDefectError, parse_defects
from refapp.runtime import serve

EXIT_USAGE = 2


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="python -m refapp",
        description="assay's reference HTTP/1.1 + WebSocket + SSE target (trio, h11, wsproto).",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="port to bind, 0 = any (%(default)s)"
    )
    parser.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="inject a defect (repeatable); see --list-defects",
    )
    parser.add_argument("--list-defects", action="store_true", help="list defects and exit")
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=defaults.rate_limit,
        metavar="N",
        help="requests per second per session, burst N (%(default)s)",
    )
    parser.add_argument(
        "--defect-after",
        type=_positive,
        default=defaults.defect_after,
        metavar="S",
        help="uptime before hang-after / crash-after strike (%(default)s s)",
    )
    parser.add_argument(
        "--idle-timeout", type=_positive, default=defaults.idle_timeout, metavar="S"
    )
    parser.add_argument(
        "--header-timeout", type=_positive, default=defaults.header_timeout, metavar="S"
    )
    parser.add_argument("--debug", action="store_true", help="log connection errors to stderr")
    parser.add_argument(
        "--parent-pid", type=int, default=None,
        help="exit when this process dies (assay passes its own pid: no orphaned refapp)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the reference target; returns the process exit status."""
    args = build_parser().parse_args(argv)
    if args.list_defects:
        for defect in DEFECTS:
            sys.stdout.write(f"{defect.name:36} {defect.invariant:15} {defect.description}\n")
        return 0
    die_with_parent(args.parent_pid)
    try:
        defects = parse_defects(args.defect)
    except UnknownDefectError as exc:
        sys.stderr.write(f"refapp: {exc}\n")
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        stream=sys.stderr,
        format="refapp %(levelname)s %(message)s",
    )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        defects=defects,
        rate_limit=args.rate_limit,
        defect_after=args.defect_after,
        idle_timeout=args.idle_timeout,
        header_timeout=args.header_timeout,
    )
    try:
        trio.run(serve, config)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        sys.stderr.write(f"refapp: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
