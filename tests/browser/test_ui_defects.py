"""The web UI in Chromium: dialogs go with their page, failed runs wait for an operator,
filters check their dates, times carry their zone, lists say where an execution stopped."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_KEY, WAIT_MS, Ui


def _failing(rest: Any) -> tuple[str, str]:
    name = f"Fails {uuid.uuid4().hex[:6]}"
    workflow_id = rest.create_workflow(
        {
            "name": name,
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "flaky",
                    "name": "Call the flaky system",
                    "agent": "python",
                    "config": {"callable": "chalicelib.samples.callables:fails_permanently", "message": "system down"},
                },
                {"id": "after", "agent": "transform", "instructions": "prev"},
            ],
        }
    )
    return workflow_id, name


def test_run_dialog_closes_on_back_and_on_a_new_address(page: Any, ui: Any) -> None:
    ui.sign_in()
    page.get_by_role("link", name="Executions").click()
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    page.go_back()
    row = page.locator("tr", has_text="Invoice approval")
    row.get_by_role("button", name="Run").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.go_forward()  # Back/Forward: the dialog does not stay over the next page
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    expect(page.locator("dialog")).to_have_count(0)
    page.go_back()
    row.get_by_role("button", name="Run").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.evaluate("location.hash = '#/executions'")  # a link or a typed address
    expect(page.locator("dialog")).to_have_count(0)


def test_failed_run_waits_for_an_operator_without_a_running_clock(page: Any, ui: Any, rest: Any) -> None:
    workflow_id, _ = _failing(rest)
    execution_id = rest.start(workflow_id)
    execution = rest.wait_status(execution_id, {"failed"})
    ui.sign_in()
    page.goto(f"/#/executions/{execution_id}")
    expect(page.locator("#execution-status .badge")).to_have_text("Failed")
    ended = page.locator(".waiting-operator")
    expect(ended).to_contain_text("waiting for an operator since")
    expect(ended).to_contain_text("Call the flaky system")
    failed_at = execution["steps"][0]["completed_at"]
    expect(ended.locator("time")).to_have_attribute("datetime", failed_at)
    # the duration is the time until the failure: fixed, whatever the clock says now
    ms = (
        datetime.fromisoformat(failed_at.replace("Z", "+00:00"))
        - datetime.fromisoformat(execution["started_at"].replace("Z", "+00:00"))
    ).total_seconds() * 1000
    text = f"{round(ms)} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
    expect(page.locator("dl.meta")).to_contain_text(f"{text} until it failed")
    ui.shot("40-failed-waits-for-operator")


def test_from_after_to_is_refused_in_the_filter_and_by_the_server(page: Any, ui: Any, rest: Any) -> None:
    ui.sign_in()
    page.get_by_role("link", name="Executions").click()
    page.get_by_label("From (UTC)").fill("2026-03-10")
    page.get_by_label("To (UTC)").fill("2026-03-01")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#filter-error")).to_contain_text("is after")
    expect(page.get_by_label("To (UTC)")).to_have_attribute("aria-invalid", "true")
    assert "from=" not in page.url  # nothing applied
    ui.shot("62-filter-from-after-to")
    status, body = rest.call("GET", "/executions?from=2026-03-10T00:00:00Z&to=2026-03-01T00:00:00Z")
    assert status == 400 and [e["field"] for e in body["errors"]] == ["to"], body
    # an address typed with the dates the wrong way round says so too
    page.goto("/#/executions?from=2026-03-10&to=2026-03-01")
    expect(page.locator(".list-status")).to_contain_text("is after")


def test_times_carry_the_zone_they_are_shown_in(browser: Any, server: str, rest: Any) -> None:
    execution_id = rest.start(rest.workflow_id("Invoice approval"), {"amount": 7})
    rest.wait_status(execution_id, {"waiting"})
    context = browser.new_context(base_url=server, timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        Ui(page).sign_in(ADMIN_KEY)
        page.goto(f"/#/executions/{execution_id}")
        started = page.locator("dl.meta time").first
        expect(started.locator(".zone")).to_have_text(re.compile(r"^ (GMT\+9|JST|UTC\+09:00)$"))
        iso = started.get_attribute("datetime")
        local = (
            datetime.fromisoformat(iso.replace("Z", "+00:00"))
            .astimezone(ZoneInfo("Asia/Tokyo"))
            .strftime("%Y-%m-%d %H:%M:%S")
        )
        expect(started).to_have_text(re.compile("^" + re.escape(local) + " "))
        page.goto("/#/executions")
        expect(page.locator(f'tr[data-execution-id="{execution_id}"] time .zone').first).to_contain_text("GMT+9")
    finally:
        context.close()


def test_lists_show_workflow_names_and_where_an_execution_stopped(page: Any, ui: Any, rest: Any) -> None:
    workflow_id, name = _failing(rest)
    failed = rest.start(workflow_id)
    rest.wait_status(failed, {"failed"})
    waiting = rest.start(rest.workflow_id("Invoice approval"), {"amount": 8})
    rest.wait_status(waiting, {"waiting"})
    ui.sign_in()
    page.get_by_role("link", name="Executions").click()
    failed_row = page.locator(f'tr[data-execution-id="{failed}"]')
    expect(failed_row).to_contain_text(name)
    expect(failed_row.locator(".now")).to_contain_text("“Call the flaky system” failed")
    expect(failed_row.locator(".now-error")).to_have_text("system down")
    waiting_row = page.locator(f'tr[data-execution-id="{waiting}"]')
    expect(waiting_row).to_contain_text("Invoice approval")
    expect(waiting_row.locator(".now")).to_contain_text("Waiting at")
    expect(waiting_row.locator(".now")).to_contain_text("approval gate")
    ui.shot("63-executions-where-stopped")
    page.goto(f"/#/workflows/{workflow_id}")  # the workflow's own list says the same
    expect(page.locator(f'tr[data-execution-id="{failed}"] .now-error')).to_have_text("system down")
