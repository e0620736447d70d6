"""The one-step ``Charge`` workflow (an ``http`` POST to a scripted integration) that the
side-effect tests of the API, the CLI and MCP share."""

from __future__ import annotations

from typing import Any

from tests.fakes.scripted import ScriptedServer


def charge_workflow(api: Any, integration: ScriptedServer, **step: Any) -> str:
    """Create the workflow; ``step`` adds to (or replaces) the ``charge`` step's fields."""
    return api.create_workflow(
        {
            "name": "Charge",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "charge",
                    "agent": "http",
                    "config": {"url": integration.url + "/charges", "method": "POST"},
                    **step,
                }
            ],
        }
    )


def charged_and_rejected(api: Any, worker: Any, integration: ScriptedServer) -> str:
    """An execution whose gated charge made its call and was then rejected (failed, retryable)."""
    execution_id = api.start(charge_workflow(api, integration, gate={"type": "approval"}))["execution_id"]
    worker.drain()
    assert api.post(f"/executions/{execution_id}/steps/charge/reject", {"comment": "wrong customer"})[0] == 200
    return execution_id
