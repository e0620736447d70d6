"""The executions table's item layout, through the real handlers on moto: a start is one
conditional put of the head carrying event 1 (two items in a transaction with an
Idempotency-Key), the head stays under 1 KB, commit items over one write unit are stored
compressed, a commit that leaves the execution final writes no due entry, and executions
written in the layout before (an ``E#000001`` item, a head without the start) still read,
page and run on exactly as before. Calls are counted through botocore (``bench.metering``)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from bench.capacity import item_size
from bench.harness import Harness
from chalicelib.store.executions import HEAD_LIMIT

PURE = {
    "name": "Pure pair",
    "trigger": {"type": "manual", "inputs": [{"name": "note", "type": "string", "required": True}]},
    "steps": [
        {"id": "first", "agent": "transform", "instructions": "{note: input.note, size: length(input.note)}"},
        {"id": "second", "agent": "transform", "instructions": "{again: prev.note, size: prev.size}"},
    ],
}

TEN = {
    "name": "Ten pure steps",
    "trigger": {"type": "manual", "inputs": [{"name": "note", "type": "string", "required": True}]},
    "steps": [
        {"id": "s0", "agent": "transform", "instructions": "{note: input.note, n: `0`}"},
        *(
            {"id": f"s{i}", "agent": "transform", "instructions": f"{{note: prev.note, n: `{i}`}}"}
            for i in range(1, 10)
        ),
    ],
}

FAILING = {
    "name": "Failing",
    "trigger": {"type": "manual"},
    "steps": [{"id": "x", "agent": "python", "config": {"callable": "chalicelib.samples.callables:fails_permanently"}}],
}


def _ddb() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def _items(aws: Any, execution_id: str) -> list[dict[str, Any]]:
    return _ddb().query(
        TableName=aws.settings.executions_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"EX#{execution_id}"}},
        ConsistentRead=True,
    )["Items"]


def _head(aws: Any, execution_id: str) -> dict[str, Any]:
    return next(i for i in _items(aws, execution_id) if i["sk"]["S"] == "SUMMARY")


def _history(api: Any, execution_id: str, limit: int) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Every event through pages of ``limit``, and the token each page answered."""
    items: list[dict[str, Any]] = []
    tokens: list[str | None] = []
    token: str | None = None
    for _ in range(100):
        query = f"?limit={limit}" + (f"&next_token={token}" if token else "")
        status, page = api.get(f"/executions/{execution_id}/history{query}")
        assert status == 200, page
        items += page["items"]
        token = page["next_token"]
        tokens.append(token)
        if token is None:
            return items, tokens
    raise AssertionError("history did not end")


def _to_old_layout(aws: Any, execution_id: str) -> None:
    """Rewrite an execution as every release before the start moved to the head wrote it:
    event 1 in its own item ``E#000001`` (with the hand-over's due entry), a head without it."""
    head = _head(aws, execution_id)
    start = json.loads(head["start"]["S"])
    assert "start_ref" not in head
    table = aws.settings.executions_table
    _ddb().put_item(
        TableName=table,
        Item={
            "pk": head["pk"],
            "sk": {"S": "E#000001"},
            "type": {"S": "execution_started"},
            "at": {"S": start["at"]},
            "actor": {"S": start["actor"]},
            "details": {"S": json.dumps(start["details"])},
            "due_bucket": head["due_bucket"],
            "due_at": head["due_at"],
        },
    )
    _ddb().update_item(
        TableName=table,
        Key={"pk": head["pk"], "sk": head["sk"]},
        UpdateExpression="REMOVE #start, due_bucket, due_at",
        ExpressionAttributeNames={"#start": "start"},
    )


