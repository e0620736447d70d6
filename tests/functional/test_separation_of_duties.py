"""Separation of duties (``"separate_from_starter": true`` on a gate): the key that started an
execution may not approve, reject or review it, over REST and over MCP; anyone else the gate
names still may."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api

STEPS = [{"id": "draft", "agent": "transform", "instructions": "{amount: input.amount}"}]


def _flow(gate_type: str = "approval") -> dict[str, Any]:
    return {
        "name": "Payout",
        "trigger": {"type": "manual", "inputs": [{"name": "amount", "type": "number"}]},
        "steps": [
            *STEPS,
            {
                "id": "sign",
                "agent": "transform",
                "instructions": "prev",
                "gate": {"type": gate_type, "separate_from_starter": True},
            },
        ],
    }


def _keys(api: Api) -> tuple[str, str]:
    return (
        api.post("/keys", {"name": "alice", "role": "operator"})[1]["key"],
        api.post("/keys", {"name": "bob", "role": "operator"})[1]["key"],
    )


def _step(view: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in view["steps"] if s["id"] == step_id)


def _mcp(api: Api, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = api.client.http.post(
        "/mcp",
        headers=api.headers(key),
        body=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        ),
    )
    assert response.status_code == 200, response.body
    return json.loads(response.body)["result"]


@pytest.mark.parametrize("gate_type, verb", [("approval", "approve"), ("approval", "reject"), ("review", "review")])
def test_the_starter_is_refused_with_403_naming_the_rule_and_another_approver_decides(
    api: Api, worker: Any, gate_type: str, verb: str
) -> None:
    alice, bob = _keys(api)
    workflow_id = api.create_workflow(_flow(gate_type))
    execution_id = api.start(workflow_id, {"amount": 5}, key=alice)["execution_id"]
    worker.drain()
    path = f"/executions/{execution_id}/steps/sign/{verb}"
    # The view's actions, computed per caller by the same rule, leave the decision out for the starter.
    assert not {"approve", "reject", "review"} & set(
        _step(api.get(f"/executions/{execution_id}", key=alice)[1], "sign")["actions"]
    )
    assert verb in _step(api.get(f"/executions/{execution_id}", key=bob)[1], "sign")["actions"]
    status, body = api.post(path, {"comment": "mine"}, key=alice)
    assert status == 403 and "separation of duties" in body["Message"] and "separate_from_starter" in body["Message"]
    assert api.execution(execution_id)["status"] == "waiting"
    status, body = api.post(path, {"comment": "checked"}, key=bob)
    assert status == 200, body
    assert body["status"] == ("failed" if verb == "reject" else "completed")


def test_over_mcp_the_key_that_started_through_mcp_may_not_approve(api: Api, worker: Any) -> None:
    alice, bob = _keys(api)
    api.create_workflow(_flow())
    tool = next(iter(api.get("/tools")[1]["workflows"]))
    started = _mcp(api, alice, tool, {"amount": 7})
    execution_id = started["structuredContent"]["execution_id"]
    worker.drain()
    seen = _mcp(api, alice, "get_execution", {"execution_id": execution_id})["structuredContent"]
    assert "except 'alice'" in seen["awaiting"][0]["who"] and seen["awaiting"][0]["separate_from_starter"]
    assert "approve" not in _step(seen, "sign")["actions"]
    seen_by_bob = _mcp(api, bob, "get_execution", {"execution_id": execution_id})["structuredContent"]
    assert {"approve", "reject"} <= set(_step(seen_by_bob, "sign")["actions"])
    refused = _mcp(api, alice, "approve_step", {"execution_id": execution_id, "step_id": "sign"})
    assert refused["isError"] and refused["structuredContent"]["error"]["status"] == 403
    assert "separation of duties" in refused["content"][0]["text"]
    approved = _mcp(api, bob, "approve_step", {"execution_id": execution_id, "step_id": "sign", "comment": "ok"})
    assert not approved["isError"] and approved["structuredContent"]["status"] == "completed"


def test_an_admin_who_started_is_bound_too_and_a_gate_without_the_rule_is_not(api: Api, worker: Any) -> None:
    strict = api.create_workflow(_flow())
    loose = api.create_workflow(
        {
            **_flow(),
            "steps": [
                *STEPS,
                {"id": "sign", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
            ],
        }
    )
    mine = api.start(strict, {"amount": 1})["execution_id"]
    other = api.start(loose, {"amount": 1})["execution_id"]
    worker.drain()
    assert api.post(f"/executions/{mine}/steps/sign/approve", {})[0] == 403
    assert api.post(f"/executions/{other}/steps/sign/approve", {})[0] == 200


def test_the_flag_must_be_a_boolean(api: Api) -> None:
    flow = _flow()
    flow["steps"][1]["gate"]["separate_from_starter"] = "yes"
    status, body = api.post("/workflows", flow)
    assert status == 400 and body["errors"][0]["field"].endswith("gate.separate_from_starter"), body
