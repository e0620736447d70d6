"""The llm agent over the Chat Completions wire format, against a scripted loopback provider.

Every request the agent sends is checked against the openai SDK's request types, and every
canned answer is built through the SDK's response model (tests/fakes/providers.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.agents import AgentContext, AgentError, IntegrationError
from chalicelib.agents.llm import LlmAgent
from chalicelib.domain.connections import ResolvedConnection
from tests.fakes.providers import assert_openai_requests_fit, openai_completion, openai_error
from tests.fakes.scripted import Answer, ScriptedServer

KEY = "sk-unit-4b1d7e"
CHAT = "/v1/chat/completions"
SCHEMA = {
    "type": "object",
    "properties": {"category": {"enum": ["billing", "bug", "other"]}, "urgent": {"type": "boolean"}},
    "required": ["category", "urgent"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")  # the fakes listen on loopback


@pytest.fixture
def provider() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def tools() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


class Sleeps:
    """Records the waits the agent asks for instead of sleeping (the clock moves by them)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def connections(provider: ScriptedServer, tools: ScriptedServer | None = None) -> Any:
    known = {
        "model": ResolvedConnection("model", "openai", {"base_url": provider.url + "/v1"}, {"api_key": KEY}),
        "crm": ResolvedConnection("crm", "bearer", {}, {"token": "crm-token-99"}),
    }
    return lambda name: known[name]


def ctx(
    provider: ScriptedServer,
    config: dict[str, Any] | None = None,
    instructions: str = "Classify the ticket",
    timeout: float = 30,
    comments: tuple[dict[str, Any], ...] = (),
) -> AgentContext:
    return AgentContext(
        "ex_1",
        "triage",
        1,
        instructions,
        {"connection": "model", "model": "gpt-4o-mini", **(config or {})},
        {"input": {"ticket": "I was charged twice"}, "prev": {"ticket": "I was charged twice"}, "steps": {}},
        timeout,
        comments=comments,
        connections=connections(provider),
    )


def test_plain_answer_is_text_output_with_usage_and_a_bearer_key(provider: ScriptedServer) -> None:
    provider.script(CHAT, Answer(200, openai_completion("It is a billing question.")))
    context = ctx(provider, comments=({"by": "ann", "attempt": 1, "decision": "rejected", "comment": "be brief"},))
    assert LlmAgent().run(context) == {"text": "It is a billing question."}
    assert context.report["usage"] == {"model": "gpt-4o-mini", "input_tokens": 57, "output_tokens": 17, "requests": 1}
    [body] = assert_openai_requests_fit(provider)
    assert provider.requests(CHAT)[0].headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-4o-mini" and "response_format" not in body
    user = body["messages"][1]["content"]
    assert "Classify the ticket" in user and "charged twice" in user and "be brief" in user
    assert [t["function"]["name"] for t in body["tools"]] == ["cannot_complete"]


def test_output_schema_is_sent_as_json_schema_and_the_object_is_the_output(provider: ScriptedServer) -> None:
    provider.script(CHAT, Answer(200, openai_completion('{"category": "billing", "urgent": true}')))
    output = LlmAgent().run(ctx(provider, {"output_schema": SCHEMA, "max_tokens": 200, "temperature": 0}))
    assert output == {"category": "billing", "urgent": True}
    [body] = assert_openai_requests_fit(provider)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "step_output", "schema": SCHEMA, "strict": False},
    }
    assert body["max_tokens"] == 200 and body["temperature"] == 0


def test_invalid_json_gets_one_repair_request_then_the_valid_object(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        Answer(200, openai_completion("billing, urgent")),
        Answer(200, openai_completion('```json\n{"category": "bug", "urgent": false}\n```')),
    )
    context = ctx(provider, {"output_schema": SCHEMA})
    assert LlmAgent().run(context) == {"category": "bug", "urgent": False}
    _first, second = assert_openai_requests_fit(provider)
    assert second["messages"][-2] == {"role": "assistant", "content": "billing, urgent"}
    assert "not valid JSON" in second["messages"][-1]["content"]
    assert context.report["usage"]["input_tokens"] == 114 and context.report["usage"]["requests"] == 2


def test_still_invalid_after_the_repair_is_an_agent_error_naming_the_mismatch(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        Answer(200, openai_completion('{"category": "sales"}')),
        Answer(200, openai_completion('{"category": "sales", "urgent": "yes"}')),
    )
    with pytest.raises(AgentError) as raised:
        LlmAgent().run(ctx(provider, {"output_schema": SCHEMA}))
    error = raised.value.to_dict()
    assert error["kind"] == "agent" and error["retryable"] is False and error["action"] == "edit_and_retry"
    assert (
        "output.category: must be one of" in error["message"] and "output.urgent: expected boolean" in error["message"]
    )
    assert error["details"]["usage"]["requests"] == 2


def test_cannot_complete_fails_with_the_reason_and_missing_fields(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        Answer(
            200,
            openai_completion(
                None, [("cannot_complete", {"reason": "The ticket does not say which order", "missing": ["order_id"]})]
            ),
        ),
    )
    with pytest.raises(AgentError) as raised:
        LlmAgent().run(ctx(provider))
    error = raised.value.to_dict()
    assert error["message"] == "The ticket does not say which order"
    assert error["missing"] == ["order_id"] and error["action"] == "edit_and_retry" and error["retryable"] is False


