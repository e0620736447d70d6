"""The HTTP boundary: authentication, role checks, body parsing and error mapping, once.

Chalice turns any exception a view raises into a 500, so every view is registered
through ``endpoint``, which maps ``SteplineError`` to its status and body, and a store that
stays busy or failing past its retries (``chalicelib.store.busy``) to 503 with ``Retry-After``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.openapi import RouteDoc, RouteShape, describe
from chalicelib.auth import authenticate, require
from chalicelib.domain.machine import Actor, ExecutionState
from chalicelib.domain.vocabulary import ROLE_RANK
from chalicelib.engine import Engine, get_engine
from chalicelib.engine.views import execution_view
from chalicelib.errors import FieldError, PayloadTooLarge, SteplineError, StoreBusy, ValidationError
from chalicelib.jsonlimits import MAX_BODY_BYTES as JSON_MAX_BODY_BYTES
from chalicelib.jsonlimits import parse_json_object
from chalicelib.store.busy import STORE_ERRORS, transient

log = logging.getLogger("stepline.api")

MAX_BODY_BYTES = JSON_MAX_BODY_BYTES
#: Bodies are parsed as JSON whatever the client called them, so a bare ``curl -d`` works.
BODY_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]
#: ``Retry-After`` of a 503 for a busy store: throttling passes within a second or two.
RETRY_AFTER_SECONDS = 1


def endpoint(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ("GET",),
    role: str | None = "viewer",
    status: int = 200,
    *,
    summary: str | None = None,
    shape: RouteShape | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn(ctx, **path_params)`` as a route; ``role=None`` means no key needed.

    Role, success status, ``summary`` and the docstring's first line are recorded for
    ``GET /openapi.json`` (``chalicelib.api.openapi``); ``shape`` gives the request, response
    and query schemas (else ``chalicelib.api.schemas.ROUTE_SHAPES`` does).
    """

    if role is not None and role not in ROLE_RANK:
        # A typo here would make the route unreachable (or open): fail when the app loads.
        raise ValueError(f"endpoint {path}: unknown role {role!r}; roles are {', '.join(ROLE_RANK)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**params: str) -> Response:
            try:
                ctx = RequestContext(bp, role)
                if role is not None:  # API routes; the UI's files, webhooks and health take what they get
                    _refuse_unknown_query(ctx, path, shape)
                result = fn(ctx, **params)
            except SteplineError as error:
                return error_response(error)
            except STORE_ERRORS as error:
                if not transient(error):
                    raise
                # throttled or failing past the store's own retries: the client may try again
                log.warning("%s: the store is busy (%s); answered 503", path, type(error).__name__, exc_info=True)
                return error_response(StoreBusy("the store is busy; try again shortly"))
            if isinstance(result, Response):
                return result
            return Response(body=result, status_code=status)

        bp.route(path, methods=list(methods), cors=False, content_types=BODY_TYPES)(view)
        describe(
            view,
            RouteDoc(
                role=role,
                status=status,
                summary=summary,
                name=fn.__name__,
                shape=shape,
                docstring=_first_line(fn.__doc__),
            ),
        )
        return fn

    return decorate


def error_response(error: SteplineError) -> Response:
    """An error's status and body; a busy store's 503 says when to try again (``Retry-After``)."""
    headers: dict[str, str | list[str]] | None = None
    if isinstance(error, StoreBusy):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return Response(body=error.body(), status_code=error.status, headers=headers)


def _refuse_unknown_query(ctx: RequestContext, path: str, shape: RouteShape | None) -> None:
    """A query parameter the route's document does not list is a 400 (a misspelt filter must not
    widen a list, and the OpenAPI document says which ones each route takes)."""
    given: Mapping[str, str] = ctx.request.query_params or {}
    if not given:
        return
    route = f"{ctx.request.method.upper()} {path}"
    allowed = _names(shape) if shape is not None else _query_names(route)
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValidationError([FieldError(name, "unknown query parameter") for name in unknown])


def _names(shape: RouteShape | None) -> frozenset[str]:
    return frozenset(p.name for p in (shape.params if shape else ()) if p.location == "query")


@functools.cache
def _query_names(route: str) -> frozenset[str]:
    from chalicelib.api.schemas import ROUTE_SHAPES  # the table imports the engine: only when asked

    return _names(ROUTE_SHAPES.get(route))


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0].strip().rstrip(".") if doc and doc.strip() else None


class RequestContext:
    """What a view needs: the engine, the caller and the parsed request."""

    def __init__(self, bp: Blueprint, role: str | None) -> None:
        self.request = bp.current_request
        self.engine: Engine = get_engine()
        self.actor: Actor | None = None
        if role is not None:
            self.actor = authenticate(
                self.request.headers.get("authorization"), self.engine.store, self.engine.settings
            )
            require(self.actor, role)

    @property
    def who(self) -> Actor:
        assert self.actor is not None
        return self.actor

    def execution(self, state: ExecutionState) -> dict[str, Any]:
        """The execution view with the ``actions`` this caller may take now."""
        return execution_view(state, self.who, self.engine.executions.clock())

    def body(self, *, required: bool = True) -> dict[str, Any]:
        """The request body as a JSON object, bounded (``chalicelib.jsonlimits``): size, depth,
        no NaN/Infinity; an empty body is ``{}`` unless ``required``."""
        raw = self.raw_body()
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body is over {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            if required:
                raise ValidationError(FieldError("body", "a JSON object is required"))
            return {}
        return parse_json_object(raw, max_bytes=MAX_BODY_BYTES)

    def raw_body(self) -> bytes:
        """The request body's bytes, unparsed (Chalice types it ``str | bytes``; it hands over bytes)."""
        raw = self.request.raw_body or b""
        return raw.encode() if isinstance(raw, str) else raw

    def query(self, name: str) -> str | None:
        params: Mapping[str, str] = self.request.query_params or {}
        return params.get(name)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)
