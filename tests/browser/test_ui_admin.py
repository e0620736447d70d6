"""The web UI in Chromium, as an admin: workflows from the definition editor (templates, the
server's field errors at their lines, new versions with a diff, enable/disable), the step
definitions with secrets masked, and the sources, keys and connections pages."""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from playwright.sync_api import expect

from chalicelib.samples.workflows import INVOICE_APPROVAL


def _unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


def test_new_workflow_from_a_template_shows_server_errors_at_their_lines(page: Any, ui: Any, rest: Any) -> None:
    ui.sign_in()
    page.get_by_role("link", name="New workflow").click()
    expect(page.get_by_role("heading", name="New workflow")).to_be_visible()
    page.get_by_label("Start from").select_option(label="Sample: Invoice approval")
    editor = page.get_by_label("Definition (JSON)")
    definition = json.loads(editor.input_value())
    assert definition["name"] == "Invoice approval"
    name = _unique("Invoices")
    definition["name"] = name
    definition["steps"][1]["agent"] = "nope"
    definition["steps"][2]["timeout_seconds"] = 0
    editor.fill(json.dumps(definition))  # one line: the server's errors still land on their lines
    page.get_by_role("button", name="Create workflow").click()
    errors = page.locator(".definition-error")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("steps[1].agent")
    ui.shot("20-editor-field-errors")
    lines = editor.input_value().split("\n")
    for i in range(2):
        label = errors.nth(i).get_by_role("button").inner_text()  # "Line N"
        field = errors.nth(i).locator("code").inner_text()
        line = lines[int(label.split()[1]) - 1]
        assert field.rsplit(".", 1)[-1] in line, (field, line)
    errors.nth(0).get_by_role("button").click()  # selects the line in the editor
    selected = page.evaluate(
        "() => { const t = document.getElementById('definition');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert '"agent": "nope"' in selected
    definition["steps"][1]["agent"] = "transform"
    definition["steps"][2]["timeout_seconds"] = 30
    editor.fill(json.dumps(definition, indent=2))
    page.get_by_role("button", name="Create workflow").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator(".step-def")).to_have_count(3)
    assert rest.workflow_id(name)


def test_edit_saves_a_new_version_after_a_diff_and_lists_versions(page: Any, ui: Any, rest: Any) -> None:
    definition = copy.deepcopy(INVOICE_APPROVAL)
    definition["name"] = _unique("Versioned")
    workflow_id = rest.create_workflow(definition)
    ui.sign_in()
    page.goto(f"/#/workflows/{workflow_id}")
    page.get_by_role("link", name="Edit definition").click()
    editor = page.get_by_label("Definition (JSON)")
    edited = json.loads(editor.input_value())
    edited["description"] = "Checked by two people now"
    editor.fill(json.dumps(edited, indent=2))
    page.get_by_role("button", name="Review changes").click()
    diff = page.locator(".definition-diff")
    expect(diff.locator(".diff-add")).to_contain_text("Checked by two people now")
    expect(diff.locator(".diff-del")).to_have_count(1)
    ui.shot("21-editor-diff")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator(".page-head")).to_contain_text("version 2")
    page.locator("summary", has_text="Versions").click()
    versions = page.locator("li.version")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("current")
    versions.first.get_by_role("button", name="Changes from version 1").click()
    expect(versions.first.locator(".diff-add")).to_contain_text("Checked by two people now")
    ui.shot("22-workflow-versions")
    assert rest.ok("GET", f"/workflows/{workflow_id}")["description"] == "Checked by two people now"


def test_disable_asks_first_then_run_is_off_and_enable_turns_it_back(page: Any, ui: Any, rest: Any) -> None:
    definition = copy.deepcopy(INVOICE_APPROVAL)
    definition["name"] = _unique("Switchable")
    workflow_id = rest.create_workflow(definition)
    ui.sign_in()
    page.goto(f"/#/workflows/{workflow_id}")
    page.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("No new execution starts")
    dialog.get_by_role("button", name="Close").click()
    assert rest.ok("GET", f"/workflows/{workflow_id}")["enabled"] is True  # closing the dialog changes nothing
    page.get_by_role("button", name="Disable").click()
    page.get_by_role("dialog").get_by_role("button", name="Disable workflow").click()
    expect(page.locator(".page-head .pill")).to_have_text("Disabled")
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    assert rest.ok("GET", f"/workflows/{workflow_id}")["enabled"] is False
    page.get_by_role("button", name="Enable").click()
    page.get_by_role("dialog").get_by_role("button", name="Enable workflow").click()
    expect(page.locator(".page-head .pill")).to_have_text("Enabled")


