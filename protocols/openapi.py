"""OpenAPI 3.x specs: the routes a spec declares, loaded and validated with line numbers.

How this works: ``load_spec`` parses YAML or JSON with line bookkeeping, checks the document
skeleton (``openapi: 3.x``, ``paths``, path templates) and that every local ``$ref`` points
somewhere, then flattens each operation into a ``Route`` whose request schema has its local
``$ref``s replaced by the objects they name. Recursive schemas stay recursive (a dict that
contains itself), so every walker of a schema -- ``generate_body`` included -- is bounded by
depth, never by the schema's good manners. External ``$ref``s are not fetched (no I/O here):
they read as "any value" and are listed in ``Spec.warnings``.

Request bodies drawn from a route's schema are ``protocols.openapi_bodies``; the default walk
over a spec's GET routes is ``protocols.openapi_walk``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from protocols.errors import Document, SourceError, load_document
from protocols.markov_model import template_key

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_SPLIT = re.compile(r"(\{[^{}]*\})")
_PATH_CHARS = re.compile(r"/[\x21-\x7e]*\Z")


class SpecError(SourceError):
    """The OpenAPI document is invalid at ``source``:``line``."""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    #: Path template as written in the spec, e.g. ``/items/{id}``.
    path: str
    path_params: tuple[str, ...]
    #: JSON request-body schema with local $refs resolved (may be cyclic), or None.
    request_schema: Any = field(compare=False)
    operation_id: str | None
    #: Status codes (as written: "200", "2XX", "default") the operation documents.
    response_statuses: tuple[str, ...]
    #: Content types of its documented success (2xx) responses.
    response_types: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Spec:
    source: str
    openapi: str
    routes: tuple[Route, ...]
    #: Path of ``servers[0].url`` (e.g. "/api/v1"), "" when absent or templated.
    base_path: str = ""
    warnings: tuple[str, ...] = ()
    _index: dict[tuple[str, str], Route] = field(init=False, repr=False, compare=False)
    _matchers: dict[str, list[tuple[re.Pattern[str], Route]]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], Route] = {}
        matchers: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for route in self.routes:
            index.setdefault(template_key(route.method, route.path), route)
            matchers.setdefault(route.method, []).append((_template_regex(route.path), route))
        for entries in matchers.values():  # literal segments beat parameters
            entries.sort(key=lambda e: (len(e[1].path_params), -len(e[1].path)))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_matchers", matchers)

    def find_route(self, method: str, path_template: str) -> Route | None:
        """The route for ``method`` and a template; variable names need not match."""
        return self._index.get(template_key(method, path_template))

    def match(self, method: str, concrete_path: str) -> Route | None:
        """The route a concrete request path (query ignored) would hit, most specific first."""
        path = concrete_path.split("?", 1)[0]
        for regex, route in self._matchers.get(method.upper(), ()):
            if regex.fullmatch(path):
                return route
        return None


def _template_regex(template: str) -> re.Pattern[str]:
    pieces = _TEMPLATE_SPLIT.split(template)
    return re.compile(
        "".join("[^/]+" if i % 2 else re.escape(piece) for i, piece in enumerate(pieces))
    )


def load_spec(text: str, source: str) -> Spec:
    """Parse an OpenAPI 3.x document (YAML or JSON).

    Raises:
        SpecError: syntax errors, a missing or non-3.x ``openapi``, missing ``paths``,
            malformed path templates, operations that are not mappings, and local ``$ref``s
            that point nowhere (or only at each other).
    """
    doc = load_document(text, source, SpecError, json_fallback=True)
    return _SpecLoader(doc).load()


class _SpecLoader:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.root = doc.value
        self.warnings: list[str] = []
        self._resolved: dict[int, Any] = {}

    def fail(self, line: int, message: str) -> SpecError:
        return SpecError(self.doc.source, line, message)

    def load(self) -> Spec:
        root, doc = self.root, self.doc
        if not isinstance(root, dict):
            raise self.fail(1, "an OpenAPI document must be a mapping")
        if "openapi" not in root:
            if "swagger" in root:
                raise self.fail(
                    doc.key_line(root, "swagger"),
                    "Swagger 2.0 is not supported; convert it to OpenAPI 3",
                )
            raise self.fail(1, "missing 'openapi' (e.g. openapi: 3.1.0)")
        version = str(root["openapi"])
        if not version.startswith("3."):
            raise self.fail(doc.key_line(root, "openapi"), f"unsupported openapi {version!r}")
        if "paths" not in root:
            raise self.fail(1, "missing 'paths'")
        paths = root["paths"]
        if not isinstance(paths, dict):
            raise self.fail(doc.key_line(root, "paths"), "'paths' must be a mapping")
        self.check_refs()
        routes: list[Route] = []
        for path, item in paths.items():
            routes.extend(self.path_item(paths, path, item))
        return Spec(
            source=doc.source,
            openapi=version,
            routes=tuple(routes),
            base_path=self.base_path(),
            warnings=tuple(self.warnings),
        )

    def base_path(self) -> str:
        servers = self.root.get("servers")
        if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
            return ""
        url = servers[0].get("url")
        if not isinstance(url, str) or "{" in url:
            return ""
        return urlsplit(url).path.rstrip("/")

    # -- $ref ------------------------------------------------------------------------------

    def check_refs(self) -> None:
        """Every local $ref anywhere in the document must resolve (cycle-safe walk)."""
        seen: set[int] = set()
        stack: list[Any] = [self.root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    line = self.doc.key_line(node, "$ref")
                    if ref.startswith("#"):
                        self.pointer(ref, line)
                    else:
                        self.warnings.append(f"line {line}: external $ref {ref!r} not followed")
                stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
            elif isinstance(node, list):
                stack.extend(v for v in node if isinstance(v, (dict, list)))

    def pointer(self, ref: str, line: int) -> Any:
        """Follow a local JSON pointer (RFC 6901 inside a URI fragment)."""
        target: Any = self.root
        if ref not in ("#", "#/"):
            if not ref.startswith("#/"):
                raise self.fail(line, f"$ref {ref!r} is not a JSON pointer ('#/...')")
            for token in ref[2:].split("/"):
                key = unquote(token).replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and key in target:
                    target = target[key]
                elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                    target = target[int(key)]
                else:
                    raise self.fail(line, f"$ref {ref!r} points nowhere (no {key!r})")
        return target

    def deref(self, node: Any) -> Any:
        """Follow $ref chains at this level only."""
        chain: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#"):
                return {}
            if ref in chain:
                raise self.fail(self.doc.key_line(node, "$ref"), f"circular $ref {ref!r}")
            chain.add(ref)
            node = self.pointer(ref, self.doc.key_line(node, "$ref"))
        return node

    def resolve(self, node: Any) -> Any:
        """A copy of ``node`` with every local $ref replaced by its (resolved) target."""
        node = self.deref(node)
        if not isinstance(node, (dict, list)):
            return node
        held = self._resolved.get(id(node))
        if held is not None:
            return held
        if isinstance(node, list):
            out_list: list[Any] = []
            self._resolved[id(node)] = out_list
            out_list.extend(self.resolve(v) for v in node)
            return out_list
        out: dict[Any, Any] = {}
        self._resolved[id(node)] = out
        for key, value in node.items():
            out[key] = self.resolve(value)
        return out

    # -- paths -----------------------------------------------------------------------------

    def path_item(self, paths: dict, path: Any, item: Any) -> list[Route]:
        line = self.doc.key_line(paths, path)
        if not isinstance(path, str) or not _PATH_CHARS.match(path):
            raise self.fail(line, f"path {path!r} must start with '/' and be printable ASCII")
        params = _template_params(path)
        if params is None:
            raise self.fail(line, f"malformed path template {path!r}")
        if len(set(params)) != len(params):
            raise self.fail(line, f"path template {path!r} repeats a parameter")
        item = self.deref(item)
        if not isinstance(item, dict):
            raise self.fail(line, f"path item {path!r} must be a mapping")
        shared = self.parameters(item.get("parameters"))
        routes = []
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = self.deref(item[method])
            op_line = self.doc.key_line(item, method) or line
            if not isinstance(op, dict):
                raise self.fail(op_line, f"{method.upper()} {path}: operation must be a mapping")
            declared = shared | self.parameters(op.get("parameters"))
            missing = [p for p in params if p not in declared]
            if missing:
                self.warnings.append(
                    f"line {op_line}: {method.upper()} {path} does not declare path "
                    f"parameter(s) {', '.join(missing)}"
                )
            statuses, types = self.responses(op.get("responses"))
            op_id = op.get("operationId")
            routes.append(
                Route(
                    method=method.upper(),
                    path=path,
                    path_params=params,
                    request_schema=self.request_schema(op.get("requestBody")),
                    operation_id=op_id if isinstance(op_id, str) else None,
                    response_statuses=statuses,
                    response_types=types,
                    line=op_line,
                )
            )
        return routes

    def parameters(self, raw: Any) -> set[str]:
        names = set()
        if isinstance(raw, list):
            for param in raw:
                param = self.deref(param)
                if isinstance(param, dict) and param.get("in") == "path":
                    names.add(str(param.get("name")))
        return names

    def request_schema(self, raw: Any) -> Any:
        body = self.deref(raw)
        if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
            return None
        content = body["content"]
        for media_type in _json_media_types(content):
            entry = self.deref(content[media_type])
            if isinstance(entry, dict) and "schema" in entry:
                return self.resolve(entry["schema"])
        return None

    def responses(self, raw: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not isinstance(raw, dict):
            return (), ()
        statuses = tuple(str(code) for code in raw)
        types: list[str] = []
        for code, response in raw.items():
            if not str(code).upper().startswith("2"):
                continue
            response = self.deref(response)
            content = response.get("content") if isinstance(response, dict) else None
            if isinstance(content, dict):
                types.extend(str(t) for t in content if str(t) not in types)
        return statuses, tuple(types)


def _template_params(path: str) -> tuple[str, ...] | None:
    names = []
    for index, piece in enumerate(_TEMPLATE_SPLIT.split(path)):
        if index % 2:
            name = piece[1:-1]
            if not name or "/" in name:
                return None
            names.append(name)
        elif "{" in piece or "}" in piece:
            return None
    return tuple(names)


def _json_media_types(content: dict) -> list[str]:
    keys = [k for k in content if isinstance(k, str)]
    exact = [k for k in keys if k.split(";")[0].strip().lower() == "application/json"]
    suffixed = [k for k in keys if k.split(";")[0].strip().lower().endswith("+json")]
    wildcard = [k for k in keys if k.split(";")[0].strip() in ("*/*", "application/*")]
    return exact + suffixed + wildcard
