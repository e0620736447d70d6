"""Workflows and helpers shared by the ``test_operator_*`` functional tests."""

from __future__ import annotations

from typing import Any

CALLABLES = "chalicelib.samples.callables"


def py(step_id: str, fn: str, **extra: Any) -> dict[str, Any]:
    config = {"callable": f"{CALLABLES}:{fn}", **extra.pop("config", {})}
    return {"id": step_id, "agent": "python", "config": config, **extra}


def tf(step_id: str, instructions: str = "prev", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "agent": "transform", "instructions": instructions, **extra}


def workflow(*steps: dict[str, Any], name: str = "Operator test") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {
            "type": "manual",
            "inputs": [{"name": "customer", "type": "string", "required": False, "default": "ACME"}],
        },
        "steps": list(steps),
    }


#: draft (fails on attempt 1, no retry policy) -> post -> notify
FAILS_ONCE = workflow(py("draft", "flaky"), tf("post", "{posted: prev.attempt}"), tf("notify", "prev"))
#: draft fails for good -> post
FAILS = workflow(py("draft", "fails_permanently", config={"message": "the ledger is closed"}), tf("post", "prev"))
#: draft -> approve (approval gate, manager-key) -> post
APPROVAL = workflow(
    tf("draft", "{customer: input.customer, total: `10`}"),
    tf("approve", "prev", gate={"type": "approval", "approvers": ["manager-key"]}),
    tf("post", "prev"),
)
#: draft -> review (review gate, any operator) -> post (receives the reviewed output)
REVIEW = workflow(
    tf("draft", "{customer: input.customer, total: `10`}"),
    tf("review", "prev", gate={"type": "review"}),
    tf("post", "{sent: prev}"),
)


class Keys:
    """API keys of each role, created through ``POST /keys`` as the admin."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.operator = self.make("olivia", "operator")
        self.manager = self.make("manager-key", "operator")
        self.viewer = self.make("victor", "viewer")
        self.admin2 = self.make("ada", "admin")

    def make(self, name: str, role: str) -> str:
        status, body = self.api.post("/keys", {"name": name, "role": role})
        assert status == 201, body
        return body["key"]


def step_of(execution: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in execution["steps"] if s["id"] == step_id)


def history(api: Any, execution_id: str) -> list[dict[str, Any]]:
    status, body = api.get(f"/executions/{execution_id}/history")
    assert status == 200, body
    return body["items"]


def active_count(api: Any, workflow_id: str) -> int:
    status, body = api.get("/workflows")
    assert status == 200, body
    return next(w["active_executions"] for w in body["items"] if w["workflow_id"] == workflow_id)


def listed_status(api: Any, workflow_id: str, execution_id: str) -> str:
    status, body = api.get(f"/workflows/{workflow_id}/executions")
    assert status == 200, body
    return next(item["status"] for item in body["items"] if item["execution_id"] == execution_id)


def act(
    api: Any, execution_id: str, action: str, step_id: str | None = None, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    path = (
        f"/executions/{execution_id}/cancel"
        if action == "cancel"
        else f"/executions/{execution_id}/steps/{step_id}/{action}"
    )
    return api.post(path, body if body is not None else {}, key=key)
