"""OpenAPI 3.x: routes for validating Markov models, and request bodies generated from schemas.

How this works: ``load_spec`` parses YAML or JSON with line bookkeeping, checks the document
skeleton (``openapi: 3.x``, ``paths``, path templates) and that every local ``$ref`` points
somewhere, then flattens each operation into a ``Route`` whose request schema has its local
``$ref``s replaced by the objects they name. Recursive schemas stay recursive (a dict that
contains itself), so every walker of a schema -- ``generate_body`` included -- is bounded by
depth, never by the schema's good manners. External ``$ref``s are not fetched (no I/O here):
they read as "any value" and are listed in ``Spec.warnings``.

``generate_body`` draws one JSON value from a schema with the caller's ``random.Random``, so a
walker's seed fixes every body it sends. Numbers are multiples of 0.25 (exact in binary and
in two-decimal storage), so a server that stores what it was sent reads back the same value
and read-after-write checks do not trip on float formatting.
"""

from __future__ import annotations

import base64
import copy
import math
import random
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from protocols.errors import Document, SourceError, load_document
from protocols.markov_model import (
    DEFAULT_EXPECT,
    Edge,
    MarkovModel,
    State,
    parse_expectation,
    template_key,
)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_SPLIT = re.compile(r"(\{[^{}]*\})")
_PATH_CHARS = re.compile(r"/[\x21-\x7e]*\Z")

#: Bounds on generated values: nesting depth (optional members stop here), hard depth
#: (required members stop here too), array length, string length.
MAX_DEPTH = 6
HARD_DEPTH = 12
MAX_ITEMS = 8
MAX_STRING = 64
#: Values one body may contain; past it every value is null (wide-and-deep schemas).
MAX_NODES = 4096
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


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


# -- default walk --------------------------------------------------------------------------


def model_from_spec(spec: Spec) -> MarkovModel:
    """A uniform walk over the spec's GET routes that need no path parameters.

    Routes that would not answer a plain GET with a finite response (SSE streams, WebSocket
    upgrades) are left out.

    Raises:
        SpecError: the spec has no such route.
    """
    routes = [
        r
        for r in spec.routes
        if r.method == "GET"
        and not r.path_params
        and "text/event-stream" not in r.response_types
        and "101" not in r.response_statuses
    ]
    if not routes:
        raise SpecError(spec.source, 0, "no GET route without path parameters to walk")
    names: list[str] = []
    for route in routes:
        base = "get_" + (re.sub(r"[^A-Za-z0-9_-]+", "_", route.path).strip("_") or "root")
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    expect = parse_expectation(DEFAULT_EXPECT)
    states = {
        name: State(
            name=name,
            method="GET",
            path=route.path,
            path_vars=(),
            expect=expect,
            body=None,
            capture=(),
            write=None,
            read=None,
            forget=(),
            edges=tuple(Edge(target, 1.0, route.line) for target in names),
            line=route.line,
        )
        for name, route in zip(names, routes, strict=True)
    }
    return MarkovModel(source=spec.source, start=names[0], states=MappingProxyType(states))


# -- body generation -----------------------------------------------------------------------


def generate_body(schema: Any, rng: random.Random) -> Any:
    """One JSON value drawn from ``schema``; the same rng state gives the same value.

    Honours type (and 3.1 type lists), const, enum, properties/required (readOnly members
    are never sent), allOf/oneOf/anyOf, string length and format (email, uuid, date-time,
    date, time, uri, hostname, ipv4, ipv6, byte), numeric bounds and multipleOf, array
    bounds and uniqueItems. ``example``/``examples``/``default`` are used verbatim half the
    time, and always when the schema carries a ``pattern`` we cannot generate for.
    """
    return _Generator(rng).value(schema, 0)


def write_only_properties(schema: Any) -> frozenset[str]:
    """Top-level properties marked ``writeOnly`` (a server need not echo them back)."""
    merged = _merge_all_of(schema, 0) if isinstance(schema, dict) else {}
    props = merged.get("properties")
    if not isinstance(props, dict):
        return frozenset()
    return frozenset(
        name for name, sub in props.items() if isinstance(sub, dict) and sub.get("writeOnly")
    )


