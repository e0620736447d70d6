"""Races: exactly one of two conflicting writers wins, the other gets 409, the record stays whole.

Each race is made deterministic by reading the execution twice (two writers that saw the
same history) and committing both decisions through the engine, which is exactly what two
concurrent Lambda invocations do; a threaded version goes through the HTTP handlers, and a
real SQS handler runs in a thread while an operator acts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.domain.machine import Actor, Approve, CancelExecution, ForceAdvance, RecordResult, RetryStep, decide
from chalicelib.errors import TransitionConflict
from tests.functional.operator_kit import (
    APPROVAL,
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

MANAGER, OPERATOR, ADMIN = Actor("manager-key", "operator"), Actor("olivia", "operator"), Actor("admin", "admin")


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each moto request atomic, as each DynamoDB request is in AWS.

    moto undoes a failed TransactWriteItems by restoring a copy of the whole table taken
    before it began, which, with two threads, also undoes the other thread's write. Real
    DynamoDB isolates transactions; serialising moto's requests restores that guarantee
    (the race between a read and a conditional write, which is what is tested, remains).
    """
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


def race(aws: Any, ex: str, first: Any, second: Any) -> Any:
    """Both commands decided on the same state; the first commit wins, the second must lose."""
    executions = aws.executions
    a, b = executions.load(ex), executions.load(ex)
    now = executions.clock()
    one, two = decide(a, first, now), decide(b, second, now)
    executions.commit(a, one)
    with pytest.raises(TransitionConflict):
        executions.commit(b, two)
    return executions.load(ex)


def assert_consistent(api: Any, wf: str, ex: str) -> dict[str, Any]:
    execution = api.execution(ex)
    assert listed_status(api, wf, ex) == execution["status"], "summary and history disagree"
    active = 1 if execution["status"] in ("running", "waiting") else 0
    assert active_count(api, wf) == active
    return execution


def waiting(api: Any, worker: Any) -> tuple[str, str]:
    wf = api.create_workflow(APPROVAL)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    return wf, ex


def test_approve_vs_cancel_approve_first(api: Any, worker: Any, aws: Any) -> None:
    wf, ex = waiting(api, worker)
    race(aws, ex, Approve("approve", MANAGER, "yes"), CancelExecution(OPERATOR))
    execution = assert_consistent(api, wf, ex)
    assert execution["status"] == "running" and step_of(execution, "approve")["state"] == "completed"
    types = api.history_types(ex)
    assert "approval_granted" in types and "execution_cancelled" not in types


def test_approve_vs_cancel_cancel_first_and_the_loser_gets_409(api: Any, worker: Any, aws: Any) -> None:
    wf, ex = waiting(api, worker)
    race(aws, ex, CancelExecution(OPERATOR), Approve("approve", MANAGER, "yes"))
    execution = assert_consistent(api, wf, ex)
    assert execution["status"] == "cancelled" and step_of(execution, "approve")["state"] == "skipped"
    keys = Keys(api)
    # the approver's request, arriving after the cancel, is refused cleanly
    status, body = act(api, ex, "approve", "approve", {"comment": "yes"}, key=keys.manager)
    assert status == 409 and "cancelled" in body["Message"]
    worker.drain()
    assert step_of(api.execution(ex), "post")["state"] == "pending"


def test_two_retries_at_once_exactly_one_attempt_is_added(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(FAILS_ONCE)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    race(aws, ex, RetryStep("draft", OPERATOR), RetryStep("draft", MANAGER, instructions="prev"))
    execution = assert_consistent(api, wf, ex)
    assert step_of(execution, "draft")["attempt"] == 2
    assert [e["actor"] for e in history(api, ex) if e["type"] == "step_retried"] == ["olivia"]
    assert "instructions_edited" not in api.history_types(ex)
    worker.drain()
    assert api.execution(ex)["status"] == "completed"


def test_two_retries_through_http_in_threads_one_200_one_409(api: Any, worker: Any, atomic_requests: None) -> None:
    wf = api.create_workflow(FAILS_ONCE)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    keys = Keys(api)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def retry(key: str) -> None:
        barrier.wait()
        results.append(act(api, ex, "retry", "draft", key=key)[0])

    threads = [threading.Thread(target=retry, args=(k,)) for k in (keys.operator, keys.manager)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]
    assert api.history_types(ex).count("step_retried") == 1
    assert step_of(assert_consistent(api, wf, ex), "draft")["attempt"] == 2


def test_force_advance_vs_agent_finishing_agent_first(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(workflow(tf("draft", "input"), tf("post")))
    ex = api.start(wf)["execution_id"]
    message = worker.receive(1)[0]
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    claimed = aws.runner.claim(ex, "draft", 1)
    race(aws, ex, RecordResult("draft", 1, output={"done": True}), ForceAdvance("draft", ADMIN))
    execution = assert_consistent(api, wf, ex)
    assert step_of(execution, "draft")["state"] == "completed" and claimed is not None
    # and through HTTP: the admin who comes second is told the step moved on
    status, body = act(api, ex, "force-advance", "draft")
    assert status == 409 and "completed" in body["Message"]


def test_force_advance_vs_agent_finishing_force_first_result_is_late(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(workflow(tf("draft", "input"), tf("post")))
    ex = api.start(wf)["execution_id"]
    message = worker.receive(1)[0]
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    claimed = aws.runner.claim(ex, "draft", 1)  # the worker runs its agent ...
    assert claimed is not None
    status, body = act(api, ex, "force-advance", "draft", {"comment": "stuck"})  # ... the admin moves on ...
    assert status == 200 and step_of(body, "draft")["skip_reason"] == "force-advanced by admin"
    aws.runner.record(claimed, RecordResult("draft", 1, output={"late": True}))  # ... and it answers late
    worker.drain()
    execution = assert_consistent(api, wf, ex)
    assert execution["status"] == "completed"
    assert step_of(execution, "draft")["state"] == "skipped" and step_of(execution, "draft")["output"] is None
    late = next(e for e in history(api, ex) if e["type"] == "late_result_discarded")
    assert late["step_id"] == "draft" and late["details"]["summary"] == '{"late": true}'
    assert "skipped" in late["details"]["reason"]


def run_handler_while(worker: Any, api: Any, ex: str, action: Callable[[], None]) -> None:
    """Deliver the next message through the real SQS handler in a thread (its agent sleeps),
    and run ``action`` once the step is running."""
    message = worker.receive(1)[0]
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    thread = threading.Thread(target=worker.deliver, args=(message["Body"],))
    thread.start()
    try:
        for _ in range(400):
            if step_of(api.execution(ex), "draft")["state"] == "running":
                break
            time.sleep(0.01)
        else:
            pytest.fail("the step never started")
        action()
    finally:
        thread.join()


def test_late_result_after_cancel_through_the_sqs_handler(api: Any, worker: Any, atomic_requests: None) -> None:
    definition = workflow(py("draft", "slow", config={"seconds": 1.5}), tf("post"))
    wf = api.create_workflow(definition)
    ex = api.start(wf)["execution_id"]
    answers: list[int] = []
    run_handler_while(worker, api, ex, lambda: answers.append(act(api, ex, "cancel", body={"reason": "too slow"})[0]))
    assert answers == [200]
    execution = assert_consistent(api, wf, ex)
    assert execution["status"] == "cancelled" and step_of(execution, "draft")["state"] == "skipped"
    assert step_of(execution, "draft")["output"] is None
    late = history(api, ex)[-1]
    assert late["type"] == "late_result_discarded" and late["details"]["execution_status"] == "cancelled"
    assert late["details"]["outcome"] == "output"
