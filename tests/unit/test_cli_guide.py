"""The CLI renders the server's ``actions`` and an error's recommended ``action``, nothing of its own."""

from __future__ import annotations

from rich.console import Console

from stepline_cli.guide import error_line, gate_hint, next_steps
from stepline_cli.render import execution_view

EXECUTION = {
    "execution_id": "ex_1",
    "workflow_id": "wf_1",
    "workflow_name": "Invoices",
    "status": "failed",
    "actions": ["cancel"],
    "steps": [
        {"id": "draft", "state": "completed", "attempt": 1, "output": {"total": 10}, "actions": []},
        {
            "id": "post",
            "state": "failed",
            "attempt": 2,
            "actions": ["retry", "edit_and_retry", "skip"],
            "error": {
                "kind": "integration",
                "message": "HTTP 401 from the ledger",
                "retryable": False,
                "action": "update_connection",
            },
        },
    ],
}


def test_next_steps_are_exactly_the_servers_actions_as_commands() -> None:
    text = next_steps(EXECUTION)
    assert text is not None
    assert text.plain.splitlines() == [
        "You can now run:",
        "  stepline retry ex_1 post",
        "  stepline edit-retry ex_1 post",
        "  stepline skip ex_1 post --reason '<why>'",
        "  stepline cancel ex_1",
    ]


def test_no_actions_means_no_commands_offered() -> None:
    viewer = {**EXECUTION, "actions": [], "steps": [{**s, "actions": []} for s in EXECUTION["steps"]]}
    assert next_steps(viewer) is None


def test_an_errors_recommended_action_is_shown() -> None:
    assert (
        error_line(EXECUTION["steps"][1]["error"])
        == "integration: HTTP 401 from the ledger (recommended: update the connection, then retry)"
    )
    assert error_line({"kind": "agent", "message": "boom"}) == "agent: boom"


def test_the_gate_hint_names_only_the_decisions_the_key_may_take() -> None:
    step = {"id": "sign", "state": "waiting_for_approval", "gate": "approval", "actions": ["approve", "reject"]}
    hint = gate_hint({"execution_id": "ex_1"}, step).plain
    assert (
        hint == "sign waits for approval. Run: stepline approve ex_1 sign  or  stepline reject ex_1 sign -m '<reason>'"
    )
    assert "ask one of its approvers" in gate_hint({"execution_id": "ex_1"}, {**step, "actions": []}).plain


def test_the_execution_view_wraps_at_80_columns() -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(execution_view(EXECUTION, console.width))
    out = console.export_text()
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert "recommended: update the connection" in out and "stepline edit-retry ex_1 post" in out
