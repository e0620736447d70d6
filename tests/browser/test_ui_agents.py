"""AI agents in the browser: an llm step's usage and tool calls on the execution page, and a
cannot_complete failure shown with its missing fields and recommended action. The model is a
scripted OpenAI-compatible server on loopback; the app is the one ``make run`` serves."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fakes.providers import openai_completion
from tests.fakes.scripted import Answer, ScriptedServer

CHAT = "/v1/chat/completions"


@pytest.fixture
def model(rest: Any) -> Iterator[tuple[ScriptedServer, str]]:
    with ScriptedServer() as server:
        name = f"fake-{uuid.uuid4().hex[:8]}"
        rest.ok("POST", "/connections", {"name": name, "kind": "openai", "base_url": server.url + "/v1"})
        yield server, name


def _workflow(rest: Any, connection: str, tools_url: str) -> str:
    return rest.create_workflow(
        {
            "name": f"Agent {uuid.uuid4().hex[:6]}",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "ask",
                    "agent": "llm",
                    "instructions": "Look up order A-1 and summarise it",
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                    "config": {
                        "connection": connection,
                        "model": "llama3.2",
                        "tools": [
                            {
                                "name": "lookup_order",
                                "description": "Find an order",
                                "method": "GET",
                                "url": tools_url + "/orders/{{ id }}",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"id": {"type": "string"}},
                                    "required": ["id"],
                                },
                            }
                        ],
                    },
                }
            ],
        }
    )


def test_llm_step_shows_usage_and_tool_calls(page: Any, ui: Any, rest: Any, model: tuple[ScriptedServer, str]) -> None:
    provider, connection = model
    with ScriptedServer() as tools:
        tools.script("/orders/A-1", Answer(200, {"id": "A-1", "status": "shipped"}))
        provider.script(
            CHAT,
            Answer(
                200, openai_completion(None, [("lookup_order", {"id": "A-1"})], prompt_tokens=210, completion_tokens=12)
            ),
            Answer(200, openai_completion("Order A-1 has shipped.", prompt_tokens=260, completion_tokens=9)),
        )
        execution_id = rest.start(_workflow(rest, connection, tools.url))
        rest.wait_status(execution_id, {"completed"})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    step = page.locator('li.step[data-step-id="ask"]')
    expect(step.locator(".usage")).to_contain_text("470 input")
    expect(step.locator(".usage")).to_contain_text("21 output tokens")
    expect(step.locator(".pill-usage")).to_have_text("llama3.2")
    expect(step.locator("table.tool-calls .tool-name")).to_have_text(["lookup_order"])
    expect(step.locator("table.tool-calls .tool-status")).to_have_text(["200"])
    expect(step.locator("table.tool-calls")).to_contain_text('{"id":"A-1"}')
    ui.shot("40-llm-usage-and-tool-calls")


def test_cannot_complete_failure_shows_missing_fields_and_the_recommended_action(
    page: Any, ui: Any, rest: Any, model: tuple[ScriptedServer, str]
) -> None:
    provider, connection = model
    provider.script(
        CHAT,
        Answer(
            200,
            openai_completion(
                None, [("cannot_complete", {"reason": "The ticket names no order", "missing": ["order_id"]})]
            ),
        ),
    )
    execution_id = rest.start(_workflow(rest, connection, "https://orders.example"))
    rest.wait_status(execution_id, {"failed"})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    step = page.locator('li.step[data-step-id="ask"]')
    expect(step.locator(".error-kind")).to_have_text("agent")
    expect(step.locator(".error-message")).to_have_text("The ticket names no order")
    advice = step.locator(".error-action")
    expect(advice).to_have_attribute("data-action", "edit_and_retry")
    expect(advice).to_contain_text("edit the instructions and retry")
    expect(advice).to_contain_text("Missing: order_id")
    ui.shot("41-cannot-complete-with-action")
