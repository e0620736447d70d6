"""Canned provider answers shaped like the providers' documented examples, each checked by the
official SDK's response model when it is built, and checks of the requests the agent sent
against the SDKs' request types."""

from __future__ import annotations

import itertools
import json
from typing import Any

from anthropic.types import Message as AnthropicMessage
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

from tests.fakes.scripted import Answer, ScriptedServer
from tests.fakes.sdk_types import assert_fits

_ids = itertools.count(1)


def openai_completion(
    content: str | None = None,
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None,
    prompt_tokens: int = 57,
    completion_tokens: int = 17,
    model: str = "gpt-4o-mini-2024-07-18",
) -> dict[str, Any]:
    """A ``chat.completion`` object as in the Chat Completions reference."""
    calls = [
        {"id": f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        for name, arguments in tool_calls or []
    ]
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if calls:
        message["tool_calls"] = calls
    body = {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_44709d6fcb",
    }
    ChatCompletion.model_validate(body)  # the SDK's own model of the answer
    return body


def openai_error(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Answer:
    return Answer(
        status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers or {}, delay
    )


def anthropic_message(
    text: str | None = None,
    tool_uses: list[tuple[str, dict[str, Any]]] | None = None,
    input_tokens: int = 2095,
    output_tokens: int = 503,
) -> dict[str, Any]:
    """A ``message`` object as in the Messages reference."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text is not None else []
    content += [
        {"type": "tool_use", "id": f"toolu_{next(_ids):024d}", "name": name, "input": arguments}
        for name, arguments in tool_uses or []
    ]
    body = {
        "id": f"msg_{next(_ids):024d}",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": "claude-sonnet-4-5",
        "stop_reason": "tool_use" if tool_uses else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    AnthropicMessage.model_validate(body)
    return body


def anthropic_error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"type": "error", "error": {"type": kind, "message": message}}, headers or {})


def assert_openai_requests_fit(server: ScriptedServer, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
    bodies = [seen.json for seen in server.requests(path)]
    assert bodies, "the agent sent no request"
    for body in bodies:
        assert_fits(body, CompletionCreateParamsNonStreaming)
    return bodies


def assert_anthropic_requests_fit(server: ScriptedServer, path: str = "/v1/messages") -> list[dict[str, Any]]:
    bodies = [seen.json for seen in server.requests(path)]
    assert bodies, "the agent sent no request"
    for body in bodies:
        assert_fits(body, MessageCreateParamsNonStreaming)
    return bodies
