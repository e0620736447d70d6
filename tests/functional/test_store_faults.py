"""Store faults moto cannot produce, injected at the SDK boundary (tests/faults.py), and the
worker's durability: starts and operator actions retry
collisions and throttling and answer 200/201, never a 409 without a clash of state; a result
the store will not take is kept and recorded by the next delivery without running the agent
again; a claimed attempt whose worker died is noticed at its lease, not its deadline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.machine import LEASE_SECONDS
from chalicelib.errors import TransitionConflict
from tests.faults import FAULTS, Rule
from tests.functional.operator_kit import act, py, step_of, tf, workflow


@pytest.fixture
def faults() -> Iterator[Any]:
    yield FAULTS
    FAULTS.clear()


class Counting:
    """A third party on loopback that counts the calls the http agent makes."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.during: Any = None  # called inside the request, before the answer
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls.append(json.loads(body or b"{}"))
                if outer.during is not None:
                    outer.during()
                answer = json.dumps({"ok": len(outer.calls)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def third_party() -> Iterator[Counting]:
    party = Counting()
    yield party
    party.server.shutdown()


def http(step_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "agent": "http",
        "instructions": "{customer: input.customer}",
        "config": {"url": url, "method": "POST"},
        **extra,
    }


def _conflict(operation: str, needle: str, times: int, reasons: list[str]) -> Rule:
    return FAULTS.add(Rule(operation, "TransactionCanceledException", times=times, needle=needle, reasons=reasons))


def test_a_start_that_collides_on_shared_items_is_retried_not_refused(api: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("only", "input")))
    # the head (with event 1) and the key's marker; a collision cancels the transaction
    rule = _conflict("TransactWriteItems", "execution_started", 2, ["None", "TransactionConflict"])
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {}}, headers={"Idempotency-Key": "collides"})
    assert status == 201, body
    assert rule.hits == 2
    again = api.post(f"/workflows/{wf}/executions", {"inputs": {}}, headers={"Idempotency-Key": "collides"})[1]
    assert again["execution_id"] == body["execution_id"]
    assert [i["execution_id"] for i in api.get(f"/workflows/{wf}/executions")[1]["items"]] == [body["execution_id"]]


def test_a_start_throttled_past_its_retries_is_a_503_not_a_409(api: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("only", "input")))
    # without an Idempotency-Key a start is one put of the head (event 1 on it)
    FAULTS.add(Rule("PutItem", "ThrottlingException", times=100, needle="execution_started"))
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {}})
    assert status == 503, body
    faults.clear()
    assert api.get(f"/workflows/{wf}/executions")[1]["items"] == []  # nothing half-written


def test_an_operator_action_retries_collisions_and_throttling(api: Any, worker: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("check", "input", gate={"type": "approval"}), tf("post")))
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(ex)["status"] == "waiting"
    collide = _conflict("TransactWriteItems", "approval_granted", 2, ["None", "TransactionConflict", "None", "None"])
    throttle = FAULTS.add(
        Rule("TransactWriteItems", "ProvisionedThroughputExceededException", times=1, needle="approval_granted")
    )
    status, body = act(api, ex, "approve", "check", {"comment": "fine"})
    assert status == 200, body
    assert collide.hits == 2 and throttle.hits == 1
    assert api.history_types(ex).count("approval_granted") == 1
    # a real clash is still a clash
    assert act(api, ex, "approve", "check", {"comment": "again"})[0] == 409


def test_a_throttled_record_is_retried_and_the_agent_runs_once(
    api: Any, worker: Any, faults: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("check", "prev", gate={"type": "approval"})))
    ex = api.start(wf)["execution_id"]
    # the chain's commit (the execution starts waiting: a put of the commit item, then the
    # head) is throttled; the result is then recorded again, throttled twice more
    then = FAULTS.add(Rule("PutItem", "ProvisionedThroughputExceededException", times=3, needle="step_completed"))
    worker.drain()
    assert then.hits == 3
    assert len(third_party.calls) == 1
    view = api.execution(ex)
    assert view["status"] == "waiting" and step_of(view, "call")["output"]["body"] == {"ok": 1}


