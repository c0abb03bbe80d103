"""One Markov walker's session, sans-IO: which request to send next and what a response means.

How this works: ``MarkovSession`` compiles the model once into ``_Plan``s (target pieces,
body source, counter names, cumulative edge weights), so the per-request path is string
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
import email.utils
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from protocols.errors import HarnessError
from protocols.http1 import Response, build_request
from protocols.markov_model import Expectation, Login, MarkovModel, State, parse_template
from protocols.openapi import generate_body, write_only_properties

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
#: ``PlannedRequest.state`` of the login request (state names cannot start with "_").
LOGIN_STATE = "_login"
MAX_COOKIES = 64
MAX_COOKIE_VALUE = 4096
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_TEMPLATE_SPLIT = re.compile(r"\{([^{}]*)\}")
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_COOKIE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*\Z")  # printable ASCII except ';'
_STATUS_COUNTERS = {c: f"markov.status_{c}xx" for c in range(1, 6)}
#: What a response counts, by status class: one request, and its status class.
_RESPONSE_COUNTERS = {c: ("markov.requests", name) for c, name in _STATUS_COUNTERS.items()}
_OTHER_RESPONSE_COUNTERS = ("markov.requests", "markov.status_other")
_ERROR_COUNTERS = {cause: f"markov.error.{cause}" for cause in TRANSPORT_CAUSES}
_EXAMPLE_BODY_CHARS = 2048


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request the walker is about to send; ``wire`` is the exact bytes."""

    state: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    wire: bytes
    is_login: bool = False


