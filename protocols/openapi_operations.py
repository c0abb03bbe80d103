"""OpenAPI 3 operations as Tier 2 needs them: response schemas, body shape and security.

How this works: ``protocols.openapi`` validates the document and flattens it into ``Route``s
for the Markov walkers, which only need request schemas and status lists. Stateful fuzzing
also needs, per operation, the schema of each documented response (to judge conformance
and to find identifier fields), the response headers it documents (``Location``,
``Set-Cookie``), whether the operation is secured, and where the request body is not JSON.
``load_operations`` reuses the validating loader (same errors, same ``$ref`` resolution)
and walks ``paths`` once more to collect those; ``protocols.openapi`` is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocols.errors import load_document
from protocols.openapi import HTTP_METHODS, Spec, _json_media_types, _SpecLoader


@dataclass(frozen=True)
class Operation:
    """One method on one path template, with what it sends and what it may answer."""

    #: ``operationId`` or, when the spec has none, ``"METHOD /path"``.
    op_id: str
    method: str
    path: str
    path_params: tuple[str, ...]
    #: JSON request-body schema ($refs resolved) or None.
    request_schema: Any = field(compare=False)
    #: The body is documented but is not JSON (a fuzzer cannot build it from a schema).
    opaque_body: bool
    #: Documented status ("201", "2XX", "default") -> JSON schema of its body (None: none).
    responses: dict[str, Any] = field(compare=False)
    #: Documented status -> lower-case header names it documents.
    response_headers: dict[str, tuple[str, ...]] = field(compare=False)
    #: Success media types (text/event-stream and friends mark streams).
    response_types: tuple[str, ...]
    secured: bool
    line: int
    #: Documented status -> the media type whose schema ``responses`` holds.
    response_media: dict[str, str] = field(default_factory=dict, compare=False)

    def response_schema(self, status: int) -> tuple[bool, Any]:
        """(documented, schema) for ``status``: exact code, then ``4XX``, then default."""
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in self.responses:
                return True, self.responses[key]
        return False, None

    def schema_applies(self, status: int, content_type: str) -> bool:
        """Whether the documented schema for ``status`` describes a body sent as
        ``content_type``: the schema belongs to one media type of the response's
        ``content`` map (OpenAPI 3.0.3 §4.7.17), so a body of another type (a server's
        ``application/problem+json`` where ``application/json`` is documented) is not
        judged by it. No Content-Type, or a documented wildcard, applies."""
        sent = content_type.split(";")[0].strip().lower()
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in self.responses:
                documented = self.response_media.get(key, "")
                return not sent or not documented or "*" in documented or sent == documented
        return False

    def documents(self, status: int) -> bool:
        return self.response_schema(status)[0]


@dataclass(frozen=True)
class ApiSpec:
    spec: Spec
    operations: tuple[Operation, ...]
    #: Name of the session cookie when a security scheme is ``apiKey in: cookie``.
    session_cookie: str | None

    def by_id(self) -> dict[str, Operation]:
        return {op.op_id: op for op in self.operations}


def load_operations(text: str, source: str) -> ApiSpec:
    """Parse and validate the document, then collect its operations.

    Raises:
        SpecError: as ``protocols.openapi.load_spec`` does (same checks, same messages).
    """
    from protocols.openapi import SpecError

    doc = load_document(text, source, SpecError, json_fallback=True)
    loader = _SpecLoader(doc)
    spec = loader.load()
    root = loader.root
    global_security = bool(root.get("security"))
    operations: list[Operation] = []
    for route in spec.routes:
        item = loader.deref(root["paths"][route.path])
        op = loader.deref(item[route.method.lower()])
        body = loader.deref(op.get("requestBody"))
        content = body.get("content") if isinstance(body, dict) else None
        opaque = isinstance(content, dict) and bool(content) and not _json_media_types(content)
        responses, headers, media = _responses(loader, op.get("responses"))
        secured = bool(op["security"]) if "security" in op else global_security
        operations.append(Operation(
            op_id=route.operation_id or f"{route.method} {route.path}",
            method=route.method, path=route.path, path_params=route.path_params,
            request_schema=route.request_schema, opaque_body=opaque,
            responses=responses, response_headers=headers,
            response_types=route.response_types, secured=secured, line=route.line,
            response_media=media,
        ))
    return ApiSpec(spec, tuple(operations), _session_cookie(loader, root))


def _responses(loader: _SpecLoader, raw: Any
               ) -> tuple[dict[str, Any], dict[str, tuple[str, ...]], dict[str, str]]:
    schemas: dict[str, Any] = {}
    headers: dict[str, tuple[str, ...]] = {}
    media: dict[str, str] = {}
    if not isinstance(raw, dict):
        return schemas, headers, media
    for code, response in raw.items():
        response = loader.deref(response)
        schema = None
        if isinstance(response, dict):
            content = response.get("content")
            if isinstance(content, dict):
                for media_type in _json_media_types(content):
                    entry = loader.deref(content[media_type])
                    if isinstance(entry, dict) and "schema" in entry:
                        schema = loader.resolve(entry["schema"])
                        media[str(code)] = media_type.split(";")[0].strip().lower()
                        break
            named = response.get("headers")
            if isinstance(named, dict):
                headers[str(code)] = tuple(str(h).lower() for h in named)
        schemas[str(code)] = schema
    return schemas, headers, media


def _session_cookie(loader: _SpecLoader, root: dict) -> str | None:
    components = root.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    if not isinstance(schemes, dict):
        return None
    for scheme in schemes.values():
        scheme = loader.deref(scheme)
        if (isinstance(scheme, dict) and scheme.get("type") == "apiKey"
                and scheme.get("in") == "cookie" and isinstance(scheme.get("name"), str)):
            return scheme["name"]
    return None


__all__ = ["HTTP_METHODS", "ApiSpec", "Operation", "load_operations"]
