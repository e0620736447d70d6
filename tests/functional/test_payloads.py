"""Large payloads: above the inline limit, event details go to S3 and the item keeps a key."""

from __future__ import annotations

from typing import Any

import boto3

from chalicelib.store.payloads import INLINE_LIMIT

BIG_OUTPUT = {
    "name": "Big output",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {
            "id": "produce",
            "agent": "python",
            "config": {"callable": "chalicelib.samples.callables:big_output", "bytes": 1_000_000},
        },
        {
            "id": "measure",
            "agent": "transform",
            "instructions": "{length: length(prev.blob), same: steps.produce.output.bytes}",
        },
    ],
}

BIG_INPUT = {
    "name": "Big input",
    "trigger": {"type": "manual", "inputs": [{"name": "note", "type": "string", "required": True}]},
    "steps": [{"id": "measure", "agent": "transform", "instructions": "length(input.note)"}],
}


def _objects(aws: Any) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    return s3.list_objects_v2(Bucket=aws.settings.payload_bucket).get("Contents", [])


def _event_items(aws: Any, execution_id: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return ddb.query(
        TableName=aws.settings.executions_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"EX#{execution_id}"}, ":e": {"S": "E#"}},
    )["Items"]


def test_one_megabyte_step_output_is_kept_in_s3_and_returned_whole(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(BIG_OUTPUT)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution["steps"][0]["error"]
    produced = execution["steps"][0]["output"]
    assert produced["bytes"] == 1_000_000 and produced["blob"] == "x" * 1_000_000
    # the next step saw the whole output as prev and in steps.<id>.output
    assert execution["steps"][1]["output"] == {"length": 1_000_000, "same": 1_000_000}
    _status, history = api.get(f"/executions/{execution_id}/history")
    completed = [e for e in history["items"] if e["type"] == "step_completed" and e["step_id"] == "produce"]
    assert len(completed[0]["details"]["output"]["blob"]) == 1_000_000
    # the DynamoDB item holds a reference, well under the 400 KB item limit; S3 holds the bytes
    items = _event_items(aws, execution_id)
    # the chain commits both steps in one commit item; its event list went to S3
    offloaded = [i for i in items if "details_ref" in i or "events_ref" in i]
    assert len(offloaded) == 1 and len(offloaded[0].get("events", offloaded[0]["details"]).get("S", "")) < 100
    assert all(len(i["details"]["S"]) <= INLINE_LIMIT for i in items)
    assert all(len(i.get("events", {}).get("S", "")) <= INLINE_LIMIT for i in items)
    keys = [o["Key"] for o in _objects(aws)]
    ref = offloaded[0].get("events_ref", offloaded[0].get("details_ref"))
    assert ref["S"] in keys
    assert next(o["Size"] for o in _objects(aws)) > 1_000_000


def test_300_kb_input_starts_an_execution_and_comes_back_unchanged(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(BIG_INPUT)
    note = "n" * 300_000
    started = api.start(wf, {"note": note})
    assert started["status"] == "running"
    worker.drain()
    execution = api.execution(started["execution_id"])
    assert execution["input"] == {"note": note}
    assert execution["status"] == "completed"
    assert execution["steps"][0]["output"] == 300_000
    # event 1 is on the head, its details (the input) in the payload bucket
    from bench.capacity import item_size
    from chalicelib.store.executions import HEAD_LIMIT

    assert _event_items(aws, started["execution_id"])[0]["sk"]["S"] == "E#000002"
    head = _head(aws, started["execution_id"])
    assert "start_ref" in head and "note" not in head["start"]["S"] and item_size(head) < HEAD_LIMIT


def test_small_payloads_stay_inline(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(BIG_INPUT)
    started = api.start(wf, {"note": "short"})
    worker.drain()
    assert api.execution(started["execution_id"])["steps"][0]["output"] == 5
    assert _objects(aws) == []
    assert not any("details_ref" in i for i in _event_items(aws, started["execution_id"]))


def _head(aws: Any, execution_id: str) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    key = {"pk": {"S": f"EX#{execution_id}"}, "sk": {"S": "SUMMARY"}}
    return ddb.get_item(TableName=aws.settings.executions_table, Key=key, ConsistentRead=True)["Item"]


def test_the_head_stays_under_one_kilobyte_whatever_the_trigger_and_input(api: Any, worker: Any, aws: Any) -> None:
    """The head (what lists read) keeps a large trigger in the payload bucket and never holds the
    input; the API still shows both whole."""
    from bench.capacity import item_size
    from chalicelib.domain.fold import Actor
    from chalicelib.store.executions import HEAD_LIMIT

    wf = api.create_workflow(BIG_INPUT)
    trigger = {
        "type": "event",
        "source": "s" * 200,
        "event_type": "order." + "x" * 3000,
        "event_id": "evt_" + "9" * 64,
        "replay": True,
        "replayed_by": "r" * 300,
    }
    state = aws.executions.start(wf, {"note": "n" * 300_000}, trigger, Actor("tester", "admin"))
    worker.drain()
    head = _head(aws, state.execution_id)
    assert item_size(head) < HEAD_LIMIT, item_size(head)
    assert "trigger_ref" in head and "note" not in str(head)
    execution = api.execution(state.execution_id)
    assert execution["status"] == "completed" and execution["trigger"] == trigger
    assert execution["steps"][0]["output"] == 300_000
    listed = api.get(f"/workflows/{wf}/executions?trigger=event")[1]["items"]
    assert [i["trigger"] for i in listed] == [trigger]
    # a small trigger stays inline, with the same size bound
    small = api.start(wf, {"note": "n" * 300_000})["execution_id"]
    head = _head(aws, small)
    assert item_size(head) < HEAD_LIMIT and "trigger_ref" not in head