class _Plan:
    """A state (or the login) compiled for the hot path."""

    __slots__ = (
        "body_bytes",
        "body_obj",
        "capture",
        "cum_weights",
        "expect",
        "forget",
        "free",
        "is_login",
        "last_request",
        "latency_counter",
        "latency_names",
        "literals",
        "method",
        "name",
        "read",
        "recorder",
        "recorder_tally",
        "schema",
        "static_target",
        "targets",
        "total_weight",
        "var_set",
        "vars",
        "weights",
        "write",
        "write_only",
        "write_vars_known",
    )

    def __init__(
        self, name: str, method: str, path: str, expect: Expectation, base_path: str
    ) -> None:
        self.name = name
        self.method = method
        self.expect = expect
        pieces = _TEMPLATE_SPLIT.split(base_path + path)
        self.literals: tuple[str, ...] = tuple(pieces[0::2])
        self.vars: tuple[str, ...] = tuple(pieces[1::2])
        self.var_set = frozenset(self.vars)
        self.static_target: str | None = None if self.vars else base_path + path
        self.latency_counter = f"markov.latency.{name}"
        self.latency_names = ("markov.latency", self.latency_counter)
        #: ``recorder_tally.latency_recorder(latency_names)``, made once per tally.
        self.recorder: Callable[[float], None] | None = None
        self.recorder_tally: Tally | None = None
        self.is_login = False
        self.body_bytes: bytes | None = None
        self.body_obj: Any = None
        self.schema: Any = None
        self.write_only: frozenset[str] = frozenset()
        self.capture: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.write: str | None = None
        self.read: str | None = None
        self.forget: tuple[str, ...] = ()
        self.write_vars_known = False
        self.targets: tuple[_Plan, ...] = ()
        self.weights: tuple[float, ...] = ()
        self.cum_weights: list[float] = []
        self.total_weight = 0.0
        self.free = True
        #: (target, cookie header, request) of the last request planned from a fixed body:
        #: a walker repeats the same request most of the time, and a ``PlannedRequest`` is
        #: frozen, so the same one can be handed out again.
        self.last_request: tuple[str, str | None, PlannedRequest] | None = None


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
        self._plans = {name: self._compile(s, spec, base) for name, s in model.states.items()}
        for name, state in model.states.items():
            self._link(self._plans[name], state)
        self._start = self._plans[model.start]
        self._login = self._compile_login(model.login, base) if model.login else None
        self._need_login = self._login is not None
        self._current = self._start
        self._bindings: dict[str, str] = {}
        self._records: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self._cookies: dict[str, str] = {}
        self._cookie_header: str | None = None
        self._cookies_from: tuple[tuple[bytes, bytes], ...] | None = None
        self._outstanding: PlannedRequest | None = None
        self._outstanding_plan: _Plan | None = None
        self._outstanding_obj: Any = None
        #: Seconds the shell should wait before the next request (after a 429), <= 2.
        self.retry_after_s = 0.0

    # -- compilation -----------------------------------------------------------------------

    def _compile(self, state: State, spec: Spec | None, base: str) -> _Plan:
        plan = _Plan(state.name, state.method, state.path, state.expect, base)
        if state.body is not None:
            plan.body_obj = state.body
            plan.body_bytes = _json_bytes(state.body)
        elif spec is not None and state.method in _BODY_METHODS:
            route = spec.find_route(state.method, state.path)
            if route is not None and route.request_schema is not None:
                plan.schema = route.request_schema
                plan.write_only = write_only_properties(route.request_schema)
        plan.capture = tuple((c.var, c.path) for c in state.capture)
        plan.write, plan.read, plan.forget = state.write, state.read, state.forget
        if state.write:
            known = set(state.path_vars) | {c.var for c in state.capture}
            plan.write_vars_known = set(self._key_vars.get(state.write, ())) <= known
        return plan

    def _link(self, plan: _Plan, state: State) -> None:
        plan.targets = tuple(self._plans[e.target] for e in state.edges)
        plan.weights = tuple(e.weight for e in state.edges)
        total = 0.0
        for weight in plan.weights:
            total += weight
            plan.cum_weights.append(total)
        plan.total_weight = total
        plan.free = not any(t.vars for t in plan.targets)

    def _compile_login(self, login: Login, base: str) -> _Plan:
        plan = _Plan(LOGIN_STATE, login.method, login.path, login.expect, base)
        plan.is_login = True
        if login.body is not None:
            plan.body_obj = login.body
            plan.body_bytes = _json_bytes(login.body)
        return plan

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
                body = _json_bytes(obj)
            headers: tuple[tuple[str, str], ...]
            if body is not None:
                json_type = ("Content-Type", "application/json")
                headers = (("Cookie", cookie), json_type) if cookie else (json_type,)
            else:
                headers = (("Cookie", cookie),) if cookie else ()
            wire = build_request(plan.method, target, self._host, headers, body)
            planned = _new_planned(
                plan.name, plan.method, target, headers, body, wire, plan.is_login
            )
            if plan.schema is None:
                plan.last_request = (target, cookie, planned)
        self._outstanding, self._outstanding_plan, self._outstanding_obj = planned, plan, obj
        return planned

    def _take(self, planned: PlannedRequest) -> _Plan:
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
                self._unexpected(plan, planned, response, tally)
            return
        if status == 401 and self._login is not None:
            tally.incr("markov.relogin")
            self._need_login = True
            self._bindings.clear()
            self._records.clear()
            self._current = self._start
            return
        if not plan.expect.accepts(status):
            self._unexpected(plan, planned, response, tally)

        read_key = self._record_key(plan.read) if plan.read else None
        if 200 <= status < 300:
            # The read is judged against the bindings it was sent with, before captures.
            record = self._records.get(read_key) if read_key is not None else None
            parsed = _parse_json(response.body) if record is not None or plan.capture else None
            if record is not None:
                self._check_read(plan, planned, record, parsed, response, tally)
            if plan.capture:
                self._capture(plan, parsed, tally)
            if plan.write:
                self._record_write(plan, sent)
        else:
            if read_key is not None and status in (404, 410) and read_key in self._records:
                tally.incr("markov.read_after_write_checks")
                self._mismatch(plan, planned, self._records[read_key], None, response, tally)
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

    def _sample(self, plan: _Plan) -> _Plan:
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

    def _capture(self, plan: _Plan, parsed: Any, tally: Tally) -> None:
        for var, path in plan.capture:
            value = _dig(parsed, path)
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

    def _record_write(self, plan: _Plan, sent: Any) -> None:
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

    def _drop_addressed_record(self, plan: _Plan) -> None:
        """Forget the record a failed write addressed (a failed create addresses none)."""
        names = self._key_vars.get(plan.write or "", ())
        if plan.var_set.issuperset(names):
            key = self._record_key(plan.write)
            if key is not None:
                self._records.pop(key, None)

    def _check_read(
        self,
        plan: _Plan,
        planned: PlannedRequest,
        record: dict[str, Any],
        parsed: Any,
        response: Response,
        tally: Tally,
    ) -> None:
        tally.incr("markov.read_after_write_checks")
        if not isinstance(parsed, dict) or any(
            name not in parsed or not _same(value, parsed[name]) for name, value in record.items()
        ):
            self._mismatch(plan, planned, record, parsed, response, tally)

    def _mismatch(
        self,
        plan: _Plan,
        planned: PlannedRequest,
        record: dict[str, Any],
        parsed: Any,
        response: Response,
        tally: Tally,
    ) -> None:
        counter = "markov.read_after_write_mismatch"
        tally.incr(counter)
        if counter in tally.examples:
            return
        if isinstance(parsed, dict):
            fields = [n for n, v in record.items() if n not in parsed or not _same(v, parsed[n])]
        else:
            fields = sorted(record)
        tally.keep_example(
            counter,
            {
                "invariant": "I-DRV-1",
                "state": plan.name,
                "method": planned.method,
                "target": planned.target,
                "status": response.status,
                "expected": json.dumps(record, sort_keys=True),
                "mismatched_fields": fields,
                "actual_body": _text(response.body),
                "request": _text(planned.wire),
            },
        )

    def _unexpected(
        self, plan: _Plan, planned: PlannedRequest, response: Response, tally: Tally
    ) -> None:
        counter = "markov.unexpected_status"
        tally.incr(counter)
        if counter in tally.examples:
            return
        tally.keep_example(
            counter,
            {
                "state": plan.name,
                "method": planned.method,
                "target": planned.target,
                "expected": list(plan.expect.text),
                "status": response.status,
                "reason": _text(response.reason),
                "response_headers": [[_text(n), _text(v)] for n, v in response.headers],
                "response_body": _text(response.body),
                "request": _text(planned.wire),
            },
        )

    def _store_cookies(self, response: Response) -> None:
        changed = False
        for name, raw in response.headers:  # header_values() without its list, per response
            if name == b"set-cookie":
                changed |= self._store_cookie(raw.decode("latin-1"), response)
        if changed:
            jar = self._cookies
            self._cookie_header = "; ".join(f"{k}={v}" for k, v in jar.items()) or None

    def _store_cookie(self, text: str, response: Response) -> bool:
        """Minimal RFC 6265 §5.2: name=value, deletion by Max-Age<=0 or a past Expires."""
        pair, _, attributes = text.partition(";")
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not _COOKIE_NAME.match(name):
            return False
        if len(value) > MAX_COOKIE_VALUE or not _COOKIE_VALUE.match(value):
            return False
        expired = False
        max_age_seen = False
        for attribute in attributes.split(";"):
            key, _, arg = attribute.partition("=")
            key = key.strip().lower()
            if key == "max-age":
                arg = arg.strip()
                if arg.lstrip("-").isdigit():
                    max_age_seen = True
                    expired = int(arg) <= 0
            elif key == "expires" and not max_age_seen:
                expired = _expired(arg.strip(), response)
        if expired:
            return self._cookies.pop(name, None) is not None
        if name not in self._cookies and len(self._cookies) >= MAX_COOKIES:
            return False
        if self._cookies.get(name) == value:
            return False
        self._cookies[name] = value
        return True


