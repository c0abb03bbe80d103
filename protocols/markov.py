"""One Markov walker's session, sans-IO: which request to send next and what a response means.

How this works: ``MarkovSession`` compiles the model once into ``Plan``s
(``protocols.markov_plan``: target pieces, body source, counter names, cumulative edge
weights), so the per-request path is string
joins, a dict lookup or two and one ``rng.random()``. The I/O shell loops::

    planned = session.next_request()          # send planned.wire
    session.on_response(planned, response, tally, latency_us)   # or on_transport_error(...)
    await trio.sleep(session.retry_after_s)   # 0 unless the server said 429

What the session keeps per walker: variable bindings (from ``capture``), a cookie jar (from
``Set-Cookie``), and write records: the JSON object last sent by a ``write: R`` state that got
a 2xx, keyed by (R, values of R's key variables -- the path variables of every state that
reads or writes R). A ``read: R`` state that gets a 2xx must return every recorded field
with an equal value, and must not 404/410; otherwise ``markov.read_after_write_mismatch``
(I-DRV-1) moves. To keep that HIGH counter free of false positives, a record is dropped
whenever its state becomes uncertain: a failed or interrupted write to it, a ``forget`` of
one of its variables, a rebinding of a variable (that record can never be read again), a
re-login (the new session may see other data). ``writeOnly`` properties of the spec's
schema are never recorded.

Status handling, in order: 429 counts ``markov.rate_limited``, sets ``retry_after_s`` (the
server's Retry-After, capped at 2 s) and repeats the same state; 401 with a model login
counts ``markov.relogin``, forgets all bindings and records and logs in again; any status
outside the state's ``expect`` counts ``markov.unexpected_status``; a 2xx applies captures,
then the read check, then the write record; ``forget`` is applied whatever the status. Then
the next state is sampled among edges whose targets' variables are bound (none: ``start``).
The walk depends only on the seed of ``rng`` and the responses seen.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from protocols.errors import HarnessError
from protocols.http1 import Response, build_request
from protocols.markov_cookies import store_cookie
from protocols.markov_findings import check_read, count_mismatch, count_unexpected
from protocols.markov_model import MarkovModel, parse_template
from protocols.markov_plan import (
    LOGIN_STATE,
    Plan,
    PlannedRequest,
    compile_login,
    compile_state,
    link_plan,
    new_planned,
)
from protocols.markov_values import dig, json_bytes, parse_json
from protocols.openapi_bodies import generate_body

if TYPE_CHECKING:
    from protocols.openapi import Spec
    from protocols.tally import Tally

#: Transport failures the I/O shell may report; each is counted as ``markov.error.<cause>``.
TRANSPORT_CAUSES = (
    "connect_refused",
    "connect_timeout",
    "reset",
    "eof",
    "timeout",
    "protocol_error",
    "too_large",
    # Over TLS (actors.tls): the handshake refused the certificate, failed, or timed out,
    # or a record was bad mid-stream; and an OS error the transport could not name.
    "tls_verify",
    "tls_handshake",
    "tls_timeout",
    "tls_error",
    "io_error",
)
RETRY_AFTER_MAX_S = 2.0
#: Wait after a 429 that carries no usable Retry-After.
RETRY_AFTER_DEFAULT_S = 0.1
_STATUS_COUNTERS = {c: f"markov.status_{c}xx" for c in range(1, 6)}
#: What a response counts, by status class: one request, and its status class.
_RESPONSE_COUNTERS = {c: ("markov.requests", name) for c, name in _STATUS_COUNTERS.items()}
_OTHER_RESPONSE_COUNTERS = ("markov.requests", "markov.status_other")
_ERROR_COUNTERS = {cause: f"markov.error.{cause}" for cause in TRANSPORT_CAUSES}


class MarkovSession:
    """The request/response logic of one walker; see the module docstring."""

    def __init__(
        self,
        model: MarkovModel,
        spec: Spec | None,
        rng: random.Random,
        host: str,
        base_path: str = "",
    ) -> None:
        base = base_path.rstrip("/")
        if base and not base.startswith("/"):
            base = "/" + base
        try:
            if parse_template(base + "/"):
                raise ValueError("placeholders are not allowed in a base path")
        except ValueError as exc:  # a malformed base path is the caller's bug
            raise HarnessError(f"bad base_path {base_path!r}: {exc}") from None
        self._model = model
        self._rng = rng
        self._host = host
        self._key_vars: Mapping[str, tuple[str, ...]] = model.resource_keys
        self._plans = {
            name: compile_state(s, spec, base, self._key_vars) for name, s in model.states.items()
        }
        for name, state in model.states.items():
            link_plan(self._plans[name], state, self._plans)
        self._start = self._plans[model.start]
        self._login = compile_login(model.login, base) if model.login else None
        self._need_login = self._login is not None
        self._current = self._start
        self._bindings: dict[str, str] = {}
        self._records: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self._cookies: dict[str, str] = {}
        self._cookie_header: str | None = None
        self._cookies_from: tuple[tuple[bytes, bytes], ...] | None = None
        self._outstanding: PlannedRequest | None = None
        self._outstanding_plan: Plan | None = None
        self._outstanding_obj: Any = None
        #: Seconds the shell should wait before the next request (after a 429), <= 2.
        self.retry_after_s = 0.0

    # -- read-only views -------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The state the next request comes from (``LOGIN_STATE`` while logging in)."""
        return LOGIN_STATE if self._need_login else self._current.name

    @property
    def bindings(self) -> Mapping[str, str]:
        return MappingProxyType(self._bindings)

    @property
    def cookies(self) -> Mapping[str, str]:
        return MappingProxyType(self._cookies)

    @property
    def records(self) -> Mapping[tuple[str, tuple[str, ...]], dict[str, Any]]:
        return MappingProxyType(self._records)

    # -- the walk --------------------------------------------------------------------------

    def next_request(self) -> PlannedRequest:
        """Plan the next request: the login when due, else the current state's."""
        if self._outstanding is not None:
            raise HarnessError("next_request() while a request is outstanding")
        plan = self._login if self._need_login and self._login else self._current
        target = plan.static_target
        if target is None:
            bindings = self._bindings
            if not plan.var_set <= bindings.keys():  # pragma: no cover - sampling prevents it
                plan = self._current = self._start
                target = plan.static_target
            else:
                parts = [plan.literals[0]]
                for var, literal in zip(plan.vars, plan.literals[1:], strict=True):
                    parts += (bindings[var], literal)
                target = "".join(parts)
        assert target is not None
        body, obj = plan.body_bytes, plan.body_obj
        cookie = self._cookie_header
        last = plan.last_request
        if last is not None and last[0] == target and last[1] == cookie:
            planned = last[2]  # same fixed body, same target and cookie: the same request
        else:
            if plan.schema is not None:
                obj = generate_body(plan.schema, self._rng)
                body = json_bytes(obj)
            headers: tuple[tuple[str, str], ...]
            if body is not None:
                json_type = ("Content-Type", "application/json")
                headers = (("Cookie", cookie), json_type) if cookie else (json_type,)
            else:
                headers = (("Cookie", cookie),) if cookie else ()
            wire = build_request(plan.method, target, self._host, headers, body)
            planned = new_planned(
                plan.name, plan.method, target, headers, body, wire, plan.is_login
            )
            if plan.schema is None:
                plan.last_request = (target, cookie, planned)
        self._outstanding, self._outstanding_plan, self._outstanding_obj = planned, plan, obj
        return planned

    def _take(self, planned: PlannedRequest) -> Plan:
        if planned is not self._outstanding or self._outstanding_plan is None:
            raise HarnessError("outcome reported for a request that is not outstanding")
        plan = self._outstanding_plan
        self._outstanding = self._outstanding_plan = None
        return plan

    def on_response(
        self,
        planned: PlannedRequest,
        response: Response,
        tally: Tally,
        latency_us: float | None = None,
    ) -> None:
        """Account for ``response`` to ``planned`` and choose the next state."""
        plan = self._take(planned)
        sent, self._outstanding_obj = self._outstanding_obj, None
        status = response.status
        tally.incr_each(_RESPONSE_COUNTERS.get(status // 100, _OTHER_RESPONSE_COUNTERS))
        if latency_us is not None:
            if plan.recorder_tally is not tally:
                plan.recorder = tally.latency_recorder(plan.latency_names)
                plan.recorder_tally = tally
            plan.recorder(latency_us)
        if response.headers and response.headers is not self._cookies_from:
            self._store_cookies(response)
            # The same (immutable) header tuple again -- heads are memoised by the parser --
            # would set the same cookies again: skip it until another response comes between.
            self._cookies_from = response.headers
        self.retry_after_s = 0.0

        if status == 429:
            tally.incr("markov.rate_limited")
            self.retry_after_s = _retry_after(response)
            return  # the same state (or the login) is tried again
        if plan.is_login:
            if plan.expect.accepts(status):
                self._need_login = False
                self._current = self._start
            else:
                tally.incr("markov.login_failed")
                count_unexpected(plan, planned, response, tally)
            return
        if status == 401 and self._login is not None:
            tally.incr("markov.relogin")
            self._need_login = True
            self._bindings.clear()
            self._records.clear()
            self._current = self._start
            return
        if not plan.expect.accepts(status):
            count_unexpected(plan, planned, response, tally)

        read_key = self._record_key(plan.read) if plan.read else None
        if 200 <= status < 300:
            # The read is judged against the bindings it was sent with, before captures.
            record = self._records.get(read_key) if read_key is not None else None
            parsed = parse_json(response.body) if record is not None or plan.capture else None
            if record is not None:
                check_read(plan, planned, record, parsed, response, tally)
            if plan.capture:
                self._capture(plan, parsed, tally)
            if plan.write:
                self._record_write(plan, sent)
        else:
            if read_key is not None and status in (404, 410) and read_key in self._records:
                tally.incr("markov.read_after_write_checks")
                count_mismatch(plan, planned, self._records[read_key], None, response, tally)
            if plan.write:
                self._drop_addressed_record(plan)
        for var in plan.forget:
            self._unbind(var)
        self._current = self._sample(plan)

    def on_transport_error(self, planned: PlannedRequest, cause: str, tally: Tally) -> None:
        """The exchange failed below HTTP (``cause`` in TRANSPORT_CAUSES): back to start."""
        counter = _ERROR_COUNTERS.get(cause)
        if counter is None:
            raise HarnessError(f"unknown transport cause {cause!r}")
        plan = self._take(planned)
        self._outstanding_obj = None
        tally.incr("markov.requests")
        tally.incr("markov.errors")
        tally.incr(counter)
        self.retry_after_s = 0.0
        if plan.write:  # the write may or may not have happened
            self._drop_addressed_record(plan)
        for var in plan.forget:
            self._unbind(var)
        self._current = self._start

    # -- bookkeeping -----------------------------------------------------------------------

    def _sample(self, plan: Plan) -> Plan:
        rng = self._rng
        if plan.free:
            index = bisect.bisect_right(plan.cum_weights, rng.random() * plan.total_weight)
            return plan.targets[min(index, len(plan.targets) - 1)]
        bound = self._bindings.keys()
        choices = [
            (target, weight)
            for target, weight in zip(plan.targets, plan.weights, strict=True)
            if target.var_set <= bound
        ]
        if not choices:
            return self._start
        point = rng.random() * sum(weight for _, weight in choices)
        for target, weight in choices:
            point -= weight
            if point < 0:
                return target
        return choices[-1][0]

    def _capture(self, plan: Plan, parsed: Any, tally: Tally) -> None:
        for var, path in plan.capture:
            value = dig(parsed, path)
            if value is None:
                tally.incr("markov.capture_missing")
                self._unbind(var)
            else:
                self._bind(var, value)

    def _bind(self, var: str, value: str) -> None:
        old = self._bindings.get(var)
        if old is not None and old != value:
            self._drop_records_with(var, old)
        self._bindings[var] = value

    def _unbind(self, var: str) -> None:
        old = self._bindings.pop(var, None)
        if old is not None:
            self._drop_records_with(var, old)

    def _drop_records_with(self, var: str, value: str) -> None:
        for key in [k for k in self._records if var in self._key_vars.get(k[0], ())]:
            if key[1][self._key_vars[key[0]].index(var)] == value:
                del self._records[key]

    def _record_key(self, resource: str | None) -> tuple[str, tuple[str, ...]] | None:
        if resource is None:
            return None
        bindings = self._bindings
        names = self._key_vars.get(resource, ())
        if not all(name in bindings for name in names):
            return None
        return resource, tuple(bindings[name] for name in names)

    def _record_write(self, plan: Plan, sent: Any) -> None:
        if not plan.write_vars_known:
            return
        key = self._record_key(plan.write)
        if key is None:
            return
        if not isinstance(sent, dict):
            self._records.pop(key, None)
            return
        fields = {k: v for k, v in sent.items() if k not in plan.write_only}
        held = self._records.get(key)
        if plan.method == "PATCH" and held is not None:
            fields = {**held, **fields}
        self._records[key] = fields

    def _drop_addressed_record(self, plan: Plan) -> None:
        """Forget the record a failed write addressed (a failed create addresses none)."""
        names = self._key_vars.get(plan.write or "", ())
        if plan.var_set.issuperset(names):
            key = self._record_key(plan.write)
            if key is not None:
                self._records.pop(key, None)

    def _store_cookies(self, response: Response) -> None:
        changed = False
        for name, raw in response.headers:  # header_values() without its list, per response
            if name == b"set-cookie":
                changed |= store_cookie(self._cookies, raw.decode("latin-1"), response)
        if changed:
            jar = self._cookies
            self._cookie_header = "; ".join(f"{k}={v}" for k, v in jar.items()) or None


def _retry_after(response: Response) -> float:
    """RFC 9110 §10.2.3 delay-seconds, capped; an HTTP-date or garbage gets the default."""
    raw = response.header(b"retry-after")
    if raw is not None and raw.strip().isdigit():
        return min(float(int(raw.strip()[:6])), RETRY_AFTER_MAX_S)
    return RETRY_AFTER_DEFAULT_S