def test_tools_are_called_with_the_connection_and_an_idempotency_key(
    provider: ScriptedServer, tools: ScriptedServer
) -> None:
    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("lookup_order", {"order_id": "A-17"})])),
        Answer(200, openai_completion("Order A-17 was refunded.")),
    )
    tools.script("/orders/A-17", Answer(200, {"id": "A-17", "status": "refunded"}))
    tool = {
        "name": "lookup_order",
        "description": "Find an order",
        "connection": "crm",
        "method": "GET",
        "url": tools.url + "/orders/{{ order_id }}",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    }
    output = LlmAgent().run(ctx(provider, {"tools": [tool]}))
    assert output["text"] == "Order A-17 was refunded."
    assert output["tool_calls"] == [
        {
            "n": 1,
            "name": "lookup_order",
            "arguments": {"order_id": "A-17"},
            "method": "GET",
            "idempotency_key": "ex_1:triage:1:1",
            "status": 200,
            "ok": True,
        }
    ]
    [call] = tools.requests("/orders/A-17")
    assert call.headers["idempotency-key"] == "ex_1:triage:1:1"
    assert call.headers["authorization"] == "Bearer crm-token-99"
    _, second = assert_openai_requests_fit(provider)
    assistant, result = second["messages"][2], second["messages"][3]
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert result["role"] == "tool" and result["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(result["content"]) == {"status": 200, "body": {"id": "A-17", "status": "refunded"}}


def test_tool_calls_past_max_tool_calls_are_not_run(provider: ScriptedServer, tools: ScriptedServer) -> None:
    provider.script(
        CHAT, Answer(200, openai_completion(None, [("ping", {}), ("ping", {})])), Answer(200, openai_completion("done"))
    )
    tools.default("/ping", Answer(200, {"pong": True}))
    tool = {
        "name": "ping",
        "description": "Ping",
        "method": "POST",
        "url": tools.url + "/ping",
        "parameters": {"type": "object", "properties": {}},
    }
    output = LlmAgent().run(ctx(provider, {"tools": [tool], "max_tool_calls": 1}))
    assert [c["status"] for c in output["tool_calls"]] == [200, "not_run"]
    assert len(tools.requests("/ping")) == 1
    last = assert_openai_requests_fit(provider)[-1]
    assert [t["function"]["name"] for t in last["tools"]] == ["cannot_complete"]  # only the way out is left


def test_401_is_a_non_retryable_integration_error_naming_the_connection(provider: ScriptedServer) -> None:
    provider.script(
        CHAT, openai_error(401, f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key")
    )
    with pytest.raises(IntegrationError) as raised:
        LlmAgent().run(ctx(provider))
    error = raised.value.to_dict()
    assert error["retryable"] is False and error["action"] == "update_connection"
    assert "connection model" in error["message"] and "update connection model" in error["message"]
    assert KEY not in json.dumps(error)


def test_429_with_retry_after_is_waited_out_within_the_time_out(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded", {"Retry-After": "3"}),
        Answer(200, openai_completion("ok")),
    )
    sleeps = Sleeps()
    assert LlmAgent(sleep=sleeps.sleep, clock=sleeps.clock).run(ctx(provider, timeout=30)) == {"text": "ok"}
    assert sleeps.waits == [3.0]


def test_429_asking_longer_than_the_time_out_is_a_retryable_error(provider: ScriptedServer) -> None:
    provider.script(
        CHAT, openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded", {"Retry-After": "120"})
    )
    sleeps = Sleeps()
    with pytest.raises(IntegrationError) as raised:
        LlmAgent(sleep=sleeps.sleep, clock=sleeps.clock).run(ctx(provider, timeout=30))
    error = raised.value.to_dict()
    assert error["retryable"] is True and error["action"] == "retry" and error["details"]["retry_after_seconds"] == 120
    assert sleeps.waits == []


def test_500_is_retryable(provider: ScriptedServer) -> None:
    provider.script(CHAT, openai_error(500, "The server had an error", "server_error"))
    with pytest.raises(IntegrationError) as raised:
        LlmAgent().run(ctx(provider))
    assert raised.value.retryable and raised.value.to_dict()["action"] == "retry"


def test_a_slow_provider_times_out_retryably(provider: ScriptedServer) -> None:
    provider.script(CHAT, Answer(200, openai_completion("late"), delay=1.5))
    with pytest.raises(IntegrationError) as raised:
        LlmAgent().run(ctx(provider, timeout=1.5))
    assert raised.value.retryable and "did not answer within" in raised.value.message


def test_context_length_refusal_is_an_agent_error_with_advice(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        openai_error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
    )
    with pytest.raises(AgentError) as raised:
        LlmAgent().run(ctx(provider))
    error = raised.value.to_dict()
    assert error["kind"] == "agent" and error["action"] == "edit_and_retry" and "context window" in error["message"]


def test_local_servers_without_a_key_get_no_authorization_header(provider: ScriptedServer) -> None:
    provider.script(CHAT, Answer(200, openai_completion("hi")))
    context = ctx(provider)
    local = ResolvedConnection("model", "openai", {"base_url": provider.url + "/v1"}, {})
    context = AgentContext(**{**context.__dict__, "connections": lambda name: local, "report": {}})
    LlmAgent().run(context)
    assert "authorization" not in provider.requests(CHAT)[0].headers