_PLANNED_SETTERS = tuple(
    PlannedRequest.__dict__[name].__set__
    for name in ("state", "method", "target", "headers", "body", "wire", "is_login")
)


def _new_planned(
    state: str,
    method: str,
    target: str,
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
    wire: bytes,
    is_login: bool,
) -> PlannedRequest:
    """``PlannedRequest(...)`` without the frozen dataclass's per-field ``__setattr__``
    (once per request; same trick as ``http1._new_response``)."""
    planned = object.__new__(PlannedRequest)
    s0, s1, s2, s3, s4, s5, s6 = _PLANNED_SETTERS
    s0(planned, state)
    s1(planned, method)
    s2(planned, target)
    s3(planned, headers)
    s4(planned, body)
    s5(planned, wire)
    s6(planned, is_login)
    return planned


#: What an unparseable body becomes: not a dict, so checks fail and captures miss.
_INVALID: Any = object()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _INVALID


def _dig(value: Any, path: tuple[str, ...]) -> str | None:
    """The value at a dotted path, as a path-safe string, or None if absent/unusable."""
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
        return None
    return quote(str(value), safe="")


def _same(expected: Any, actual: Any) -> bool:
    """JSON equality; objects compare as 'every expected member present and equal'."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and expected == actual
    return type(expected) is type(actual) and expected == actual


def _retry_after(response: Response) -> float:
    """RFC 9110 §10.2.3 delay-seconds, capped; an HTTP-date or garbage gets the default."""
    raw = response.header(b"retry-after")
    if raw is not None and raw.strip().isdigit():
        return min(float(int(raw.strip()[:6])), RETRY_AFTER_MAX_S)
    return RETRY_AFTER_DEFAULT_S


def _expired(expires: str, response: Response) -> bool:
    """Expires in the past, judged by the response's own Date (no clock in sans-IO code)."""
    try:
        when = email.utils.parsedate_to_datetime(expires)
    except (TypeError, ValueError, IndexError):
        return False
    date = response.header(b"date")
    if date is not None:
        try:
            return when <= email.utils.parsedate_to_datetime(date.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            pass
    return when.year < 2000  # the conventional "Thu, 01 Jan 1970" deletion


def _text(data: bytes) -> str:
    return data[: _EXAMPLE_BODY_CHARS * 2].decode("utf-8", "replace")
