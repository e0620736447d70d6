"""``/mcp``: Stepline as a Model Context Protocol server (Streamable HTTP transport).

Each POST carries one JSON-RPC message and gets one JSON answer (or ``202`` for a
notification); no stream is held open, so ``GET /mcp`` (the optional server-to-client stream)
and ``DELETE /mcp`` (ending a session the server does not keep) answer ``405``, as the
transport allows. Same API keys and roles as REST: no key or an unknown one is ``401``.
The protocol itself is ``chalicelib.engine.mcp_protocol``; the tools ``chalicelib.engine.mcp_tools``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

from chalice import Blueprint, Response

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import Param, RouteShape
from chalicelib.engine.mcp_protocol import (
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSIONS,
    Answer,
    McpServer,
    decode_session,
    error_answer,
    parse_message,
)
from chalicelib.engine.mcp_tools import Caller, McpTools
from chalicelib.errors import PayloadTooLarge, ValidationError

bp = Blueprint(__name__)

#: Browser origins allowed besides the API's own host (comma-separated), e.g. a hosted MCP inspector.
ORIGINS_ENV = "STEPLINE_MCP_ALLOWED_ORIGINS"


_STRING = {"type": "string"}
_RPC = {
    "type": "object",
    "required": ["jsonrpc"],
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["string", "integer", "null"]},
        "result": {"type": "object"},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": _STRING},
        },
    },
}
POST_SHAPE = RouteShape(
    response=_RPC,
    request={
        "description": "A request (with `id`), a notification (no `id`), or a response to a server request.",
        "anyOf": [
            {
                "type": "object",
                "required": ["jsonrpc", "method"],
                "properties": {
                    "jsonrpc": {"const": "2.0"},
                    "method": _STRING,
                    "id": {"type": ["string", "integer"]},
                    "params": {"type": "object"},
                },
            },
            {
                "type": "object",
                "required": ["jsonrpc", "id", "result"],
                "properties": {"jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer"]}},
            },
            {
                "type": "object",
                "required": ["jsonrpc", "id", "error"],
                "properties": {"jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer"]}},
            },
        ],
    },
    params=(
        Param("MCP-Protocol-Version", {"enum": list(PROTOCOL_VERSIONS)}, location="header"),
        Param("Mcp-Session-Id", _STRING, "from the initialize answer", location="header"),
    ),
    content_types=("application/json", "text/plain"),
    other_statuses=(
        (202, "A notification or a response: accepted, no body"),
        (400, "Not JSON, not a JSON-RPC 2.0 message, or an unsupported MCP-Protocol-Version (a JSON-RPC error)"),
        (403, "A browser Origin other than the API's own (a JSON-RPC error)"),
        (404, "An Mcp-Session-Id this server did not issue: initialize again (a JSON-RPC error)"),
        (413, "The message is over 1 MB (a JSON-RPC error)"),
    ),
    description="Model Context Protocol, Streamable HTTP transport: one JSON-RPC 2.0 message per POST, one "
    "JSON answer. Tools: every enabled manual workflow, get_execution, list_executions, "
    "approve_step, reject_step.",
)
INFO_SHAPE = RouteShape(
    response={"type": "object"},
    errors=((405, "Asked for an event stream: none is offered"),),
    description="What this endpoint is; an event-stream request (MCP's optional "
    "server-to-client stream) is answered 405.",
)
END_SHAPE = RouteShape(
    content_types=("text/plain",), description="Nothing is held per session, so there is nothing to end: 204."
)


@endpoint(bp, "/mcp", ("POST",), role="viewer", summary="MCP server (Streamable HTTP, JSON-RPC 2.0)", shape=POST_SHAPE)
def mcp(ctx: RequestContext) -> Response:
    """One JSON-RPC message to the MCP server; the same bearer API key as REST."""
    if not _origin_allowed(ctx.header("origin"), ctx.header("host")):
        # MCP 2025-11-25 "Security Warning": a browser page from elsewhere (DNS rebinding) is refused.
        return _send(error_answer(403, INVALID_REQUEST, "Origin not allowed"))
    actor = ctx.who
    try:
        message = parse_message(ctx.raw_body())
    except PayloadTooLarge as error:
        return _send(error_answer(413, PARSE_ERROR, f"parse error: {error.message}"))
    except ValidationError as error:
        return _send(error_answer(400, PARSE_ERROR, f"parse error: {error.message}"))
    is_initialize = isinstance(message, dict) and message.get("method") == "initialize"
    version = ctx.header("mcp-protocol-version")
    if version is not None and not is_initialize and version not in PROTOCOL_VERSIONS:
        return _send(
            error_answer(
                400,
                INVALID_REQUEST,
                f"unsupported MCP-Protocol-Version {version!r}; this server speaks {', '.join(PROTOCOL_VERSIONS)}",
            )
        )
    session_id = ctx.header("mcp-session-id")
    session = decode_session(session_id) if session_id and not is_initialize else None
    if session_id and not is_initialize and session is None:
        return _send(error_answer(404, INVALID_REQUEST, "unknown Mcp-Session-Id: send initialize again"))
    caller = Caller(
        actor, session.client if session else {}, version or (session.protocol_version if session else None)
    )
    return _send(McpServer(McpTools(ctx.engine)).handle(message, caller))


@endpoint(bp, "/mcp", ("GET",), role=None, summary="About the MCP endpoint", shape=INFO_SHAPE)
def mcp_info(ctx: RequestContext) -> Response:
    """No server-to-client stream is offered (each POST carries its answer): an event-stream GET is 405."""
    if "text/event-stream" in (ctx.header("accept") or ""):
        return Response(
            body={"Code": "MethodNotAllowedError", "Message": "no event stream: POST to /mcp"},
            status_code=405,
            headers={"Allow": "POST"},
        )
    return Response(
        body={
            "mcp": "POST one JSON-RPC 2.0 message per request, with Authorization: Bearer <api key>",
            "protocol_versions": list(PROTOCOL_VERSIONS),
        },
        status_code=200,
    )


@endpoint(bp, "/mcp", ("DELETE",), role=None, status=204, summary="End an MCP session", shape=END_SHAPE)
def mcp_end(ctx: RequestContext) -> Response:
    """Sessions keep nothing on the server (see chalicelib.engine.mcp_protocol): ending one is a no-op."""
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})


def _send(answer: Answer) -> Response:
    if answer.body is None:
        return Response(body="", status_code=answer.status, headers={"Content-Type": "text/plain", **answer.headers})
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json", **answer.headers}
    return Response(
        body=json.dumps(answer.body, ensure_ascii=False, default=str), status_code=answer.status, headers=headers
    )


def _origin_allowed(origin: str | None, host: str | None, env: Any = None) -> bool:
    """No Origin (not a browser) or the API's own host, or one listed in ``STEPLINE_MCP_ALLOWED_ORIGINS``."""
    if not origin:
        return True
    env = os.environ if env is None else env
    allowed = {o.strip().rstrip("/") for o in (env.get(ORIGINS_ENV) or "").split(",") if o.strip()}
    if origin.rstrip("/") in allowed:
        return True
    return bool(host) and urlsplit(origin).netloc.lower() == (host or "").lower()
