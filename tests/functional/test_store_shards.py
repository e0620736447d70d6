"""Sharded counters: a workflow's active count and statistics hours are split over
``COUNTER_SHARDS`` items, so concurrent starts and completions of a busy workflow rarely meet
on one item in their transactions; reads sum the shards and the items written before
sharding (``COUNTERS``, ``STATS#H#<hour>``), so no migration is needed."""

from __future__ import annotations

from typing import Any

import boto3

from chalicelib.store.stats import COUNTER_SHARDS, shard_of
from tests.functional.operator_kit import tf, workflow


def _items(aws: Any, workflow_id: str, prefix: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return ddb.query(
        TableName=aws.settings.catalog_table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": f"WF#{workflow_id}"}, ":s": {"S": prefix}},
    )["Items"]


def test_active_counts_and_stats_spread_over_shards_and_sum_with_pre_shard_items(api: Any, aws: Any) -> None:
    wf = api.create_workflow(workflow(tf("check", "input", gate={"type": "approval"})))
    started = [api.start(wf)["execution_id"] for _ in range(16)]
    counters = {i["sk"]["S"]: int(i.get("active", {}).get("N", "0")) for i in _items(aws, wf, "COUNTERS")}
    shards = {k: v for k, v in counters.items() if k != "COUNTERS"}
    assert sum(shards.values()) == 16 and len([v for v in shards.values() if v]) > 1
    assert set(shards) <= {f"COUNTERS#{k}" for k in range(COUNTER_SHARDS)}
    for execution_id in started:
        assert shards[f"COUNTERS#{shard_of(execution_id)}"] > 0
    stats = _items(aws, wf, "STATS#H#")
    assert len(stats) > 1 and all(i["sk"]["S"].count("#") == 3 for i in stats)
    # items written before sharding are still read and summed
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.update_item(
        TableName=aws.settings.catalog_table,
        Key={"pk": {"S": f"WF#{wf}"}, "sk": {"S": "COUNTERS"}},
        UpdateExpression="SET active = :n",
        ExpressionAttributeValues={":n": {"N": "3"}},
    )
    hour = stats[0]["sk"]["S"][len("STATS#H#") : len("STATS#H#") + 13]
    ddb.put_item(
        TableName=aws.settings.catalog_table,
        Item={"pk": {"S": f"WF#{wf}"}, "sk": {"S": f"STATS#H#{hour}"}, "n_running": {"N": "2"}},
    )
    assert api.get(f"/workflows/{wf}")[1]["active_executions"] == 19
    listed = next(w for w in api.get("/workflows")[1]["items"] if w["workflow_id"] == wf)
    assert listed["active_executions"] == 19
    totals = api.get(f"/workflows/{wf}/stats?bucket=hour")[1]["totals"]
    assert totals["counts"]["running"] == 16 + 2  # not drained: the sixteen still run
