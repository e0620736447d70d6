"""The Amazon Bedrock Converse wire format, through boto3 (credentials from the function's role).

``bedrock-runtime.converse(modelId, messages, system, inferenceConfig, toolConfig)``; tool
calls are ``toolUse`` blocks and their results ``toolResult`` blocks in the next user message.
Errors are botocore ``ClientError``s mapped to the same kinds as the HTTP providers.
Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from chalicelib.agents.llm.types import ChatReply, ChatRequest, ToolCall, Turn, provider_error
from chalicelib.domain.connections import ResolvedConnection

__all__ = ["BedrockConverse", "build_request", "parse_reply"]

_STATUS = {
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 401,
    "ExpiredTokenException": 401,
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "ModelNotReadyException": 503,
    "ModelTimeoutException": 504,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelErrorException": 502,
}


def _default_client(region: str, timeout: float) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name=region,
        config=Config(
            read_timeout=max(int(timeout), 1), connect_timeout=10, retries={"mode": "standard", "max_attempts": 1}
        ),
    )


class BedrockConverse:
    kind = "bedrock"

    def __init__(
        self,
        client_factory: Callable[[str, float], Any] = _default_client,
        default_region: Callable[[], str] | None = None,
    ) -> None:
        self.client_factory = client_factory
        self.default_region = default_region
        self._clients: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str, timeout: float) -> Any:
        key = (region, int(timeout))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.client_factory(region, timeout)
            return self._clients[key]

    def send(self, connection: ResolvedConnection, request: ChatRequest) -> ChatReply:
        region = str(connection.fields.get("region") or (self.default_region() if self.default_region else "us-east-1"))
        try:
            answer = self.client(region, request.timeout).converse(**build_request(request))
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = _STATUS.get(code) or int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
            raise provider_error(
                connection, status=status, text=f"{code}: {error.response.get('Error', {}).get('Message', '')}"
            ) from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise provider_error(connection, status=None, timed_out=True, timeout=request.timeout) from None
        except BotoCoreError as error:
            raise provider_error(connection, status=None, reason=type(error).__name__) from None
        return parse_reply(answer, connection)


def build_request(request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments of ``converse`` for ``request``."""
    kwargs: dict[str, Any] = {
        "modelId": request.model,
        "messages": [_message(t) for t in request.turns],
        "system": [{"text": request.system}],
    }
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = min(float(request.temperature), 1.0)
    if inference:
        kwargs["inferenceConfig"] = inference
    if request.tools:
        kwargs["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": dict(t.parameters)},
                    }
                }
                for t in request.tools
            ]
        }
    return kwargs


def _message(turn: Turn) -> dict[str, Any]:
    if turn.role == "user":
        return {"role": "user", "content": [{"text": turn.text or ""}]}
    if turn.role == "assistant":
        blocks: list[dict[str, Any]] = [{"text": turn.text}] if turn.text else []
        blocks += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": dict(c.arguments)}} for c in turn.calls]
        return {"role": "assistant", "content": blocks}
    return {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": r.call_id,
                    "content": [{"text": r.content}],
                    "status": "error" if r.is_error else "success",
                }
            }
            for r in turn.results
        ],
    }


def parse_reply(answer: Any, connection: ResolvedConnection) -> ChatReply:
    try:
        texts, calls = [], []
        for block in answer["output"]["message"]["content"]:
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                arguments = use.get("input")
                calls.append(
                    ToolCall(
                        str(use["toolUseId"]),
                        str(use["name"]),
                        arguments if isinstance(arguments, dict) else {},
                        None,
                        None if isinstance(arguments, dict) else "input is not an object",
                    )
                )
        usage = answer.get("usage") or {}
        return ChatReply(
            "".join(texts) if texts else None,
            tuple(calls),
            int(usage.get("inputTokens") or 0),
            int(usage.get("outputTokens") or 0),
            answer.get("stopReason"),
        )
    except (KeyError, TypeError):
        raise provider_error(connection, status=502, text="the answer is not a Converse response") from None
