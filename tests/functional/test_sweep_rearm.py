"""Claims write no due entry; the sweep re-arms (``chalicelib/domain/rearm.py``).

Through the real handlers on moto: a worker that dies after claiming step 3 of a chain of
``http`` steps is still timed out at that step's deadline, through the head's re-armed entry;
a long step whose worker sends heartbeats is never timed out early, and once they stop it is
timed out at its last lease; an execution that completes leaves no stray entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench.capacity import item_size
from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional.operator_kit import step_of, tf, workflow
from tests.functional.worker_deaths import DEATHS, Death, WorkerDied

#: the conftest clock's start, and the start's hand-over entry (120 s grace) as due_at prefixes
STARTED_DUE = "2026-11-25T12:02:00"
STEP_TIMEOUT = 200
S3_DEADLINE = "2026-11-25T12:03:20"


@pytest.fixture
def integration() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        for n in range(1, 6):
            server.default(f"/s{n}", Answer(201, {"step": n}))
        yield server
    DEATHS.armed = None


def _http_chain(api: Any, integration: ScriptedServer) -> str:
    steps = [
        {
            "id": f"s{n}",
            "agent": "http",
            "timeout_seconds": STEP_TIMEOUT,
            "config": {"url": f"{integration.url}/s{n}", "method": "POST"},
        }
        for n in range(1, 6)
    ]
    return api.create_workflow({"name": "Five calls", "trigger": {"type": "manual"}, "steps": steps})


def _items(aws: Any, execution_id: str) -> dict[str, dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=aws.settings.region, endpoint_url=aws.settings.endpoint_url)
    rows = ddb.query(
        TableName=aws.settings.executions_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EX#{execution_id}"}},
        ConsistentRead=True,
    )["Items"]
    return {row["sk"]["S"]: row for row in rows}


def _head_due(aws: Any, execution_id: str) -> str:
    return str(_items(aws, execution_id)["SUMMARY"]["due_at"]["S"])


def _commit_dues(aws: Any, execution_id: str) -> list[str]:
    """Sort keys of the execution's commit items that carry a due entry."""
    return [sk for sk, item in _items(aws, execution_id).items() if sk.startswith("E#") and "due_bucket" in item]


def _lease(aws: Any, execution_id: str) -> str:
    """The current claim's lease (the API shows the deadline only)."""
    return str(aws.runner.executions.load(execution_id).current.lease_until)


def test_a_worker_that_dies_after_claiming_step_3_is_timed_out_at_its_deadline_through_the_re_arm(
    api: Any, worker: Any, aws: Any, clock: Any, integration: ScriptedServer
) -> None:
    execution_id = api.start(_http_chain(api, integration))["execution_id"]
    [message] = worker.receive(1)
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])  # never comes back
    # commits: E#000002 claims s1 (and its call), E#000004 records s1 and claims s2, E#000007 s2 and s3
    DEATHS.armed = death = Death(('"E#000007"',), after_the_write=True)
    with pytest.raises(WorkerDied):
        worker.deliver(message["Body"])
    assert death.hits == 1
    execution = api.execution(execution_id)
    s3 = step_of(execution, "s3")
    assert step_of(execution, "s2")["state"] == "completed"
    assert (s3["state"], s3["attempt"], s3["deadline"][:19]) == ("running", 1, S3_DEADLINE)
    assert integration.requests("/s3") == []  # it died before the call
    assert _commit_dues(aws, execution_id) == []  # no claim wrote an entry
    head_before = _items(aws, execution_id)["SUMMARY"]
    assert head_before["due_at"]["S"].startswith(STARTED_DUE)  # the start's, the only one

    clock.advance(119)
    worker.sweep()  # nothing is due yet
    assert _head_due(aws, execution_id).startswith(STARTED_DUE)
    clock.advance(1)
    worker.sweep()  # the start's entry: s3's deadline is ahead, so the head is re-armed for it
    head = _items(aws, execution_id)["SUMMARY"]
    assert head["due_at"]["S"].startswith(S3_DEADLINE) and head["due_bucket"]["S"] == S3_DEADLINE[:16]
    # the same write entered the young head in the lists (it was found through its start entry)
    assert "l_sk" not in head_before and head["l_sk"]["S"].startswith("running#manual#")
    listed = {i["execution_id"] for i in api.get("/executions?status=running")[1]["items"]}
    assert execution_id in listed
    # besides the list keys (which the start's size check reserved) the head does not grow
    assert item_size({k: v for k, v in head.items() if k not in ("g_wf", "l_month", "l_sk")}) <= item_size(head_before)
    assert step_of(api.execution(execution_id), "s3")["state"] == "running"
    assert _commit_dues(aws, execution_id) == []

    clock.advance(STEP_TIMEOUT - 120 - 1)
    worker.sweep()
    assert step_of(api.execution(execution_id), "s3")["state"] == "running"
    clock.advance(1)
    worker.sweep()  # the re-armed entry
    execution = api.execution(execution_id)
    s3 = step_of(execution, "s3")
    assert execution["status"] == "failed" and s3["state"] == "failed"
    assert s3["error"]["kind"] == "timeout" and "time limit of 200s" in s3["error"]["message"]
    assert integration.requests("/s3") == []  # and nobody made the call since


def test_a_long_step_with_heartbeats_is_not_timed_out_early_and_is_once_they_stop(
    api: Any, worker: Any, aws: Any, clock: Any
) -> None:
    wf = api.create_workflow(workflow(tf("long", "input", timeout_seconds=3600)))
    execution_id = api.start(wf)["execution_id"]
    [message] = worker.receive(1)
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    body = json.loads(message["Body"])
    assert aws.runner.claim(body["execution_id"], "long", 1) is not None  # a live worker, simulated
    assert _lease(aws, execution_id)[:19] == "2026-11-25T12:05:00"
    for tick in range(1, 25):  # 20 minutes: four leases long
        clock.advance(50)
        if tick % 2 == 0:
            assert aws.runner.heartbeat(execution_id, "long", 1)  # every 100 s, as Heartbeats does
        worker.sweep()
        assert api.execution(execution_id)["status"] == "running", tick
    # every visit found the lease a heartbeat set, which has its own entry: no re-arm was written
    assert _head_due(aws, execution_id).startswith(STARTED_DUE)
    lease = _lease(aws, execution_id)
    assert lease[:19] == "2026-11-25T12:25:00"  # the last heartbeat's (12:20:00) + 300 s
    clock.advance(299)  # the worker died after its last heartbeat
    worker.sweep()
    assert step_of(api.execution(execution_id), "long")["state"] == "running"
    clock.advance(1)
    worker.sweep()
    long = step_of(api.execution(execution_id), "long")
    assert long["state"] == "failed" and long["error"]["kind"] == "timeout"
    assert long["error"]["lease_until"] == lease and "stopped reporting" in long["error"]["message"]


def test_a_chain_that_completes_writes_no_entry_but_the_starts_and_the_sweep_adds_none(
    api: Any, worker: Any, aws: Any, clock: Any, integration: ScriptedServer
) -> None:
    execution_id = api.start(_http_chain(api, integration))["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    assert len(integration.requests()) == 5
    assert _commit_dues(aws, execution_id) == []
    assert _head_due(aws, execution_id).startswith(STARTED_DUE)
    clock.advance(120)
    worker.sweep()  # the start's entry comes due: a finished execution is not re-armed
    items = _items(aws, execution_id)
    assert items["SUMMARY"]["due_at"]["S"].startswith(STARTED_DUE)
    assert [sk for sk, item in items.items() if "due_bucket" in item] == ["SUMMARY"]
    assert len(integration.requests()) == 5
