"""The OpenAPI 3.1 document of the REST API, generated from the Chalice route table.

Paths and methods come from ``app.routes`` (so a route cannot exist without being in the
document, nor the reverse); what a route table cannot say (summary, role, success status,
request/response/query schemas) comes from two places, in this order:

1. the route's ``RouteDoc``, recorded by ``boundary.endpoint`` when the route is declared
   (role, status, an explicit ``summary=``, an optional ``shape``, the docstring);
2. ``chalicelib.api.schemas.ROUTE_SHAPES``, keyed by ``"METHOD /path"``, which describes the
   shapes of ``../shared/API.md`` for routes whose module does not pass a ``shape``.

A summary is the explicit one, else the table's, else the docstring's first line.

A route that has neither still appears, with a generic object response, so a new route is
documented the moment it is registered. ``GET /openapi.json`` serves ``build_document(app)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Param",
    "RouteDoc",
    "RouteShape",
    "build_document",
    "describe",
    "document_table",
    "route_doc",
    "route_table",
]

OPENAPI_VERSION = "3.1.0"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
_PATH_PARAM = re.compile(r"{([^}]+)}")


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    location: str = "query"
    required: bool = False

    def to_openapi(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.location,
            "required": self.required,
            "schema": self.schema,
            **({"description": self.description} if self.description else {}),
        }


@dataclass(frozen=True)
class RouteShape:
    """What a route takes and gives, as JSON Schema fragments (``$ref`` to components allowed)."""

    response: dict[str, Any] | None = None
    request: dict[str, Any] | None = None
    request_required: bool = True
    params: tuple[Param, ...] = ()
    #: Media types of the success answer; ``response`` is the schema of the JSON one.
    content_types: tuple[str, ...] = ("application/json",)
    #: Other success answers, e.g. ``((200, "a repeated delivery: the first answer"),)``.
    other_statuses: tuple[tuple[int, str], ...] = ()
    #: Error answers beyond the ones every route may give, e.g. a webhook's 401.
    errors: tuple[tuple[int, str], ...] = ()
    description: str = ""
    #: For routes not declared through ``boundary.endpoint``: the role they need
    #: (``None``: no key). Ignored when a ``RouteDoc`` exists.
    role: str | None = "viewer"
    #: Used when the route's own docstring gives none.
    summary: str | None = None


@dataclass(frozen=True)
class RouteDoc:
    """What ``boundary.endpoint`` knows about a route."""

    role: str | None
    status: int
    summary: str | None
    name: str
    shape: RouteShape | None = None
    #: The first line of the view's docstring: the summary when nothing better is known.
    docstring: str | None = None


#: The registry ``boundary.endpoint`` fills: the Chalice view function -> its doc. Keyed
#: by the function Chalice keeps in ``RouteEntry.view_function``, so blueprint prefixes
#: and renames need no bookkeeping here.
_DOCS: dict[Callable[..., Any], RouteDoc] = {}


def describe(view: Callable[..., Any], doc: RouteDoc) -> None:
    _DOCS[view] = doc


def route_doc(view: Callable[..., Any]) -> RouteDoc | None:
    return _DOCS.get(view)


def route_table(app: Any) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every route the Chalice app serves."""
    return {(method.upper(), path) for path, methods in app.routes.items() for method in methods}


def document_table(document: dict[str, Any]) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every operation a document describes."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "head", "options")
    }


def build_document(app: Any, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of every route of ``app``."""
    from chalicelib.api import schemas  # the component schemas import the agent registry
    from chalicelib.api.components import components

    paths: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for path in sorted(app.routes):
        item: dict[str, Any] = {}
        for method in sorted(app.routes[path]):
            entry = app.routes[path][method]
            doc = route_doc(entry.view_function)
            shape = (doc.shape if doc and doc.shape else None) or schemas.ROUTE_SHAPES.get(f"{method} {path}")
            operation = _operation(path, method, entry, doc, shape)
            operation["operationId"] = _unique(operation["operationId"], method, operation_ids)
            item[method.lower()] = operation
        paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Stepline",
            "version": "1",
            "description": (
                "Serverless workflow engine. Send `Authorization: Bearer <api key>`; roles, each "
                "including the ones before it: viewer (read), operator (start, act on "
                "executions), admin (workflows, keys, force-advance). Each operation names "
                "its role in `x-stepline-role`. This document is generated from the route "
                "table and needs no key."
            ),
        },
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key from POST /keys"}
            },
        },
        "security": [{"bearerAuth": []}],
    }


def _operation(path: str, method: str, entry: Any, doc: RouteDoc | None, shape: RouteShape | None) -> dict[str, Any]:
    known = shape is not None  # a described route with ``request=None`` takes no body
    shape = shape or RouteShape()
    role = doc.role if doc else shape.role
    status = doc.status if doc else 200
    name = doc.name if doc else entry.view_name
    summary = (
        (doc.summary if doc else None)
        or shape.summary
        or (doc.docstring if doc else None)
        or name.replace("_", " ").capitalize()
    )
    operation: dict[str, Any] = {
        "operationId": name,
        "summary": summary,
        "tags": [_tag(path)],
        "x-stepline-role": role,
        "parameters": [_path_param(p) for p in _PATH_PARAM.findall(path)] + [p.to_openapi() for p in shape.params],
    }
    auth = f"Needs the {role} role." if role else "Needs no API key."
    operation["description"] = f"{shape.description} {auth}".strip()
    if role is None:
        operation["security"] = []
    body_methods = method in ("POST", "PUT", "PATCH")
    request = shape.request if known else {"type": "object"}
    if body_methods and request is not None:
        operation["requestBody"] = {
            "required": shape.request_required if known else False,
            "content": {"application/json": {"schema": request}},
        }
    operation["responses"] = _responses(path, method, status, shape, role, body_methods)
    return operation


def _responses(
    path: str, method: str, status: int, shape: RouteShape, role: str | None, body_methods: bool
) -> dict[str, Any]:
    schema = shape.response or {"type": "object"}
    responses: dict[str, Any] = {str(status): _success(shape, schema, "Success")}
    for code, why in shape.other_statuses:
        responses[str(code)] = _success(shape, schema, why)
    errors = {400: "Invalid input; `errors` names each bad field"}
    if role is not None:
        errors.update({401: "Missing or unknown API key", 403: "The key's role is too low"})
    if "{" in path or body_methods or any(p.name.endswith("_id") for p in shape.params):
        errors[404] = "Unknown resource"
    if method != "GET":
        errors[409] = "The action does not fit the current state, or a concurrent change won"
    if body_methods:
        errors.update({413: "Body too large", 415: "Body is not application/json"})
    errors.update(dict(shape.errors))
    for code, why in sorted(errors.items()):
        responses.setdefault(str(code), {"description": why, "content": {"application/json": {"schema": ERROR_REF}}})
    return responses


def _success(shape: RouteShape, schema: dict[str, Any], description: str) -> dict[str, Any]:
    content = {
        media: {"schema": schema if media == "application/json" else {"type": "string"}}
        for media in shape.content_types
    }
    return {"description": description, "content": content}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name.rstrip("+"), "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _tag(path: str) -> str:
    first = path.strip("/").split("/")[0]
    return first.split(".")[0] or "root"


def _unique(operation_id: str, method: str, seen: set[str]) -> str:
    candidate = operation_id
    if candidate in seen:
        candidate = f"{operation_id}_{method.lower()}"
    n = 2
    while candidate in seen:
        candidate, n = f"{operation_id}_{n}", n + 1
    seen.add(candidate)
    return candidate
