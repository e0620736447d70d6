"""MCP over JSON-RPC 2.0: one POSTed message in, at most one answer out, no server-side state.

The Streamable HTTP transport (MCP 2025-06-18 and 2025-11-25, "Transports") lets a server
answer each POSTed request with one JSON body and keep no stream open, which is what a Lambda
function can do. Nothing is remembered between requests: any container answers any request.

What a later ``tools/call`` must know of the ``initialize`` exchange (the client's name and
version, for the execution's trigger, and the negotiated protocol version) travels in the
``Mcp-Session-Id`` the server hands out with the ``initialize`` answer and that the client
sends back on every request (the transport makes it do so). The id is
``s1.<base64url of {"c": clientInfo, "p": version, "n": nonce}>``: self-contained, so no table
is read to resolve it. It is not a credential (every request still carries the API key) and
the client info in it is what the client said about itself, as in ``initialize`` itself.
An id that does not decode is an unknown session: 404, and the client starts a new one.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from chalicelib.engine.mcp_tools import Caller, McpTools, UnknownTool
from chalicelib.jsonlimits import MAX_BODY_BYTES, parse_json

log = logging.getLogger("stepline.mcp")

#: Newest first; ``initialize`` answers the client's version when it is here, else the newest.
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18")
SERVER_INFO = {"name": "stepline", "title": "Stepline", "version": "0.1.0"}
INSTRUCTIONS = (
    "Stepline runs team workflows. Each workflow tool starts one execution and answers its "
    "execution_id; get_execution shows its progress and any step waiting for a decision, which "
    "approve_step or reject_step decide (when this API key is one of the gate's approvers)."
)
MAX_MESSAGE_BYTES = MAX_BODY_BYTES
MAX_CLIENT_FIELD = 100
SESSION_PREFIX = "s1."

# JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object)
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603


@dataclass(frozen=True)
class Answer:
    """What goes back over HTTP: a status, a JSON body (None: no body) and extra headers."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str]


@dataclass(frozen=True)
class Session:
    client: dict[str, str]
    protocol_version: str | None


def error_answer(status: int, code: int, message: str, request_id: Any = None) -> Answer:
    return Answer(status, {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}, {})


# ---------------------------------------------------------------------- session id
def encode_session(client: dict[str, str], version: str) -> str:
    payload = json.dumps({"c": client, "p": version, "n": secrets.token_hex(8)}, separators=(",", ":"))
    return SESSION_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_session(value: str) -> Session | None:
    """The session an ``Mcp-Session-Id`` carries, or None if it is not one of ours."""
    if not value.startswith(SESSION_PREFIX) or len(value) > 1024:
        return None
    text = value[len(SESSION_PREFIX) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), dict):
        return None
    client = {k: v for k, v in data["c"].items() if k in ("name", "version") and isinstance(v, str)}
    version = data.get("p") if data.get("p") in PROTOCOL_VERSIONS else None
    return Session(client, version)


# ---------------------------------------------------------------------- messages
def parse_message(raw: bytes) -> Any:
    """The JSON value of a POST body, bounded like every JSON that enters Stepline
    (``chalicelib.jsonlimits``: size, nesting depth, no NaN/Infinity). Raises ``ValidationError``
    (400) or ``PayloadTooLarge`` (413) with the reason; the route answers them as JSON-RPC errors."""
    return parse_json(raw, field="message", max_bytes=MAX_MESSAGE_BYTES)


class McpServer:
    """Answers one JSON-RPC message for an authenticated caller."""

    def __init__(self, tools: McpTools) -> None:
        self.tools = tools

    def handle(self, message: Any, caller: Caller) -> Answer:
        if isinstance(message, list):
            return error_answer(
                400,
                INVALID_REQUEST,
                "JSON-RPC batches are not accepted (MCP 2025-06-18 and later send one message per POST)",
            )
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return error_answer(
                400, INVALID_REQUEST, 'not a JSON-RPC 2.0 message: an object with "jsonrpc": "2.0" is required'
            )
        method = message.get("method")
        if not isinstance(message.get("params", {}), dict):
            # Every MCP method takes named params: not a well-formed message, refused at the transport.
            return error_answer(400, INVALID_PARAMS, '"params" must be an object', message.get("id"))
        if "id" not in message:
            if method is None and ("result" in message or "error" in message):
                return error_answer(400, INVALID_REQUEST, "a response needs the id of the request it answers")
            if not isinstance(method, str):
                return error_answer(400, INVALID_REQUEST, '"method" must be a string')
            return Answer(202, None, {})  # a notification: accepted, nothing to answer
        request_id = message["id"]
        if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            return error_answer(400, INVALID_REQUEST, '"id" must be a string or an integer')
        if method is None and ("result" in message or "error" in message):
            return Answer(202, None, {})  # a response to a server request: we send none, so nothing to do
        if not isinstance(method, str):
            return error_answer(400, INVALID_REQUEST, '"method" must be a string', request_id)
        params = message.get("params", {})
        try:
            return self._dispatch(request_id, method, params, caller)
        except UnknownTool as error:
            return self._error(request_id, INVALID_PARAMS, str(error))
        except Exception:  # never a 500: the client gets a JSON-RPC error, the log gets the trace
            log.exception("MCP %s failed", method)
            return self._error(request_id, INTERNAL_ERROR, "internal error; the server log has the details")

    def _dispatch(self, request_id: Any, method: str, params: dict[str, Any], caller: Caller) -> Answer:
        if method == "initialize":
            return self._initialize(request_id, params)
        if method == "ping":
            return self._result(request_id, {})
        if method == "tools/list":
            return self._result(request_id, {"tools": self.tools.list()})
        if method == "tools/call":
            name, arguments = params.get("name"), params.get("arguments", {})
            if not isinstance(name, str) or not name:
                return self._error(request_id, INVALID_PARAMS, 'tools/call needs "name", a tool name')
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                return self._error(request_id, INVALID_PARAMS, '"arguments" must be an object')
            return self._result(request_id, self.tools.call(name, arguments, caller).to_dict())
        return self._error(request_id, METHOD_NOT_FOUND, f"method not found: {method}")

    def _initialize(self, request_id: Any, params: dict[str, Any]) -> Answer:
        asked, info = params.get("protocolVersion"), params.get("clientInfo", {})
        if not isinstance(asked, str) or not isinstance(info, dict):
            return self._error(
                request_id, INVALID_PARAMS, 'initialize needs "protocolVersion" (a string) and "clientInfo" (an object)'
            )
        version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
        client = {k: info[k][:MAX_CLIENT_FIELD] for k in ("name", "version") if isinstance(info.get(k), str)}
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
            "instructions": INSTRUCTIONS,
        }
        answer = self._result(request_id, result)
        return Answer(200, answer.body, {"Mcp-Session-Id": encode_session(client, version)})

    @staticmethod
    def _result(request_id: Any, result: dict[str, Any]) -> Answer:
        return Answer(200, {"jsonrpc": "2.0", "id": request_id, "result": result}, {})

    @staticmethod
    def _error(request_id: Any, code: int, message: str) -> Answer:
        return error_answer(200, code, message, request_id)
