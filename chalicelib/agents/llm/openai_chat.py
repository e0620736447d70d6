"""The OpenAI Chat Completions wire format (OpenAI, vLLM, Ollama, LM Studio and gateways).

``POST {base_url}/chat/completions`` with ``Authorization: Bearer <api_key>`` (left out when
the connection has no key, as local servers need none). Functions go as ``tools`` of type
``function``; an ``output_schema`` as ``response_format`` of type ``json_schema``. Reference:
https://platform.openai.com/docs/api-reference/chat/create
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.agents.llm.types import ChatReply, ChatRequest, ToolCall, Turn, parse_retry_after, provider_error
from chalicelib.agents.transport import HttpFailure, call_json
from chalicelib.domain.connections import ResolvedConnection

__all__ = ["OpenAIChat", "build_request", "parse_reply"]


class OpenAIChat:
    kind = "openai"

    def send(self, connection: ResolvedConnection, request: ChatRequest) -> ChatReply:
        url = str(connection.fields.get("base_url", "https://api.openai.com/v1")).rstrip("/") + "/chat/completions"
        headers = {}
        if connection.secrets.get("api_key"):
            headers["Authorization"] = f"Bearer {connection.secrets['api_key']}"
        try:
            reply = call_json("POST", url, body=build_request(request), headers=headers, timeout=request.timeout)
        except HttpFailure as failure:
            raise provider_error(
                connection,
                status=failure.status,
                text=failure.text,
                timed_out=failure.timed_out,
                retry_after=parse_retry_after(failure.headers.get("Retry-After") or failure.headers.get("retry-after")),
                reason=failure.reason,
                timeout=request.timeout,
                blocked=failure.blocked,
            ) from None
        return parse_reply(reply.body, connection)


def build_request(request: ChatRequest) -> dict[str, Any]:
    """The Chat Completions request body for ``request``."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}]
    for turn in request.turns:
        messages += _messages(turn)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
            }
            for t in request.tools
        ]
    if request.output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "step_output", "schema": dict(request.output_schema), "strict": False},
        }
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def _messages(turn: Turn) -> list[dict[str, Any]]:
    if turn.role == "user":
        return [{"role": "user", "content": turn.text or ""}]
    if turn.role == "assistant":
        message: dict[str, Any] = {"role": "assistant", "content": turn.text}
        if turn.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": c.raw_arguments if c.raw_arguments is not None else json.dumps(dict(c.arguments)),
                    },
                }
                for c in turn.calls
            ]
        return [message]
    return [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in turn.results]


def parse_reply(body: Any, connection: ResolvedConnection) -> ChatReply:
    """A ``ChatReply`` from a Chat Completions answer; a malformed one is a retryable integration error."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
        calls = []
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call["function"]
            raw = function.get("arguments") or "{}"
            try:
                arguments = json.loads(raw)
                problem = None if isinstance(arguments, dict) else "arguments are not a JSON object"
            except ValueError as error:
                arguments, problem = {}, f"arguments are not valid JSON: {error}"
            calls.append(
                ToolCall(
                    str(call.get("id") or f"call_{index}"),
                    str(function["name"]),
                    arguments if isinstance(arguments, dict) else {},
                    raw,
                    problem,
                )
            )
        usage = body.get("usage") or {}
        return ChatReply(
            message.get("content"),
            tuple(calls),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            choice.get("finish_reason"),
            body.get("model"),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise provider_error(
            connection, status=502, text="the answer is not a Chat Completions response: " + json.dumps(body)[:200]
        ) from None
