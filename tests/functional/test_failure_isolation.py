"""The sweep and bulk jobs isolate failures per item and go on; a stalled
bulk job is re-driven by the sweep. Through the real handlers on moto."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.functional.test_monitoring_bulk import failed_runs

SLOW = {
    "name": "Slow",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [{"id": "s", "agent": "transform", "instructions": "input", "timeout_seconds": 60}],
}


def _corrupt(aws: Any, execution_id: str) -> None:
    """A record the engine cannot read (as a bad migration or a manual edit would leave it)."""
    table = boto3.client("dynamodb", region_name="us-east-1")
    table.update_item(
        TableName=aws.settings.executions_table,
        Key={"pk": {"S": f"EX#{execution_id}"}, "sk": {"S": "E#000001"}},
        UpdateExpression="SET details = :bad",
        ExpressionAttributeValues={":bad": {"S": "{not json"}},
    )


def test_one_unreadable_execution_does_not_stop_the_sweep(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf = api.create_workflow(SLOW)
    ids = [api.start(wf)["execution_id"] for _ in range(4)]
    # Lose every hand-over: the sweep must re-send them, except for the unreadable one.
    for message in worker.receive():
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    _corrupt(aws, ids[1])
    clock.advance(600)
    from chalicelib.handlers import sweep

    counts = sweep()
    assert counts["errors"] == 1 and counts["resent"] == 3, counts
    worker.drain()
    for execution_id in (ids[0], ids[2], ids[3]):
        assert api.execution(execution_id)["status"] == "completed"
    # the failed one is looked at again by the next sweep (the watermark waited for it)
    clock.advance(60)
    assert sweep()["errors"] == 1


def test_a_bulk_job_whose_chunk_message_was_lost_is_re_driven(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf, ids = failed_runs(api, aws, worker, clock, 5)
    status, job = api.post(
        "/executions/bulk", {"action": "retry", "dry_run": False, "chunk_size": 2, "filters": {"workflow_id": wf}}
    )
    assert status == 202, job
    first = worker.receive()
    worker.deliver(first[0]["Body"])  # chunk 0 runs and sends chunk 1...
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=first[0]["ReceiptHandle"])
    lost = worker.receive()
    assert [json.loads(m["Body"])["chunk"] for m in lost if json.loads(m["Body"]).get("kind") == "bulk"] == [1]
    for message in lost:  # ...which is lost, with the retried steps' hand-overs
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])

    from chalicelib.handlers import sweep

    clock.advance(60)
    assert sweep().get("bulk_redriven", 0) == 0  # not stalled yet
    clock.advance(6 * 60)
    assert sweep()["bulk_redriven"] == 1
    worker.drain()
    status, done = api.get(f"/executions/bulk/{job['job_id']}")
    assert status == 200 and done["state"] == "done", done
    assert (done["processed"], done["succeeded"]) == (5, 5)
    assert sorted(r["execution_id"] for r in done["results"]) == sorted(ids)
    clock.advance(10 * 60)
    assert sweep().get("bulk_redriven", 0) == 0  # finished jobs are no longer looked at


def test_a_bulk_item_the_busy_store_refuses_is_a_503_and_the_others_go_on(
    api: Any, aws: Any, worker: Any, clock: Any
) -> None:
    from tests.faults import FAULTS, Rule

    wf, ids = failed_runs(api, aws, worker, clock, 3)
    # every read of one execution is throttled, past the store's own read retries
    throttled = FAULTS.add(Rule("Query", "ProvisionedThroughputExceededException", times=10_000, needle=ids[0]))
    try:
        status, job = api.post(
            "/executions/bulk", {"action": "retry", "dry_run": False, "filters": {"workflow_id": wf}}
        )
        assert status == 202, job
        worker.drain()
    finally:
        FAULTS.clear()
    assert throttled.hits > 1
    status, done = api.get(f"/executions/bulk/{job['job_id']}")
    assert status == 200 and done["state"] == "done", done
    outcomes = {r["execution_id"]: (r["outcome"], r["status"]) for r in done["results"]}
    assert outcomes[ids[0]] == ("error", 503), done["results"]
    assert all(outcomes[i] == ("ok", 200) for i in ids[1:]), done["results"]
