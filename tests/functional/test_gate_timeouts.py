"""Gates with ``timeout_seconds``: the sweep decides ``on_timeout`` for the system.

Driven through the real handlers: the worker drains the queue, the ``sweep`` schedule
handler is invoked as EventBridge would, and the clock fixture is moved by hand.
"""

from __future__ import annotations

from typing import Any

from tests.functional.operator_kit import act, history, step_of, tf, workflow


def gated(on_timeout: str | None, seconds: int = 3600) -> dict[str, Any]:
    gate: dict[str, Any] = {"type": "approval", "approvers": ["manager-key"], "timeout_seconds": seconds}
    if on_timeout is not None:
        gate["on_timeout"] = on_timeout
    return workflow(tf("draft", "{total: `10`}"), tf("approve", "prev", gate=gate), tf("post", "{sent: prev}"))


def wait_at_gate(api: Any, worker: Any, definition: dict[str, Any]) -> str:
    ex = api.start(api.create_workflow(definition))["execution_id"]
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "waiting"
    return ex


def test_a_gate_that_times_out_with_fail_fails_the_step_as_a_timeout(api: Any, worker: Any, clock: Any) -> None:
    ex = wait_at_gate(api, worker, gated("fail"))
    assert step_of(api.execution(ex), "approve")["gate_timeout_at"] == "2026-11-25T13:00:00.000Z"
    clock.advance(3599)
    worker.sweep()
    assert api.execution(ex)["status"] == "waiting"
    clock.advance(1)
    worker.sweep()
    execution = api.execution(ex)
    approve = step_of(execution, "approve")
    assert execution["status"] == "failed" and approve["state"] == "failed"
    assert approve["error"]["kind"] == "timeout" and "no decision within 3600s" in approve["error"]["message"]
    assert approve["decision"]["by"] == "system" and approve["decision"]["decision"] == "timed_out"
    last = history(api, ex)[-1]
    assert (last["type"], last["actor"], last["details"]["on_timeout"]) == ("step_timed_out", "system", "fail")
    assert "decided by system" in last["message"] and "waits for an operator" in last["message"]
    # no automatic retry re-ran the agent: the operator decides what happens next
    assert worker.drain() == []
    assert act(api, ex, "skip", "approve")[0] == 200
    worker.drain()
    assert api.execution(ex)["status"] == "completed"


def test_on_timeout_fail_is_the_default(api: Any, worker: Any, clock: Any) -> None:
    status, body = api.post("/workflows", gated(None, 60))
    assert status == 201 and body["steps"][1]["gate"]["on_timeout"] == "fail"
    ex = wait_at_gate(api, worker, gated(None, 60))
    clock.advance(60)
    worker.sweep()
    assert step_of(api.execution(ex), "approve")["error"]["kind"] == "timeout"


def test_a_gate_that_times_out_with_approve_goes_on_as_approved_by_the_system(
    api: Any, worker: Any, clock: Any
) -> None:
    ex = wait_at_gate(api, worker, gated("approve", 120))
    clock.advance(120)
    worker.sweep()
    assert api.execution(ex)["status"] == "running"
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "post")["output"] == {"sent": {"total": 10}}
    decision = step_of(execution, "approve")["decision"]
    assert (decision["decision"], decision["by"]) == ("approved", "system")
    granted = next(e for e in history(api, ex) if e["type"] == "approval_granted")
    assert granted["actor"] == "system" and granted["details"]["timed_out"] is True
    assert granted["message"].startswith("step approve (attempt 1) approved by system: no decision within 120s")


def test_a_gate_that_times_out_with_reject_fails_as_rejected_by_the_system(api: Any, worker: Any, clock: Any) -> None:
    ex = wait_at_gate(api, worker, gated("reject", 120))
    clock.advance(121)
    worker.sweep()
    execution = api.execution(ex)
    approve = step_of(execution, "approve")
    assert execution["status"] == "failed" and approve["error"]["kind"] == "rejected"
    assert approve["decision"]["by"] == "system"
    rejected = history(api, ex)[-1]
    assert (rejected["type"], rejected["actor"]) == ("approval_rejected", "system")


def test_a_decision_in_time_leaves_nothing_for_the_sweep(api: Any, worker: Any, clock: Any) -> None:
    from tests.functional.operator_kit import Keys

    keys = Keys(api)
    ex = wait_at_gate(api, worker, gated("reject", 120))
    assert act(api, ex, "approve", "approve", {"comment": "fine"}, key=keys.manager)[0] == 200
    worker.drain()
    clock.advance(600)
    worker.sweep()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "approve")["decision"]["by"] == "manager-key"
    assert not [e for e in history(api, ex) if e["actor"] == "system"]


def test_a_retried_gate_waits_its_full_time_again(api: Any, worker: Any, clock: Any) -> None:
    ex = wait_at_gate(api, worker, gated("fail", 100))
    clock.advance(100)
    worker.sweep()
    assert act(api, ex, "retry", "approve")[0] == 200
    worker.drain()
    assert step_of(api.execution(ex), "approve")["gate_timeout_at"] == "2026-11-25T12:03:20.000Z"
    clock.advance(99)
    worker.sweep()
    assert api.execution(ex)["status"] == "waiting"
    clock.advance(1)
    worker.sweep()
    approve = step_of(api.execution(ex), "approve")
    assert approve["state"] == "failed" and approve["attempt"] == 2


def test_gate_time_out_fields_are_validated(api: Any) -> None:
    bad = gated("later", 0)
    status, body = api.post("/workflows", bad)
    assert status == 400
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields["steps[1].gate.timeout_seconds"] == "must be an integer from 1 to 2592000"
    assert fields["steps[1].gate.on_timeout"] == "must be one of: fail, approve, reject"
    lonely = workflow(tf("approve", "prev", gate={"type": "approval", "on_timeout": "approve"}))
    status, body = api.post("/workflows", lonely)
    assert status == 400
    assert body["errors"][0]["field"] == "steps[0].gate.on_timeout"
    assert "needs timeout_seconds" in body["errors"][0]["message"]
