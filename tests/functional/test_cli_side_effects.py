"""The CLI says what a step already did elsewhere before retry, skip and cancel, passes the
operator's replay/rerun choice, and `stepline show` lists the ledger."""

from __future__ import annotations

from typing import Any

from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional import test_cli
from tests.functional.charge_kit import charged_and_rejected
from tests.functional.test_cli import Run, ok

# the served app and the CliRunner of the CLI tests (pytest finds fixtures by module name)
url, stepline = test_cli.url, test_cli.stepline


def test_retry_prompt_lists_the_calls_made_and_replay_or_rerun_is_passed_on(
    api: Any, worker: Any, stepline: Run
) -> None:
    with ScriptedServer() as integration:
        integration.script("/charges", Answer(201, {"charge": "C-1"}), Answer(201, {"charge": "C-2"}))
        execution_id = charged_and_rejected(api, worker, integration)

        declined = stepline("retry", execution_id, input="n\n")
        assert declined.exit_code == 1
        assert "step charge already made 1 POST call:" in declined.output
        assert f"POST {integration.url}/charges: succeeded, attempt 1, key {execution_id}:charge:1:1" in declined.output
        assert api.execution(execution_id)["steps"][0]["attempt"] == 1  # nothing retried

        ok(stepline("retry", execution_id, input="y\n"))  # replay, the default
        worker.drain()
        assert len(integration.requests("/charges")) == 1
        shown = ok(stepline("show", execution_id)).output
        assert "Side effects" in shown and "replayed (not made again)" in shown
        assert "side effects: made 1 POST call" in shown

        assert api.post(f"/executions/{execution_id}/steps/charge/reject", {"comment": "again"})[0] == 200
        ok(stepline("retry", execution_id, "charge", "--side-effects", "rerun", "--yes"))
        worker.drain()
        keys = [r.headers["idempotency-key"] for r in integration.requests("/charges")]
        assert keys == [f"{execution_id}:charge:1:1", f"{execution_id}:charge:3:1"]
        history = api.get(f"/executions/{execution_id}/history")[1]["items"]
        assert [e["details"]["side_effects"] for e in history if e["type"] == "step_retried"] == ["replay", "rerun"]

        assert api.post(f"/executions/{execution_id}/steps/charge/reject", {"comment": "stop"})[0] == 200
        skipped = stepline("skip", execution_id, input="n\n")
        assert skipped.exit_code == 1 and "step charge already made 2 POST calls:" in skipped.output
        cancelled = stepline("cancel", execution_id, input="n\n")
        assert cancelled.exit_code == 1 and "step charge already made 2 POST calls:" in cancelled.output
        assert api.execution(execution_id)["status"] == "failed"


def test_an_unknown_choice_is_refused_by_the_cli(api: Any, stepline: Run) -> None:
    result = stepline("retry", "ex_1", "s", "--side-effects", "twice")
    assert result.exit_code == 2 and "replay" in result.output
