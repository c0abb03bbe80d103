"""Routes of the reference app: a table from path and method to handler, and the handlers.

How this works: the connection layer (``server.py``) turns h11 events into a ``Request`` with
the whole body read, calls ``App.route`` once to learn which route it is, and then either
calls ``App.respond`` (plain request/response routes) or hands the socket to the WebSocket or
SSE code (streaming routes). Handlers are pure with respect to I/O: request in, ``Response``
out, state in the session store. That keeps the hot path one dict lookup, one handler call
and one ``json.dumps``.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from refapp.api_defects import ApiDefects
from refapp.config import ServerConfig
from refapp.items import InvalidItem, ItemBody, item_json, new_item_id, validate_item
from refapp.sessions import Session, SessionStore, session_token
from refapp.stats import Stats

Headers = list[tuple[bytes, bytes]]

PASSWORD = "secret"
USERNAME_MAX = 64

_JSON = (b"content-type", b"application/json")
_COOKIE_ATTRS = b"; Path=/; HttpOnly; SameSite=Lax"
_CLEAR_COOKIE = (b"set-cookie", b"session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
_RETRY_AFTER = (b"retry-after", b"1")
# RFC 9110 §15.5.2: a 401 MUST carry WWW-Authenticate with a challenge. The session is a
# cookie minted by POST /login, so the challenge names that form (the "Cookie" scheme of
# draft-broyer-http-cookie-auth): a client learns where to log in.
_CHALLENGE = (b"www-authenticate",
              b'Cookie realm="refapp", form-action="/login", cookie-name="session"')


@dataclass(slots=True)
class Request:
    """One complete HTTP request: lower-case header names, repeated headers joined."""

    method: bytes
    path: str
    headers: dict[bytes, bytes]
    body: bytes = b""


@dataclass(slots=True)
class Response:
    """Status, headers (without framing, Date or Server) and the whole body."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""


