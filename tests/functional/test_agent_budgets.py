"""Costs and budgets of model steps through the real handlers on moto, against a scripted
OpenAI-compatible server and a scripted tool server on loopback: a tool loop stopped by its
budget mid-attempt and approved with a raised budget, the ``fail`` mode, a reject, and cost
figures (per attempt, per execution, per stats bucket) that add up across retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.providers import openai_completion
from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional import test_cli

# the CLI tests' fixtures: the app served on 127.0.0.1, and the CLI run against it
url, stepline, ok = test_cli.url, test_cli.stepline, test_cli.ok

CHAT = "/v1/chat/completions"
#: 1 input token = $0.001, 1 output token = $0.002: round figures for the loop tests
ROUND_PRICES = {"m": {"input_per_million": 1000, "output_per_million": 2000}}


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def tools() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        server.default("/lookup", Answer(200, {"order": "A-1", "status": "shipped"}))
        yield server


def _loop_workflow(
    api: Any, provider: ScriptedServer, tools: ScriptedServer, budget: dict[str, Any], prices: Any = ROUND_PRICES
) -> str:
    body: dict[str, Any] = {"name": "model", "kind": "openai", "base_url": provider.url + "/v1"}
    if prices is not None:
        body["prices"] = prices
    status, answer = api.post("/connections", body)
    assert status == 201, answer
    return api.create_workflow(
        {
            "name": "Looper",
            "trigger": {"type": "manual"},
            "budget": budget,
            "steps": [
                {
                    "id": "agent",
                    "agent": "llm",
                    "instructions": "Find the order",
                    "config": {
                        "connection": "model",
                        "model": "m",
                        "max_tool_calls": 20,
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
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                }
            ],
        }
    )


def _tool_call(prompt: int = 100, completion: int = 10) -> Answer:
    return Answer(200, openai_completion(None, [("lookup", {"q": "A-1"})], prompt, completion))


def _history(api: Any, execution_id: str) -> list[dict[str, Any]]:
    status, page = api.get(f"/executions/{execution_id}/history")
    assert status == 200
    return page["items"] if isinstance(page, dict) else page


def _attempt_costs(api: Any, execution_id: str) -> list[Decimal]:
    """Each attempt's ``cost_usd`` as recorded in the history (the events that end an attempt that
    made at least one model request)."""
    costs = []
    for event in _history(api, execution_id):
        usage = event["details"].get("usage")
        if (
            usage
            and usage["requests"]
            and event["type"] in ("step_completed", "approval_requested", "step_failed", "step_timed_out")
        ):
            costs.append(Decimal(str(usage["cost_usd"])))
    return costs


def test_a_tool_loop_stops_at_its_budget_mid_attempt_and_an_approved_raise_lets_it_finish(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    # each request costs 100 x $0.001 + 10 x $0.002 = $0.12; the budget is $0.25
    provider.script(CHAT, _tool_call(), _tool_call(), _tool_call(), _tool_call(), _tool_call())
    workflow_id = _loop_workflow(api, provider, tools, {"max_cost_usd": 0.25, "on_exceed": "pause"})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()

    execution = api.execution(execution_id)
    step = execution["steps"][0]
    assert execution["status"] == "waiting" and step["state"] == "waiting_for_approval"
    assert step["gate"] == "budget"
    # $0.12 after request 1, $0.24 after request 2 (both under): request 3 is made and crosses the line,
    # so its tool call is the one not made
    assert len(provider.requests(CHAT)) == 3 and len(tools.requests("/lookup")) == 2
    budget = step["budget"]
    assert budget["stopped_before"] == "tool call 3 (lookup)"
    assert budget["reached"] == ["max_cost_usd"] and budget["limits"]["max_cost_usd"] == 0.25
    assert budget["spent"]["cost_usd"] == 0.36 and budget["spent"]["tokens"] == 330
    assert [(e["step_id"], e["attempt"], e["cost_usd"]) for e in budget["on"]] == [("agent", 1, 0.36)]
    assert step["output"] is None and step["usage"]["cost_usd"] == 0.36
    assert {"approve", "reject"} <= set(step["actions"]) and "review" not in step["actions"]
    assert execution["usage_total"] == {"input_tokens": 300, "output_tokens": 30, "cost_usd": 0.36}

    # a "raise" that is not above what was spent is refused, and changes nothing
    status, refused = api.post(f"/executions/{execution_id}/steps/agent/approve", {"max_cost_usd": 0.3})
    assert status == 409 and "0.36" in refused["Message"]
    status, bad = api.post(f"/executions/{execution_id}/steps/agent/approve", {"max_cost_usd": "lots"})
    assert status == 400 and bad["errors"][0]["field"] == "max_cost_usd"

    status, approved = api.post(
        f"/executions/{execution_id}/steps/agent/approve", {"max_cost_usd": 0.6, "comment": "worth it"}
    )
    assert status == 200, approved
    worker.drain()
    execution = api.execution(execution_id)
    step = execution["steps"][0]
    # the new attempt starts from the instructions with $0.36 spent: two more requests ($0.48, $0.60)
    # then it stops before its second tool call
    assert step["attempt"] == 2 and step["gate"] == "budget"
    assert step["budget"]["stopped_before"] == "tool call 2 (lookup)"
    assert step["budget"]["limits"]["max_cost_usd"] == 0.6
    assert [(e["attempt"], e["cost_usd"]) for e in step["budget"]["on"]] == [(1, 0.36), (2, 0.24)]
    [raise_] = [e for e in _history(api, execution_id) if e["type"] == "budget_approved"]
    assert raise_["actor"] == "admin" and raise_["details"]["new_limits"]["max_cost_usd"] == 0.6
    assert raise_["details"]["previous_limits"]["max_cost_usd"] == 0.25 and raise_["details"]["comment"] == "worth it"
    assert "approved by admin: budget raised to max_cost_usd 0.6" in raise_["message"]

    # approve without new limits: the next attempt may run past the budget, and finishes
    provider.script(CHAT, _tool_call(), Answer(200, openai_completion("Order A-1 shipped.", None, 50, 5)))
    status, _ = api.post(f"/executions/{execution_id}/steps/agent/approve", {})
    assert status == 200
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    assert execution["steps"][0]["output"]["text"] == "Order A-1 shipped."
    # 0.36 + 0.24 + (0.12 + 0.05 + 0.01)
    assert execution["usage_total"]["cost_usd"] == 0.78
    assert sum(_attempt_costs(api, execution_id)) == Decimal("0.78")


def test_fail_mode_fails_the_step_as_agent_with_edit_and_retry(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    provider.script(CHAT, _tool_call(), _tool_call(), _tool_call())
    workflow_id = _loop_workflow(api, provider, tools, {"max_tokens": 150, "on_exceed": "fail"}, prices=None)
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    error = execution["steps"][0]["error"]
    assert execution["status"] == "failed" and error["kind"] == "agent"
    assert error["action"] == "edit_and_retry" and error["retryable"] is False and error["budget_exceeded"] is True
    # 110 tokens after request 1 (its tool call runs), 220 after request 2: its tool call is not made
    assert error["details"]["budget"]["stopped_before"] == "tool call 2 (lookup)"
    assert len(tools.requests("/lookup")) == 1
    assert [c["status"] for c in error["details"]["tool_calls"]] == [200]
    assert execution["usage_total"]["input_tokens"] == 200 and execution["usage_total"]["output_tokens"] == 20
    assert "approve" not in execution["steps"][0]["actions"]


def test_reject_at_a_budget_gate_fails_the_step(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    provider.script(CHAT, _tool_call(), _tool_call())
    workflow_id = _loop_workflow(api, provider, tools, {"max_tokens": 100})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["steps"][0]["gate"] == "budget"
    status, rejected = api.post(f"/executions/{execution_id}/steps/agent/reject", {"comment": "too costly"})
    assert status == 200
    step = rejected["steps"][0]
    assert rejected["status"] == "failed" and step["error"]["kind"] == "rejected"
    assert step["decision"]["by"] == "admin"


def test_a_dollar_budget_refuses_a_model_without_a_price_before_spending(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    workflow_id = _loop_workflow(api, provider, tools, {"max_cost_usd": 1}, prices={"other": ROUND_PRICES["m"]})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    error = api.execution(execution_id)["steps"][0]["error"]
    assert error["kind"] == "agent" and error["action"] == "update_connection"
    assert "no price for model m" in error["message"] and provider.requests(CHAT) == []


def test_costs_add_up_across_retries_per_execution_and_per_stats_bucket(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    # $0.15 / $0.60 per million: 123 in + 45 out = $0.00004545, rounded half up to $0.000045 per attempt
    prices = {"mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
    assert api.post("/connections", {"name": "mini", "kind": "openai", "base_url": provider.url + "/v1"})[0] == 201
    status, updated = api.put("/connections/mini", {"prices": prices})
    assert status == 200 and updated["prices"] == prices
    provider.script(
        CHAT,
        Answer(500, {"error": {"message": "overloaded"}}),  # attempt 1: no usage (the request failed)
        Answer(200, openai_completion("not json", None, 123, 45)),  # attempt 2: answer, then a repair...
        Answer(200, openai_completion("still not", None, 123, 45)),  # ...that fails the step
        Answer(200, openai_completion('{"ok": true}', None, 1001, 333)),  # the operator's retry
    )
    workflow_id = api.create_workflow(
        {
            "name": "Costs",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "ask",
                    "agent": "llm",
                    "instructions": "Answer",
                    "config": {
                        "connection": "mini",
                        "model": "mini",
                        "output_schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                    },
                    "retry": {"max_attempts": 2, "backoff_seconds": 0},
                }
            ],
        }
    )
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "failed"
    assert api.post(f"/executions/{execution_id}/steps/ask/retry")[0] == 200
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed"
    costs = _attempt_costs(api, execution_id)
    # attempt 2: 246 in, 90 out = $0.0000909 -> $0.000091; attempt 3: 1001 in, 333 out = $0.00035 (0.00015015
    # + 0.0001998 = 0.00034995 -> 0.00035)
    assert costs == [Decimal("0.000091"), Decimal("0.00035")]
    total = execution["usage_total"]
    assert Decimal(str(total["cost_usd"])) == sum(costs) == Decimal("0.000441")
    assert total["input_tokens"] == 246 + 1001 and total["output_tokens"] == 90 + 333
    assert execution["steps"][0]["usage_total"] == total
    status, stats = api.get(f"/workflows/{workflow_id}/stats?bucket=hour")
    assert status == 200
    assert stats["totals"]["cost_usd"] == total["cost_usd"]
    assert sum(Decimal(str(b["cost_usd"])) for b in stats["buckets"]) == sum(costs)


def test_prices_and_budgets_are_validated_field_by_field(api: Any) -> None:
    status, body = api.post(
        "/connections",
        {"name": "x", "kind": "openai", "prices": {"m": {"input_per_million": -1, "output_per_million": "2"}}},
    )
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"prices.m.input_per_million", "prices.m.output_per_million"}
    status, body = api.post("/connections", {"name": "y", "kind": "bearer", "token": "t", "prices": {}})
    assert status == 400 and body["errors"][0]["field"] == "prices"
    definition = {
        "name": "B",
        "trigger": {"type": "manual"},
        "steps": [{"id": "a", "agent": "transform", "instructions": "input"}],
    }
    for budget, field in (
        ({"on_exceed": "pause"}, "budget"),
        ({"max_tokens": 0}, "budget.max_tokens"),
        ({"max_cost_usd": True}, "budget.max_cost_usd"),
        ({"max_cost_usd": 1, "on_exceed": "warn"}, "budget.on_exceed"),
        ({"max_cost_usd": 1, "max_dollars": 2}, "budget.max_dollars"),
        ("cheap", "budget"),
    ):
        status, body = api.post("/workflows", {**definition, "budget": budget})
        assert status == 400, budget
        assert field in [e["field"] for e in body["errors"]], (budget, body)
    status, created = api.post("/workflows", {**definition, "budget": {"max_cost_usd": 0.5}})
    assert status == 201 and created["budget"] == {"max_cost_usd": 0.5, "on_exceed": "pause"}


def test_new_limits_at_an_approval_gate_are_refused(api: Any, worker: Any) -> None:
    workflow_id = api.create_workflow(
        {
            "name": "Gate",
            "trigger": {"type": "manual"},
            "steps": [{"id": "a", "agent": "transform", "instructions": "input", "gate": {"type": "approval"}}],
        }
    )
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    status, body = api.post(f"/executions/{execution_id}/steps/a/approve", {"max_tokens": 10})
    assert status == 409 and "budget" in body["Message"]


def _mcp(api: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = api.client.http.post(
        "/mcp",
        headers=api.headers(),
        body=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        ),
    )
    assert response.status_code == 200, response.body
    return json.loads(response.body)["result"]


def test_over_mcp_a_budget_gate_is_shown_and_approved_with_a_raised_limit(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    provider.script(CHAT, _tool_call(), _tool_call(), Answer(200, openai_completion("Found it.", None, 10, 5)))
    workflow_id = _loop_workflow(api, provider, tools, {"max_tokens": 100})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    seen = _mcp(api, "get_execution", {"execution_id": execution_id})
    [awaiting] = seen["structuredContent"]["awaiting"]
    assert awaiting["decision"] == "budget" and awaiting["budget"]["spent"]["tokens"] == 110
    assert "stopped at the execution's budget (110 tokens" in seen["content"][0]["text"]
    assert seen["structuredContent"]["usage_total"]["input_tokens"] == 100
    low = _mcp(api, "approve_step", {"execution_id": execution_id, "step_id": "agent", "max_tokens": 110})
    assert low["isError"] is True and "not above the 110 tokens" in low["content"][0]["text"]
    bad = _mcp(api, "reject_step", {"execution_id": execution_id, "step_id": "agent", "max_tokens": 500})
    assert bad["isError"] is True and bad["structuredContent"]["error"]["errors"][0]["field"] == "max_tokens"
    approved = _mcp(api, "approve_step", {"execution_id": execution_id, "step_id": "agent", "max_tokens": 500})
    assert approved.get("isError") is not True, approved
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed" and execution["usage_total"]["input_tokens"] == 210


def test_stepline_shows_costs_the_budget_gate_with_its_hint_and_approves_with_a_raise(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer, stepline: Any
) -> None:
    provider.script(
        CHAT, _tool_call(), _tool_call(), _tool_call(), Answer(200, openai_completion("Done.", None, 50, 5))
    )
    workflow_id = _loop_workflow(api, provider, tools, {"max_cost_usd": 0.25})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    shown = ok(stepline("show", execution_id)).output
    assert "model usage (all steps and attempts): 300 in / 30 out tokens, $0.36" in shown
    assert "budget reached: $0.36 of $0.25 spent (on agent#1 $0.36); stopped before tool call 3 (lookup)" in shown
    waiting = stepline("follow", execution_id, "--stop-on-wait", "--interval", "0.05")
    assert waiting.exit_code == 3, waiting.output
    assert f"stepline approve {execution_id} agent --max-cost-usd <new limit>" in waiting.output
    approved = ok(stepline("approve", execution_id, "--max-cost-usd", "1", "-m", "go on"))
    assert "approved step agent" in approved.output
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    out = ok(stepline("stats", workflow_id, "--bucket", "hour")).output
    total = next(line for line in out.splitlines() if line.strip("│ ").startswith("total"))
    assert "$0.42" in total and "350" in total  # 0.36 + (50 x $0.001 + 5 x $0.002); 300 + 50 tokens in
    document = json.loads(ok(stepline("--json", "stats", workflow_id, "--bucket", "hour")).stdout)
    assert document["totals"]["cost_usd"] == 0.42


def test_force_advance_past_a_budget_gate_skips_the_step(
    api: Any, worker: Any, provider: ScriptedServer, tools: ScriptedServer
) -> None:
    provider.script(CHAT, _tool_call(), _tool_call())
    workflow_id = _loop_workflow(api, provider, tools, {"max_tokens": 100})
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    [gate] = [e for e in _history(api, execution_id) if e["type"] == "approval_requested"]
    assert gate["message"] == (
        "step agent (attempt 1) stopped at the execution's budget (max_tokens: 110 tokens, $0.12 spent) "
        "before tool call 1 (lookup); waits for a decision by any operator"
    )
    status, forced = api.post(f"/executions/{execution_id}/steps/agent/force-advance", {"comment": "enough"})
    assert status == 200 and forced["status"] == "completed"
    assert forced["steps"][0]["state"] == "skipped" and forced["steps"][0]["output"] is None
