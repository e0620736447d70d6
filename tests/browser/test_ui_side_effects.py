"""The side-effect ledger in Chromium: a step that already POSTed lists the call, and the retry
confirmation says so and offers replay (the default) or rerun; a replay calls nothing again."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from tests.fakes.scripted import Answer, ScriptedServer


def test_retry_confirmation_lists_the_post_already_made_and_a_replay_does_not_repeat_it(
    page: Any, ui: Any, rest: Any
) -> None:
    with ScriptedServer() as integration:
        integration.script("/charges", Answer(201, {"charge": "C-1"}), Answer(201, {"charge": "C-2"}))
        workflow_id = rest.create_workflow(
            {
                "name": f"Charge {uuid.uuid4().hex[:6]}",
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "id": "charge",
                        "agent": "http",
                        "config": {"url": integration.url + "/charges", "method": "POST"},
                        "gate": {"type": "approval"},
                    }
                ],
            }
        )
        execution_id = rest.start(workflow_id)
        rest.wait_status(execution_id, {"waiting"})
        rest.ok("POST", f"/executions/{execution_id}/steps/charge/reject", {"comment": "wrong customer"})

        ui.sign_in()
        page.goto(f"/#/executions/{execution_id}")
        step = page.locator('li.step[data-step-id="charge"]')
        expect(step.locator(".badge")).to_have_text("Failed")
        table = step.locator("table.side-effects")
        expect(table).to_contain_text(f"POST {integration.url}/charges")
        expect(table.locator('tr[data-status="succeeded"]')).to_contain_text(f"{execution_id}:charge:1:1")

        step.get_by_role("button", name="Retry", exact=True).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("This step already made 1 POST call:")
        expect(dialog.locator(".side-effects-notice li")).to_contain_text(f"POST {integration.url}/charges")
        expect(dialog.get_by_label("Calls already made")).to_have_value("replay")
        ui.shot("60-retry-confirms-side-effects")
        dialog.get_by_role("button", name="Retry", exact=True).click()

        expect(step.locator(".badge")).to_have_text("Waiting for approval")
        expect(step.locator('table.side-effects tr[data-status="replayed"]')).to_contain_text("from attempt 1")
        assert len(integration.requests("/charges")) == 1
        history = rest.ok("GET", f"/executions/{execution_id}/history")["items"]
        assert [e["details"]["side_effects"] for e in history if e["type"] == "step_retried"] == ["replay"]

        # the skip confirmation lists the call too
        rest.ok("POST", f"/executions/{execution_id}/steps/charge/reject", {"comment": "still wrong"})
        expect(step.locator(".badge")).to_have_text("Failed")
        step.get_by_role("button", name="Skip").click()
        expect(page.get_by_role("dialog")).to_contain_text("This step already made 1 POST call:")
