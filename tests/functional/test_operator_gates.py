"""Approval and review gates: who may decide, what each outcome does, and what is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.operator_kit import APPROVAL, REVIEW, Keys, act, active_count, history, step_of


@pytest.fixture
def keys(api: Any) -> Keys:
    return Keys(api)


def waiting(api: Any, worker: Any, definition: dict[str, Any]) -> tuple[str, str]:
    wf = api.create_workflow(definition)
    ex = api.start(wf, {"customer": "Globex"})["execution_id"]
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "waiting", execution
    return wf, ex


def test_approval_by_the_named_approver_completes_the_step_and_the_execution(
    api: Any, worker: Any, clock: Any, keys: Keys
) -> None:
    wf, ex = waiting(api, worker, APPROVAL)
    gate = step_of(api.execution(ex), "approve")
    assert gate["state"] == "waiting_for_approval" and gate["output"] == {"customer": "Globex", "total": 10}
    assert active_count(api, wf) == 1
    # an operator who is not named, and a viewer, may not decide
    status, body = act(api, ex, "approve", "approve", {"comment": "me?"}, key=keys.operator)
    assert status == 403 and "not an approver" in body["Message"]
    assert act(api, ex, "approve", "approve", {"comment": "me?"}, key=keys.viewer)[0] == 403
    clock.advance(3600)
    status, body = act(api, ex, "approve", "approve", {"comment": "matches the contract"}, key=keys.manager)
    assert status == 200, body
    decision = step_of(body, "approve")["decision"]
    assert decision == {
        "decision": "approved",
        "by": "manager-key",
        "at": "2026-11-25T13:00:00.000Z",
        "attempt": 1,
        "comment": "matches the contract",
    }
    assert step_of(body, "approve")["comments"] == [
        {
            "by": "manager-key",
            "at": "2026-11-25T13:00:00.000Z",
            "attempt": 1,
            "decision": "approved",
            "text": "matches the contract",
        }
    ]
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "post")["output"] == {"customer": "Globex", "total": 10}
    granted = next(e for e in history(api, ex) if e["type"] == "approval_granted")
    assert (granted["actor"], granted["at"], granted["details"]["comment"]) == (
        "manager-key",
        "2026-11-25T13:00:00.000Z",
        "matches the contract",
    )
    assert granted["message"] == "step approve (attempt 1) approved by manager-key: matches the contract"
    assert active_count(api, wf) == 0
    # decided once: a second decision is refused
    assert act(api, ex, "approve", "approve", key=keys.manager)[0] == 409


def test_rejection_fails_the_step_then_retry_runs_it_again_and_waits_again(api: Any, worker: Any, keys: Keys) -> None:
    wf, ex = waiting(api, worker, APPROVAL)
    status, body = act(api, ex, "reject", "approve", {"comment": "wrong total"}, key=keys.manager)
    assert status == 200, body
    gate = step_of(body, "approve")
    assert body["status"] == "failed" and gate["state"] == "failed"
    assert gate["error"] == {
        "kind": "rejected",
        "message": "rejected by manager-key: wrong total",
        "action": "skip_or_cancel",
    }
    assert gate["decision"]["decision"] == "rejected"
    assert active_count(api, wf) == 0
    worker.drain()
    assert step_of(api.execution(ex), "post")["state"] == "pending"
    # edit and retry the rejected step: it runs again and waits for a new decision
    status, body = act(api, ex, "retry", "approve", {"instructions": "merge(prev, {total: `12`})"}, key=keys.operator)
    assert status == 200, body
    worker.drain()
    gate = step_of(api.execution(ex), "approve")
    assert (gate["state"], gate["attempt"], gate["output"]["total"]) == ("waiting_for_approval", 2, 12)
    assert act(api, ex, "approve", "approve", {"comment": "ok now"}, key=keys.manager)[0] == 200
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert [(c["decision"], c["attempt"], c["text"]) for c in step_of(execution, "approve")["comments"]] == [
        ("rejected", 1, "wrong total"),
        ("approved", 2, "ok now"),
    ]


def test_rejected_step_can_be_skipped_or_the_execution_cancelled(api: Any, worker: Any, keys: Keys) -> None:
    _, first = waiting(api, worker, APPROVAL)
    _, second = waiting(api, worker, APPROVAL)
    for ex in (first, second):
        assert act(api, ex, "reject", "approve", {"comment": "no"}, key=keys.manager)[0] == 200
    assert act(api, first, "skip", "approve", key=keys.operator)[0] == 200
    status, body = act(api, second, "cancel", key=keys.operator)
    assert status == 200 and [s["step_id"] for s in body["completed_steps_not_undone"]] == ["draft"]
    worker.drain()
    assert api.execution(first)["status"] == "completed"
    assert step_of(api.execution(first), "post")["output"] is None
    assert api.execution(second)["status"] == "cancelled"


def test_review_amends_the_output_that_the_next_step_receives_and_keeps_the_original(
    api: Any, worker: Any, keys: Keys
) -> None:
    _, ex = waiting(api, worker, REVIEW)
    amended = {"customer": "Globex", "total": 9, "note": "10% discount agreed"}
    status, body = act(
        api, ex, "review", "review", {"comment": "applied the discount", "output": amended}, key=keys.operator
    )
    assert status == 200, body
    gate = step_of(body, "review")
    assert gate["output"] == amended and gate["original_output"] == {"customer": "Globex", "total": 10}
    assert gate["decision"]["decision"] == "reviewed" and gate["decision"]["by"] == "olivia"
    assert gate["comments"][0]["text"] == "applied the discount"
    worker.drain()
    assert step_of(api.execution(ex), "post")["output"] == {"sent": amended}
    reviewed = next(e for e in history(api, ex) if e["type"] == "review_submitted")
    assert reviewed["details"]["amended_output"] == amended
    assert reviewed["details"]["original_output"] == {"customer": "Globex", "total": 10}


def test_review_without_output_keeps_it_and_approve_on_a_review_gate_works(api: Any, worker: Any) -> None:
    _, first = waiting(api, worker, REVIEW)
    _, second = waiting(api, worker, REVIEW)
    status, body = act(api, first, "review", "review", {"comment": "fine as is"})
    assert status == 200 and "original_output" not in step_of(body, "review")
    assert act(api, second, "approve", "review", {"comment": "ok"})[0] == 200
    worker.drain()
    for ex in (first, second):
        assert step_of(api.execution(ex), "post")["output"] == {"sent": {"customer": "Globex", "total": 10}}


def test_review_of_an_approval_gate_is_409_and_oversized_amendment_is_400(api: Any, worker: Any, keys: Keys) -> None:
    _, ex = waiting(api, worker, APPROVAL)
    status, body = act(api, ex, "review", "approve", {"output": 1}, key=keys.manager)
    assert status == 409 and "its gate is approval" in body["Message"]
    _, ex = waiting(api, worker, REVIEW)
    status, body = act(api, ex, "review", "review", {"output": "x" * 400_000})
    assert status == 400 and body["errors"][0]["field"] == "output"
    status, body = act(api, ex, "review", "review", {"comment": 5})
    assert status == 400 and body["errors"][0]["field"] == "comment"
    assert api.execution(ex)["status"] == "waiting"


def test_approvers_named_by_role_admit_that_role_and_above(api: Any, worker: Any, keys: Keys) -> None:
    definition = dict(
        APPROVAL,
        steps=[APPROVAL["steps"][0], {**APPROVAL["steps"][1], "gate": {"type": "approval", "approvers": ["admin"]}}],
    )
    _, ex = waiting(api, worker, definition)
    assert act(api, ex, "approve", "approve", key=keys.operator)[0] == 403
    status, body = act(api, ex, "approve", "approve", {"comment": "admin ok"}, key=keys.admin2)
    assert status == 200 and step_of(body, "approve")["decision"]["by"] == "ada"
