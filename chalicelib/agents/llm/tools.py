"""HTTP tools an llm step offers its model: definition checks and execution.

A tool is ``{name, description, connection, method, url, parameters}``. The model's arguments
fill ``{{ <name> }}`` placeholders of the url (URL-quoted); the other arguments are the JSON
body (POST/PUT/PATCH) or the query string (GET/DELETE). Each call carries an
``Idempotency-Key`` of execution, step, attempt and call number, so a retried attempt's calls
are new keys while a redelivered request is the same one. Calls other than ``GET`` go into the
step's side-effect ledger (``chalicelib.agents.ledger``): entered before they are made, and, when
a retry replays, answered with an earlier attempt's recorded result instead of being made. The result the model sees is the
status and the body (cut to ``RESULT_CHARS``); credentials the server refuses fail the step
(the model cannot fix them), other failures go back to the model as an error result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from chalicelib.agents.auth import Credentials, revoked
from chalicelib.agents.base import AgentContext
from chalicelib.agents.connections import redact
from chalicelib.agents.ledger import failure_status
from chalicelib.agents.llm.schema import schema_problem, validate
from chalicelib.agents.llm.types import CANNOT_COMPLETE, ToolCall, ToolResult, ToolSpec
from chalicelib.agents.transport import HttpFailure, call_json
from chalicelib.domain.side_effects import SideEffectKind, SideEffectStatus, fingerprint, public_target
from chalicelib.errors import FieldError

__all__ = ["HttpTool", "parse_tools", "tool_errors"]

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RESULT_CHARS = 8000
TOOL_KEYS = ("name", "description", "connection", "method", "url", "parameters")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class HttpTool:
    name: str
    description: str
    connection: str | None
    method: str
    url: str
    parameters: Mapping[str, Any]

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


def parse_tools(raw: Any) -> list[HttpTool]:
    """Tools of a validated config."""
    return [
        HttpTool(
            t["name"],
            t.get("description", ""),
            t.get("connection"),
            str(t.get("method", "POST")).upper(),
            t["url"],
            t.get("parameters") or {"type": "object", "properties": {}},
        )
        for t in raw or []
    ]


def tool_errors(raw: Any, path: str, url_problem: Any) -> list[FieldError]:
    """Definition-time checks of ``config.tools``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [FieldError(path, "must be a list of tools")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, tool in enumerate(raw):
        at = f"{path}[{index}]"
        if not isinstance(tool, dict):
            errors.append(FieldError(at, "must be an object with name, description, method, url, parameters"))
            continue
        errors += [FieldError(f"{at}.{k}", "unknown field") for k in sorted(set(tool) - set(TOOL_KEYS))]
        name = tool.get("name")
        if not isinstance(name, str) or not NAME.match(name) or name == CANNOT_COMPLETE:
            errors.append(FieldError(f"{at}.name", "must be 1-64 letters, digits, _ or - (not cannot_complete)"))
        elif name in seen:
            errors.append(FieldError(f"{at}.name", f"duplicate tool name {name}"))
        else:
            seen.add(name)
        if not isinstance(tool.get("description"), str) or not tool["description"].strip():
            errors.append(FieldError(f"{at}.description", "required: tells the model when to call the tool"))
        if str(tool.get("method", "POST")).upper() not in METHODS:
            errors.append(FieldError(f"{at}.method", f"must be one of {', '.join(METHODS)}"))
        url = tool.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/{]", url, re.I):
            errors.append(FieldError(f"{at}.url", "must be an http:// or https:// URL with a literal host"))
        else:
            problem = url_problem(url) if url_problem else None
            if problem:
                errors.append(FieldError(f"{at}.url", problem))
        connection = tool.get("connection")
        if connection is not None and (not isinstance(connection, str) or not connection):
            errors.append(FieldError(f"{at}.connection", "must name a connection"))
        params = tool.get("parameters", {"type": "object"})
        problem = schema_problem(params, "parameters")
        if problem or not isinstance(params, dict) or params.get("type") != "object":
            errors.append(FieldError(f"{at}.parameters", problem or "must be a JSON Schema of type object"))
    return errors


def run_tool(
    ctx: AgentContext, tool: HttpTool, call: ToolCall, number: int, timeout: float
) -> tuple[ToolResult, dict[str, Any]]:
    """Execute one tool call; the result for the model and the record kept in ``tool_calls``."""
    key = f"{ctx.execution_id}:{ctx.step_id}:{ctx.attempt}:{number}"
    record: dict[str, Any] = {
        "n": number,
        "name": tool.name,
        "arguments": dict(call.arguments),
        "method": tool.method,
        "idempotency_key": key,
    }
    problems = (
        [call.arguments_problem]
        if call.arguments_problem
        else validate(dict(call.arguments), tool.parameters, "arguments")
    )
    if problems:
        record.update(status="invalid_arguments", ok=False, error="; ".join(problems))
        return ToolResult(
            call.id, tool.name, json.dumps({"error": "invalid arguments", "problems": problems}), True
        ), record
    try:
        url, rest = _fill(tool.url, call.arguments)
    except ValueError as error:
        record.update(status="invalid_arguments", ok=False, error=str(error))
        return ToolResult(call.id, tool.name, json.dumps({"error": str(error)}), True), record
    body = None
    if tool.method in ("POST", "PUT", "PATCH"):
        body = rest
    elif rest:
        url += ("&" if urlsplit(url).query else "?") + urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in rest.items()}
        )
    effect = None
    if tool.method != "GET":  # a call that may change something: in the side-effect ledger
        target, digest = public_target(tool.method, url), fingerprint("http", tool.method, url, body)
        recorded = ctx.ledger.replay(digest, kind=SideEffectKind.TOOL_CALL.value, target=target, name=tool.name)
        if recorded is not None:
            # replayed: the model gets the earlier attempt's result and the integration no second call
            record.update(
                status=recorded.get("http_status"),
                ok=True,
                replayed=True,
                idempotency_key=recorded.get("idempotency_key"),
            )
            return ToolResult(call.id, tool.name, str(recorded.get("result") or "")), record
        effect = ctx.ledger.begin(SideEffectKind.TOOL_CALL.value, target, key, digest, name=tool.name)
    headers = {"Idempotency-Key": key, "X-Stepline-Execution": ctx.execution_id, "X-Stepline-Step": ctx.step_id}
    credentials = Credentials(ctx.connection(tool.connection), timeout) if tool.connection else None
    if credentials:
        headers.update(credentials.headers())
    try:
        try:
            reply = call_json(tool.method, url, body=body, headers=headers, timeout=timeout)
        except HttpFailure as failure:
            if credentials is None or failure.status != 401 or not credentials.refreshable:
                raise
            headers.update(credentials.refresh())
            reply = call_json(tool.method, url, body=body, headers=headers, timeout=timeout)
    except HttpFailure as failure:
        if effect is not None:
            ctx.ledger.finish(
                effect, failure_status(failure.status, failure.reason, failure.timed_out), http_status=failure.status
            )
        if credentials is not None and failure.status in (401, 403):
            raise revoked(credentials.connection.name, f"tool {tool.name} got HTTP {failure.status}") from None
        text = redact(failure.text, credentials.connection if credentials else None)[:RESULT_CHARS]
        record.update(status=failure.status or "network_error", ok=False, error=failure.reason)
        return ToolResult(
            call.id, tool.name, json.dumps({"error": failure.reason, "status": failure.status, "body": text}), True
        ), record
    record.update(status=reply.status, ok=True)
    text = redact(reply.text, credentials.connection if credentials else None)
    content = json.dumps({"status": reply.status, "body": json.loads(text) if _is_json(text) else text})
    if effect is not None:
        ctx.ledger.finish(effect, SideEffectStatus.SUCCEEDED, content[:RESULT_CHARS], http_status=reply.status)
    return ToolResult(call.id, tool.name, content[:RESULT_CHARS]), record


def _fill(url: str, arguments: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    used: set[str] = set()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in arguments or arguments[name] is None:
            raise ValueError(f"the tool's url needs argument {name}")
        used.add(name)
        value = arguments[name]
        return quote(value if isinstance(value, str) else json.dumps(value), safe="")

    filled = _PLACEHOLDER.sub(substitute, url)
    return filled, {k: v for k, v in arguments.items() if k not in used}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return bool(text.strip())
