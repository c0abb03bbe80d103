"""Which path an adversarial case goes to: the actor side of ``protocols.body_routes``.

The coordinator decides the body routes once per run (``--body-path``, or derived and
pre-flighted by ``coordinator.body_preflight``) and ships them as the ``adv_body_paths``
setting. A case that carries a body goes to one of them, drawn from the walker's PRNG when
there are several (so the choice replays from the seed); every other case, and every case
when there is no body route, goes to the target URL's path as before.
"""

from __future__ import annotations

from actors.walker import WalkerContext
from protocols.adversarial_cases import AdversarialCase
from protocols.body_routes import carries_body, route_for

SETTING = "adv_body_paths"


def path_for(ctx: WalkerContext, case: AdversarialCase) -> str:
    """The request path for ``case`` (its baseline must use the same one)."""
    routes = tuple(ctx.settings.get(SETTING) or ())
    pick = ctx.rng.randrange(len(routes)) if len(routes) > 1 and carries_body(case) else 0
    return route_for(case, routes, ctx.target.base_path, pick)
