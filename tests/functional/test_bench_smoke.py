"""The bench's counting machinery (``python -m bench``, part 1) on a tiny run, plus the
DynamoDB capacity rules it prices with. No timings are asserted."""

from __future__ import annotations

from typing import Any

from bench.capacity import TableSpec, index_writes, item_size, read_units, table_specs, write_units
from bench.harness import FIVE_STEPS, TEMPLATE, Harness
from bench.transitions import count_requests


def _run(client: Any, engine: Any, executions: int = 2) -> Any:
    harness = Harness.for_engine(client, engine, engine.settings.admin_key)
    with harness.meter.active():
        return harness, count_requests(harness, executions)


def test_counting_sees_the_operations_of_every_step(client: Any, aws: Any) -> None:
    # the engine's clients exist before the meter is attached, as in a warm Lambda container
    aws.queue.client.get_queue_url(QueueName=aws.settings.step_queue)
    harness, counts = _run(client, aws, 2)
    steps = len(FIVE_STEPS["steps"])
    calls = harness.meter.calls
    # one worker chains the five pure steps: no separate claim, one commit at the end
    assert not [c for c in calls if c.operation == "PutItem" and c.label == "step_started"]
    sends = [c for c in calls if c.service == "sqs" and c.operation == "SendMessage"]
    assert len(sends) == 2  # the start enqueues step 1; nothing is handed over between chained steps
    receives = [c for c in calls if c.tag == "receive" and c.operation == "ReceiveMessage"]
    assert len(receives) == 2
    transactions = [c for c in calls if c.operation == "TransactWriteItems" and c.tag == "start"]
    assert len(transactions) == 2 and all(c.wcu >= 2 for c in transactions)  # the starts
    # the worker uses no transaction: the chain's events in one commit put, then the head
    worker = [c for c in calls if c.tag in ("step", "step:final") and c.service == "dynamodb"]
    assert not [c for c in worker if c.operation == "TransactWriteItems"]
    assert (
        sorted(c.operation for c in worker if c.operation in ("PutItem", "UpdateItem"))
        == ["PutItem"] * 2 + ["UpdateItem"] * 2
    )
    assert sum("commit" in c.label for c in worker if c.operation == "PutItem") == 2
    # the aggregator got the wave's four head changes in one invocation: one plain write per
    # statistics item, the counter shards (each nets to zero) only read, no history read
    assert [i.function for i in harness.meter.invocations if i.tag == "aggregate"] == ["aggregate"]
    aggregate = [c for c in calls if c.tag == "aggregate" and c.service == "dynamodb"]
    assert not [c for c in aggregate if c.operation in ("TransactWriteItems", "Query")]
    writes = [c for c in aggregate if c.is_write]
    assert 1 <= len(writes) <= 2 and all(c.operation == "UpdateItem" and c.label == "STATS" for c in writes)
    assert [c.operation for c in aggregate if c.is_read] == ["BatchGetItem"]
    assert counts.per_execution.event_entries == 2  # one status event per change, priced
    assert counts.aggregate_records_per_invocation == 4
    assert counts.per_execution.operations["sqs.DeleteMessage"] == 1
    # the start request, one worker invocation and half of the aggregator's
    assert counts.per_execution.invocations == 2.5
    assert counts.hops_per_execution == 1 and counts.per_step.write_units * steps == counts.per_execution.write_units
    assert counts.start.write_units > 0 and counts.run.rcu > 0


def test_item_size_follows_dynamodb_rules() -> None:
    # names and values in UTF-8 bytes; numbers: 1 byte per two significant digits, plus 1
    assert item_size({"pk": {"S": "EX#1"}, "n": {"N": "12345"}}) == 2 + 4 + 1 + 4
    assert item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert item_size({"n": {"N": "0.000100"}}) == 1 + 2
    assert item_size(None) == 0


def test_request_units_round_up_per_kilobyte_and_halve_eventual_reads() -> None:
    assert write_units(1) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(0, consistent=True) == 1.0
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(4097, consistent=False) == 1.0


def test_gsi_writes_follow_key_changes() -> None:
    spec = table_specs(TEMPLATE)["ExecutionsTable"]
    assert isinstance(spec, TableSpec) and {i.name for i in spec.indexes} == {"list_wf", "list_month", "by_due"}
    summary = {
        "pk": {"S": "EX#1"},
        "sk": {"S": "SUMMARY"},
        "g_wf": {"S": "wf"},
        "l_month": {"S": "M#2026-11#0"},
        "l_sk": {"S": "running#manual#t#1"},
        "status": {"S": "running"},
    }
    done = {**summary, "l_sk": {"S": "completed#manual#t#1"}, "status": {"S": "completed"}}
    created = index_writes(spec, None, summary)
    changed = index_writes(spec, summary, done)
    event = {"pk": {"S": "EX#1"}, "sk": {"S": "E#000002"}, "type": {"S": "step_completed"}}
    assert index_writes(spec, None, event) == 0  # no index key attribute: no index write
    # a status change moves the head within both keys-only list indexes (delete + put in each)
    assert created == 2 and changed == 4
