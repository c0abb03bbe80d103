"""``python -m actors``: one actor process. Normally started by the coordinator; it can
equally be started by hand on another load host, pointing at the coordinator's sockets."""

from __future__ import annotations

import argparse
import signal
import sys

import trio

from actors.actor import Actor
from actors.orphans import die_with_parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors", description=__doc__)
    parser.add_argument("--pull", required=True, help="coordinator PULL endpoint (tallies)")
    parser.add_argument("--pub", required=True, help="coordinator PUB endpoint (control)")
    parser.add_argument("--actor-id", type=int, required=True)
    parser.add_argument("--incarnation", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process (the coordinator) dies")
    args = parser.parse_args(argv)
    # Ctrl-C in a terminal hits the whole process group; the coordinator owns the decision.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(args.parent_pid)
    actor = Actor(args.actor_id, args.incarnation, args.pull, args.pub)
    return trio.run(actor.run)


if __name__ == "__main__":
    sys.exit(main())
