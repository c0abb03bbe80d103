"""Read-after-write evidence (I-DRV-1) -> a program that rebuilds the walker's session.

Read-after-write needs session state: the login's cookie and the ids the target minted.
The converter captures them (``Step.capture``) from the replayed login and create
responses and templates later requests (``Step.template``), so the repro runs against a
fresh target; the failing write/read pair is repeated at the end because lost writes are
often periodic or racy. Called through ``replay.evidence.derive``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocols.program import Action, Check, Step
from replay.evidence import Derived, EvidenceError, TripContext, Unit, _recent, as_bytes

#: Extra write/read rounds appended to a lost-write repro (covers defects of period <= 4).
DRV_REPEATS = 4


_REQUEST_LINE = re.compile(rb"\A([A-Z]+) (\S+) HTTP/1\.[01]\r?\n")
_COOKIE_LINE = re.compile(rb"(?im)^cookie:[ \t]*([^\r\n]*)(?=\r?$)")
_WRITES = {b"POST", b"PUT", b"PATCH"}
#: A path segment that looks minted by the target (hex, UUID, number), not a route name.
_ID_LIKE = re.compile(r"[0-9a-fA-F-]{6,}|\d+")


@dataclass
class _Exchange:
    request: bytes
    method: bytes
    path: str
    received: bytes


def derive_drv1(ctx: TripContext, limit: int) -> Derived:
    """The I-DRV-1 converter (see the module docstring)."""
    ev = ctx.evidence
    read_wire = as_bytes(ev.get("sent"))
    if not read_wire:
        check = ev.get("check") if isinstance(ev.get("check"), Mapping) else ev
        read_wire = as_bytes(check.get("request"))
    failing = _parse_exchange(read_wire, as_bytes(ev.get("received")))
    if failing is None:
        raise EvidenceError("the read-after-write evidence holds no parseable request")
    # The ring also holds other slices' exchanges on their own connections (the response
    # probes' HEAD and HTTP/1.0 GET): only the walker's own session is replayed on conn 0.
    own = [e for e in _recent(ctx, 64) if e.get("slice") in (None, ev.get("slice"))]
    history = [x for x in (_parse_exchange(as_bytes(e.get("sent")), as_bytes(e.get("received")))
                           for e in own) if x is not None]
    exchanges = [*history, failing]
    minted = _minted_ids(exchanges)
    login = as_bytes(ev.get("login_sent"))
    known = {literal for literal, _, _ in minted.values()}
    stale = [segment for segment in failing.path.split("?")[0].split("/")
             if segment not in known and _ID_LIKE.fullmatch(segment)]
    if login and (stale or (_needs_id(failing.path, exchanges) and not known)):
        raise EvidenceError(f"the write that created {failing.path} is older than the "
                            "walker's ring of recent exchanges; cannot rebuild its session")
    cookies = _cookie_names(exchanges)
    units: list[Unit] = []
    notes: list[str] = []
    if login:
        captures = tuple((_cookie_var(name), f"cookie:{name}") for name in cookies)
        units.append((Step(Action.SEND, conn=0, data=login, label="raw:other:login"),
                      Step(Action.READ, conn=0, timeout_s=5.0, capture=captures,
                           label="raw.reply")))
    else:
        notes.append("no login in the evidence: cookies are replayed literally and the repro "
                     "works only while that session lives")
    jar = cookies if login else []
    variables: dict[str, str] = {}  # literal id -> variable name
    for index, exchange in enumerate(exchanges):
        if index in minted:
            literal, json_path, collection = minted[index]
            var = f"id_{len(variables) + 1}"
            units.append(_drv_unit(exchange, variables, jar, (var, json_path, collection)))
            variables[literal] = var
        else:
            units.append(_drv_unit(exchange, variables, jar))
    # Lost writes are often periodic or racy: repeat the failing write/read pair.
    failing_key = _templated(failing.path, variables)
    for index in range(len(history) - 1, -1, -1):
        write = history[index]
        created = None
        if index in minted:
            literal, json_path, collection = minted[index]
            created = f"{collection.rstrip('/')}/{{{variables[literal]}}}"
        if created == failing_key:  # the failing item's creation was the lost write
            for round_ in range(DRV_REPEATS):
                var = f"{variables[literal]}_r{round_}"
                units.append(_drv_unit(write, variables, jar, (var, json_path, collection)))
                units.append(_drv_unit(failing, {**variables, literal: var}, jar))
            break
        if write.method in _WRITES and _templated(write.path, variables) == failing_key:
            # Re-sending the same value cannot show a lost write (the previous one already
            # stored it): each round writes a slightly different value first.
            decoy = _decoy(write)
            for _ in range(DRV_REPEATS):
                if decoy is not None:
                    units.append(_drv_unit(decoy, variables, jar))
                units.append(_drv_unit(write, variables, jar))
                units.append(_drv_unit(failing, variables, jar))
            break
    return Derived(tuple(units), Check("read_after_write", {}),
                   {"resource": failing.path}, stateful=True, notes=tuple(notes),
                   shrink_data=True)


def _decoy(write: _Exchange) -> _Exchange | None:
    """``write`` with one field changed but still valid-looking: a string keeps its length
    (last character swapped), a number moves by one towards zero; None when the body is not
    a JSON object with such a field."""
    head_end = write.request.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    try:
        body = json.loads(write.request[head_end + 4:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    for key, value in body.items():
        if isinstance(value, str) and value:
            body[key] = value[:-1] + ("a" if value[-1] != "a" else "b")
            break
        if isinstance(value, int) and not isinstance(value, bool):
            body[key] = value - 1 if value > 0 else value + 1
            break
    else:
        return None
    data = json.dumps(body, separators=(",", ":")).encode()
    head = re.sub(rb"(?im)^content-length:[ \t]*\d+", b"Content-Length: " +
                  str(len(data)).encode(), write.request[:head_end + 4])
    return _Exchange(head + data, write.method, write.path, b"")


def _parse_exchange(request: bytes, received: bytes) -> _Exchange | None:
    match = _REQUEST_LINE.match(request)
    if match is None:
        return None
    return _Exchange(request, match.group(1), match.group(2).decode("latin-1"), received)


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node[:32]):
            yield from _leaves(value, (*path, str(index)))
    elif isinstance(node, (str, int)) and not isinstance(node, bool):
        yield path, str(node)


def _minted_ids(exchanges: Sequence[_Exchange]) -> dict[int, tuple[str, str, str]]:
    """exchange index -> (literal id, json path, collection path) for responses that
    returned a value later used as a path segment (the target minted it)."""
    minted: dict[int, tuple[str, str, str]] = {}
    for index, exchange in enumerate(exchanges):
        if exchange.method != b"POST" or not exchange.received:
            continue
        try:
            body = json.loads(exchange.received)
        except (ValueError, RecursionError):
            continue
        later = [x.path.split("?")[0].split("/") for x in exchanges[index + 1:]]
        for path, value in _leaves(body):
            if len(value) >= 2 and any(value in segments for segments in later):
                minted[index] = (value, ".".join(path), exchange.path.split("?")[0])
                break
    return minted


def _needs_id(path: str, exchanges: Sequence[_Exchange]) -> bool:
    """Whether ``path`` names a resource some POST created (vs a fixed singleton)."""
    collections = {x.path.split("?")[0].rstrip("/") for x in exchanges if x.method == b"POST"}
    return any(path.startswith(c + "/") for c in collections if c)


def _cookie_names(exchanges: Sequence[_Exchange]) -> list[str]:
    names: list[str] = []
    for exchange in exchanges:
        for match in _COOKIE_LINE.finditer(exchange.request):
            for pair in match.group(1).decode("latin-1").split(";"):
                name = pair.split("=", 1)[0].strip()
                if name and name not in names:
                    names.append(name)
    return names


def _cookie_var(name: str) -> str:
    return "cookie_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _templated(path: str, variables: Mapping[str, str]) -> str:
    """``path`` (query dropped) with every minted id segment replaced by its placeholder."""
    segments = path.split("?")[0].split("/")
    return "/".join(f"{{{variables[s]}}}" if s in variables else s for s in segments)


def _drv_unit(exchange: _Exchange, variables: Mapping[str, str], cookies: Sequence[str],
              mints: tuple[str, str, str] | None = None) -> Unit:
    """One request and its response read; ``mints`` = (variable, json path, collection)
    captures the id the response returns."""
    request = exchange.request
    head_end = request.find(b"\r\n\r\n")
    head, body = (request[:head_end + 4], request[head_end + 4:]) if head_end >= 0 \
        else (request, b"")
    line_end = head.find(b"\n") + 1
    line, rest = head[:line_end], head[line_end:]
    path = exchange.path.split("?")[0]
    key = _templated(path, variables)
    templated = key != path
    if templated:
        line = line.replace(path.encode("latin-1"), key.encode("latin-1"), 1)
    if cookies:
        jar = "; ".join(f"{name}={{{_cookie_var(name)}}}" for name in cookies)
        rest, count = _COOKIE_LINE.subn(b"Cookie: " + jar.encode("latin-1"), rest)
        templated |= count > 0
    captures: tuple[tuple[str, str], ...] = ()
    if mints is not None:
        var, json_path, collection = mints
        captures = ((var, f"json:{json_path}"),)
        key = f"{collection.rstrip('/')}/{{{var}}}"
    # A POST whose minted id nothing reads again creates a record nobody checks: "other".
    writes = exchange.method in (b"PUT", b"PATCH") or mints is not None
    role = ("write" if writes and body else
            "read" if exchange.method == b"GET" else
            "delete" if exchange.method == b"DELETE" else "other")
    return (Step(Action.SEND, conn=0, data=line + rest + body, template=templated,
                 label=f"raw:{role}:{key}"),
            Step(Action.READ, conn=0, timeout_s=5.0, capture=captures, label="raw.reply"))