def test_a_result_the_store_refuses_is_kept_and_recorded_by_the_next_delivery(
    api: Any, worker: Any, aws: Any, faults: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    message = worker.receive(1)[0]
    # every write that would record the call's result fails (a store error, not a conflict)
    FAULTS.add(Rule("TransactWriteItems", "InternalServerError", times=1000, needle="step_completed", status=500))
    FAULTS.add(Rule("PutItem", "InternalServerError", times=1000, needle="step_completed", status=500))
    with pytest.raises(TransitionConflict):  # the worker kept the result and gave up
        worker.deliver(message["Body"])  # Lambda reports the error; SQS will deliver again
    assert len(third_party.calls) == 1
    assert step_of(api.execution(ex), "call")["state"] == "running"
    faults.clear()
    assert aws.store.payloads.kept_result(ex, "call", 1) is not None
    worker.deliver(message["Body"])  # the redelivery: recorded, not run again
    worker.drain()
    assert len(third_party.calls) == 1
    view = api.execution(ex)
    assert view["status"] == "completed" and step_of(view, "call")["attempt"] == 1
    assert api.history_types(ex).count("step_completed") == 2


def test_a_side_effect_runs_only_after_its_claim_is_stored(
    api: Any, worker: Any, aws: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(tf("prepare", "input"), http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    seen: list[list[str]] = []
    third_party.during = lambda: seen.append([e.type for e in aws.store.executions.load_events(ex)])
    worker.drain()
    # the chain committed prepare and the call's claim together, then the call's side-effect
    # ledger entry, all before calling out
    assert seen == [["execution_started", "step_started", "step_completed", "step_started", "side_effect_started"]]
    assert api.execution(ex)["status"] == "completed"


@pytest.mark.parametrize(
    "code, status", [("InternalServerError", 500), ("ProvisionedThroughputExceededException", 400)]
)
def test_a_claim_stored_with_its_answer_lost_is_run_by_its_worker(
    api: Any, worker: Any, faults: Any, third_party: Counting, code: str, status: int
) -> None:
    wf = api.create_workflow(workflow(tf("prepare", "input"), http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    # the commit of prepare's result and the call's claim is stored, then its answer is lost
    lost = FAULTS.add(Rule("PutItem", code, needle="side_effect_started", status=status, after=True))
    message = worker.receive(1)[0]
    worker.deliver(message["Body"])  # no error: the worker found its own claim and ran the call
    assert lost.hits == 1
    assert len(third_party.calls) == 1
    view = api.execution(ex)
    assert view["status"] == "completed" and step_of(view, "call")["attempt"] == 1
    types = api.history_types(ex)
    assert "step_timed_out" not in types and types.count("step_started") == 3


def test_a_claim_that_was_not_stored_brings_the_message_back_and_runs_once(
    api: Any, worker: Any, faults: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    FAULTS.add(Rule("PutItem", "InternalServerError", times=4, needle="side_effect_started", status=500))
    message = worker.receive(1)[0]
    with pytest.raises(Exception):  # noqa: B017 - whichever store error the SDK raised last
        worker.deliver(message["Body"])
    assert third_party.calls == [] and step_of(api.execution(ex), "call")["state"] == "pending"
    faults.clear()
    worker.deliver(message["Body"])  # SQS delivers it again
    assert len(third_party.calls) == 1 and api.execution(ex)["status"] == "completed"


def test_an_operator_cancel_stops_a_chain_at_its_next_commit(
    api: Any, worker: Any, aws: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("after", "prev"), tf("last", "prev")))
    ex = api.start(wf)["execution_id"]
    from chalicelib.domain.machine import Actor, CancelExecution

    third_party.during = lambda: aws.executions.act(ex, CancelExecution(Actor("olivia", "operator"), "stop"))
    worker.drain()
    view = api.execution(ex)
    assert view["status"] == "cancelled"
    types = api.history_types(ex)
    assert types[-1] == "late_result_discarded" and "step_completed" not in types
    assert step_of(view, "after")["state"] == "pending" and len(third_party.calls) == 1


def test_a_dead_worker_is_noticed_at_its_lease_not_at_its_deadline(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    wf = api.create_workflow(
        workflow(py("long", "echo", timeout_seconds=86400, retry={"max_attempts": 2, "backoff_seconds": 0}))
    )
    ex = api.start(wf)["execution_id"]
    body = json.loads(worker.receive(1)[0]["Body"])
    assert aws.runner.claim(ex, body["step_id"], body["attempt"]) is not None  # ... and the worker dies
    clock.advance(LEASE_SECONDS - 1)
    worker.sweep()
    assert step_of(api.execution(ex), "long")["attempt"] == 1
    clock.advance(2)
    worker.sweep()
    step = step_of(api.execution(ex), "long")
    assert step["attempt"] == 2 and step["state"] == "running"
    failed = [e for e in api.get(f"/executions/{ex}/history")[1]["items"] if e["type"] == "step_timed_out"]
    assert "stopped reporting" in failed[0]["details"]["error"]["message"]
    worker.drain()
    assert api.execution(ex)["status"] == "completed"


def test_heartbeats_keep_a_long_step_alive_past_its_first_lease(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    wf = api.create_workflow(workflow(py("long", "echo", timeout_seconds=86400)))
    ex = api.start(wf)["execution_id"]
    body = json.loads(worker.receive(1)[0]["Body"])
    assert aws.runner.claim(ex, body["step_id"], body["attempt"]) is not None
    for _ in range(3):
        clock.advance(LEASE_SECONDS * 2 / 3)
        assert aws.runner.heartbeat(ex, "long", 1)
        worker.sweep()
    step = step_of(api.execution(ex), "long")
    assert (step["attempt"], step["state"]) == (1, "running")
    assert api.history_types(ex).count("step_heartbeat") == 3
    clock.advance(LEASE_SECONDS + 1)  # the beats stop
    worker.sweep()
    assert step_of(api.execution(ex), "long")["state"] == "failed"


def test_a_result_whose_commit_and_re_read_both_fail_is_still_recorded(
    api: Any, worker: Any, faults: Any, third_party: Counting
) -> None:
    # the chaos run's lost result: the commit carrying the result failed, and so did the read
    # that came before deciding again; that read sat outside the recording retries
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    # (the worker's commit that completes the execution: a put of the commit item, then the head)
    commit = FAULTS.add(Rule("PutItem", "InternalServerError", times=1, needle="step_completed", status=500))
    reads: list[Rule] = []
    # while the agent runs (the worker's earlier reads are done): the next read of the execution fails
    third_party.during = lambda: reads.append(FAULTS.add(Rule("Query", "ThrottlingException", times=1, needle=ex)))
    worker.drain()  # no exception: the worker recorded the result after its retries
    assert commit.hits == 1 and reads[0].hits == 1
    assert len(third_party.calls) == 1
    view = api.execution(ex)
    assert view["status"] == "completed" and step_of(view, "call")["output"]["body"] == {"ok": 1}
    assert "late_result_discarded" not in api.history_types(ex)


def test_a_kept_result_whose_message_never_comes_back_is_recorded_by_the_sweep(
    api: Any, worker: Any, aws: Any, faults: Any, clock: Any, third_party: Counting
) -> None:
    wf = api.create_workflow(workflow(http("call", third_party.url), tf("after", "prev")))
    ex = api.start(wf)["execution_id"]
    message = worker.receive(1)[0]
    FAULTS.add(Rule("TransactWriteItems", "InternalServerError", times=1000, needle="step_completed", status=500))
    FAULTS.add(Rule("PutItem", "InternalServerError", times=1000, needle="step_completed", status=500))
    with pytest.raises(TransitionConflict):  # the worker kept the result and gave up
        worker.deliver(message["Body"])
    faults.clear()
    # the message is lost (deleted, or dead-lettered); the step's deadline comes
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    clock.advance(400)
    worker.sweep()  # the deadline (60 s) is past: it would time the attempt out, but records the kept result
    worker.drain()
    assert len(third_party.calls) == 1
    view = api.execution(ex)
    assert view["status"] == "completed" and step_of(view, "call")["attempt"] == 1
    assert "step_timed_out" not in api.history_types(ex)


def test_a_hand_over_sqs_refuses_after_the_commit_is_not_an_error_and_the_sweep_sends_it(
    api: Any, worker: Any, faults: Any, clock: Any
) -> None:
    # SQS refuses the sends (a worker dying between its commit and its hand-over): the start
    # and the operator's approval are committed, so they answer 201 and 200, not 500, and the
    # sweep re-sends what was not sent
    wf = api.create_workflow(workflow(tf("check", "input", gate={"type": "approval"}), tf("after", "prev")))
    sends = FAULTS.add(Rule("SendMessage", "InternalError", times=1000, status=500))
    status, started = api.post(f"/workflows/{wf}/executions", {"inputs": {}})
    assert status == 201, started
    ex = started["execution_id"]
    assert sends.hits == 1 and worker.receive() == []
    clock.advance(121)
    faults.clear()
    worker.sweep()
    worker.drain()
    assert api.execution(ex)["status"] == "waiting"
    sends = FAULTS.add(Rule("SendMessage", "InternalError", times=1000, status=500))
    assert act(api, ex, "approve", "check", {"comment": "fine"})[0] == 200
    assert sends.hits == 1
    faults.clear()
    clock.advance(121)
    worker.sweep()
    worker.drain()
    view = api.execution(ex)
    assert view["status"] == "completed", view
    types = api.history_types(ex)
    assert types.count("approval_granted") == 1 and "late_result_discarded" not in types
