"""Retry, edit-and-retry, skip, cancel and force-advance through the real Chalice handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.operator_kit import (
    APPROVAL,
    FAILS,
    FAILS_ONCE,
    Keys,
    act,
    active_count,
    history,
    listed_status,
    py,
    step_of,
    tf,
    workflow,
)


@pytest.fixture
def keys(api: Any) -> Keys:
    return Keys(api)


def failed_execution(api: Any, worker: Any, definition: dict[str, Any] = FAILS_ONCE) -> tuple[str, str]:
    wf = api.create_workflow(definition)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(ex)["status"] == "failed"
    return wf, ex


# ----------------------------------------------------------------------- failure
def test_agent_failure_pauses_the_execution_with_a_readable_error(api: Any, worker: Any) -> None:
    wf, ex = failed_execution(api, worker, FAILS)
    draft = step_of(api.execution(ex), "draft")
    assert draft["state"] == "failed" and draft["attempt"] == 1
    assert draft["error"]["kind"] == "agent" and draft["error"]["message"] == "the ledger is closed"
    assert step_of(api.execution(ex), "post")["state"] == "pending"
    assert active_count(api, wf) == 0 and listed_status(api, wf, ex) == "failed"


# ------------------------------------------------------------------------- retry
def test_retry_runs_a_new_attempt_and_the_attempt_number_shows(api: Any, worker: Any, keys: Keys) -> None:
    wf, ex = failed_execution(api, worker)
    status, body = act(api, ex, "retry", "draft", key=keys.operator)
    assert status == 200, body
    draft = step_of(body, "draft")
    assert (body["status"], draft["state"], draft["attempt"]) == ("running", "running", 2)
    assert active_count(api, wf) == 1
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "draft")["attempt"] == 2
    assert step_of(execution, "post")["output"] == {"posted": 2}
    retried = [e for e in history(api, ex) if e["type"] == "step_retried"]
    assert [(e["actor"], e["attempt"]) for e in retried] == [("olivia", 2)]
    assert retried[0]["details"]["previous_error"]["kind"] == "agent"
    assert active_count(api, wf) == 0


def test_edit_and_retry_changes_this_execution_only_and_history_keeps_both_texts(
    api: Any, worker: Any, keys: Keys
) -> None:
    # abs() of a string fails when evaluated: a step whose instructions are wrong
    definition = workflow(tf("draft", "abs(input.customer)"), tf("post", "{sent: prev}"))
    wf, ex = failed_execution(api, worker, definition)
    status, body = act(api, ex, "retry", "draft", {"instructions": "input.customer"}, key=keys.operator)
    assert status == 200, body
    assert step_of(body, "draft")["instructions"] == "input.customer"
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "post")["output"] == {"sent": "ACME"}
    edited = next(e for e in history(api, ex) if e["type"] == "instructions_edited")
    assert edited["actor"] == "olivia" and edited["attempt"] == 2
    assert edited["details"] == {"old_instructions": "abs(input.customer)", "new_instructions": "input.customer"}
    assert "abs(input.customer)" in edited["message"] and "olivia" in edited["message"]
    # the workflow definition is untouched, and a new execution uses it
    assert api.get(f"/workflows/{wf}")[1]["steps"][0]["instructions"] == "abs(input.customer)"
    again = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(again)["status"] == "failed"


@pytest.mark.parametrize(
    "instructions,message", [("input.[", "instructions"), (42, "must be a string"), ("", "instructions")]
)
def test_edit_and_retry_with_bad_instructions_is_a_400_naming_the_field(
    api: Any, worker: Any, instructions: Any, message: str
) -> None:
    definition = workflow(tf("draft", "abs(input.customer)"))
    _, ex = failed_execution(api, worker, definition)
    status, body = act(api, ex, "retry", "draft", {"instructions": instructions})
    assert status == 400, body
    assert [e["field"] for e in body["errors"]] == ["instructions"]
    assert message in body["Message"]
    assert api.execution(ex)["status"] == "failed"


def test_unknown_body_field_is_a_400(api: Any, worker: Any) -> None:
    _, ex = failed_execution(api, worker)
    status, body = act(api, ex, "retry", "draft", {"instruction": "typo"})
    assert status == 400 and body["errors"] == [{"field": "instruction", "message": "unknown field"}]
    status, body = act(api, ex, "cancel", body={"reason": ["not", "text"]})
    assert status == 400 and body["errors"][0]["field"] == "reason"
    status, body = api.post(f"/executions/{ex}/cancel", "not json")
    assert status == 400 and body["errors"][0]["field"] == "body"


# -------------------------------------------------------------------------- skip
def test_skip_continues_and_the_next_step_sees_no_previous_output(api: Any, worker: Any, keys: Keys) -> None:
    definition = workflow(py("draft", "fails_permanently"), tf("post", "{had_prev: prev != null}"))
    wf, ex = failed_execution(api, worker, definition)
    status, body = act(api, ex, "skip", "draft", {"reason": "done by hand"}, key=keys.operator)
    assert status == 200, body
    draft = step_of(body, "draft")
    assert (draft["state"], draft["skip_reason"]) == ("skipped", "done by hand")
    assert draft["decision"]["by"] == "olivia"
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "post")["output"] == {"had_prev": False}
    assert active_count(api, wf) == 0


# ------------------------------------------------------------------------ cancel
def test_cancel_lists_completed_steps_not_undone_and_pending_steps_never_run(api: Any, worker: Any, keys: Keys) -> None:
    definition = workflow(tf("draft", "{note: 'CN-1'}"), py("post", "fails_permanently"), tf("notify", "prev"))
    wf, ex = failed_execution(api, worker, definition)
    status, body = act(api, ex, "cancel", body={"reason": "customer withdrew"}, key=keys.operator)
    assert status == 200, body
    assert body["status"] == "cancelled" and body["ended_at"]
    assert body["completed_steps_not_undone"] == [
        {"step_id": "draft", "agent": "transform", "summary": '{"note": "CN-1"}'}
    ]
    assert step_of(body, "draft")["output"] == {"note": "CN-1"}
    assert [s["state"] for s in body["steps"]] == ["completed", "failed", "pending"]
    worker.drain()
    assert [s["state"] for s in api.execution(ex)["steps"]] == ["completed", "failed", "pending"]
    cancelled = history(api, ex)[-1]
    assert (cancelled["type"], cancelled["actor"]) == ("execution_cancelled", "olivia")
    assert cancelled["details"]["reason"] == "customer withdrew"
    assert listed_status(api, wf, ex) == "cancelled"


def test_cancel_of_a_running_execution_stops_it_and_updates_the_active_count(api: Any, worker: Any) -> None:
    wf = api.create_workflow(APPROVAL)
    ex = api.start(wf)["execution_id"]
    assert active_count(api, wf) == 1
    status, body = act(api, ex, "cancel")
    assert status == 200 and body["completed_steps_not_undone"] == []
    assert step_of(body, "draft")["state"] == "pending"
    worker.drain()
    assert step_of(api.execution(ex), "draft")["state"] == "pending"
    assert active_count(api, wf) == 0
    assert act(api, ex, "cancel")[0] == 409


# ------------------------------------------------------------------ force-advance
def test_force_advance_of_a_pending_step_is_admin_only_and_skips_it(api: Any, worker: Any, keys: Keys) -> None:
    wf = api.create_workflow(FAILS_ONCE)
    ex = api.start(wf)["execution_id"]
    assert act(api, ex, "force-advance", "draft", key=keys.operator)[0] == 403
    assert act(api, ex, "force-advance", "draft", key=keys.viewer)[0] == 403
    status, body = act(api, ex, "force-advance", "draft", {"comment": "not needed today"}, key=keys.admin2)
    assert status == 200, body
    draft = step_of(body, "draft")
    assert (draft["state"], draft["skip_reason"]) == ("skipped", "force-advanced by ada")
    assert draft["decision"]["comment"] == "not needed today"
    worker.drain()  # the draft message is still queued; it must not run the step
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "draft")["state"] == "skipped"
    assert "step_started" not in [e["type"] for e in history(api, ex) if e["step_id"] == "draft"]


def test_force_advance_of_a_waiting_gate_is_recorded_as_implicit_approval(api: Any, worker: Any) -> None:
    wf = api.create_workflow(APPROVAL)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    status, body = act(api, ex, "force-advance", "approve")
    assert status == 200, body
    decision = step_of(body, "approve")["decision"]
    assert decision["decision"] == "approved" and decision["implicit"] is True and decision["by"] == "admin"
    worker.drain()
    assert api.execution(ex)["status"] == "completed"
    forced = next(e for e in history(api, ex) if e["type"] == "step_force_advanced")
    assert forced["details"]["implicit_approval"] is True and "implicit approval" in forced["message"]


# ------------------------------------------------- every action refused where the state forbids it
def _pending(api: Any, worker: Any) -> str:
    return api.start(api.create_workflow(APPROVAL))["execution_id"]


def _waiting(api: Any, worker: Any) -> str:
    ex = _pending(api, worker)
    worker.drain()
    return ex


def _failed(api: Any, worker: Any) -> str:
    return failed_execution(api, worker, FAILS)[1]


def _completed(api: Any, worker: Any) -> str:
    ex = _waiting(api, worker)
    assert act(api, ex, "force-advance", "approve")[0] == 200
    worker.drain()
    return ex


def _cancelled(api: Any, worker: Any) -> str:
    ex = _pending(api, worker)
    assert act(api, ex, "cancel")[0] == 200
    return ex


STATES: dict[str, Callable[[Any, Any], str]] = {
    "pending": _pending,
    "waiting": _waiting,
    "failed": _failed,
    "completed": _completed,
    "cancelled": _cancelled,
}
#: the step each action targets in each state (the current step, or the first one once finished)
TARGET = {"pending": "draft", "waiting": "approve", "failed": "draft", "completed": "approve", "cancelled": "draft"}
ALLOWED = {
    "pending": {"cancel", "force-advance"},
    "waiting": {"cancel", "force-advance", "approve", "reject"},
    "failed": {"cancel", "retry", "skip"},
    "completed": set(),
    "cancelled": set(),
}
ACTIONS = ["retry", "skip", "force-advance", "approve", "reject", "review", "cancel"]


BODIES = {"retry": {}, "skip": {"reason": "x"}, "cancel": {"reason": "x"}}


def _as(action: str, keys: Keys) -> str:
    return {"force-advance": keys.admin2, "approve": keys.manager, "reject": keys.manager, "review": keys.manager}.get(
        action, keys.operator
    )


@pytest.mark.parametrize("state", STATES)
def test_each_action_from_each_state_allowed_200_or_refused_409(api: Any, worker: Any, keys: Keys, state: str) -> None:
    ex = STATES[state](api, worker)
    before, trail = api.execution(ex), history(api, ex)
    for action in [a for a in ACTIONS if a not in ALLOWED[state]]:
        status, body = act(api, ex, action, TARGET[state], BODIES.get(action, {"comment": "x"}), key=_as(action, keys))
        assert status == 409, (action, body)
        assert body["Code"] == "ConflictError" and "cannot" in body["Message"]
    assert api.execution(ex) == before and history(api, ex) == trail, "a refused action changed the record"
    for action in sorted(ALLOWED[state]):
        ex = STATES[state](api, worker)
        seen = len(history(api, ex))
        status, body = act(api, ex, action, TARGET[state], BODIES.get(action, {"comment": "x"}), key=_as(action, keys))
        assert status == 200, (action, body)
        assert body["execution_id"] == ex and body == api.get(f"/executions/{ex}", key=_as(action, keys))[1]
        new = history(api, ex)[seen:]
        assert new and new[0]["actor"] in ("olivia", "manager-key", "ada"), (action, new)
        # the same action again no longer fits the state
        assert (
            act(api, ex, action, TARGET[state], BODIES.get(action, {"comment": "x"}), key=_as(action, keys))[0] == 409
        ), action


def test_unknown_execution_or_step_is_404(api: Any, worker: Any) -> None:
    ex = _failed(api, worker)
    assert act(api, "ex_nope", "cancel")[0] == 404
    assert act(api, ex, "retry", "nope")[0] == 404
    assert act(api, ex, "retry", "nope", {"instructions": "prev"})[0] == 404


# ------------------------------------------------------------------------ roles
def test_roles_no_key_401_viewer_403_operator_acts_admin_only_force(api: Any, worker: Any, keys: Keys) -> None:
    ex = _failed(api, worker)
    no_key = api.client.http.post(f"/executions/{ex}/cancel", headers={"Content-Type": "application/json"}, body="{}")
    assert no_key.status_code == 401
    assert act(api, ex, "cancel", key="sl_not_a_key")[0] == 401
    for action in ("retry", "skip", "cancel"):
        status, body = act(api, ex, action, "draft", key=keys.viewer)
        assert status == 403 and "operator" in body["Message"], action
    assert api.get(f"/executions/{ex}", key=keys.viewer)[0] == 200
    assert act(api, ex, "force-advance", "draft", key=keys.operator)[0] == 403
    assert act(api, ex, "skip", "draft", key=keys.operator)[0] == 200
