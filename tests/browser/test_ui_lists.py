"""The web UI in Chromium: executions lists with filters, pagination and live badges."""

from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from playwright.sync_api import expect


def _gated_workflow(rest: Any) -> tuple[str, str]:
    name = f"Listed {uuid.uuid4().hex[:6]}"
    workflow_id = rest.create_workflow(
        {
            "name": name,
            "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "integer", "required": True}]},
            "steps": [
                {
                    "id": "gate",
                    "name": "Hold",
                    "agent": "transform",
                    "instructions": "input",
                    "gate": {"type": "approval"},
                }
            ],
        }
    )
    return workflow_id, name


def test_workflow_executions_filter_paginate_and_refresh_by_themselves(page: Any, ui: Any, rest: Any) -> None:
    workflow_id, name = _gated_workflow(rest)
    done, waiting, cancelled = (rest.start(workflow_id, {"n": n}) for n in (1, 2, 3))
    for execution_id in (done, waiting, cancelled):
        rest.wait_status(execution_id, {"waiting"})
    rest.ok("POST", f"/executions/{done}/steps/gate/approve", {})
    rest.ok("POST", f"/executions/{cancelled}/cancel", {})

    ui.sign_in()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    rows = page.locator("table.executions tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator(".badge")).to_have_text(["Cancelled", "Waiting", "Completed"])  # newest first
    ui.shot("60-workflow-executions")

    page.get_by_label("Status").select_option("waiting")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-execution-id", waiting)
    assert "status=waiting" in page.url

    # the waiting one is approved elsewhere: its badge changes without a reload
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(3)
    rest.ok("POST", f"/executions/{waiting}/steps/gate/approve", {"comment": "from another desk"})
    expect(page.locator(f'tr[data-execution-id="{waiting}"] .badge')).to_have_text("Completed")

    page.get_by_label("Trigger").select_option("schedule")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".list-status")).to_have_text("No executions match these filters.")

    tomorrow = (_dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)).strftime("%Y-%m-%d")
    today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    page.get_by_role("button", name="Clear").click()
    expect(rows).to_have_count(3)
    page.get_by_label("From (UTC)").fill(tomorrow)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".list-status")).to_have_text("No executions match these filters.")
    page.get_by_label("From (UTC)").fill(today)
    page.get_by_label("To (UTC)").fill(today)
    page.get_by_label("Trigger").select_option("manual")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(3)

    # two per page: Older and Newer walk the pages with next_token
    page.goto(f"/#/workflows/{workflow_id}?limit=2")
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Older →").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-execution-id", done)
    expect(page.get_by_role("button", name="Older →")).to_have_count(0)
    page.get_by_role("button", name="← Newer").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-execution-id", cancelled)


def test_executions_page_lists_across_workflows_or_by_chosen_workflow(page: Any, ui: Any, rest: Any) -> None:
    workflow_id, name = _gated_workflow(rest)
    execution_id = rest.start(workflow_id, {"n": 9})
    rest.wait_status(execution_id, {"waiting"})
    ui.sign_in()
    page.get_by_role("link", name="Executions").click()
    expect(page.get_by_role("heading", name="Executions")).to_be_visible()
    status, _ = rest.call("GET", "/executions")
    if status == 200:  # the cross-workflow list (GET /executions)
        expect(page.locator(f'tr[data-execution-id="{execution_id}"]')).to_contain_text(name)
    else:  # a server without it says so and offers the per-workflow lists
        expect(page.locator(".list-status")).to_contain_text("choose a workflow")
    ui.shot("61-executions-all")
    page.get_by_label("Workflow").select_option(label=name)
    page.get_by_role("button", name="Apply").click()
    row = page.locator("table.executions tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text(name)
    expect(row.first.locator(".badge")).to_have_text("Waiting")
    page.get_by_role("link", name=execution_id).click()
    expect(page.locator("#execution-status .badge")).to_have_text("Waiting")


def test_workflows_page_charts_runs_per_day_and_counts_active_ones(page: Any, ui: Any, rest: Any) -> None:
    workflow_id, name = _gated_workflow(rest)
    first, second = rest.start(workflow_id, {"n": 1}), rest.start(workflow_id, {"n": 2})
    for execution_id in (first, second):
        rest.wait_status(execution_id, {"waiting"})
    ui.sign_in()
    row = page.locator("tr", has_text=name)
    expect(row.locator(".active-count")).to_have_text("2")
    status, _ = rest.call("GET", f"/workflows/{workflow_id}/stats?bucket=day")
    if status == 200:  # GET /workflows/{id}/stats: fourteen daily bars, today's holds both runs
        bars = row.locator(".bar-col")
        expect(bars).to_have_count(14)
        today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
        expect(bars.last).to_have_attribute("data-day", today)
        expect(bars.last).to_have_attribute("data-runs", "2")
        expect(row.locator(".chart-total")).to_have_text("2 in 14 d")
    else:  # a server without stats says so in the cell
        expect(row.locator(".chart-cell")).to_have_text("no stats on this server")
    # the count follows the executions by itself while some are active
    rest.ok("POST", f"/executions/{first}/cancel", {})
    expect(row.locator(".active-count")).to_have_text("1")
    ui.shot("05-workflows-chart")
