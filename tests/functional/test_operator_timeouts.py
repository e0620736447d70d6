"""Timeouts, automatic retries and lost messages, driven through the sweep schedule handler.

The clock is the ``clock`` fixture (moved by hand); SQS delays are real in moto, so the
functional retries use ``backoff_seconds: 0`` and the long-wait path (> 15 minutes, woken
by the sweep, not by SQS) is driven by the clock.
"""

from __future__ import annotations

from typing import Any

from tests.functional.operator_kit import act, active_count, history, py, step_of, tf, workflow


def crash_after_claim(aws: Any, worker: Any) -> dict[str, Any]:
    """A worker takes the next message, claims its step and dies before recording anything."""
    messages = worker.receive(1)
    assert messages, "no step message queued"
    message = messages[0]
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    import json

    body = json.loads(message["Body"])
    assert aws.runner.claim(body["execution_id"], body["step_id"], body["attempt"]) is not None
    return body


def test_a_crashed_worker_leaves_a_step_that_the_sweep_times_out(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    wf = api.create_workflow(workflow(tf("draft", "input", timeout_seconds=200), tf("post")))
    ex = api.start(wf)["execution_id"]
    crash_after_claim(aws, worker)
    draft = step_of(api.execution(ex), "draft")
    assert draft["state"] == "running" and draft["deadline"] == "2026-11-25T12:03:20.000Z"
    # the claim wrote no due entry: the start's (its hand-over's grace, 120 s) comes due, and the
    # sweep, finding the deadline ahead, re-arms the head's entry for it
    clock.advance(120)
    worker.sweep()
    clock.advance(79)
    worker.sweep()
    assert step_of(api.execution(ex), "draft")["state"] == "running"
    clock.advance(1)
    worker.sweep()
    execution = api.execution(ex)
    draft = step_of(execution, "draft")
    assert execution["status"] == "failed" and draft["state"] == "failed"
    assert draft["error"]["kind"] == "timeout"
    assert draft["error"]["message"] == "step ran past its time limit of 200s"
    assert active_count(api, wf) == 0
    timed_out = history(api, ex)[-1]
    assert timed_out["type"] == "step_timed_out" and "ran past its time limit" in timed_out["message"]
    # the operator retries; the step completes this time
    assert act(api, ex, "retry", "draft")[0] == 200
    worker.drain()
    assert api.execution(ex)["status"] == "completed"


def test_default_time_limit_is_300_seconds(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    wf = api.create_workflow(workflow(tf("draft", "input")))
    ex = api.start(wf)["execution_id"]
    crash_after_claim(aws, worker)
    assert step_of(api.execution(ex), "draft")["timeout_seconds"] == 300
    clock.advance(299)
    worker.sweep()
    assert api.execution(ex)["status"] == "running"
    clock.advance(1)
    worker.sweep()
    assert step_of(api.execution(ex), "draft")["error"]["kind"] == "timeout"


def test_timeout_with_a_retry_policy_is_retried_automatically(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    definition = workflow(py("draft", "echo", timeout_seconds=30, retry={"max_attempts": 2, "backoff_seconds": 0}))
    ex = api.start(api.create_workflow(definition))["execution_id"]
    crash_after_claim(aws, worker)
    clock.advance(30)
    worker.sweep()  # no entry is due yet: the claim wrote none
    assert step_of(api.execution(ex), "draft")["attempt"] == 1
    clock.advance(90)
    worker.sweep()  # the start's entry (its hand-over's grace): the deadline is past
    draft = step_of(api.execution(ex), "draft")
    assert (draft["state"], draft["attempt"], draft["error"]["kind"]) == ("running", 2, "timeout")
    assert api.execution(ex)["status"] == "running"
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed" and step_of(execution, "draft")["attempt"] == 2


def test_retryable_failures_are_retried_with_backoff_until_success(api: Any, worker: Any) -> None:
    definition = workflow(
        py("draft", "flaky", config={"succeed_on_attempt": 3}, retry={"max_attempts": 3, "backoff_seconds": 0}),
        tf("post"),
    )
    wf = api.create_workflow(definition)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "draft")["attempt"] == 3
    assert step_of(execution, "draft")["output"]["attempt"] == 3
    trail = [(e["type"], e["attempt"]) for e in history(api, ex) if e["step_id"] == "draft"]
    assert trail == [
        ("step_started", 1),
        ("step_failed", 1),
        ("step_started", 2),
        ("step_failed", 2),
        ("step_started", 3),
        ("step_completed", 3),
    ]
    failed = [e for e in history(api, ex) if e["type"] == "step_failed"]
    assert [e["details"]["next_attempt"] for e in failed] == [2, 3]
    assert "automatic retry as attempt 2" in failed[0]["message"]


def test_only_the_last_failure_pauses_the_execution(api: Any, worker: Any) -> None:
    definition = workflow(
        py(
            "draft", "always_fails", config={"message": "upstream 503"}, retry={"max_attempts": 2, "backoff_seconds": 0}
        ),
        tf("post"),
    )
    wf = api.create_workflow(definition)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    execution = api.execution(ex)
    draft = step_of(execution, "draft")
    assert execution["status"] == "failed" and draft["attempt"] == 2
    assert "upstream 503" in draft["error"]["message"] and draft["error"]["attempts_exhausted"] == 2
    assert active_count(api, wf) == 0
    # a non-retryable failure is not retried even with a policy
    definition = workflow(py("draft", "fails_permanently", retry={"max_attempts": 5, "backoff_seconds": 0}))
    ex = api.start(api.create_workflow(definition))["execution_id"]
    worker.drain()
    assert step_of(api.execution(ex), "draft")["attempt"] == 1


def test_a_backoff_longer_than_sqs_can_hold_is_woken_by_the_sweep(api: Any, worker: Any, clock: Any) -> None:
    definition = workflow(py("draft", "flaky", retry={"max_attempts": 2, "backoff_seconds": 1800}), tf("post"))
    ex = api.start(api.create_workflow(definition))["execution_id"]
    worker.sweep()  # sets the sweep's watermark at the start
    worker.drain()
    draft = step_of(api.execution(ex), "draft")
    assert (draft["state"], draft["attempt"], draft["retry_at"]) == ("running", 2, "2026-11-25T12:30:00.000Z")
    assert not worker.receive(), "no message may wait in SQS for 30 minutes"
    clock.advance(1799)
    worker.sweep()
    assert not worker.receive()
    clock.advance(1)
    worker.sweep()
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "completed" and step_of(execution, "draft")["attempt"] == 2
    woken = next(e for e in history(api, ex) if e["type"] == "step_requeued")
    assert woken["details"]["reason"] == "backoff over" and woken["actor"] is None


def test_a_lost_first_message_is_resent_by_the_sweep(api: Any, worker: Any, clock: Any) -> None:
    ex = api.start(api.create_workflow(workflow(tf("draft", "input"), tf("post"))))["execution_id"]
    lost = worker.receive(1)
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=lost[0]["ReceiptHandle"])
    worker.sweep()
    assert not worker.receive(), "re-sent too early"
    clock.advance(120)
    worker.sweep()
    worker.drain()
    assert api.execution(ex)["status"] == "completed"
    assert "step_requeued" in api.history_types(ex)


def test_a_message_lost_after_an_operator_action_is_resent(api: Any, worker: Any, clock: Any) -> None:
    definition = workflow(py("draft", "flaky"), tf("post"))
    ex = api.start(api.create_workflow(definition))["execution_id"]
    worker.drain()
    assert act(api, ex, "retry", "draft")[0] == 200
    for message in worker.receive():  # the retry's message is lost
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    clock.advance(120)
    worker.sweep()
    worker.drain()
    assert api.execution(ex)["status"] == "completed"
    # lost twice: the sweep keeps trying, waiting twice as long each time
    ex = api.start(api.create_workflow(definition))["execution_id"]
    for _ in range(2):
        for message in worker.receive():
            worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
        clock.advance(240)
        worker.sweep()
    worker.drain()
    assert step_of(api.execution(ex), "draft")["state"] == "failed"  # flaky fails attempt 1
    assert api.history_types(ex).count("step_requeued") == 2


def test_sweep_leaves_waiting_gates_and_finished_executions_alone(api: Any, worker: Any, clock: Any) -> None:
    definition = workflow(tf("draft", "input", gate={"type": "approval"}))
    ex = api.start(api.create_workflow(definition))["execution_id"]
    worker.drain()
    before = history(api, ex)
    clock.advance(3 * 86400)
    worker.sweep()
    assert history(api, ex) == before and api.execution(ex)["status"] == "waiting"


def test_a_message_lost_after_a_step_completed_is_resent_a_grace_after_its_hand_over(
    api: Any, worker: Any, clock: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("STEPLINE_MAX_CHAIN_STEPS", "1")  # every step hands over through SQS
    ex = api.start(api.create_workflow(workflow(tf("draft", "input", timeout_seconds=60), tf("post"))))["execution_id"]
    first = worker.receive(1)[0]
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=first["ReceiptHandle"])
    clock.advance(100)
    worker.deliver(first["Body"])  # draft runs and hands post over (a worker's: no due entry)
    for message in worker.receive():  # the hand-over to post is lost
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    clock.advance(20)
    worker.sweep()  # the start's entry (12:02): post's message is 20 s old, not lost yet: re-armed
    clock.advance(60)
    worker.sweep()
    clock.advance(39)
    worker.sweep()
    assert not worker.receive() and step_of(api.execution(ex), "post")["state"] == "pending"
    clock.advance(1)
    worker.sweep()  # the re-armed entry (12:03:40): 120 s since the hand-over
    worker.drain()
    assert api.execution(ex)["status"] == "completed"