def test_step_definitions_show_every_setting_with_secrets_masked(page: Any, ui: Any, rest: Any) -> None:
    name = _unique("Settings")
    workflow_id = rest.create_workflow(
        {
            "name": name,
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "call",
                    "name": "Call the ledger",
                    "agent": "python",
                    "timeout_seconds": 45,
                    "retry": {"max_attempts": 3, "backoff_seconds": 2},
                    "config": {"callable": "chalicelib.samples.callables:echo", "api_token": "tok-very-secret-123"},
                },
                {
                    "id": "sign",
                    "agent": "transform",
                    "instructions": "{ok: `true`}",
                    "gate": {"type": "approval", "approvers": ["operator"]},
                },
            ],
        }
    )
    ui.sign_in()
    page.goto(f"/#/workflows/{workflow_id}")
    call = page.locator('.step-def[data-step-id="call"]')
    expect(call).to_contain_text("python")
    expect(call).to_contain_text("3 attempts in all, backoff 2 s")
    expect(call).to_contain_text("45 s per attempt")
    expect(call).to_contain_text('"api_token": "••••••"')
    expect(call).to_contain_text("chalicelib.samples.callables:echo")
    sign = page.locator('.step-def[data-step-id="sign"]')
    expect(sign).to_contain_text("{ok: `true`}")
    expect(sign).to_contain_text("approval by operator")
    assert "tok-very-secret-123" not in page.content()
    ui.shot("23-workflow-definition")


def test_sources_keys_and_connections_pages(page: Any, ui: Any, rest: Any) -> None:
    ui.sign_in()
    page.get_by_role("link", name="Sources").click()
    expect(page.get_by_role("heading", name="Event sources")).to_be_visible()
    source = f"billing-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(source)
    page.get_by_role("button", name="Create source").click()
    secret = page.locator(".secret-once input")
    expect(secret).to_have_value(re.compile(r"^whsec_"))
    expect(page.locator(".secret-once")).to_contain_text("shown once")
    expect(page.locator(".secret-once").get_by_role("button", name="Copy")).to_be_visible()
    first = secret.input_value()
    ui.shot("50-sources-secret-once")
    page.locator(f'tr[data-source="{source}"]').get_by_role("button", name="Rotate secret").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate secret").click()
    expect(page.locator(".secret-once")).to_contain_text(f"New secret of {source}")
    assert page.locator(".secret-once input").input_value() not in ("", first)

    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    key_name = f"bot-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(key_name)
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create key").click()
    key = page.locator(".secret-once input").input_value()
    assert key.startswith("sl_")
    assert rest.call("GET", "/me", key=key) == (200, {"name": key_name, "role": "viewer"})
    expect(page.locator(f'tr[data-key="{key_name}"]')).to_contain_text("viewer")
    ui.shot("51-keys")
    page.locator(f'tr[data-key="{key_name}"]').get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(page.locator(f'tr[data-key="{key_name}"]')).to_have_count(0)
    assert rest.call("GET", "/me", key=key)[0] == 401

    page.get_by_role("link", name="Connections").click()
    expect(page.get_by_role("heading", name="Connections")).to_be_visible()
    connection = f"openai-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(connection)
    page.get_by_label("api_key (secret)").fill("sk-never-shown-4242")
    page.get_by_role("button", name="Create connection").click()
    row = page.locator(f'tr[data-connection="{connection}"]')
    expect(row).to_contain_text("api_key")
    expect(row).to_contain_text("https://api.openai.com/v1")
    row.get_by_role("link", name="Update").click()
    expect(page.get_by_role("heading", name=f"Update {connection} (openai)")).to_be_visible()
    page.get_by_label("base_url").fill("https://models.example.com/v1")
    page.get_by_role("button", name=f"Update {connection}").click()
    expect(page.locator(f'tr[data-connection="{connection}"]')).to_contain_text("https://models.example.com/v1")
    assert "sk-never-shown-4242" not in page.content()
    assert rest.ok("GET", f"/connections/{connection}")["secret_fields"] == ["api_key"]
    ui.shot("52-connections")
