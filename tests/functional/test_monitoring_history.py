"""History pages and the optional retention period."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chalicelib.domain.timefmt import parse_iso
from tests.functional.monitoring_support import GATED, settle, start


def test_history_pages_through_the_whole_trail_in_order(api: Any, aws: Any, worker: Any) -> None:
    wf = api.create_workflow(GATED)
    run = start(api, aws, wf)
    worker.drain()
    settle(api, run, "failed")
    assert api.post(f"/executions/{run.execution_id}/steps/g/retry", {})[0] == 200
    worker.drain()
    settle(api, run, "completed")
    path = f"/executions/{run.execution_id}/history"
    status, whole = api.get(path)
    assert status == 200 and whole["next_token"] is None and len(whole["items"]) >= 8
    items, token, calls = [], None, 0
    while True:
        status, page = api.get(f"{path}?limit=3" + (f"&next_token={token}" if token else ""))
        assert status == 200 and len(page["items"]) <= 3
        items += page["items"]
        calls += 1
        token = page["next_token"]
        if token is None:
            break
    assert items == whole["items"] and calls >= 3
    assert [i["seq"] for i in items] == list(range(1, len(items) + 1))
    human = {
        i["type"]: i["actor"] for i in items if i["type"] in ("approval_rejected", "step_retried", "approval_granted")
    }
    assert human == {"approval_rejected": "admin", "step_retried": "admin", "approval_granted": "admin"}


def test_history_rejects_bad_pages(api: Any, aws: Any) -> None:
    wf = api.create_workflow(GATED)
    a, b = start(api, aws, wf), start(api, aws, wf)
    token = api.get(f"/executions/{a.execution_id}/history?limit=1")[1]["next_token"]
    assert token
    for query in ("limit=0", "limit=1001", "limit=x", "next_token=garbage", f"next_token={token}"):
        status, body = api.get(f"/executions/{b.execution_id}/history?{query}")
        assert status == 400, (query, body)
        assert body["errors"][0]["field"] in ("limit", "next_token")
    assert api.get("/executions/ex_nope/history")[0] == 404


def _raw_items(aws: Any, execution_id: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return ddb.query(
        TableName=aws.settings.executions_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"EX#{execution_id}"}},
    )["Items"]


def test_executions_are_kept_forever_by_default(api: Any, aws: Any, worker: Any) -> None:
    run = start(api, aws, api.create_workflow(GATED))
    worker.drain()
    items = _raw_items(aws, run.execution_id)
    assert len(items) >= 2 and not [i for i in items if "expires_at" in i]  # the head (with event 1) and a commit


def test_a_retention_period_sets_ttl_on_every_item(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    from chalicelib.engine import Engine, reset_engine

    reset_engine(Engine.build(dataclasses.replace(aws.settings, retention_days=90), clock=clock))
    run = start(api, aws, api.create_workflow(GATED))
    worker.drain()
    items = _raw_items(aws, run.execution_id)
    assert len(items) >= 2
    for item in items:
        at = item["started_at"]["S"] if item["sk"]["S"] == "SUMMARY" else item["at"]["S"]
        assert int(item["expires_at"]["N"]) == int((parse_iso(at) + timedelta(days=90)).timestamp())


@pytest.mark.parametrize("value, days", [(None, None), ("", None), ("0", None), ("30", 30)])
def test_retention_setting(value: str | None, days: int | None) -> None:
    from chalicelib.config import Settings

    env = {} if value is None else {"STEPLINE_RETENTION_DAYS": value}
    assert Settings.from_env(env).retention_days == days


def test_a_bad_retention_setting_fails_loudly() -> None:
    from chalicelib.config import Settings

    with pytest.raises(ValueError, match="STEPLINE_RETENTION_DAYS"):
        Settings.from_env({"STEPLINE_RETENTION_DAYS": "ninety"})
