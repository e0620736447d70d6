"""Bulk cancel and retry by filter: dry run, then chunked through SQS with per-execution results."""

from __future__ import annotations

import json
from typing import Any

from tests.functional.monitoring_support import GATED, start

ADMIN = "admin"  # the actor name of the STEPLINE_ADMIN_KEY
FAILING = {
    "name": "Failing",
    "trigger": {"type": "manual"},
    "steps": [{"id": "x", "agent": "python", "config": {"callable": "chalicelib.samples.callables:fails_permanently"}}],
}


def failed_runs(api: Any, aws: Any, worker: Any, clock: Any, n: int) -> tuple[str, list[str]]:
    wf = api.create_workflow(FAILING)
    ids = []
    for _ in range(n):
        clock.advance(60)
        ids.append(start(api, aws, wf).execution_id)
    worker.drain()
    return wf, ids[::-1]  # newest first


def test_dry_run_is_the_default_and_changes_nothing(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf, ids = failed_runs(api, aws, worker, clock, 5)
    status, body = api.post("/executions/bulk", {"action": "retry", "filters": {"workflow_id": wf}})
    assert status == 200, body
    assert body["dry_run"] is True and body["count"] == 5 and body["first_ids"] == ids
    assert body["filters"] == {"workflow_id": wf, "status": "failed"}  # retry applies to failed executions
    status, body = api.post(
        "/executions/bulk",
        {"action": "cancel", "dry_run": True, "filters": {"status": "failed", "trigger": "manual"}, "limit": 3},
    )
    assert (status, body["count"], body["first_ids"]) == (200, 3, ids)
    assert worker.receive() == []
    assert {api.execution(e)["status"] for e in ids} == {"failed"}


def test_apply_retries_in_chunks_and_reports_each_execution(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf, ids = failed_runs(api, aws, worker, clock, 7)
    assert api.post(f"/executions/{ids[3]}/cancel", {})[0] == 200  # no longer failed...
    # ...but still matched if the operator asks for every status: its retry is a 409, reported
    status, job = api.post(
        "/executions/bulk",
        {"action": "retry", "dry_run": False, "chunk_size": 3, "filters": {"workflow_id": wf, "status": "cancelled"}},
    )
    assert status == 202 and job["state"] == "running", job
    worker.drain()
    status, done = api.get(f"/executions/bulk/{job['job_id']}")
    assert status == 200 and done["state"] == "done"
    assert (done["processed"], done["succeeded"], done["conflicts"]) == (1, 0, 1)
    assert done["results"][0]["status"] == 409 and done["results"][0]["execution_id"] == ids[3]

    status, job = api.post(
        "/executions/bulk", {"action": "retry", "dry_run": False, "chunk_size": 3, "filters": {"workflow_id": wf}}
    )
    assert status == 202
    messages = worker.receive()
    assert [json.loads(m["Body"])["kind"] for m in messages] == ["bulk"]
    for _ in range(2):  # SQS may deliver a chunk twice: the second delivery does nothing
        worker.deliver(messages[0]["Body"])
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=messages[0]["ReceiptHandle"])
    delivered = worker.drain()
    chunks = [json.loads(b)["chunk"] for b in delivered if json.loads(b).get("kind") == "bulk"]
    assert chunks[0] == 1 and chunks == sorted(set(chunks))  # 6 executions in chunks of 3: 0 (above), 1, ...
    status, done = api.get(f"/executions/bulk/{job['job_id']}?limit=4")
    assert done["state"] == "done" and (done["processed"], done["succeeded"], done["conflicts"]) == (6, 6, 0)
    results = done["results"]
    status, more = api.get(f"/executions/bulk/{job['job_id']}?limit=4&next_token={done['next_token']}")
    results += more["results"]
    assert more["next_token"] is None
    assert sorted(r["execution_id"] for r in results) == sorted(ids[:3] + ids[4:])
    assert {r["outcome"] for r in results} == {"ok"}
    for e in ids[:3] + ids[4:]:
        history = api.get(f"/executions/{e}/history")[1]["items"]
        retried = [h for h in history if h["type"] == "step_retried"]
        assert len(retried) == 1 and retried[0]["actor"] == ADMIN, retried
        assert api.execution(e)["steps"][0]["attempt"] == 2  # retried once, failed again
    assert api.execution(ids[3])["status"] == "cancelled"


def test_bulk_cancel_across_workflows_brings_active_counts_to_zero(api: Any, aws: Any, worker: Any) -> None:
    gates = [api.create_workflow(GATED), api.create_workflow({**GATED, "name": "Second"})]
    for wf in gates * 3:
        start(api, aws, wf)
    worker.drain()
    _status, body = api.post("/executions/bulk", {"action": "cancel", "filters": {"status": "waiting"}})
    assert body["count"] == 6
    _status, job = api.post(
        "/executions/bulk", {"action": "cancel", "dry_run": False, "chunk_size": 4, "filters": {"status": "waiting"}}
    )
    worker.drain()
    done = api.get(f"/executions/bulk/{job['job_id']}")[1]
    assert (done["state"], done["succeeded"]) == ("done", 6)
    assert {w["active_executions"] for w in api.get("/workflows")[1]["items"]} == {0}
    assert len(api.get("/executions?status=cancelled")[1]["items"]) == 6


def test_bulk_input_is_checked(api: Any) -> None:
    cases = [
        ({"action": "delete"}, "action"),
        ({"action": "cancel", "filters": {"status": "gone"}}, "filters.status"),
        ({"action": "cancel", "filters": {"colour": "red"}}, "filters.colour"),
        ({"action": "cancel", "filters": {"from": "tuesday"}}, "filters.from"),
        ({"action": "cancel", "dry_run": "no"}, "dry_run"),
        ({"action": "cancel", "limit": 0}, "limit"),
        ({"action": "cancel", "filters": []}, "filters"),
    ]
    for body, field in cases:
        status, err = api.post("/executions/bulk", body)
        assert status == 400 and field in [e["field"] for e in err["errors"]], (body, err)
    assert api.post("/executions/bulk", {"action": "cancel", "filters": {"workflow_id": "wf_nope"}})[0] == 404
    assert api.get("/executions/bulk/bulk_nope")[0] == 404
    status, key = api.post("/keys", {"name": "watcher", "role": "viewer"})
    assert status == 201
    assert api.post("/executions/bulk", {"action": "cancel"}, key=key["key"])[0] == 403
