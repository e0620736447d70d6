"""The llm agent over the Anthropic Messages format (scripted loopback provider, requests checked
against the anthropic SDK's types) and Bedrock Converse (botocore's Stubber, which checks every
call against the real service model)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.agents import AgentContext, AgentError, IntegrationError
from chalicelib.agents.llm import LlmAgent
from chalicelib.agents.llm.bedrock_converse import BedrockConverse
from chalicelib.domain.connections import ResolvedConnection
from tests.fakes.providers import anthropic_error, anthropic_message, assert_anthropic_requests_fit
from tests.fakes.scripted import Answer, ScriptedServer

KEY = "sk-ant-unit-8c2f"
MESSAGES = "/v1/messages"
SCHEMA = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]}


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")  # the fakes listen on loopback


@pytest.fixture
def provider() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def ctx(connection: ResolvedConnection, config: dict[str, Any] | None = None, tools_url: str = "") -> AgentContext:
    return AgentContext(
        "ex_2",
        "draft",
        1,
        "Draft a reply",
        {"connection": connection.name, "model": "m-1", **(config or {})},
        {"input": {"ticket": "Where is my parcel?"}, "prev": None, "steps": {}},
        30,
        connections=lambda name: connection,
    )


def anthropic(provider: ScriptedServer) -> ResolvedConnection:
    return ResolvedConnection("claude", "anthropic", {"base_url": provider.url}, {"api_key": KEY})


def test_anthropic_plain_answer_with_usage_and_headers(provider: ScriptedServer) -> None:
    provider.script(MESSAGES, Answer(200, anthropic_message("Your parcel left on Monday.")))
    context = ctx(anthropic(provider))
    assert LlmAgent().run(context) == {"text": "Your parcel left on Monday."}
    assert context.report["usage"] == {
        "model": "m-1",
        "input_tokens": 2095,
        "output_tokens": 503,
        "requests": 1,
        "cost_usd": None,  # the connection has no prices
    }
    [body] = assert_anthropic_requests_fit(provider)
    seen = provider.requests(MESSAGES)[0]
    assert seen.headers["x-api-key"] == KEY and seen.headers["anthropic-version"] == "2023-06-01"
    assert body["max_tokens"] == 1024 and body["tools"][0]["name"] == "cannot_complete"


def test_anthropic_structured_output_with_a_tool_round_trip(provider: ScriptedServer) -> None:
    with ScriptedServer() as tools:
        tools.script("/parcels", Answer(200, {"status": "in transit"}))
        provider.script(
            MESSAGES,
            Answer(200, anthropic_message(None, [("track", {"ticket": "T-1"})])),
            Answer(200, anthropic_message('{"reply": "It is in transit."}')),
        )
        tool = {
            "name": "track",
            "description": "Track a parcel",
            "method": "POST",
            "url": tools.url + "/parcels",
            "parameters": {"type": "object", "properties": {"ticket": {"type": "string"}}},
        }
        output = LlmAgent().run(ctx(anthropic(provider), {"output_schema": SCHEMA, "tools": [tool]}))
        assert output["reply"] == "It is in transit." and output["tool_calls"][0]["status"] == 200
        assert tools.requests("/parcels")[0].json == {"ticket": "T-1"}
        assert tools.requests("/parcels")[0].headers["idempotency-key"] == "ex_2:draft:1:1"
    _, second = assert_anthropic_requests_fit(provider)
    assert second["messages"][1]["content"][0]["type"] == "tool_use"
    result = second["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == second["messages"][1]["content"][0]["id"]


def test_anthropic_cannot_complete_and_auth_errors(provider: ScriptedServer) -> None:
    provider.script(
        MESSAGES,
        Answer(
            200,
            anthropic_message(
                None, [("cannot_complete", {"reason": "No tracking number", "missing": ["tracking_number"]})]
            ),
        ),
        anthropic_error(401, "authentication_error", "invalid x-api-key"),
        anthropic_error(529, "overloaded_error", "Overloaded"),
    )
    with pytest.raises(AgentError) as quit_error:
        LlmAgent().run(ctx(anthropic(provider)))
    assert quit_error.value.to_dict()["missing"] == ["tracking_number"]
    with pytest.raises(IntegrationError) as auth:
        LlmAgent().run(ctx(anthropic(provider)))
    assert not auth.value.retryable and auth.value.to_dict()["action"] == "update_connection"
    assert "update connection claude" in auth.value.message
    with pytest.raises(IntegrationError) as overloaded:
        LlmAgent().run(ctx(anthropic(provider)))
    assert overloaded.value.retryable


def _converse_answer(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
        "metrics": {"latencyMs": 420},
    }


def _bedrock() -> tuple[LlmAgent, Stubber, ResolvedConnection]:
    client = boto3.client("bedrock-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    agent = LlmAgent(wires={"bedrock": BedrockConverse(client_factory=lambda region, timeout: client)})
    return agent, stubber, ResolvedConnection("aws", "bedrock", {"region": "eu-west-1"}, {})


def test_bedrock_converse_text_and_tool_use_checked_against_the_service_model() -> None:
    agent, stubber, connection = _bedrock()
    expected = {"modelId": "m-1", "messages": ANY, "system": ANY, "toolConfig": ANY}
    stubber.add_response(
        "converse",
        _converse_answer(
            [
                {
                    "toolUse": {
                        "toolUseId": "tu-1",
                        "name": "cannot_complete",
                        "input": {"reason": "unclear", "missing": ["order"]},
                    }
                }
            ],
            "tool_use",
        ),
        expected,
    )
    stubber.add_response("converse", _converse_answer([{"text": '{"reply": "ok"}'}]), expected)
    with stubber:
        with pytest.raises(AgentError) as raised:
            agent.run(ctx(connection))
        assert raised.value.to_dict()["missing"] == ["order"]
        context = ctx(connection, {"output_schema": SCHEMA})
        assert agent.run(context) == {"reply": "ok"}
        assert context.report["usage"]["input_tokens"] == 30
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code,status,retryable,action",
    [
        ("ThrottlingException", 429, True, "retry"),
        ("AccessDeniedException", 403, False, "update_connection"),
        ("ServiceUnavailableException", 503, True, "retry"),
        ("ValidationException", 400, False, "edit_and_retry"),
    ],
)
def test_bedrock_errors_map_like_the_http_providers(code: str, status: int, retryable: bool, action: str) -> None:
    agent, stubber, connection = _bedrock()
    message = "Input is too long for requested model." if code == "ValidationException" else code
    stubber.add_client_error("converse", service_error_code=code, service_message=message, http_status_code=status)
    with stubber, pytest.raises((AgentError, IntegrationError)) as raised:
        agent.run(ctx(connection))
    error = raised.value.to_dict()
    assert error["retryable"] is retryable and error["action"] == action
    if code == "ValidationException":
        assert error["kind"] == "agent" and "context window" in error["message"]


def test_definitions_are_checked_when_saved() -> None:
    agent = LlmAgent()
    good = {
        "id": "s",
        "agent": "llm",
        "instructions": "Do it",
        "config": {"connection": "m", "model": "x", "output_schema": SCHEMA, "max_tool_calls": 3},
    }
    assert agent.validate(good, "steps[0]") == []
    bad = {
        "id": "s",
        "agent": "llm",
        "instructions": " ",
        "config": {
            "model": "",
            "output_schema": {"type": "object", "oneOf": []},
            "temperature": 3,
            "max_tokens": 0,
            "tools": [{"name": "cannot_complete", "url": "ftp://x", "description": ""}],
            "colour": 1,
        },
    }
    fields = {e.field for e in agent.validate(bad, "steps[0]")}
    assert fields >= {
        "steps[0].instructions",
        "steps[0].config.connection",
        "steps[0].config.model",
        "steps[0].config.output_schema",
        "steps[0].config.temperature",
        "steps[0].config.max_tokens",
        "steps[0].config.tools[0].name",
        "steps[0].config.tools[0].url",
        "steps[0].config.tools[0].description",
        "steps[0].config.colour",
    }
    refs = agent.connection_refs(
        {
            **good,
            "config": {
                **good["config"],
                "tools": [{"name": "t", "connection": "crm", "url": "https://x.example", "description": "d"}],
            },
        },
        "steps[0]",
    )
    assert [(r.field, r.name, r.kinds) for r in refs] == [
        ("steps[0].config.connection", "m", ("openai", "anthropic", "bedrock")),
        ("steps[0].config.tools[0].connection", "crm", ("bearer", "header", "basic", "oauth2")),
    ]
