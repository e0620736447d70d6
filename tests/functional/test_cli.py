"""The ``stepline`` CLI against the real app served on 127.0.0.1 (moto behind it).

Commands run through ``click.testing.CliRunner`` with ``STEPLINE_URL``/``STEPLINE_KEY``
pointing at the served app; state is set up and checked through the API helpers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from stepline_cli.main import cli
from tests.conftest import ADMIN_KEY
from tests.functional.served import serve, working

ORDER = {
    "name": "Order intake",
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "customer", "type": "string", "required": True, "label": "Customer name"},
            {"name": "amount", "type": "number", "required": True},
            {"name": "tier", "type": "enum", "options": ["gold", "silver"], "default": "silver"},
            {"name": "rush", "type": "boolean", "required": False},
            {"name": "due", "type": "date", "required": False},
        ],
    },
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "input"},
        {"id": "total", "agent": "transform", "instructions": "prev.amount"},
    ],
}
GATED = {
    "name": "Gated",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "input"},
        {
            "id": "sign",
            "name": "Manager sign-off",
            "agent": "transform",
            "instructions": "prev",
            "gate": {"type": "approval"},
        },
        {"id": "after", "agent": "transform", "instructions": "prev"},
    ],
}
# ``sum`` of a string fails at run time; the transform agent's failures are not retryable.
BROKEN = {
    "name": "Broken",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "calc", "agent": "transform", "instructions": "sum(input.name)"},
        {"id": "after", "agent": "transform", "instructions": '`"done"`'},
    ],
}

Run = Callable[..., Result]


@pytest.fixture
def url(aws: Any) -> Iterator[str]:
    from app import app

    with serve(app) as base:
        yield base


@pytest.fixture
def stepline(url: str) -> Run:
    runner = CliRunner()

    def run(*args: str, input: str | None = None, key: str = ADMIN_KEY, **env: str) -> Result:
        environment = {
            "STEPLINE_URL": url,
            "STEPLINE_KEY": key,
            "COLUMNS": "250",
            "NO_COLOR": "1",
            "FORCE_COLOR": None,
            **env,
        }
        return runner.invoke(cli, list(args), input=input, env=environment, catch_exceptions=False)

    return run


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def test_workflows_lists_each_with_its_active_count(api: Any, worker: Any, stepline: Run) -> None:
    gated, order = api.create_workflow(GATED), api.create_workflow(ORDER)
    for _ in range(2):
        api.start(gated)
    worker.drain()  # both wait at the gate: active
    out = ok(stepline("workflows")).output
    row = next(line for line in out.splitlines() if gated in line)
    assert "Gated" in row and row.rstrip(" │").endswith("2")
    assert order in out
    items = {w["workflow_id"]: w for w in json.loads(ok(stepline("--json", "workflows")).stdout)["items"]}
    assert items[gated]["active_executions"] == 2 and items[order]["active_executions"] == 0


def test_start_prompts_for_each_declared_input_by_its_type(api: Any, stepline: Run) -> None:
    wf = api.create_workflow(ORDER)
    # customer; amount (a bad number is asked again); tier (default); rush; due (optional, left out)
    result = ok(stepline("start", wf, input="ACME\nlots\n12.5\n\nyes\n\n"))
    assert "Customer name" in result.output and "amount" in result.output
    assert "silver" in result.output  # the default is offered
    execution_id = _last_execution(api, wf)
    assert api.execution(execution_id)["input"] == {"customer": "ACME", "amount": 12.5, "tier": "silver", "rush": True}


def test_start_takes_typed_inputs_from_flags_and_reports_missing_ones(api: Any, stepline: Run) -> None:
    wf = api.create_workflow(ORDER)
    result = ok(
        stepline("--json", "start", wf, "-i", "customer=ACME", "-i", "amount=12", "-i", "due=2026-12-01", "--no-prompt")
    )
    started = json.loads(result.stdout)
    assert started["status"] == "running"
    assert started["input"] == {"customer": "ACME", "amount": 12, "tier": "silver", "due": "2026-12-01"}
    missing = stepline("start", wf, "-i", "customer=ACME", "--no-prompt")
    assert missing.exit_code == 1
    assert "400" in missing.output and "inputs.amount: is required" in missing.output
    bad = stepline("start", wf, "-i", "amount=twelve", "--no-prompt")
    assert bad.exit_code == 2 and "--input amount" in bad.output


def test_executions_are_listed_filtered_and_paged(api: Any, worker: Any, stepline: Run) -> None:
    gated, broken = api.create_workflow(GATED), api.create_workflow(BROKEN)
    waiting = {api.start(gated)["execution_id"] for _ in range(3)}
    failed = api.start(broken)["execution_id"]
    worker.drain()
    out = ok(stepline("executions", gated, "--status", "waiting")).output
    assert all(ex in out for ex in waiting) and failed not in out
    assert "waiting" in out
    listed = json.loads(ok(stepline("--json", "executions", broken, "--status", "failed")).stdout)
    assert [item["execution_id"] for item in listed["items"]] == [failed]
    assert json.loads(ok(stepline("--json", "executions", gated, "--status", "completed")).stdout)["items"] == []
    first = ok(stepline("executions", gated, "--limit", "2"))
    assert "more: --next-token" in first.output
    every = json.loads(ok(stepline("--json", "executions", gated, "--limit", "2", "--all")).stdout)
    assert {item["execution_id"] for item in every["items"]} == waiting and every["next_token"] is None


def test_show_draws_the_timeline_with_colour_coded_states(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(BROKEN)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    plain = ok(stepline("show", execution_id)).output
    assert execution_id in plain and "Timeline" in plain
    calc = next(line for line in plain.splitlines() if " calc " in line)
    assert "failed" in calc and "transform" in calc
    after = next(line for line in plain.splitlines() if " after " in line)
    assert "pending" in after
    coloured = ok(stepline("show", execution_id, "--history", NO_COLOR="", FORCE_COLOR="1")).output
    assert "\x1b[1;31mfailed" in coloured  # failed: bold red
    assert "\x1b[2mpending" in coloured  # pending: dim
    assert "execution_started" in coloured and "step_failed" in coloured


def test_follow_shows_a_running_execution_until_it_completes(api: Any, stepline: Run) -> None:
    from app import app

    wf = api.create_workflow(ORDER)
    execution_id = api.start(wf, {"customer": "ACME", "amount": 3})["execution_id"]
    with working(app):
        result = stepline("follow", execution_id, "--interval", "0.05", "--timeout", "120")
    assert result.exit_code == 0, result.output
    assert "total: " in result.output and "completed" in result.output
    assert api.execution(execution_id)["status"] == "completed"


def test_follow_stops_when_a_person_is_needed_if_asked(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(GATED)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    result = stepline("follow", execution_id, "--stop-on-wait", "--interval", "0.05")
    assert result.exit_code == 3, result.output
    assert "sign needs a decision" in result.output or "waiting_for_approval" in result.output


def test_approve_and_reject_act_on_the_waiting_step(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(GATED)
    first, second = api.start(wf)["execution_id"], api.start(wf)["execution_id"]
    worker.drain()
    approved = ok(stepline("approve", first, "-m", "fine by me"))
    assert "approved step sign" in approved.output
    worker.drain()
    assert api.execution(first)["status"] == "completed"
    history = api.get(f"/executions/{first}/history")[1]["items"]
    grant = next(e for e in history if e["type"] == "approval_granted")
    assert grant["actor"] == "admin" and grant["details"]["comment"] == "fine by me"
    ok(stepline("reject", second, "sign", "-m", "no"))
    assert api.execution(second)["status"] == "failed"
    again = stepline("approve", first, "sign")
    assert again.exit_code == 1 and "409" in again.output


def test_retry_edit_retry_and_skip_recover_failed_steps(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(BROKEN)
    retried, edited, skipped = (api.start(wf)["execution_id"] for _ in range(3))
    worker.drain()
    ok(stepline("retry", retried))
    worker.drain()
    step = api.execution(retried)["steps"][0]
    assert (step["state"], step["attempt"]) == ("failed", 2)
    ok(stepline("edit-retry", edited, "--instructions", "`42`"))
    worker.drain()
    assert api.execution(edited)["status"] == "completed"
    assert api.execution(edited)["steps"][0]["output"] == 42
    ok(stepline("skip", skipped, "calc", "--reason", "not needed"))
    worker.drain()
    execution = api.execution(skipped)
    assert execution["status"] == "completed" and execution["steps"][0]["state"] == "skipped"


def test_edit_retry_opens_the_editor_on_the_current_instructions(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(BROKEN)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    editor = "sed -i -e 's/sum(input.name)/length(`[1, 2]`)/'"
    ok(stepline("edit-retry", execution_id, EDITOR=editor, VISUAL=editor))
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed" and execution["steps"][0]["output"] == 2
    edit = next(
        e for e in api.get(f"/executions/{execution_id}/history")[1]["items"] if e["type"] == "instructions_edited"
    )
    assert edit["details"]["old_instructions"] == "sum(input.name)"


def test_force_advance_and_cancel(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(GATED)
    forced, cancelled = api.start(wf)["execution_id"], api.start(wf)["execution_id"]
    worker.drain()
    ok(stepline("force-advance", forced, "-m", "urgent"))
    worker.drain()
    assert api.execution(forced)["status"] == "completed"
    declined = stepline("cancel", cancelled, input="n\n")
    assert declined.exit_code == 1 and api.execution(cancelled)["status"] == "waiting"
    result = ok(stepline("cancel", cancelled, "--reason", "duplicate", input="y\n"))
    assert "NOT undone: draft" in result.output
    assert api.execution(cancelled)["status"] == "cancelled"


def test_errors_are_named_not_stack_traces(api: Any, stepline: Run) -> None:
    status, body = api.post("/keys", {"name": "watcher", "role": "viewer"})
    assert status == 201
    wf = api.create_workflow(GATED)
    execution_id = api.start(wf)["execution_id"]
    forbidden = stepline("cancel", execution_id, "--yes", key=body["key"])
    assert forbidden.exit_code == 1 and "403" in forbidden.output and "operator" in forbidden.output
    unknown_key = stepline("workflows", key="nope")
    assert unknown_key.exit_code == 1 and "401" in unknown_key.output
    missing = stepline("show", "ex_nope")
    assert missing.exit_code == 1 and "404" in missing.output
    unreachable = stepline("workflows", STEPLINE_URL="http://127.0.0.1:9")
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.output
    assert ok(stepline("whoami")).output.startswith("admin (admin)")


def _last_execution(api: Any, workflow_id: str) -> str:
    status, body = api.get(f"/workflows/{workflow_id}/executions")
    assert status == 200 and body["items"], body
    return body["items"][0]["execution_id"]


def test_the_stepline_command_is_installed_by_the_project() -> None:
    import importlib
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    module, _, name = project["project"]["scripts"]["stepline"].partition(":")
    entry = getattr(importlib.import_module(module), name)
    result = CliRunner().invoke(cli, ["--help"])
    assert entry.__module__ == "stepline_cli.main" and result.exit_code == 0
    for command in (
        "workflows",
        "start",
        "executions",
        "show",
        "follow",
        "approve",
        "reject",
        "retry",
        "edit-retry",
        "skip",
        "force-advance",
        "cancel",
    ):
        assert f"  {command} " in result.output


def test_executions_without_a_workflow_lists_across_workflows(api: Any, worker: Any, stepline: Run) -> None:
    gated, broken = api.create_workflow(GATED), api.create_workflow(BROKEN)
    waiting = api.start(gated)["execution_id"]
    failed = api.start(broken)["execution_id"]
    worker.drain()
    everything = json.loads(ok(stepline("--json", "executions")).stdout)["items"]
    assert {item["execution_id"] for item in everything} == {waiting, failed}
    attention = ok(stepline("executions", "--status", "failed")).output
    assert failed in attention and waiting not in attention and broken in attention