# ---------------------------------------------------------------------- the start
def test_a_start_without_idempotency_key_is_one_conditional_put(client: Any, aws: Any, api: Any) -> None:
    wf = api.create_workflow(PURE)
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    harness.ok("POST", f"/workflows/{wf}/executions", {"inputs": {"note": "first"}})  # notes the start month
    with harness.meter.active():
        started = harness.ok("POST", f"/workflows/{wf}/executions", {"inputs": {"note": "hello"}})
    writes = [c for c in harness.meter.calls if c.is_write]
    assert [(c.operation, c.label) for c in writes] == [("PutItem", "SUMMARY")], writes
    assert writes[0].wcu == 1  # one unit: the head with event 1 is under 1 KB
    items = _items(aws, started["execution_id"])
    assert [i["sk"]["S"] for i in items] == ["SUMMARY"]  # no E#000001 item
    head = items[0]
    # young: no list keys yet (no index row written); the start's due entry names what a list
    # needs to show it until the sweep or a status change enters it in the list indexes
    assert not {"g_wf", "l_month", "l_sk"} & set(head)
    assert writes[0].gsi_wcu == 1  # the due entry only
    assert head["due_bucket"]["S"] and head["due_at"]["S"].endswith(f"#000001#{head['started_at']['S']}#manual#{wf}")
    running = {i["execution_id"] for i in api.get(f"/workflows/{wf}/executions?status=running")[1]["items"]}
    assert started["execution_id"] in running
    # the sweep finds the start's hand-over on the head, as event 1
    due = aws.store.executions.dues.entries(head["due_bucket"]["S"], "9999")
    assert (started["execution_id"], 1) in due


def test_a_start_with_idempotency_key_is_a_transaction_of_two_items(client: Any, aws: Any, api: Any) -> None:
    wf = api.create_workflow(PURE)
    harness = Harness.for_engine(client, aws, aws.settings.admin_key)
    api.start(wf, {"note": "first"})  # notes the start month
    headers = {**api.headers(), "Idempotency-Key": "order-1"}
    with harness.meter.active():
        response = client.http.post(
            f"/workflows/{wf}/executions", headers=headers, body=json.dumps({"inputs": {"note": "hello"}})
        )
    assert response.status_code == 201, response.body
    one = json.loads(response.body)
    writes = [c for c in harness.meter.calls if c.is_write]
    assert [(c.operation, c.label) for c in writes] == [("TransactWriteItems", "SUMMARY+IDEM")], writes
    assert writes[0].wcu == 4  # two items of one unit, doubled for the transaction
    again = api.start(wf, {"note": "hello"}, headers={"Idempotency-Key": "order-1"})
    assert again["execution_id"] == one["execution_id"]


def test_the_history_shows_event_one_as_before(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(PURE)
    started = api.start(wf, {"note": "hello"})
    worker.drain()
    whole, _ = _history(api, started["execution_id"], 100)
    first = whole[0]
    assert first["type"] == "execution_started" and first["seq"] == 1
    assert first["details"]["input"] == {"note": "hello"} and first["details"]["workflow_id"] == wf
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    assert whole[-1]["type"] == "execution_completed"
    for limit in (1, 2, 3, len(whole) - 1, len(whole)):
        paged, tokens = _history(api, started["execution_id"], limit)
        assert paged == whole, limit
        assert all(t is not None for t in tokens[:-1])


@pytest.mark.parametrize("size", [10, 200, 400, 900, 2_000, 50_000])
def test_the_head_stays_under_one_kilobyte_with_event_one_on_it(api: Any, aws: Any, worker: Any, size: int) -> None:
    wf = api.create_workflow(PURE)
    note = "x" * size
    started = api.start(wf, {"note": note}, headers={"Idempotency-Key": f"size-{size}"})
    assert item_size(_head(aws, started["execution_id"])) < HEAD_LIMIT
    worker.drain()
    head = _head(aws, started["execution_id"])  # grown by its end time and final status
    assert item_size(head) < HEAD_LIMIT, item_size(head)
    assert ("start_ref" in head) == (size >= 200), sorted(head)  # large details went to the payload bucket
    execution = api.execution(started["execution_id"])
    assert execution["status"] == "completed" and execution["input"] == {"note": note}
    whole, _ = _history(api, started["execution_id"], 100)
    assert whole[0]["details"]["input"] == {"note": note}
    assert _history(api, started["execution_id"], 1)[0] == whole


# ------------------------------------------------------------------ old layout
def test_an_execution_in_the_layout_before_reads_pages_and_runs_on(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(PURE)
    execution_id = api.start(wf, {"note": "hello"})["execution_id"]
    before = {limit: _history(api, execution_id, limit) for limit in (1, 2, 100)}
    shown = api.execution(execution_id)
    _to_old_layout(aws, execution_id)
    assert sorted(i["sk"]["S"] for i in _items(aws, execution_id)) == ["E#000001", "SUMMARY"]
    for limit, (items, tokens) in before.items():
        assert _history(api, execution_id, limit) == (items, tokens), limit  # same events, same tokens
    assert api.execution(execution_id) == shown
    # the sweep still finds the hand-over on the old item, as event 1
    item = next(i for i in _items(aws, execution_id) if i["sk"]["S"] == "E#000001")
    assert (execution_id, 1) in aws.store.executions.dues.entries(item["due_bucket"]["S"], "9999")
    worker.drain()  # today's worker runs it on
    execution = api.execution(execution_id)
    assert execution["status"] == "completed" and execution["steps"][1]["output"] == {"again": "hello", "size": 5}
    whole, _ = _history(api, execution_id, 100)
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1)) and whole[0]["type"] == "execution_started"
    assert _history(api, execution_id, 1)[0] == whole


