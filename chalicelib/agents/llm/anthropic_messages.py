"""The Anthropic Messages wire format.

``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version: 2023-06-01``;
tools as ``{name, description, input_schema}``, tool calls as ``tool_use`` content blocks and
their results as ``tool_result`` blocks in the next user message. ``max_tokens`` is required
by this API (1024 unless the step sets it). The output schema is given in the system prompt.
Reference: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.agents.llm.types import ChatReply, ChatRequest, ToolCall, Turn, parse_retry_after, provider_error
from chalicelib.agents.transport import HttpFailure, call_json
from chalicelib.domain.connections import ResolvedConnection

__all__ = ["AnthropicMessages", "build_request", "parse_reply"]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


class AnthropicMessages:
    kind = "anthropic"

    def send(self, connection: ResolvedConnection, request: ChatRequest) -> ChatReply:
        base = str(connection.fields.get("base_url", "https://api.anthropic.com")).rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        headers = {"x-api-key": connection.secrets.get("api_key", ""), "anthropic-version": API_VERSION}
        try:
            reply = call_json("POST", url, body=build_request(request), headers=headers, timeout=request.timeout)
        except HttpFailure as failure:
            status = 503 if failure.status == 529 else failure.status  # 529: overloaded, a retryable 5xx
            raise provider_error(
                connection,
                status=status,
                text=failure.text,
                timed_out=failure.timed_out,
                retry_after=parse_retry_after(failure.headers.get("retry-after") or failure.headers.get("Retry-After")),
                reason=failure.reason,
                timeout=request.timeout,
                blocked=failure.blocked,
            ) from None
        return parse_reply(reply.body, connection)


def build_request(request: ChatRequest) -> dict[str, Any]:
    """The Messages API request body for ``request``."""
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "system": request.system,
        "messages": [_message(t) for t in request.turns],
    }
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)} for t in request.tools
        ]
    if request.temperature is not None:
        body["temperature"] = min(float(request.temperature), 1.0)  # this API's range is 0..1
    return body


def _message(turn: Turn) -> dict[str, Any]:
    if turn.role == "user":
        return {"role": "user", "content": [{"type": "text", "text": turn.text or ""}]}
    if turn.role == "assistant":
        blocks: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)} for c in turn.calls]
        return {"role": "assistant", "content": blocks}
    return {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content, "is_error": r.is_error}
            for r in turn.results
        ],
    }


def parse_reply(body: Any, connection: ResolvedConnection) -> ChatReply:
    """A ``ChatReply`` from a Messages answer; a malformed one is a retryable integration error."""
    try:
        texts, calls = [], []
        for block in body["content"]:
            if block["type"] == "text":
                texts.append(block["text"])
            elif block["type"] == "tool_use":
                arguments = block.get("input")
                calls.append(
                    ToolCall(
                        str(block["id"]),
                        str(block["name"]),
                        arguments if isinstance(arguments, dict) else {},
                        None,
                        None if isinstance(arguments, dict) else "input is not an object",
                    )
                )
        usage = body.get("usage") or {}
        return ChatReply(
            "".join(texts) if texts else None,
            tuple(calls),
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            body.get("stop_reason"),
            body.get("model"),
        )
    except (KeyError, TypeError):
        raise provider_error(
            connection, status=502, text="the answer is not a Messages response: " + json.dumps(body)[:200]
        ) from None
