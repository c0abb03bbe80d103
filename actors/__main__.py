"""``python -m actors``: one actor process. Normally started by the coordinator; it can
equally be started by hand on another load host, pointing at the coordinator's sockets
(``assay run --remote-actors N`` writes the exact command to ``fleet.json``).

Off loopback the coordinator's sockets speak CURVE only, so an actor dialling a
non-loopback endpoint must be given keys (``--server-key``: the coordinator's public key;
``--secret-key``: this actor's secret, whose public half is in the coordinator's
authorized keys) and refuses to start without them (exit 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import trio

from actors import curve
from actors.actor import GREETING_TIMEOUT_S, Actor
from actors.orphans import die_with_parent
from actors.precise_clock import PreciseClock

EXIT_USAGE = 2


def _incarnation(text: str) -> int:
    """A number, or ``auto``: milliseconds since the epoch, so that a re-launched remote
    actor always counts as a newer incarnation than the one it replaces."""
    if text == "auto":
        return int(time.time() * 1000)
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or 'auto'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors", description=__doc__.split("\n")[0])
    parser.add_argument("--pull", required=True, help="coordinator PULL endpoint (tallies)")
    parser.add_argument("--pub", required=True, help="coordinator PUB endpoint (control)")
    parser.add_argument("--actor-id", type=int, required=True)
    parser.add_argument("--incarnation", type=_incarnation, default=0,
                        help="a number, or auto (time-based; for actors on other hosts)")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process (the coordinator) dies")
    parser.add_argument("--server-key", help="the coordinator's CURVE public key: Z85 or a "
                        f"certificate file (or ${curve.SERVER_KEY_ENV})")
    parser.add_argument("--secret-key", help="this actor's CURVE secret key: Z85 or a "
                        f"secret certificate file (or ${curve.SECRET_KEY_ENV})")
    parser.add_argument("--greeting-timeout", type=_positive, default=GREETING_TIMEOUT_S,
                        help="give up when no plan came within this many seconds "
                        f"(default {GREETING_TIMEOUT_S:.0f})")
    args = parser.parse_args(argv)
    try:
        server = curve.load_key(args.server_key or os.environ.get(curve.SERVER_KEY_ENV),
                                secret=False)
        secret = curve.load_key(args.secret_key or os.environ.get(curve.SECRET_KEY_ENV),
                                secret=True)
    except curve.CurveKeyError as exc:
        return _error(str(exc))
    if (server is None) != (secret is None):
        return _error("CURVE needs both --server-key and --secret-key")
    remote = [e for e in (args.pull, args.pub) if not curve.endpoint_is_loopback(e)]
    if remote and server is None:
        return _error(f"{remote[0]} is not loopback: the coordinator speaks CURVE there; "
                      "give --server-key and --secret-key")
    # Ctrl-C in a terminal hits the whole process group; the coordinator owns the decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(args.parent_pid)
    keys = (server, secret) if server is not None and secret is not None else None
    actor = Actor(args.actor_id, args.incarnation, args.pull, args.pub, curve_keys=keys,
                  greeting_timeout_s=args.greeting_timeout)
    # The open load model's arrivals are due to the microsecond; trio's own clock wakes
    # up to a millisecond late (actors.precise_clock).
    return trio.run(actor.run, clock=PreciseClock())


def _error(message: str) -> int:
    sys.stderr.write(f"python -m actors: error: {message}\n")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
