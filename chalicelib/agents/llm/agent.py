"""The ``llm`` agent: a model follows the step's instructions over its context, may call the
step's HTTP tools, and answers text or an object of the step's ``output_schema``.

One attempt is a short conversation (``_Conversation.run``):

1. the model gets a system prompt (its role, the output contract, ``cannot_complete``) and a
   user message with the instructions, the context (``input``, ``prev``, ``steps``) and the
   comments left on earlier attempts of the step;
2. tool calls are executed (at most ``max_tool_calls`` per attempt; past that, the model is
   told so and offered ``cannot_complete`` only) and their results sent back;
3. a ``cannot_complete`` call fails the step as ``agent`` with the reason and ``missing``;
4. with an ``output_schema`` the answer is parsed and checked; one repair request is sent
   when it does not match, then the step fails as ``agent`` naming what did not match.

A 429 with ``Retry-After`` is waited out inside the attempt when the wait fits in the step's
time-out (at most ``RATE_LIMIT_WAITS`` times); otherwise the error is the step's, retryable.
Usage is summed over the attempt's requests and reported (``ctx.report["usage"]``); tool calls
are kept in the output (``tool_calls``) or in the error's details.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.agents.base import AgentContext, AgentError, StepError
from chalicelib.agents.connections import step_connection_ref
from chalicelib.agents.llm.anthropic_messages import AnthropicMessages
from chalicelib.agents.llm.bedrock_converse import BedrockConverse
from chalicelib.agents.llm.openai_chat import OpenAIChat
from chalicelib.agents.llm.schema import schema_problem, validate
from chalicelib.agents.llm.tools import HttpTool, parse_tools, run_tool, tool_errors
from chalicelib.agents.llm.types import (
    CANNOT_COMPLETE,
    CANNOT_COMPLETE_TOOL,
    ChatReply,
    ChatRequest,
    RateLimited,
    ToolResult,
    Turn,
    Usage,
    Wire,
)
from chalicelib.domain.actions import EDIT_AND_RETRY
from chalicelib.domain.connections import AUTH_KINDS, MODEL_KINDS, ConnectionRef
from chalicelib.errors import FieldError

__all__ = ["LlmAgent"]

CONFIG_KEYS = ("connection", "model", "output_schema", "max_tokens", "temperature", "tools", "max_tool_calls")
DEFAULT_MAX_TOOL_CALLS = 8
RATE_LIMIT_WAITS = 2
#: Time kept back from the step's time-out for recording the result.
MARGIN_SECONDS = 1.0

SYSTEM = (
    "You are an agent doing one step of a business workflow run by Stepline. Follow the step's "
    "instructions using only the context you are given and the tools offered. If you cannot complete "
    "the task because information is missing, the instructions are unclear, or a tool keeps failing, "
    "call the function cannot_complete with the reason and the missing items instead of guessing."
)


class LlmAgent:
    """Natural-language instructions done by a model behind an ``openai``, ``anthropic`` or ``bedrock`` connection."""

    name = "llm"

    def __init__(
        self,
        wires: Mapping[str, Wire] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wires: dict[str, Wire] = dict(
            wires
            or {
                "openai": OpenAIChat(),
                "anthropic": AnthropicMessages(),
                "bedrock": BedrockConverse(default_region=_region),
            }
        )
        self.sleep = sleep
        self.clock = clock

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        """Instructions, model, connection name, output schema, limits and tools."""
        errors: list[FieldError] = []
        instructions = step.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            errors.append(FieldError(f"{path}.instructions", "required: what the model should do, in plain words"))
        config = step.get("config")
        if not isinstance(config, Mapping):
            return [*errors, FieldError(f"{path}.config", 'required: an object with "connection" and "model"')]
        at = f"{path}.config"
        errors += [FieldError(f"{at}.{k}", "unknown field") for k in sorted(set(config) - set(CONFIG_KEYS))]
        for key in ("connection", "model"):
            if not isinstance(config.get(key), str) or not config[key].strip():
                errors.append(FieldError(f"{at}.{key}", "required: a non-empty string"))
        schema = config.get("output_schema")
        if schema is not None:
            problem = schema_problem(schema, "output_schema")
            if problem or schema.get("type") != "object":
                errors.append(FieldError(f"{at}.output_schema", problem or "must be a JSON Schema of type object"))
        if "max_tokens" in config and not _int_in(config["max_tokens"], 1, 200_000):
            errors.append(FieldError(f"{at}.max_tokens", "must be an integer from 1 to 200000"))
        if "max_tool_calls" in config and not _int_in(config["max_tool_calls"], 0, 50):
            errors.append(FieldError(f"{at}.max_tool_calls", "must be an integer from 0 to 50"))
        temperature = config.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
        ):
            errors.append(FieldError(f"{at}.temperature", "must be a number from 0 to 2"))
        return errors + tool_errors(config.get("tools"), f"{at}.tools", _url_problem())

    def connection_refs(self, step: Mapping[str, Any], path: str) -> list[ConnectionRef]:
        """The model connection (openai, anthropic, bedrock) and each tool's connection (http kinds)."""
        config = step.get("config")
        refs = step_connection_ref(config, path, MODEL_KINDS, required=True)
        for index, tool in enumerate((config or {}).get("tools") or [] if isinstance(config, dict) else []):
            if isinstance(tool, dict) and tool.get("connection") is not None:
                refs.append(ConnectionRef(f"{path}.config.tools[{index}].connection", tool["connection"], AUTH_KINDS))
        return refs

    def run(self, ctx: AgentContext) -> Any:
        """One attempt: the conversation, its output, and ``usage`` in ``ctx.report``."""
        return _Conversation(self, ctx).run()