def _merge_all_of(schema: dict, depth: int) -> dict:
    """``schema`` with its allOf parts folded in (properties and required are unioned)."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or depth > HARD_DEPTH:
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = _merge_all_of(part, depth + 1)
        props.update(part.get("properties") or {})
        required.extend(r for r in part.get("required") or [] if r not in required)
        for key, value in part.items():
            merged.setdefault(key, value)
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.budget = MAX_NODES

    def value(self, schema: Any, depth: int) -> Any:
        rng = self.rng
        self.budget -= 1
        if self.budget < 0:
            return None
        if not isinstance(schema, dict) or depth > HARD_DEPTH:
            return self.word(1, 8) if depth <= HARD_DEPTH else None
        if "allOf" in schema:
            schema = _merge_all_of(schema, 0)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return copy.deepcopy(rng.choice(enum))
        samples = [schema[k] for k in ("example", "default") if k in schema]
        examples = schema.get("examples")
        if isinstance(examples, list):
            samples.extend(examples)
        kind = self.kind(schema)
        if samples and ("pattern" in schema or kind is None or rng.random() < 0.5):
            return copy.deepcopy(rng.choice(samples))
        for key in ("oneOf", "anyOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.value(rng.choice(options), depth + 1)
        if kind == "object" or kind is None:
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def kind(self, schema: dict) -> str | None:
        declared = schema.get("type")
        if isinstance(declared, list):
            concrete = [t for t in declared if t != "null"]
            if not concrete:
                return "null"
            return self.rng.choice(concrete) if len(concrete) > 1 else concrete[0]
        if isinstance(declared, str):
            return declared
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if any(k in schema for k in ("minLength", "maxLength", "format", "pattern")):
            return "string"
        if any(k in schema for k in ("minimum", "maximum", "multipleOf")):
            return "number"
        return None

    def object(self, schema: dict, depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        required = schema.get("required")
        required = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        for name, sub in props.items():
            if isinstance(sub, dict) and sub.get("readOnly"):
                continue
            if name in required or (depth < MAX_DEPTH and self.rng.random() < 0.5):
                result[str(name)] = self.value(sub, depth + 1)
        return result

    def array(self, schema: dict, depth: int) -> list[Any]:
        low = _int_or(schema.get("minItems"), 0, 0, MAX_ITEMS)
        high = _int_or(schema.get("maxItems"), low + 3, low, MAX_ITEMS)
        count = low if depth >= MAX_DEPTH else self.rng.randint(low, max(low, high))
        items = schema.get("items")
        result: list[Any] = []
        for _ in range(count * (3 if schema.get("uniqueItems") else 1)):
            if len(result) == count:
                break
            item = self.value(items, depth + 1)
            if not schema.get("uniqueItems") or item not in result:
                result.append(item)
        return result

    def string(self, schema: dict) -> str:
        rng = self.rng
        fmt = schema.get("format")
        if fmt == "email":
            return f"{self.word(4, 10)}@example.com"
        if fmt == "uuid":
            bits = rng.getrandbits(128)
            bits = (bits & ~(0xF << 76) | (4 << 76)) & ~(0x3 << 62) | (0x2 << 62)
            text = f"{bits:032x}"
            return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        if fmt in ("date-time", "date", "time"):
            date = f"20{rng.randint(20, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
            return {"date": date, "time": clock + "Z"}.get(fmt, f"{date}T{clock}Z")
        if fmt in ("uri", "url", "uri-reference", "iri"):
            return f"https://example.com/{self.word(3, 10)}"
        if fmt in ("hostname", "idn-hostname"):
            return f"{self.word(3, 10)}.example.com"
        if fmt == "ipv4":
            return f"192.0.2.{rng.randint(1, 254)}"
        if fmt == "ipv6":
            return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        if fmt == "byte":
            return base64.b64encode(rng.randbytes(rng.randint(1, 12))).decode("ascii")
        low = _int_or(schema.get("minLength"), 1, 0, 1024)
        high = _int_or(schema.get("maxLength"), max(low, 12), low, max(low, MAX_STRING))
        return self.word(low, high)

    def word(self, low: int, high: int) -> str:
        rng = self.rng
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(low, high)))

    def integer(self, schema: dict) -> int:
        low, high = _bounds(schema, 1.0)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
            first, last = math.ceil(low / step), math.floor(high / step)
            if first <= last:
                return int(self.rng.randint(first, last) * step)
        first, last = math.ceil(low), math.floor(high)
        return self.rng.randint(first, last) if first <= last else first

    def number(self, schema: dict) -> float:
        low, high = _bounds(schema, 0.25)
        step = schema.get("multipleOf")
        if not (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0):
            step = 0.25
        first, last = math.ceil(low / step), math.floor(high / step)
        return float(self.rng.randint(first, last) * step) if first <= last else float(low)


def _int_or(value: Any, default: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        value = default
    return max(low, min(high, value))


def _bounds(schema: dict, step: float) -> tuple[float, float]:
    """[low, high] from minimum/maximum and both styles of exclusive bounds."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low = low if _is_number(low) else None
    high = high if _is_number(high) else None
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if _is_number(ex_low):  # OpenAPI 3.1 / JSON Schema 2020-12: a number
        low = ex_low + step if low is None else max(low, ex_low + step)
    elif ex_low is True and low is not None:  # OpenAPI 3.0: a flag on minimum
        low += step
    if _is_number(ex_high):
        high = ex_high - step if high is None else min(high, ex_high - step)
    elif ex_high is True and high is not None:
        high -= step
    if low is None:
        low = 0 if high is None or high >= 0 else high - 1000
    if high is None:
        high = low + 1000
    return float(low), float(high)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