def json_response(status: int, doc: Any, headers: Headers | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(status, [_JSON, *(headers or ())], body)


def error(status: int, message: str, headers: Headers | None = None) -> Response:
    """A JSON error body, the same shape for every status."""
    return json_response(status, {"error": message}, headers)


class Kind(enum.Enum):
    """What the connection layer does with a matched route."""

    #: Request in, whole response out, through ``App.respond``.
    PLAIN = "plain"
    #: A GET is an RFC 6455 opening handshake; the socket goes to ``websocket.py``.
    WEBSOCKET = "websocket"
    #: A GET subscribes to the SSE broker; the socket goes to ``sse.py``.
    EVENTS = "events"


@dataclass(frozen=True, slots=True)
class Route:
    """A path template (``{name}`` matches one non-empty segment) and its methods."""

    template: str
    methods: dict[bytes, str]
    kind: Kind = Kind.PLAIN
    needs_session: bool = False

    def allow(self) -> bytes:
        """The ``Allow`` header value for 405 and OPTIONS (RFC 9110 §10.2.1)."""
        names = list(self.methods)
        if b"GET" in self.methods and self.kind is Kind.PLAIN:
            names.append(b"HEAD")
        return b", ".join([*names, b"OPTIONS"])


ROUTES: tuple[Route, ...] = (
    Route("/healthz", {b"GET": "healthz"}),
    Route("/login", {b"POST": "login"}),
    Route("/logout", {b"POST": "logout"}),
    Route("/items", {b"GET": "list_items", b"POST": "create_item"}, needs_session=True),
    Route(
        "/items/{id}",
        {b"GET": "read_item", b"PUT": "update_item", b"DELETE": "delete_item"},
        needs_session=True,
    ),
    Route("/stats", {b"GET": "stats"}),
    Route("/echo", {b"POST": "echo"}),
    Route("/ws", {b"GET": "websocket"}, kind=Kind.WEBSOCKET),
    Route("/events", {b"GET": "events"}, kind=Kind.EVENTS),
)


@dataclass(frozen=True, slots=True)
class Match:
    """A route matched by path, with its path parameters."""

    route: Route
    params: dict[str, str]


class Router:
    """Static paths by dict lookup, templated paths by segment comparison."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._static = {r.template: r for r in routes if "{" not in r.template}
        self._templated = [(r, r.template[1:].split("/")) for r in routes if "{" in r.template]

    def match(self, path: str) -> Match | None:
        route = self._static.get(path)
        if route is not None:
            return Match(route, {})
        segments = path[1:].split("/")
        for route, parts in self._templated:
            if len(parts) != len(segments):
                continue
            params: dict[str, str] = {}
            for part, seg in zip(parts, segments, strict=True):
                if part.startswith("{"):
                    if not seg:
                        break
                    params[part[1:-1]] = seg
                elif part != seg:
                    break
            else:
                return Match(route, params)
        return None


Handler = Callable[[Request, dict[str, str], Session | None], Response]


class App:
    """Handlers and the state they share. One instance per server process."""

    def __init__(
        self, config: ServerConfig, stats: Stats, sse_subscribers: Callable[[], int]
    ) -> None:
        self.config = config
        self.stats = stats
        self.sessions = SessionStore(config.rate_limit)
        self.router = Router(ROUTES)
        self._sse_subscribers = sse_subscribers
        self._lost_write = config.has("lost-write")
        self._api_defects = ApiDefects(frozenset(config.defects))
        self._puts = 0
        self._posts = 0
        self._handlers: dict[str, Handler] = {
            name: getattr(self, "_" + name)
            for route in ROUTES
            if route.kind is Kind.PLAIN
            for name in route.methods.values()
        }

    def respond(self, request: Request, match: Match) -> Response:
        """Answer a request to a plain route (method already known to the route, or not)."""
        route = match.route
        method = b"GET" if request.method == b"HEAD" else request.method
        name = route.methods.get(method)
        if name is None or (request.method == b"HEAD" and route.kind is not Kind.PLAIN):
            if request.method == b"OPTIONS":
                return Response(204, [(b"allow", route.allow())])
            return error(405, "method not allowed", [(b"allow", route.allow())])
        session = None
        if route.needs_session:
            session = self.sessions.lookup(session_token(request.headers.get(b"cookie")))
            if session is None:
                return error(401, "login required", [_CHALLENGE])
            if not session.bucket.allow(time.monotonic()):
                return error(429, "rate limit exceeded", [_RETRY_AFTER])
        return self._handlers[name](request, match.params, session)

    # -- handlers: (request, path params, session) -> Response ------------------------------

    def _healthz(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        return _HEALTHZ

    def _stats(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        doc = self.stats.snapshot(self._sse_subscribers(), self.config.defects)
        doc["sessions"] = len(self.sessions)
        return json_response(200, doc, [(b"cache-control", b"no-store")])

    def _echo(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        """The body as read (latin-1, byte for byte), its length and the header fields the
        app saw: a body route with no session for the adversarial cases, and a window on
        what a server merged into the header section (trailer fields must not be)."""
        fields = [[name.decode("latin-1"), value.decode("latin-1")]
                  for name, value in request.headers.items()]
        doc = {"length": len(request.body), "body": request.body.decode("latin-1"),
               "headers": fields}
        return json_response(200, doc, [(b"cache-control", b"no-store")])

    def _login(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        doc = _decode(request.body)
        if not isinstance(doc, dict):
            return error(400, "body must be a JSON object")
        user = doc.get("username")
        if not isinstance(user, str) or not 1 <= len(user) <= USERNAME_MAX:
            return error(400, f"username must be a string of 1..{USERNAME_MAX} chars")
        if doc.get("password") != PASSWORD:
            return error(401, "bad credentials", [_CHALLENGE])
        token = self.sessions.create(user)
        cookie = (b"set-cookie", b"session=" + token.encode() + _COOKIE_ATTRS)
        return json_response(200, {"user": user}, [cookie])

    def _logout(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        self.sessions.drop(session_token(request.headers.get(b"cookie")))
        return Response(204, [_CLEAR_COOKIE])

    def _list_items(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        assert s is not None
        return json_response(200, {"items": s.items.all()})

    def _create_item(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        assert s is not None
        body = _item_body(request.body)
        if isinstance(body, Response):
            kept = self._api_defects.half_validated(_decode(request.body))
            if kept is not None and body.status == 422:
                s.items.put(new_item_id(), kept)
            return body
        item_id = new_item_id()
        stored = body
        if self._lost_write:
            self._posts += 1
            if self._posts % 4 == 0:
                stored = ItemBody(body.name, body.quantity, ())
        s.items.put(item_id, stored)
        return json_response(
            201, item_json(item_id, body), [(b"location", b"/items/" + item_id.encode())]
        )

    def _read_item(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        assert s is not None
        body = s.items.get(params["id"])
        if body is None:
            return _NOT_FOUND_ITEM
        return json_response(200, item_json(params["id"], body))

    def _update_item(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        assert s is not None
        item_id = params["id"]
        if s.items.get(item_id) is None:
            return _NOT_FOUND_ITEM
        body = _item_body(request.body)
        if isinstance(body, Response):
            return body
        if self._lost_write:
            self._puts += 1
            if self._puts % 3 == 0:
                return json_response(200, item_json(item_id, body))
        s.items.put(item_id, body)
        return json_response(200, item_json(item_id, body))

    def _delete_item(self, request: Request, params: dict[str, str], s: Session | None) -> Response:
        assert s is not None
        crooked = self._api_defects.delete(s.items, params["id"])
        if crooked is not None:
            return Response(204) if crooked else error(500, "internal error")
        if not s.items.delete(params["id"]):
            return _NOT_FOUND_ITEM
        return Response(204)


class _Malformed:
    """Sentinel for a body that is not JSON at all."""


_MALFORMED = _Malformed()
_HEALTHZ = json_response(200, {"status": "ok"}, [(b"cache-control", b"no-store")])
_NOT_FOUND_ITEM = error(404, "no such item")


def _decode(body: bytes) -> Any:
    """Decoded JSON, or ``_MALFORMED``; deep nesting counts as malformed, not as a crash."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _MALFORMED


def _item_body(raw: bytes) -> ItemBody | Response:
    doc = _decode(raw)
    if doc is _MALFORMED:
        return error(400, "body is not JSON")
    try:
        return validate_item(doc)
    except InvalidItem as exc:
        return json_response(
            422, {"error": "invalid item", "field": exc.field, "problem": exc.problem}
        )