class _Conversation:
    def __init__(self, agent: LlmAgent, ctx: AgentContext) -> None:
        self.agent, self.ctx = agent, ctx
        config = ctx.config
        self.connection = ctx.connection(str(config["connection"]))
        self.wire = agent.wires.get(self.connection.kind)
        self.model = str(config["model"])
        self.schema = config.get("output_schema")
        self.tools: dict[str, HttpTool] = {t.name: t for t in parse_tools(config.get("tools"))}
        self.max_calls = int(config.get("max_tool_calls", DEFAULT_MAX_TOOL_CALLS))
        self.usage = Usage(self.model)
        self.calls_log: list[dict[str, Any]] = []
        self.deadline = agent.clock() + max(float(ctx.timeout_seconds) - MARGIN_SECONDS, 0.5)
        self.turns: list[Turn] = [Turn("user", _user_message(ctx))]

    def run(self) -> Any:
        if self.wire is None:
            raise AgentError(
                f"connection {self.connection.name} is of kind {self.connection.kind}, not a model provider",
                retryable=False,
                details={"connection": self.connection.name},
            )
        try:
            return self._loop()
        except StepError as error:
            error.details.setdefault("usage", self.usage.to_dict())
            if self.tools:
                error.details.setdefault("tool_calls", list(self.calls_log))
            raise
        finally:
            self.ctx.report["usage"] = self.usage.to_dict()

    def _loop(self) -> Any:
        repaired = False
        tools_open = True
        for _ in range(self.max_calls + 4):
            reply = self._send(tools_open)
            calls = list(reply.calls)
            quit_call = next((c for c in calls if c.name == CANNOT_COMPLETE), None)
            if quit_call is not None:
                raise _cannot_complete(quit_call.arguments)
            if calls:
                self.turns.append(Turn("assistant", reply.text, tuple(calls)))
                results, tools_open = self._run_calls(calls)
                self.turns.append(Turn("tool", results=tuple(results)))
                continue
            text = reply.text or ""
            if self.schema is None:
                return self._output({"text": text})
            value, problems = _parse_object(text, self.schema)
            if not problems:
                return self._output(value)
            if repaired:
                raise AgentError(
                    "the model's answer does not match output_schema after one repair request: "
                    + "; ".join(problems[:5]),
                    retryable=False,
                    action=EDIT_AND_RETRY,
                    details={"problems": problems[:20], "answer_excerpt": text[:300]},
                )
            repaired = True
            self.turns.append(Turn("assistant", text))
            self.turns.append(
                Turn(
                    "user",
                    "Your answer does not match the required JSON Schema: "
                    + "; ".join(problems[:10])
                    + ". Reply with only the corrected JSON object.",
                )
            )
        raise AgentError(
            f"the model kept calling tools past the limit of {self.max_calls} calls",
            retryable=False,
            action=EDIT_AND_RETRY,
        )

    def _output(self, value: Any) -> Any:
        if self.tools:
            value = {**value, "tool_calls": list(self.calls_log)} if isinstance(value, dict) else value
        return value

    def _send(self, tools_open: bool) -> ChatReply:
        tools = tuple(t.spec for t in self.tools.values()) if tools_open else ()
        waits = 0
        while True:
            remaining = self.deadline - self.agent.clock()
            if remaining <= 0:
                raise _timed_out(self.connection.name, self.ctx.timeout_seconds)
            request = ChatRequest(
                self.model,
                _system(self.schema),
                tuple(self.turns),
                (*tools, CANNOT_COMPLETE_TOOL),
                self.schema,
                _opt_int(self.ctx.config.get("max_tokens")),
                self.ctx.config.get("temperature"),
                remaining,
            )
            try:
                reply = self.wire.send(self.connection, request)  # type: ignore[union-attr]
            except RateLimited as limited:
                wait = limited.retry_after
                if wait is None or waits >= RATE_LIMIT_WAITS or wait > self.deadline - self.agent.clock() - 0.5:
                    raise
                waits += 1
                self.agent.sleep(wait)
                continue
            self.usage.add(reply)
            return reply

    def _run_calls(self, calls: list[Any]) -> tuple[list[ToolResult], bool]:
        results = []
        for call in calls:
            tool = self.tools.get(call.name)
            if tool is None:
                results.append(
                    ToolResult(call.id, call.name, json.dumps({"error": f"no tool named {call.name}"}), True)
                )
                continue
            if len(self.calls_log) >= self.max_calls:
                self.calls_log.append(
                    {
                        "n": len(self.calls_log) + 1,
                        "name": call.name,
                        "arguments": dict(call.arguments),
                        "status": "not_run",
                        "ok": False,
                        "error": f"limit of {self.max_calls} tool calls reached",
                    }
                )
                results.append(
                    ToolResult(
                        call.id,
                        call.name,
                        json.dumps(
                            {
                                "error": f"the limit of {self.max_calls} tool calls per attempt is reached; answer now "
                                "or call cannot_complete"
                            }
                        ),
                        True,
                    )
                )
                continue
            remaining = max(self.deadline - self.agent.clock(), 0.5)
            result, record = run_tool(self.ctx, tool, call, len(self.calls_log) + 1, min(remaining, 60.0))
            self.calls_log.append(record)
            results.append(result)
        return results, len(self.calls_log) < self.max_calls


