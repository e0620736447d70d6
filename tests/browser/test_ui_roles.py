"""The web UI in Chromium: buttons appear only where the caller's role (and the gate's
approvers) allow."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect


def test_viewer_sees_no_buttons_that_its_role_does_not_allow(page: Any, ui: Any, rest: Any) -> None:
    viewer = rest.ok("POST", "/keys", {"name": f"viewer-{uuid.uuid4().hex[:6]}", "role": "viewer"})
    execution_id = rest.start(rest.workflow_id("Invoice approval"), {"amount": 5})
    rest.wait_status(execution_id, {"waiting"})

    ui.sign_in(viewer["key"])
    expect(page.locator("#who")).to_contain_text("viewer")
    expect(page.locator("tr", has_text="Invoice approval")).to_be_visible()
    expect(page.get_by_role("button", name="Run")).to_have_count(0)

    page.goto(f"/#/executions/{execution_id}")
    gate = page.locator('li.step[data-step-id="approve"]')
    expect(gate.locator(".badge")).to_have_text("Waiting for approval")
    expect(page.locator("button[data-action]")).to_have_count(0)  # no Approve, Cancel or Force Advance
    ui.shot("03-viewer-execution")


def test_operator_acts_but_cannot_force_advance_nor_decide_an_admins_gate(page: Any, ui: Any, rest: Any) -> None:
    operator = rest.ok("POST", "/keys", {"name": f"operator-{uuid.uuid4().hex[:6]}", "role": "operator"})
    workflow_id = rest.create_workflow(
        {
            "name": f"Admin gate {uuid.uuid4().hex[:6]}",
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "hold",
                    "name": "Admins decide",
                    "agent": "transform",
                    "instructions": "input",
                    "gate": {"type": "approval", "approvers": ["admin"]},
                }
            ],
        }
    )
    execution_id = rest.start(workflow_id)
    rest.wait_status(execution_id, {"waiting"})

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    ui.sign_in(operator["key"])
    expect(page.locator("#who")).to_contain_text("operator")
    expect(page.locator("tr", has_text="Invoice approval").get_by_role("button", name="Run")).to_be_visible()
    page.wait_for_load_state("networkidle")
    requested.clear()
    page.goto(f"/#/executions/{execution_id}")
    gate = page.locator('li.step[data-step-id="hold"]')
    expect(gate.locator(".badge")).to_have_text("Waiting for approval")
    expect(page.get_by_role("button", name="Cancel Execution")).to_be_visible()
    expect(gate.locator("button[data-action]")).to_have_count(0)  # not an approver; Force Advance is admin-only
    # the buttons are the server's `actions`: no workflow definition is fetched to learn the approvers
    assert [url for url in requested if "/executions/" in url] and not [
        url for url in requested if "/workflows/" in url
    ]
    ui.shot("71-operator-admin-gate")
