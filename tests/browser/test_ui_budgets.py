"""Costs and budgets in the browser: a step stopped at its execution's budget shows what was
spent, on what and against which limit, and is approved with a raised limit from its dialog;
the Workflows page shows model cost per day beside runs per day; the Connections page shows
a model connection's prices. The model and the tool are scripted servers on loopback."""

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
def priced(rest: Any) -> Iterator[tuple[ScriptedServer, str]]:
    with ScriptedServer() as server:
        name = f"priced-{uuid.uuid4().hex[:8]}"
        prices = {"m": {"input_per_million": 1000, "output_per_million": 2000}}
        rest.ok(
            "POST", "/connections", {"name": name, "kind": "openai", "base_url": server.url + "/v1", "prices": prices}
        )
        yield server, name


def _tool_call() -> Answer:
    return Answer(200, openai_completion(None, [("lookup", {"q": "A-1"})], 100, 10))


def test_the_budget_gate_shows_spending_and_is_approved_with_a_raised_limit(
    page: Any, ui: Any, rest: Any, priced: tuple[ScriptedServer, str]
) -> None:
    provider, connection = priced
    with ScriptedServer() as tools:
        tools.default("/lookup", Answer(200, {"order": "A-1"}))
        provider.script(
            CHAT, _tool_call(), _tool_call(), _tool_call(), Answer(200, openai_completion("Done.", None, 50, 5))
        )
        name = f"Budgeted {uuid.uuid4().hex[:6]}"
        workflow_id = rest.create_workflow(
            {
                "name": name,
                "trigger": {"type": "manual"},
                "budget": {"max_cost_usd": 0.25, "on_exceed": "pause"},
                "steps": [
                    {
                        "id": "agent",
                        "agent": "llm",
                        "instructions": "Find the order",
                        "retry": {"max_attempts": 1, "backoff_seconds": 0},
                        "config": {
                            "connection": connection,
                            "model": "m",
                            "tools": [
                                {
                                    "name": "lookup",
                                    "description": "Look an order up",
                                    "method": "GET",
                                    "url": tools.url + "/lookup",
                                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                                }
                            ],
                        },
                    }
                ],
            }
        )
        execution_id = rest.start(workflow_id)
        rest.wait_status(execution_id, {"waiting"})
        ui.sign_in()
        page.goto(f"/#/executions/{execution_id}")
        step = page.locator('li.step[data-step-id="agent"]')
        expect(step.locator(".pill-gate")).to_have_text("budget gate")
        gate = step.locator(".budget-gate")
        expect(gate.locator(".budget-spent")).to_have_text("$0.36 spent of $0.25")
        expect(gate).to_contain_text("Stopped before tool call 3 (lookup)")
        expect(gate.locator(".budget-on tbody tr")).to_have_count(1)
        expect(gate.locator(".budget-on tbody tr")).to_contain_text("$0.36")
        expect(step.locator(".tool-calls tbody tr")).to_have_count(2)  # the two calls made before it stopped
        expect(page.locator(".usage-total-execution")).to_contain_text("300 in / 30 out tokens · $0.36")
        ui.shot("budget-gate")

        step.get_by_role("button", name="Approve").click()
        dialog = page.locator("dialog.action-dialog")
        dialog.get_by_label("New max_cost_usd (now 0.25)").fill("0.3")
        dialog.get_by_role("button", name="Approve").click()
        expect(dialog).to_contain_text("not above the $0.36")  # refused: the raise must be above what was spent
        dialog.get_by_label("New max_cost_usd (now 0.25)").fill("1")
        dialog.get_by_role("button", name="Approve").click()
        expect(page.locator("#execution-status")).to_contain_text("Completed")
        expect(page.locator(".usage-total-execution")).to_contain_text("$0.42")
        expect(page.locator('tr[data-type="budget_approved"]')).to_contain_text("budget raised to max_cost_usd 1")

    page.goto("/#/workflows")
    row = page.locator(f'tr[data-workflow-id="{workflow_id}"]')
    expect(row.locator(".cost-total")).to_have_text("$0.42 in 14 d")
    expect(row.locator(".chart-total")).to_have_text("1 in 14 d")
    expect(row.locator(".cost-col")).to_have_count(14)

    page.goto("/#/connections")
    expect(page.locator(f'tr[data-connection="{connection}"]')).to_contain_text(
        "prices: m $1000 in / $2000 out per M tokens"
    )