def _user_message(ctx: AgentContext) -> str:
    data = {k: ctx.data.get(k) for k in ("input", "prev", "steps") if k in ctx.data}
    parts = [
        "Instructions:",
        (ctx.instructions or "").strip(),
        "",
        "Context (JSON: the execution input, the previous step's output, earlier steps' outputs):",
        json.dumps(data, default=_json_default, ensure_ascii=False),
    ]
    comments = [c for c in ctx.comments if isinstance(c, Mapping) and c.get("comment")]
    if comments:
        parts += ["", "Comments left by reviewers on earlier attempts of this step:"]
        parts += [
            f"- attempt {c.get('attempt')}, {c.get('by')} ({c.get('decision')}): {c.get('comment')}" for c in comments
        ]
    return "\n".join(parts)


def _system(schema: Mapping[str, Any] | None) -> str:
    if schema is None:
        return SYSTEM + " Answer in plain text."
    return (
        SYSTEM
        + " Answer with only a JSON object (no prose, no code fence) that matches this JSON Schema: "
        + json.dumps(schema, separators=(",", ":"))
    )


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def _parse_object(text: str, schema: Mapping[str, Any]) -> tuple[Any, list[str]]:
    match = _FENCE.match(text)
    candidate = match.group(1) if match else text.strip()
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as error:
        return None, [f"output: not valid JSON ({error.msg} at character {error.pos})"]
    return value, validate(value, schema)


def _cannot_complete(arguments: Mapping[str, Any]) -> AgentError:
    reason = str(arguments.get("reason") or "the model could not complete the task").strip()
    missing = arguments.get("missing") or []
    missing = [str(m) for m in missing] if isinstance(missing, list) else [str(missing)]
    return AgentError(
        reason,
        retryable=False,
        action=EDIT_AND_RETRY,
        extra={"missing": missing},
        details={"cannot_complete": True, "missing": missing},
    )


def _timed_out(connection: str, limit: float) -> StepError:
    from chalicelib.agents.base import IntegrationError

    return IntegrationError(
        f"the model of connection {connection} did not finish within the step's time-out of {limit:g}s",
        retryable=True,
        details={"connection": connection},
    )


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _json_default(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _region() -> str:
    from chalicelib.engine import get_engine

    return get_engine().settings.region


def _url_problem() -> Any:
    from chalicelib.outbound import url_template_problem

    return url_template_problem
