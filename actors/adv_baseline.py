"""Valid requests beside each adversarial case: the baseline its answer is compared with.

How this works: ``BaselineCache`` sends a *valid* request with the case's method to the
case's route (``adversarial_cases.baseline_request``) on a fresh connection and keeps the
answer for ``adv_baseline_ttl`` seconds. A request with a body goes head first: a route that
answers before the body is sent does not read bodies (a static handler), which the oracle
needs to know (``Observation.answered_unread``): a malformed body sent there and answered
like the valid one, connection closed, was never read, so it is not judged. ``read_reply``
is the one way the slice reads an answer: until a response is complete or the deadline,
then a grace period more, under a byte cap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import trio

from actors import net
from actors.response_check import check_raw
from actors.response_probes import probe_once
from actors.walker import WalkerContext
from protocols.adversarial_cases import AdversarialCase, baseline_request
from protocols.adversarial_oracle import Observation, observe, read_enough

if TYPE_CHECKING:
    from actors.adversarial import AdvSettings

#: Per-connection read cap: a hostile server costs at most this many bytes per phase.
READ_CAP = 64 * 1024

#: How long a baseline with a body waits, head sent, before sending the body: an answer by
#: then was given without reading it (capped by ``adv_grace``).
UNREAD_WAIT_S = 0.2


@dataclass
class Phase:
    """Bytes read after one send, and how the read ended."""

    data: bytes = b""
    ending: str = "timeout"
    elapsed: float = 0.0


async def read_reply(
    stream: trio.SocketStream, settings: AdvSettings, case: AdversarialCase | None = None
) -> Phase:
    """Read until a response is complete (or the deadline), then a grace period more.

    A pipelined ``case`` waits for all of its ``responses`` (HEAD framed as HEAD).
    """
    enough = read_enough
    if case is not None and (case.responses > 1 or case.methods):
        enough = functools.partial(read_enough, responses=case.responses, methods=case.methods)
    first = await net.read_until(stream, settings.timeout, READ_CAP, enough=enough)
    data, ending, elapsed = first.data, first.ending.value, first.elapsed
    if first.ending is net.Ending.DONE and len(data) < READ_CAP:
        rest = await net.read_until(stream, settings.grace, READ_CAP - len(data))
        data, ending = data + rest.data, rest.ending.value
    return Phase(data=data, ending=ending, elapsed=elapsed)


class BaselineCache:
    """Answers of valid requests to the target route, per method, reused for a while."""

    def __init__(self, settings: AdvSettings) -> None:
        self._settings = settings
        self._held: dict[tuple[str, str | None], tuple[float, Observation | None]] = {}
        #: The route each method's last baseline went to (a body route for body cases), so
        #: a confirmation round's ``fresh`` baseline goes where the case just went.
        self._last_path: dict[str, str | None] = {}

    async def get(self, ctx: WalkerContext, method: str,
                  path: str | None = None) -> Observation | None:
        """The answer to a valid ``method`` request to ``path`` (default: the target's)."""
        now = trio.current_time()
        self._last_path[method] = path
        held = self._held.get((method, path))
        if held is not None and now < held[0]:
            return held[1]
        observation = await self._fetch(ctx, method, path)
        judged = observation is not None and observation.status is not None
        ttl = self._settings.baseline_ttl if judged else min(2.0, self._settings.baseline_ttl)
        self._held[(method, path)] = (now + ttl, observation if judged else None)
        return observation if judged else None

    async def fresh(self, ctx: WalkerContext, method: str) -> Observation | None:
        """Fetch now, bypassing the cache (confirmation needs this round's answer); None
        when the valid request was not answered within the deadline."""
        path = self._last_path.get(method)
        self._held.pop((method, path), None)
        return await self.get(ctx, method, path)

    async def again(self, ctx: WalkerContext, method: str) -> Observation | None:
        """The baseline (cached if still fresh) of the route the last ``method`` case used."""
        return await self.get(ctx, method, self._last_path.get(method))

    async def _fetch(self, ctx: WalkerContext, method: str,
                     path: str | None) -> Observation | None:
        settings = self._settings
        request = baseline_request(method, ctx.target.host_header,
                                   path or ctx.target.base_path)
        try:
            stream = await net.connect(ctx.target, settings.timeout)
        except net.TransportError as exc:
            ctx.tally.incr(f"adv.baseline_error.{exc.cause}")
            return None
        try:
            reply, unread = await _send_baseline(stream, request, settings)
        except net.TransportError as exc:
            ctx.tally.incr(f"adv.baseline_error.{exc.cause}")
            return None
        finally:
            await net.aclose_quietly(stream)
        observation = observe(reply.data, reply.ending)
        if unread and observation.status is not None:
            observation = replace(observation, answered_unread=True)
            ctx.tally.incr("adv.baseline_answered_unread")
        check_raw(ctx, request, reply.data, closed=reply.ending in ("eof", "reset"))
        ctx.tally.incr("adv.baseline" if observation.status else "adv.baseline_unanswered")
        await probe_once(ctx, path or ctx.target.base_path, settings.timeout)
        return observation


async def _send_baseline(stream: trio.SocketStream, request: bytes,
                         settings: AdvSettings) -> tuple[Phase, bool]:
    """Send the valid request and read its answer; (reply, answered before the body).

    A request with a body goes head first, and the body only if nothing came back within a
    short wait: a route that answers before the body was sent does not read bodies, which
    ``effective_reaction`` needs to know (answer-and-close there proves nothing).
    """
    head, blank, body = request.partition(b"\r\n\r\n")
    if not body:
        await net.send_all(stream, request, settings.timeout)
        return await read_reply(stream, settings), False
    await net.send_all(stream, head + blank, settings.timeout)
    first = await net.read_until(stream, min(settings.grace, UNREAD_WAIT_S), READ_CAP,
                                 enough=read_enough)
    if first.ending is net.Ending.TIMEOUT and not first.data:  # waiting for the body
        await net.send_all(stream, body, settings.timeout)
        return await read_reply(stream, settings), False
    data, ending = first.data, first.ending
    if ending is net.Ending.DONE or ending is net.Ending.TIMEOUT:
        rest = await net.read_until(stream, settings.timeout if ending is net.Ending.TIMEOUT
                                    else settings.grace, READ_CAP - len(data))
        data, ending = data + rest.data, rest.ending
    return Phase(data=data, ending=ending.value, elapsed=first.elapsed), True


