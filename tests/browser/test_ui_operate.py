"""The web UI in Chromium: run a workflow through its form, then operate executions (approve a
gate, edit and retry a failed step, review with an amended output, cancel)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from playwright.sync_api import expect

from chalicelib.samples.workflows import ORDER_ENRICHMENT


def _unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def test_run_form_checks_in_the_browser_then_on_the_server_and_the_run_completes(page: Any, ui: Any, rest: Any) -> None:
    definition = copy.deepcopy(ORDER_ENRICHMENT)
    definition["name"] = _unique("Orders")
    workflow_id = rest.create_workflow(definition)
    ui.sign_in()
    page.locator("tr", has_text=definition["name"]).get_by_role("button", name="Run").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Requested priority")).to_have_value("normal")  # the enum's default

    # 1. the browser: required fields, nothing sent
    dialog.get_by_role("button", name="Start").click()
    expect(dialog.locator('.field-error[data-field="customer"]')).to_have_text("is required")
    expect(dialog.locator('.field-error[data-field="amount"]')).to_have_text("is required")
    ui.shot("10-run-form-browser-errors")
    assert rest.ok("GET", f"/workflows/{workflow_id}/executions")["items"] == []

    # 2. the server: the workflow changed under the open form (amount is now an integer)
    changed = copy.deepcopy(definition)
    changed["trigger"]["inputs"][1]["type"] = "integer"
    rest.ok("PUT", f"/workflows/{workflow_id}", changed)
    dialog.get_by_label("Customer").fill("Globex")
    dialog.get_by_label("Amount").fill("1250.5")
    dialog.get_by_label("Requested priority").select_option("high")
    dialog.get_by_role("button", name="Start").click()
    expect(dialog.locator('.field-error[data-field="amount"]')).to_have_text("must be an integer")
    expect(dialog.locator('.field-error[data-field="customer"]')).to_have_text("")
    ui.shot("11-run-form-server-error")

    # 3. fixed: the run starts and the page follows it to the end by itself
    dialog.get_by_label("Amount").fill("1250")
    dialog.get_by_role("button", name="Start").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    expect(page.locator("li.step .badge")).to_have_text(["Completed", "Completed", "Completed"])
    summary = page.locator('li.step[data-step-id="summary"] pre.json')
    expect(summary).to_contain_text('"customer": "Globex"')
    expect(summary).to_contain_text('"requested_priority": "high"')
    expect(page.locator("table.history")).to_contain_text("execution_completed")
    ui.shot("12-run-completed")


def test_newcomer_runs_the_invoice_sample_and_approves_its_gate(page: Any, ui: Any) -> None:
    ui.sign_in()
    page.locator("tr", has_text="Invoice approval").get_by_role("button", name="Run").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Customer")).to_have_value("ACME")  # the input's default
    dialog.get_by_label("Customer").fill("Initech")
    dialog.get_by_label("Amount").fill("42")
    dialog.get_by_role("button", name="Start").click()
    gate = page.locator('li.step[data-step-id="approve"]')
    expect(gate.locator(".badge")).to_have_text("Waiting for approval")
    expect(page.locator("#execution-status .badge")).to_have_text("Waiting")
    expect(gate.get_by_role("button", name="Force Advance")).to_be_visible()  # admins only
    expect(gate.get_by_role("button", name="Review")).to_have_count(0)  # an approval gate, not a review
    ui.shot("20-gate-waiting")

    gate.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Comment").fill("Amount checked with Initech.")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    expect(gate.locator(".decision")).to_contain_text("approved by admin")
    expect(gate.locator(".comment-text")).to_have_text("Amount checked with Initech.")
    expect(page.locator('li.step[data-step-id="book"] pre.json')).to_contain_text('"booked": true')
    expect(page.locator("button[data-action]")).to_have_count(0)  # nothing left to do
    ui.shot("21-gate-approved")


def test_failed_step_is_retried_after_editing_its_instructions(page: Any, ui: Any, rest: Any) -> None:
    workflow_id = rest.create_workflow(
        {
            "name": _unique("Broken"),
            "trigger": {
                "type": "manual",
                "inputs": [
                    {"name": "customer", "type": "string", "required": True},
                    {"name": "note", "type": "string", "required": True},
                ],
            },
            "steps": [
                {"id": "shape", "name": "Shape the record", "agent": "transform", "instructions": "abs(input.customer)"}
            ],
        }
    )
    execution_id = rest.start(workflow_id, {"customer": "Umbrella", "note": "n" * 700})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    step = page.locator('li.step[data-step-id="shape"]')
    expect(step.locator(".badge")).to_have_text("Failed")
    expect(step.locator(".error-kind")).to_have_text("agent")
    expect(step.locator(".error-message")).to_contain_text("JMESPath evaluation failed")
    expect(page.locator("#execution-status .badge")).to_have_text("Failed")
    ui.shot("30-step-failed")

    step.get_by_role("button", name="Edit and retry").click()
    dialog = page.get_by_role("dialog")
    editor = dialog.get_by_label("Instructions")
    expect(editor).to_have_value("abs(input.customer)")
    editor.fill("{customer: input.customer, note: input.note}")
    dialog.get_by_role("button", name="Save and retry").click()

    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    expect(step.locator(".badge")).to_have_text("Completed")
    expect(step).to_contain_text("attempt 2")
    # a large output is folded: its summary shows, the JSON opens on a click
    output = step.locator("details.json-block")
    expect(output.locator("summary")).to_contain_text("Output (")
    expect(output.locator("pre")).not_to_be_visible()
    output.locator("summary").click()
    expect(output.locator("pre")).to_contain_text('"customer": "Umbrella"')
    expect(page.locator("table.history")).to_contain_text("instructions_edited")
    history = rest.ok("GET", f"/executions/{execution_id}/history")["items"]
    edited = next(e for e in history if e["type"] == "instructions_edited")
    assert edited["details"]["new_instructions"] == "{customer: input.customer, note: input.note}"
    ui.shot("31-step-retried")


def test_reviewer_amends_the_output(page: Any, ui: Any, rest: Any) -> None:
    workflow_id = rest.create_workflow(
        {
            "name": _unique("Reviewed"),
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "draft",
                    "name": "Draft",
                    "agent": "transform",
                    "instructions": "{title: 'draft'}",
                    "gate": {"type": "review"},
                },
                {"id": "publish", "name": "Publish", "agent": "transform", "instructions": "{published: prev.title}"},
            ],
        }
    )
    execution_id = rest.start(workflow_id)
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    draft = page.locator('li.step[data-step-id="draft"]')
    draft.get_by_role("button", name="Review").click()
    dialog = page.get_by_role("dialog")
    output = dialog.get_by_label("Output (JSON)")
    assert json.loads(output.input_value()) == {"title": "draft"}
    output.fill("{not json")
    dialog.get_by_role("button", name="Submit review").click()
    expect(dialog).to_contain_text("This is not valid JSON")
    output.fill('{"title": "Final title"}')
    dialog.get_by_label("Comment").fill("Better title.")
    dialog.get_by_role("button", name="Submit review").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    expect(draft.locator(".decision")).to_contain_text("reviewed by admin")
    expect(page.locator('li.step[data-step-id="publish"] pre.json')).to_contain_text('"published": "Final title"')
    expect(draft).to_contain_text("Output before review")
    ui.shot("40-reviewed")


def test_cancel_asks_for_confirmation_and_says_completed_actions_stay(page: Any, ui: Any, rest: Any) -> None:
    execution_id = rest.start(rest.workflow_id("Invoice approval"), {"amount": 7})
    rest.wait_status(execution_id, {"waiting"})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    page.get_by_role("button", name="Cancel Execution").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Completed actions are not undone")
    expect(dialog.locator(".not-undone")).to_contain_text("Draft the credit note (transform)")
    ui.shot("50-cancel-confirm")
    dialog.get_by_role("button", name="Close").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Waiting")  # closing changed nothing

    page.get_by_role("button", name="Cancel Execution").click()
    page.get_by_role("dialog").get_by_label("Reason (optional)").fill("Duplicate request")
    page.get_by_role("dialog").get_by_role("button", name="Cancel execution").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Cancelled")
    expect(page.locator('li.step[data-step-id="approve"] .badge')).to_have_text("Skipped")
    expect(page.locator(".card.warn")).to_contain_text("draft (transform)")
    expect(page.get_by_role("button", name="Cancel Execution")).to_have_count(0)
    assert rest.ok("GET", f"/executions/{execution_id}")["status"] == "cancelled"
    ui.shot("51-cancelled")


def test_failed_step_is_skipped_and_a_rejected_gate_is_retried(page: Any, ui: Any, rest: Any) -> None:
    workflow_id = rest.create_workflow(
        {
            "name": _unique("Skippable"),
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "flaky",
                    "name": "Call the flaky system",
                    "agent": "python",
                    "config": {"callable": "chalicelib.samples.callables:fails_permanently", "message": "system down"},
                },
                {
                    "id": "sign",
                    "name": "Sign off",
                    "agent": "transform",
                    "instructions": "{ok: `true`}",
                    "gate": {"type": "approval"},
                },
            ],
        }
    )
    execution_id = rest.start(workflow_id)
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    flaky = page.locator('li.step[data-step-id="flaky"]')
    sign = page.locator('li.step[data-step-id="sign"]')
    expect(flaky.locator(".error-message")).to_have_text("system down")
    expect(sign.get_by_role("button")).to_have_count(0)  # only the current step has actions

    flaky.get_by_role("button", name="Skip").click()
    page.get_by_role("dialog").get_by_label("Reason (optional)").fill("done by hand")
    page.get_by_role("dialog").get_by_role("button", name="Skip step").click()
    expect(flaky.locator(".badge")).to_have_text("Skipped")
    expect(flaky).to_contain_text("done by hand")
    expect(sign.locator(".badge")).to_have_text("Waiting for approval")

    sign.get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason (required)").fill("   ")
    dialog.get_by_role("button", name="Reject").click()  # a reject needs a reason: told at the field
    expect(dialog.locator(".field-error")).to_contain_text("Say why")
    expect(sign.locator(".badge")).to_have_text("Waiting for approval")
    dialog.get_by_label("Reason (required)").fill("Not signed: missing data")
    dialog.get_by_role("button", name="Reject").click()
    expect(sign.locator(".badge")).to_have_text("Failed")
    expect(sign.locator(".error-kind")).to_have_text("rejected")
    expect(sign.locator(".decision")).to_contain_text("rejected by admin")
    # the reason is shown once (as the step's error), not again as a comment
    expect(sign.get_by_text("Not signed: missing data")).to_have_count(1)
    expect(page.locator("#execution-status .badge")).to_have_text("Failed")
    ui.shot("32-rejected")

    sign.get_by_role("button", name="Retry", exact=True).click()
    expect(sign.locator(".badge")).to_have_text("Waiting for approval")
    expect(sign).to_contain_text("attempt 2")
    expect(page.locator("#execution-status .badge")).to_have_text("Waiting")


def test_admin_forces_a_waiting_gate_forward(page: Any, ui: Any, rest: Any) -> None:
    execution_id = rest.start(rest.workflow_id("Invoice approval"), {"amount": 3})
    rest.wait_status(execution_id, {"waiting"})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    gate = page.locator('li.step[data-step-id="approve"]')
    gate.get_by_role("button", name="Force Advance").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Admins only")
    dialog.get_by_label("Comment").fill("approver on holiday")
    dialog.get_by_role("button", name="Force Advance").click()
    expect(page.locator("#execution-status .badge")).to_have_text("Completed")
    expect(gate.locator(".decision")).to_contain_text("(force-advanced)")
    expect(page.locator("table.history")).to_contain_text("step_force_advanced")
