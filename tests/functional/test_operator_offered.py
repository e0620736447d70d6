"""The actions the execution view offers each key: what the action routes accept, no more, no less.

``GET /executions/{id}`` lists per step and for the execution what the caller's key may do
now (``chalicelib.domain.permissions`` dry-runs each command through ``decide``). These
tests fix the expected sets per state and role; the model check (``test_model_check``)
additionally asserts, for every random action it tries, that the route accepted it exactly
when the view offered it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.operator_kit import APPROVAL, FAILS_ONCE, REVIEW, Keys, act, history, step_of


@pytest.fixture
def keys(api: Any) -> Keys:
    return Keys(api)


def offered(api: Any, execution_id: str, key: str) -> dict[str, list[str]]:
    """``{"execution": [...], <step id>: [...]}`` as ``key`` sees it."""
    status, view = api.get(f"/executions/{execution_id}", key=key)
    assert status == 200, view
    return {"execution": view["actions"], **{s["id"]: s["actions"] for s in view["steps"]}}


def started(api: Any, worker: Any, definition: dict[str, Any], drain: bool = True) -> str:
    ex = api.start(api.create_workflow(definition))["execution_id"]
    if drain:
        worker.drain()
    return ex


def test_failed_step_offers_retry_edit_skip_to_operators_and_nothing_to_viewers(
    api: Any, worker: Any, keys: Keys
) -> None:
    ex = started(api, worker, FAILS_ONCE)
    assert api.execution(ex)["status"] == "failed"
    operator = {"execution": ["cancel"], "draft": ["retry", "edit_and_retry", "skip"], "post": [], "notify": []}
    assert offered(api, ex, keys.operator) == operator
    assert offered(api, ex, keys.admin2) == operator  # force-advance is for pending, running or waiting steps
    assert offered(api, ex, keys.viewer) == {"execution": [], "draft": [], "post": [], "notify": []}


def test_gate_offers_decisions_only_to_its_approvers_and_force_advance_only_to_admins(
    api: Any, worker: Any, keys: Keys
) -> None:
    ex = started(api, worker, APPROVAL)
    assert api.execution(ex)["status"] == "waiting"
    assert offered(api, ex, keys.manager) == {
        "execution": ["cancel"],
        "draft": [],
        "approve": ["approve", "reject"],
        "post": [],
    }
    assert offered(api, ex, keys.operator)["approve"] == []  # an operator the gate does not name
    # the gate names a key, not a role: an admin is no approver, but may force the gate forward
    assert offered(api, ex, keys.admin2) == {
        "execution": ["cancel"],
        "draft": [],
        "approve": ["force_advance"],
        "post": [],
    }
    assert offered(api, ex, keys.viewer)["approve"] == [] and offered(api, ex, keys.viewer)["execution"] == []
    # and the routes agree with the view for the keys it offered nothing
    assert act(api, ex, "approve", "approve", {"comment": "me?"}, key=keys.operator)[0] == 403
    assert act(api, ex, "force-advance", "approve", {}, key=keys.operator)[0] == 403


def test_review_gate_offers_review_to_any_operator(api: Any, worker: Any, keys: Keys) -> None:
    ex = started(api, worker, REVIEW)
    assert offered(api, ex, keys.operator)["review"] == ["approve", "reject", "review"]
    assert offered(api, ex, api.key)["review"] == ["approve", "reject", "review", "force_advance"]


def test_pending_step_offers_force_advance_to_admins_and_a_finished_execution_offers_nothing(
    api: Any, worker: Any, keys: Keys
) -> None:
    ex = started(api, worker, APPROVAL, drain=False)
    assert offered(api, ex, keys.admin2) == {
        "execution": ["cancel"],
        "draft": ["force_advance"],
        "approve": [],
        "post": [],
    }
    assert offered(api, ex, keys.operator) == {"execution": ["cancel"], "draft": [], "approve": [], "post": []}
    status, body = act(api, ex, "cancel", key=keys.operator)
    assert status == 200
    # an action's answer carries the actions of the state it produced
    assert body["actions"] == [] and all(s["actions"] == [] for s in body["steps"])
    assert offered(api, ex, keys.admin2) == {"execution": [], "draft": [], "approve": [], "post": []}


def test_action_answers_offer_what_the_caller_may_do_next(api: Any, worker: Any, keys: Keys) -> None:
    ex = started(api, worker, APPROVAL)
    status, body = act(api, ex, "reject", "approve", {"comment": "wrong total"}, key=keys.manager)
    assert status == 200, body
    assert step_of(body, "approve")["actions"] == ["retry", "edit_and_retry", "skip"]
    assert body["actions"] == ["cancel"]


@pytest.mark.parametrize("body", [{}, {"comment": None}, {"comment": ""}, {"comment": "   \n"}])
def test_reject_needs_a_reason_400_naming_comment_and_nothing_changes(
    api: Any, worker: Any, keys: Keys, body: dict[str, Any]
) -> None:
    ex = started(api, worker, APPROVAL)
    before, trail = api.execution(ex), history(api, ex)
    status, answer = act(api, ex, "reject", "approve", body, key=keys.manager)
    assert status == 400, answer
    assert [e["field"] for e in answer["errors"]] == ["comment"]
    assert "reason" in answer["errors"][0]["message"]
    assert api.execution(ex) == before and history(api, ex) == trail
    status, answer = act(api, ex, "reject", "approve", {"comment": "the total is wrong"}, key=keys.manager)
    assert status == 200, answer
    gate = step_of(answer, "approve")
    assert gate["state"] == "failed" and gate["decision"]["comment"] == "the total is wrong"
