"""Helpers shared by the monitoring tests: a gated workflow whose executions can be put
into any status through the real API, and starts with any trigger type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

GATED = {
    "name": "Gated",
    "trigger": {"type": "manual"},
    "steps": [{"id": "g", "agent": "transform", "instructions": "input", "gate": {"type": "approval"}}],
}


@dataclass
class Run:
    execution_id: str
    workflow_id: str
    trigger: str
    started_at: str
    status: str = "running"


def start(api: Any, aws: Any, workflow_id: str, trigger: str = "manual") -> Run:
    """Start one execution with the given trigger type (manual through the API)."""
    if trigger == "manual":
        body = api.start(workflow_id)
        return Run(body["execution_id"], workflow_id, trigger, body["started_at"])
    from chalicelib.domain.machine import Actor

    state = aws.executions.start(workflow_id, {}, {"type": trigger, "by": "test"}, Actor("test-trigger", "admin"))
    return Run(state.execution_id, workflow_id, trigger, state.started_at)


def settle(api: Any, run: Run, target: str) -> None:
    """Move a waiting execution (its gate reached) to ``target`` through the API."""
    paths = {"completed": "steps/g/approve", "failed": "steps/g/reject", "cancelled": "cancel"}
    if target in paths:
        reason = {"comment": "rejected by the test"} if target == "failed" else {}
        status, body = api.post(f"/executions/{run.execution_id}/{paths[target]}", reason)
        assert status == 200, body
        assert body["status"] == target, body
    run.status = target


def at(clock: Any, moment: datetime) -> None:
    clock.now = moment


def pages(api: Any, path: str, limit: int) -> list[list[str]]:
    """Follow ``next_token`` to the end; the execution ids of each page."""
    out: list[list[str]] = []
    token = None
    sep = "&" if "?" in path else "?"
    for _ in range(200):
        url = f"{path}{sep}limit={limit}" + (f"&next_token={token}" if token else "")
        status, body = api.get(url)
        assert status == 200, (url, body)
        out.append([item["execution_id"] for item in body["items"]])
        token = body["next_token"]
        if token is None:
            return out
    raise AssertionError("pagination did not end")
