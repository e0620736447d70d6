from __future__ import annotations

import pytest

from chalicelib.agents import (
    AGENTS,
    Agent,
    AgentError,
    IntegrationError,
    StepError,
    UnknownAgent,
    agent_names,
    get_agent,
    register,
)


def test_builtin_agents_are_registered_on_import() -> None:
    assert {"transform", "http", "python"} <= set(agent_names())
    assert all(isinstance(get_agent(name), Agent) for name in ("transform", "http", "python"))


def test_unknown_agent_name_fails_loudly_listing_known_agents() -> None:
    with pytest.raises(UnknownAgent) as caught:
        get_agent("transfrom")

    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "unknown agent 'transfrom'; known agents: email, http, llm, python, transform"


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(get_agent("http"))


def test_register_adds_a_new_agent() -> None:
    class Echo:
        name = "echo-for-test"

        def validate(self, step, path):  # type: ignore[no-untyped-def]
            return []

        def run(self, ctx):  # type: ignore[no-untyped-def]
            return ctx.data["prev"]

    agent = Echo()
    try:
        assert register(agent) is agent
        assert get_agent("echo-for-test") is agent
    finally:
        AGENTS.pop("echo-for-test", None)


def test_step_errors_serialise_kind_message_retryable_and_details() -> None:
    agent_error = AgentError("no good", retryable=False, details={"expression": "a"})
    integration = IntegrationError("POST https://x/y returned HTTP 502", status=502, details={"method": "POST"})

    assert isinstance(agent_error, StepError) and isinstance(integration, StepError)
    assert agent_error.to_dict() == {
        "kind": "agent",
        "message": "no good",
        "retryable": False,
        "details": {"expression": "a"},
        "action": "edit_and_retry",
    }
    assert integration.status == 502
    assert integration.to_dict() == {
        "kind": "integration",
        "message": "POST https://x/y returned HTTP 502",
        "retryable": True,
        "details": {"method": "POST", "status": 502},
        "action": "retry",
    }
