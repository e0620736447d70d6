"""The CLI shows what an operator needs: outputs, what to run next, at 80 columns, errors once.

Through ``CliRunner`` against the real app served on 127.0.0.1 (fixtures of test_cli.py).
"""

from __future__ import annotations

import json
from typing import Any

from tests.functional.test_cli import BROKEN, ORDER, Run, ok, stepline, url  # noqa: F401 - fixtures, used by name
from tests.functional.test_cli import GATED as GATED_NO_INPUTS

GATED = {**GATED_NO_INPUTS, "trigger": {"type": "manual", "inputs": [{"name": "customer", "type": "string"}]}}


def test_show_prints_step_outputs_and_the_output_awaiting_a_decision(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(GATED)
    ex = api.start(wf, {"customer": "ACME"})["execution_id"]
    worker.drain()
    out = ok(stepline("show", ex)).output
    assert "Output of sign (Manager sign-off) (awaiting a decision)" in out
    assert "Output of draft" in out
    # the awaiting output comes first, whole and indented
    assert out.index("awaiting a decision") < out.index("Output of draft")
    assert '"customer": "ACME"' in out
    # the commands offered are the server's actions for this (admin) key, nothing more
    offered = out[out.index("You can now run:") :].splitlines()[1:]
    assert [line.strip() for line in offered if line.strip()] == [
        f"stepline approve {ex} sign",
        f"stepline reject {ex} sign -m '<reason>'",
        f"stepline force-advance {ex} sign",
        f"stepline cancel {ex}",
    ]


def test_follow_at_a_gate_shows_the_output_and_names_the_command(api: Any, worker: Any, stepline: Run) -> None:
    wf = api.create_workflow(GATED)
    ex = api.start(wf, {"customer": "ACME"})["execution_id"]
    worker.drain()
    result = stepline("follow", ex, "--stop-on-wait", "--interval", "0.05")
    assert result.exit_code == 3, result.output
    assert "sign (Manager sign-off) waits for approval" in result.output
    assert f"stepline approve {ex} sign" in result.output
    assert f"stepline reject {ex} sign -m '<reason>'" in result.output
    assert '"customer": "ACME"' in result.output


def test_a_viewer_following_a_gate_is_not_offered_commands_it_may_not_run(api: Any, worker: Any, stepline: Run) -> None:
    viewer = api.post("/keys", {"name": "watcher", "role": "viewer"})[1]["key"]
    ex = api.start(api.create_workflow(GATED))["execution_id"]
    worker.drain()
    if "actions" not in api.execution(ex)["steps"][1]:
        # a server without ``actions`` cannot say; the CLI then names the gate's commands
        return
    result = stepline("follow", ex, "--stop-on-wait", "--interval", "0.05", key=viewer)
    assert result.exit_code == 3 and "stepline approve" not in result.output
    assert "ask one of its approvers" in result.output


def test_everything_reads_at_80_columns_without_cutting(api: Any, worker: Any, stepline: Run) -> None:
    gated, broken = api.create_workflow(GATED), api.create_workflow(BROKEN)
    waiting = api.start(gated, {"customer": "A very long customer name " * 4})["execution_id"]
    failed = api.start(broken)["execution_id"]
    worker.drain()
    for args in (
        ("show", waiting, "--history"),
        ("show", failed),
        ("executions",),
        ("workflows",),
        ("executions", gated),
    ):
        out = ok(stepline(*args, COLUMNS="80")).output
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= 80, (args, out)
        assert "…" not in out, (args, out)
        if args[0] == "executions":
            assert waiting in out and failed in out if len(args) == 1 else waiting in out
            assert f"Gated ({gated})" in out  # the name beside the id
        if args[0] == "show":
            assert args[1] in out
    failed_view = ok(stepline("show", failed, COLUMNS="80")).output
    assert "1. calc  transform  failed" in failed_view  # stacked, not a squeezed table
    action = api.execution(failed)["steps"][0]["error"]["action"]
    assert action == "edit_and_retry" and "(recommended: edit its instructions and retry)" in " ".join(
        failed_view.split()
    )


def test_executions_name_the_workflow_beside_its_id(api: Any, worker: Any, stepline: Run) -> None:
    gated, broken = api.create_workflow(GATED), api.create_workflow(BROKEN)
    api.start(gated)
    api.start(broken)
    out = ok(stepline("executions")).output
    assert f"Gated ({gated})" in out and f"Broken ({broken})" in out
    assert "Executions of Gated" in ok(stepline("executions", gated)).output
    # --json stays the API's answer, untouched
    items = json.loads(ok(stepline("--json", "executions")).stdout)["items"]
    assert {item["workflow_id"] for item in items} == {gated, broken}


def test_field_errors_are_printed_once(api: Any, stepline: Run) -> None:
    wf = api.create_workflow(ORDER)
    missing = stepline("start", wf, "-i", "customer=ACME", "--no-prompt")
    assert missing.exit_code == 1
    assert missing.output.count("inputs.amount: is required") == 1, missing.output
    assert "400 BadRequestError" in missing.output