# ------------------------------------------------------------------ commit items
def test_a_commit_over_one_write_unit_is_stored_compressed(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(TEN)
    note = "a fairly ordinary note, repeated in every step's output"
    execution_id = api.start(wf, {"note": note})["execution_id"]
    worker.drain()
    commits = [i for i in _items(aws, execution_id) if i["sk"]["S"].startswith("E#")]
    assert len(commits) == 1 and "events_z" in commits[0] and "events" not in commits[0]
    assert item_size(commits[0]) <= 1024  # one write unit, where the plain list needs more
    whole, _ = _history(api, execution_id, 100)
    assert len(whole) == 1 + 10 * 2 + 1 and whole[-1]["type"] == "execution_completed"
    outputs = [e["details"]["output"] for e in whole if e["type"] == "step_completed"]
    assert outputs == [{"note": note, "n": n} for n in range(10)]
    assert _history(api, execution_id, 3)[0] == whole  # pages end inside the compressed commit too


# ------------------------------------------------------------------ due entries
def test_a_commit_that_ends_the_execution_writes_no_due_entry(
    api: Any, aws: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = api.create_workflow(PURE)
    chained = api.start(wf, {"note": "one commit"})["execution_id"]
    worker.drain()
    due = {i["sk"]["S"] for i in _items(aws, chained) if "due_bucket" in i}
    assert due == {"SUMMARY"}  # the start's hand-over only: the one commit completed the execution
    monkeypatch.setenv("STEPLINE_MAX_CHAIN_STEPS", "1")
    hopped = api.start(wf, {"note": "two commits"})["execution_id"]
    worker.drain()
    items = {i["sk"]["S"]: i for i in _items(aws, hopped)}
    assert api.execution(hopped)["status"] == "completed"
    # neither hop writes one: a claim writes none, and the first hop's hand-over (a worker's) is
    # covered by the start's entry, which the sweep re-arms if it finds the message not yet due
    assert {sk for sk, i in items.items() if "due_bucket" in i} == {"SUMMARY"}
    assert len([sk for sk in items if sk.startswith("E#")]) == 2


def test_a_commit_that_fails_the_execution_writes_no_due_entry(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(FAILING)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "failed"
    items = _items(aws, execution_id)
    failed = [i for i in items if i.get("type", {}).get("S") in ("step_failed", "commit")]
    assert failed and not [i for i in failed if "due_bucket" in i]
    # the operator's retry commits its own hand-over entry
    status, body = api.post(f"/executions/{execution_id}/steps/x/retry", {})
    assert status == 200, body
    retried = [i for i in _items(aws, execution_id) if i.get("type", {}).get("S") == "step_retried"]
    assert retried and "due_bucket" in retried[0]
