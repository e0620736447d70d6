"""The provider-neutral conversation the llm agent keeps, and what a wire format must do with it.

Each wire module (``openai_chat``, ``anthropic_messages``, ``bedrock_converse``) turns a
``ChatRequest`` into its provider's request, and the provider's answer into a ``ChatReply``.
Provider failures come out as ``StepError``s through ``provider_error``, so the three formats
agree on what is retryable and on the recommended action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.agents.base import AgentError, IntegrationError, StepError
from chalicelib.domain.actions import EDIT_AND_RETRY, UPDATE_CONNECTION
from chalicelib.domain.connections import ResolvedConnection
from chalicelib.domain.costs import attempt_cost_micro, usd

__all__ = [
    "CANNOT_COMPLETE",
    "CANNOT_COMPLETE_TOOL",
    "ChatReply",
    "ChatRequest",
    "RateLimited",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Turn",
    "Wire",
    "provider_error",
]

CANNOT_COMPLETE = "cannot_complete"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]


CANNOT_COMPLETE_TOOL = ToolSpec(
    CANNOT_COMPLETE,
    "Call this instead of answering when you cannot complete the task: information is missing, the "
    "instructions are unclear or contradictory, or a tool keeps failing. Do not guess.",
    {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "Why the task cannot be completed, for the operator."},
            "missing": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The pieces of information or input fields that are missing.",
            },
        },
        "required": ["reason"],
    },
)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]
    #: the arguments text exactly as the model sent it (Chat Completions sends a JSON string)
    raw_arguments: str | None = None
    #: set when ``raw_arguments`` was not a JSON object
    arguments_problem: str | None = None


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    """One message: the user's text, the assistant's text and tool calls, or tool results."""

    role: str  # "user" | "assistant" | "tool"
    text: str | None = None
    calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class ChatRequest:
    model: str
    system: str
    turns: tuple[Turn, ...]
    tools: tuple[ToolSpec, ...]
    output_schema: Mapping[str, Any] | None
    max_tokens: int | None
    temperature: float | None
    timeout: float


@dataclass(frozen=True)
class ChatReply:
    text: str | None
    calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    model: str | None = None


class Wire(Protocol):
    """One provider API."""

    kind: str

    def send(self, connection: ResolvedConnection, request: ChatRequest) -> ChatReply:
        """One round trip; raises ``StepError`` (through ``provider_error``) on failure."""
        ...


class RateLimited(IntegrationError):
    """A 429 (or throttling) with the delay the provider asked for, if it said one."""

    def __init__(self, message: str, *, retry_after: float | None, details: dict[str, Any]) -> None:
        super().__init__(message, retryable=True, details=details, status=429)
        self.retry_after = retry_after
        if retry_after is not None:
            self.details["retry_after_seconds"] = retry_after


_CONTEXT_LENGTH = re.compile(
    r"context.length|context window|maximum context|prompt is too long|too many tokens|"
    r"input is too long|reduce the length|max_tokens_exceeded|input too long",
    re.I,
)


def provider_error(
    connection: ResolvedConnection,
    *,
    status: int | None,
    text: str = "",
    retry_after: float | None = None,
    timed_out: bool = False,
    reason: str = "",
    timeout: float | None = None,
    blocked: bool = False,
) -> StepError:
    """The step error for a failed provider call (API.md v2, "The llm agent", errors)."""
    name = connection.name
    details: dict[str, Any] = {"connection": name, "provider": connection.kind}
    excerpt = _excerpt(text, connection)
    if status is not None:
        details["status"] = status
    if excerpt:
        details["body_excerpt"] = excerpt
    if status in (401, 403):
        return IntegrationError(
            f"the model provider refused the credentials of connection {name} (HTTP {status}): "
            f"update connection {name} (PUT /connections/{name}) and retry",
            retryable=False,
            details=details,
            status=status,
            action=UPDATE_CONNECTION,
        )
    if status is not None and 400 <= status < 500 and status not in (408, 409, 429) and _CONTEXT_LENGTH.search(text):
        return AgentError(
            "the prompt is longer than the model's context window: shorten the instructions, pass less data "
            "to the step (a transform step before it), or pick a model with a larger context, then edit and retry",
            retryable=False,
            details=details,
            action=EDIT_AND_RETRY,
        )
    if status == 429:
        return RateLimited(
            f"the model provider of connection {name} is rate-limiting (HTTP 429)"
            + (f"; it asked to wait {retry_after:g}s" if retry_after is not None else ""),
            retry_after=retry_after,
            details=details,
        )
    if status is None and blocked:
        return IntegrationError(
            f"connection {name} points at an address outbound calls may not reach ({reason}): "
            f"update connection {name} with a public base_url",
            retryable=False,
            details=details,
            action=UPDATE_CONNECTION,
        )
    if status is None:
        if timed_out:
            return IntegrationError(
                f"the model provider of connection {name} did not answer within {timeout or 0:g}s",
                retryable=True,
                details=details,
            )
        where = connection.fields.get("base_url") or connection.fields.get("region") or ""
        return IntegrationError(
            f"could not reach the model provider of connection {name}{f' at {where}' if where else ''}: {reason}. "
            f"Start the model server (for Ollama: ollama serve) or point the connection at one with "
            f'PUT /connections/{name} {{"base_url": ...}}, then retry',
            retryable=True,
            details=details,
        )
    if status >= 500 or status == 408:
        return IntegrationError(
            f"the model provider of connection {name} failed (HTTP {status})" + (f": {excerpt}" if excerpt else ""),
            retryable=True,
            details=details,
            status=status,
        )
    return IntegrationError(
        f"the model provider of connection {name} refused the request (HTTP {status})"
        + (f": {excerpt}" if excerpt else ""),
        retryable=False,
        details=details,
        status=status,
        action=EDIT_AND_RETRY,
    )


def parse_retry_after(value: Any) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds only; HTTP dates are rare from APIs)."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _excerpt(text: str, connection: ResolvedConnection) -> str:
    from chalicelib.agents.connections import redact

    flat = " ".join(redact(text or "", connection).split())
    return flat if len(flat) <= 300 else flat[:299] + "…"


@dataclass
class Usage:
    """An attempt's model usage so far; priced by the connection's ``prices`` when it names the model."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    prices: Any = None

    def add(self, reply: ChatReply) -> None:
        self.input_tokens += int(reply.input_tokens or 0)
        self.output_tokens += int(reply.output_tokens or 0)
        self.calls += 1

    @property
    def cost_micro(self) -> int | None:
        """The attempt's cost in micro-dollars (None when the connection has no price for the model)."""
        return attempt_cost_micro(self.prices, self.model, self.input_tokens, self.output_tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "requests": self.calls,
            "cost_usd": usd(self.cost_micro),
        }
