"""The stream aggregator: counts, statistics and status events from the executions table's
DynamoDB stream (moto's), through the real ``aggregate`` handler.

Lambda delivers a stream batch at least once: after a failure or a time-out the same records
come again from the batch's first one. These tests deliver batches twice, fail one half way
(faults injected at botocore, as DynamoDB would answer), and count the writes per item.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.engine.aggregator import BUSY_TRIES
from chalicelib.errors import HeadBehind, StoreBusy
from chalicelib.local.stream import StreamPump
from tests.faults import FAULTS, Rule
from tests.functional.operator_kit import active_count, listed_status, tf, workflow

GATED = workflow(tf("check", "input", gate={"type": "approval"}))


@pytest.fixture
def faults() -> Iterator[Any]:
    FAULTS.clear()
    yield FAULTS
    FAULTS.clear()
    FAULTS.recording = False
    FAULTS.calls.clear()


@pytest.fixture
def bus(aws: Any) -> Any:
    """An SQS queue that an EventBridge rule fills with Stepline's status events."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="status-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="status", EventPattern=json.dumps({"source": ["stepline"]}))
    events.put_targets(Rule="status", Targets=[{"Id": "queue", "Arn": arn}])
    seen: list[dict[str, Any]] = []

    def received() -> list[dict[str, Any]]:
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return seen
            for m in messages:
                seen.append(json.loads(m["Body"])["detail"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return received


def captured_batch(aws: Any) -> dict[str, Any]:
    """Every head change on the stream so far, as one Lambda event (read by a pump of its own)."""
    batches: list[dict[str, Any]] = []
    StreamPump(aws.settings, batches.append).drain()
    assert len(batches) == 1, len(batches)
    return batches[0]


def running_total(api: Any, workflow_id: str) -> int:
    status, body = api.get(f"/workflows/{workflow_id}/stats?bucket=hour")
    assert status == 200, body
    return int(body["totals"]["counts"]["running"])


def test_a_batch_delivered_twice_is_counted_and_announced_once(api: Any, client: Any, aws: Any, bus: Any) -> None:
    wf = api.create_workflow(GATED)
    with client.stream.held():
        started = [api.start(wf)["execution_id"] for _ in range(3)]
        batch = captured_batch(aws)
        assert len(batch["Records"]) == 3
        first = client.lambda_.invoke("aggregate", batch).payload
        again = client.lambda_.invoke("aggregate", batch).payload
    assert (first["applied"], first["skipped"]) == (3, 0)
    assert (again["applied"], again["skipped"]) == (0, 3)
    # the harness's own pump now delivers the same records a third time: skipped as well
    assert active_count(api, wf) == 3
    assert running_total(api, wf) == 3
    announced = [(e["execution_id"], e["previous_status"], e["status"]) for e in bus()]
    assert sorted(announced) == sorted((ex, None, "running") for ex in started)


def test_a_batch_failing_half_way_applies_the_rest_once_when_retried(
    api: Any, client: Any, aws: Any, bus: Any, faults: Any
) -> None:
    # 50 workflows: 100 counter and statistics items, each written on its own
    workflows = [api.create_workflow({**GATED, "name": f"Busy {i}"}) for i in range(50)]
    with client.stream.held():
        started = [api.start(wf)["execution_id"] for wf in workflows]
    # the last workflow's two items stay throttled beyond the retries
    rule = faults.add(Rule("UpdateItem", "ThrottlingException", times=2 * (BUSY_TRIES + 1), needle=workflows[-1]))
    with pytest.raises(StoreBusy):
        client.stream.drain()
    assert rule.hits == 2 * (BUSY_TRIES + 1)
    counts = boto3.client("dynamodb", region_name="us-east-1")
    applied = sum(_active(counts, aws, wf) for wf in workflows)
    assert applied == 49  # every other item is written, the throttled ones are not
    assert len(bus()) == 49
    client.stream.drain()  # Lambda's retry: the same batch from its first record
    assert [_active(counts, aws, wf) for wf in workflows] == [1] * 50
    assert sorted(e["execution_id"] for e in bus()) == sorted(started)  # each exactly once
    assert all(active_count(api, wf) == 1 for wf in workflows[:3] + workflows[-3:])


def test_a_retry_after_half_the_items_were_written_applies_each_record_once(
    api: Any, client: Any, aws: Any, bus: Any, worker: Any, faults: Any
) -> None:
    wf = api.create_workflow(GATED)
    with client.stream.held():
        started = [api.start(wf)["execution_id"] for _ in range(6)]
        worker.drain()  # six starts, six waits at the gate
        batch = captured_batch(aws)
        records = batch["Records"]
        assert len(records) == 12
        # a first delivery of the first five records only, whose statistics items stay busy:
        # the counter shards take their records, the statistics items do not
        rule = faults.add(Rule("UpdateItem", "ThrottlingException", times=100, needle="STATS#H"))
        with pytest.raises(StoreBusy):
            client.lambda_.invoke("aggregate", {**batch, "Records": records[:5]})
        assert rule.hits >= BUSY_TRIES
        faults.clear()
        assert bus() == []  # nothing announced: no statistics item took a change
        # the retry carries more records than the first delivery (it starts at the same one)
        again = client.lambda_.invoke("aggregate", batch).payload
        assert again["applied"] == 12 and again["skipped"] == 0
        third = client.lambda_.invoke("aggregate", batch).payload
        assert (third["applied"], third["skipped"], third["writes"]) == (0, 12, 0)
    assert active_count(api, wf) == 6
    status, body = api.get(f"/workflows/{wf}/stats?bucket=hour")
    assert status == 200 and body["totals"]["counts"]["waiting"] == 6 and body["totals"]["total"] == 6
    announced = sorted((e["execution_id"], e["status"]) for e in bus())
    assert announced == sorted([(ex, "running") for ex in started] + [(ex, "waiting") for ex in started])


def test_two_stream_shards_interleaved_keep_their_own_watermarks(
    api: Any, client: Any, aws: Any, bus: Any, worker: Any
) -> None:
    # Sequence numbers are ordered within a shard only. Two shards feed the same items:
    # the one with the higher numbers is delivered first, and the other must still count.
    wf = api.create_workflow(GATED)
    with client.stream.held():
        started = [api.start(wf)["execution_id"] for _ in range(8)]
        worker.drain()
        records = captured_batch(aws)["Records"]
        low = {ex for ex in started[:4]}
        first = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"][3:] not in low]
        second = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"][3:] in low]
        assert max(int(r["dynamodb"]["SequenceNumber"]) for r in second) > min(
            int(r["dynamodb"]["SequenceNumber"]) for r in first
        )  # the two interleave
        a = client.lambda_.invoke("aggregate", {"Records": first, "shardId": "shardId-b"}).payload
        b = client.lambda_.invoke("aggregate", {"Records": second, "shardId": "shardId-a"}).payload
        assert (a["applied"], b["applied"]) == (8, 8)
        # both delivered again, in the other order: nothing more
        for records_, shard in ((second, "shardId-a"), (first, "shardId-b")):
            again = client.lambda_.invoke("aggregate", {"Records": records_, "shardId": shard}).payload
            assert (again["applied"], again["skipped"]) == (0, 8)
    # the harness's pump reads the real shard: these records were handed over by hand above
    client.stream.deliver = lambda event: None
    client.stream.drain()
    assert active_count(api, wf) == 8
    status, body = api.get(f"/workflows/{wf}/stats?bucket=hour")
    assert status == 200 and body["totals"]["counts"]["waiting"] == 8 and body["totals"]["counts"]["running"] == 0
    assert len(bus()) == 16


def _active(ddb: Any, aws: Any, workflow_id: str) -> int:
    items = ddb.query(
        TableName=aws.settings.catalog_table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": f"WF#{workflow_id}"}, ":s": {"S": "COUNTERS"}},
        ConsistentRead=True,
    )["Items"]
    return sum(int(i.get("active", {}).get("N", "0")) for i in items)


def test_each_counter_and_statistics_item_is_written_once_per_batch(
    api: Any, client: Any, worker: Any, aws: Any, faults: Any
) -> None:
    wf = api.create_workflow(workflow(tf("a", "input"), tf("b", "prev")))
    with client.stream.held():
        for _ in range(12):
            api.start(wf)
        worker.drain()  # 12 starts and 12 completions: 24 head changes in one batch
    faults.recording = True
    client.stream.drain()
    faults.recording = False
    writes = [body for operation, body in faults.calls if operation == "UpdateItem"]
    keys = Counter((body["Key"]["pk"]["S"], body["Key"]["sk"]["S"]) for body in writes)
    assert keys and max(keys.values()) == 1, keys  # one plain write per item
    assert all(sk.startswith("STATS#H#") for _, sk in keys)  # the counter shards net to zero: not written
    reads = [body for operation, body in faults.calls if operation == "BatchGetItem"]
    assert len(reads) == 1  # the zero counter shards and the items keeping durations: one read
    assert not [op for op, _ in faults.calls if op in ("TransactWriteItems", "PutItem")]  # no marker, no transaction
    assert active_count(api, wf) == 0
    status, body = api.get(f"/workflows/{wf}/stats?bucket=hour")
    assert status == 200 and body["totals"]["counts"]["completed"] == 12 and body["totals"]["total"] == 12
    assert body["totals"]["duration_seconds"]["completed"] == 12


def test_rebuild_counts_recomputes_active_counts_from_the_list_index(
    api: Any, worker: Any, aws: Any, capsys: Any
) -> None:
    from chalicelib.tools.rebuild_counts import main

    wf = api.create_workflow(GATED)
    runs = [api.start(wf)["execution_id"] for _ in range(4)]
    worker.drain()  # all four wait at the gate
    assert api.post(f"/executions/{runs[0]}/cancel")[0] == 200
    assert active_count(api, wf) == 3
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for sk, value in (("COUNTERS", "5"), ("COUNTERS#0", "-2"), ("COUNTERS#3", "40")):  # a doubted count
        ddb.put_item(
            TableName=aws.settings.catalog_table,
            Item={"pk": {"S": f"WF#{wf}"}, "sk": {"S": sk}, "active": {"N": value}},
        )
    assert active_count(api, wf) != 3
    assert main(["--workflow", wf]) == 0
    assert capsys.readouterr().out == f"{wf}\t3\n"
    assert active_count(api, wf) == 3
    # the aggregator goes on from the rebuilt counts
    assert api.post(f"/executions/{runs[1]}/cancel")[0] == 200
    assert active_count(api, wf) == 2


def test_a_head_left_behind_by_the_worker_is_repaired_by_the_next_delivery(api: Any, worker: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("a", "input"), tf("b", "prev")))
    ex = api.start(wf)["execution_id"]
    message = worker.receive()[0]
    # the chain's commit is stored, then the head update is throttled past its retries
    rule = faults.add(Rule("UpdateItem", "ProvisionedThroughputExceededException", times=1, needle="SUMMARY"))
    with pytest.raises(HeadBehind):
        worker.deliver(message["Body"])  # the invocation fails: SQS will deliver the message again
    assert rule.hits == 1
    assert api.history_types(ex)[-1] == "execution_completed"
    assert listed_status(api, wf, ex) == "running" and active_count(api, wf) == 1  # the head lags
    worker.deliver(message["Body"])  # the message again: the attempt is claimed, the head repaired
    assert listed_status(api, wf, ex) == "completed" and active_count(api, wf) == 0
    assert api.execution(ex)["status"] == "completed"
    assert api.history_types(ex).count("execution_completed") == 1


def test_status_events_come_from_the_head_without_reading_the_history(
    api: Any, client: Any, worker: Any, aws: Any, bus: Any, faults: Any
) -> None:
    from chalicelib.engine import get_engine
    from chalicelib.engine.notifications import status_detail

    wf = api.create_workflow(GATED)
    with client.stream.held():
        small = api.start(wf, {"customer": "ACME"})["execution_id"]
        large = api.start(wf, {"customer": "x" * 400})["execution_id"]  # its gate output is too large for the head
        worker.drain()  # both wait at the gate
    faults.recording = True
    client.stream.drain()
    faults.recording = False
    history_reads = [
        body
        for op, body in faults.calls
        if op in ("Query", "GetItem") and body["TableName"] == aws.settings.executions_table
    ]
    # only the large one's waiting event replays its history
    assert history_reads and all(large in json.dumps(body) for body in history_reads), history_reads
    events = {(e["execution_id"], e["status"]): e for e in bus()}
    assert set(events) == {(ex, s) for ex in (small, large) for s in ("running", "waiting")}
    waiting = events[(small, "waiting")]
    assert waiting["step"] == {
        "id": "check",
        "name": "check",
        "state": "waiting_for_approval",
        "attempt": 1,
        "gate": "approval",
        "approvers": [],
        "output": {"customer": "ACME"},
    }
    # each event says what the history says at its change
    executions = get_engine().executions
    for (ex, status), event in events.items():
        history = executions.history(ex)
        seq = 1 if status == "running" else history[-1].seq
        expected = json.loads(json.dumps(status_detail(executions.load_at(ex, seq), event["previous_status"])))
        assert event == expected, (ex, status)


def test_a_stage_without_status_events_counts_and_puts_no_event(api: Any, aws: Any, bus: Any, clock: Any) -> None:
    from dataclasses import replace

    from chalicelib.config import Settings
    from chalicelib.engine import Engine, reset_engine

    assert Settings.from_env({"STEPLINE_STATUS_EVENTS": "disabled"}).status_events is False
    assert Settings.from_env({}).status_events is True
    with pytest.raises(ValueError, match="STEPLINE_STATUS_EVENTS"):
        Settings.from_env({"STEPLINE_STATUS_EVENTS": "sometimes"})
    reset_engine(Engine.build(replace(aws.settings, status_events=False), clock=clock))
    wf = api.create_workflow(GATED)
    api.start(wf)
    assert active_count(api, wf) == 1
    assert bus() == []


def test_watermarks_of_silent_stream_shards_are_removed_by_later_writes(api: Any, aws: Any, clock: Any) -> None:
    from chalicelib.store.aggregates import PRUNE_AFTER_SECONDS
    from chalicelib.store.stats import COUNTER_SHARDS

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    wf = api.create_workflow(GATED)
    now = int(clock().timestamp())
    old, recent = f"0299@{now - PRUNE_AFTER_SECONDS - 60}", f"0299@{now - 60}"
    for k in range(COUNTER_SHARDS):  # two shards that wrote long ago and lately
        ddb.update_item(
            TableName=aws.settings.catalog_table,
            Key={"pk": {"S": f"WF#{wf}"}, "sk": {"S": f"COUNTERS#{k}"}},
            UpdateExpression="SET wm_old000000000 = :o, wm_recent000000 = :r",
            ExpressionAttributeValues={":o": {"S": old}, ":r": {"S": recent}},
        )
    ex = api.start(wf)["execution_id"]  # its counter shard's write learns that one lane is silent
    assert api.post(f"/executions/{ex}/cancel")[0] == 200  # the next write removes it
    assert active_count(api, wf) == 0
    items = ddb.query(
        TableName=aws.settings.catalog_table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": f"WF#{wf}"}, ":s": {"S": "COUNTERS#"}},
        ConsistentRead=True,
    )["Items"]
    moved = [
        i for i in items if any(k.startswith("wm_") and k not in ("wm_old000000000", "wm_recent000000") for k in i)
    ]
    assert len(moved) == 1  # the execution's shard
    assert "wm_old000000000" not in moved[0] and moved[0]["wm_recent000000"]["S"] == recent
    assert all("wm_old000000000" in i for i in items if i is not moved[0])  # the others were not written
