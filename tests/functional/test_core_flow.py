from __future__ import annotations

from typing import Any

THREE_STEPS = {
    "name": "Order flow",
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "customer", "type": "string", "required": True},
            {"name": "amount", "type": "number", "required": True},
        ],
    },
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "{customer: input.customer, total: input.amount}"},
        {
            "id": "double",
            "agent": "transform",
            "instructions": "{customer: prev.customer, total: sum([prev.total, prev.total])}",
        },
        {"id": "summary", "agent": "transform", "instructions": "join(' ', [steps.draft.output.customer, 'owes'])"},
    ],
}


def test_execution_runs_to_completed_with_outputs_passed_along(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    started = api.start(wf, {"customer": "ACME", "amount": 21})
    assert started["status"] == "running"
    worker.drain()
    execution = api.execution(started["execution_id"])
    assert execution["status"] == "completed", execution
    outputs = {s["id"]: s["output"] for s in execution["steps"]}
    assert outputs["draft"] == {"customer": "ACME", "total": 21}
    assert outputs["summary"] == "ACME owes"
    assert [s["state"] for s in execution["steps"]] == ["completed"] * 3
    assert api.history_types(started["execution_id"])[0] == "execution_started"
    assert api.history_types(started["execution_id"])[-1] == "execution_completed"
