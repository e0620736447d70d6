"""Young executions: listed from their start, entered in the list indexes only later.

A start writes no list-index row (store/lists.py): lists find a running execution through its
start's ``by_due`` entry until a status change or the sweep's first visit of that entry
enters its head in the indexes. Through the real handlers on moto: every list shows a young
execution at once, exactly once, and finished executions whose start entries are still in
the window take no place on a page; the sweep enters a young one that outlives its entry,
with the re-arm's write or with its own; and a bulk dry run counts young executions too.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from bench.harness import Harness
from tests.functional.operator_kit import tf, workflow

PURE = workflow(tf("draft", "{customer: input.customer}"), tf("post", "prev"), name="Young")
LIST_KEYS = ("g_wf", "l_month", "l_sk")


def _head(aws: Any, execution_id: str) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", region_name=aws.settings.region, endpoint_url=aws.settings.endpoint_url)
    key = {"pk": {"S": f"EX#{execution_id}"}, "sk": {"S": "SUMMARY"}}
    return dict(ddb.get_item(TableName=aws.settings.executions_table, Key=key, ConsistentRead=True)["Item"])


def _ids(api: Any, path: str) -> list[str]:
    status, body = api.get(path)
    assert status == 200, body
    return [item["execution_id"] for item in body["items"]]


def _all_pages(api: Any, path: str, limit: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        sep = "&" if "?" in path else "?"
        status, body = api.get(f"{path}{sep}limit={limit}" + (f"&next_token={token}" if token else ""))
        assert status == 200, body
        pages.append([item["execution_id"] for item in body["items"]])
        token = body["next_token"]
        if not token:
            return pages


def _start_undelivered(api: Any, worker: Any, wf: str) -> str:
    """Start an execution and lose its first message: it stays running and young."""
    execution_id = str(api.start(wf)["execution_id"])
    for message in worker.receive(10):
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    return execution_id


def test_a_young_execution_is_in_every_list_at_once_and_once_more_when_it_finishes(
    api: Any, aws: Any, worker: Any, client: Any, clock: Any
) -> None:
    wf = api.create_workflow(PURE)
    other = api.create_workflow({**PURE, "name": "Other"})
    api.start(other)
    worker.drain()
    clock.advance(1)
    young = str(api.start(wf)["execution_id"])
    assert not set(LIST_KEYS) & set(_head(aws, young))  # no index row yet
    for path in (
        f"/workflows/{wf}/executions",
        f"/workflows/{wf}/executions?status=running",
        f"/workflows/{wf}/executions?status=running&trigger=manual",
        "/executions",
        "/executions?status=running",
        f"/executions?workflow_id={wf}",
    ):
        assert _ids(api, path)[:1] == [young], path
    for path in (
        f"/workflows/{wf}/executions?status=completed",
        f"/workflows/{wf}/executions?trigger=event",
        f"/workflows/{other}/executions?status=running",
        "/executions?status=waiting",
        "/executions?to=2026-11-25T11:59:59Z",
    ):
        assert young not in _ids(api, path), path
    status, dry = api.post("/executions/bulk", {"action": "cancel", "filters": {"workflow_id": wf}})
    assert (status, dry["count"], dry["first_ids"]) == (200, 1, [young])

    # its completion enters it in both indexes: two index rows put, none moved
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    with harness.meter.active():
        worker.drain()
    heads = [c for c in harness.meter.calls if c.is_write and c.label == "SUMMARY"]
    assert [(c.operation, c.gsi_wcu) for c in heads] == [("UpdateItem", 2.0)]
    assert _head(aws, young)["l_sk"]["S"].startswith("completed#manual#")
    assert _ids(api, f"/workflows/{wf}/executions") == [young]  # once, though its start entry is in the window
    assert _ids(api, f"/workflows/{wf}/executions?status=running") == []
    assert _ids(api, "/executions?status=completed")[:1] == [young]


def test_finished_executions_in_the_window_take_no_place_on_a_page(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(PURE)
    finished = [str(api.start(wf)["execution_id"]) for _ in range(12)]
    worker.drain()
    running = [_start_undelivered(api, worker, wf) for _ in range(3)]
    everything = set(finished) | set(running)
    for path in (f"/workflows/{wf}/executions", "/executions"):
        pages = _all_pages(api, path, 4)
        flat = [i for page in pages for i in page]
        assert sorted(flat) == sorted(everything) and len(flat) == len(everything), path
        assert all(len(page) == 4 for page in pages[:-1]), (path, pages)
    pages = _all_pages(api, f"/workflows/{wf}/executions?status=running", 2)
    assert [i for page in pages for i in page] == sorted(running, reverse=True)  # same start time: by id
    assert [len(page) for page in pages] == [2, 1]


def test_the_sweep_enters_a_young_execution_when_its_start_entry_comes_due(
    api: Any, aws: Any, worker: Any, clock: Any
) -> None:
    wf = api.create_workflow(PURE)
    lost = _start_undelivered(api, worker, wf)
    clock.advance(119)
    worker.sweep()
    assert "l_sk" not in _head(aws, lost)  # its entry is not due yet: still young
    clock.advance(1)
    worker.sweep()  # the hand-over was lost: re-sent (a commit of its own), and the head is entered
    head = _head(aws, lost)
    assert head["l_sk"]["S"].startswith("running#manual#") and head["g_wf"]["S"] == wf
    [message] = worker.receive(10)
    assert json.loads(message["Body"])["execution_id"] == lost
    clock.advance(3600)  # long past the young window: listed from the indexes
    assert _ids(api, f"/workflows/{wf}/executions?status=running") == [lost]
    assert _ids(api, "/executions?status=running") == [lost]
    worker.deliver(message["Body"])
    assert _ids(api, f"/workflows/{wf}/executions?status=completed") == [lost]
    assert _ids(api, "/executions?status=running") == []


def test_a_young_execution_stays_listed_while_the_sweep_is_behind(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf = api.create_workflow(PURE)
    worker.sweep()  # the watermark: now
    lost = _start_undelivered(api, worker, wf)
    clock.advance(1800)  # the sweep has not run for half an hour
    assert "l_sk" not in _head(aws, lost)
    assert _ids(api, f"/workflows/{wf}/executions?status=running") == [lost]
    worker.sweep()
    assert _head(aws, lost)["l_sk"]["S"].startswith("running#")
    assert _ids(api, f"/workflows/{wf}/executions?status=running") == [lost]


def test_the_sweep_moves_a_head_left_behind_by_a_worker_whose_message_was_lost(
    api: Any, aws: Any, worker: Any, clock: Any, client: Any
) -> None:
    from tests.faults import FAULTS, Rule

    wf = api.create_workflow(PURE)
    execution_id = str(api.start(wf)["execution_id"])
    [message] = worker.receive(10)
    # the run's commit is stored; the head update that follows it fails past every retry
    FAULTS.add(Rule("UpdateItem", "InternalServerError", times=1000, needle='"completed"', status=500))
    try:
        worker.deliver(message["Body"])  # the invocation fails (head behind): the message would come back...
    except Exception:
        pass
    finally:
        FAULTS.clear()
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])  # ...but it is lost
    assert api.execution(execution_id)["status"] == "completed"  # the history
    assert _head(aws, execution_id)["status"]["S"] == "running" and "g_wf" not in _head(aws, execution_id)
    clock.advance(120)
    worker.sweep()  # the start's entry: the head is moved to the history's status, with its list keys
    head = _head(aws, execution_id)
    assert head["status"]["S"] == "completed" and head["l_sk"]["S"].startswith("completed#manual#")
    clock.advance(3600)
    assert _ids(api, f"/workflows/{wf}/executions?status=completed") == [execution_id]
    assert _ids(api, "/executions?status=running") == []
    from tests.conftest import drain_stream

    drain_stream(client)
    assert [w["active_executions"] for w in api.get("/workflows")[1]["items"] if w["workflow_id"] == wf] == [0]
