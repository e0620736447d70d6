"""Upgrading a stack: a store filled by the release before the store changes (commit
ba0122a, taken from git) is upgraded the documented way (README, "Upgrading": the index
changes one stack update each, from ``infra/index_steps.py``, with the one-off list backfill
between the additions and the removals) and then read and driven on by today's code: lists,
counts, histories and statistics come out right, and an execution left waiting by the old
code completes.

The old release runs in its own interpreter (its ``app.py`` and ``chalicelib`` first on
``sys.path``) against a moto server on 127.0.0.1, as the old functions would against the
tables; then this process serves the same tables with today's app.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "ba0122a"  # main before the store changes (commit items, the head) and the deploy work
ADMIN = "upgrade-admin-key"

OLD_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from chalice.test import Client
from chalicelib.config import Settings
from chalicelib.local.resources import create_resources
import chalicelib, app as old_app
assert chalicelib.__file__.startswith(sys.argv[1]), chalicelib.__file__
create_resources(Settings.from_env())
import boto3
sqs = boto3.client("sqs")
url = sqs.get_queue_url(QueueName=Settings.from_env().step_queue)["QueueUrl"]
H = {"Authorization": "Bearer upgrade-admin-key", "Content-Type": "application/json"}
with Client(old_app.app) as c:
    def call(method, path, body=None):
        r = getattr(c.http, method)(path, headers=H, body=json.dumps(body) if body is not None else None)
        return r.status_code, json.loads(r.body) if r.body else None
    def drain():
        for _ in range(100):
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return
            for m in msgs:
                ev = c.events.generate_sqs_event(queue_name=Settings.from_env().step_queue, message_bodies=[m["Body"]])
                c.lambda_.invoke("run_step", ev)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    definition = {"name": "Old release", "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "string"}]},
                  "steps": [{"id": "prep", "agent": "transform", "instructions": "{n: input.n}"},
                            {"id": "check", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
                            {"id": "done", "agent": "transform", "instructions": "{final: prev.n}"}]}
    status, wf = call("post", "/workflows", definition)
    assert status == 201, wf
    wf = wf["workflow_id"]
    ids = {}
    for name in ("approved", "waiting", "cancelled"):
        status, ex = call("post", f"/workflows/{wf}/executions", {"inputs": {"n": name}})
        assert status == 201, ex
        ids[name] = ex["execution_id"]
        drain()
    assert call("post", f"/executions/{ids['approved']}/steps/check/approve", {"comment": "ok"})[0] == 200
    drain()
    assert call("post", f"/executions/{ids['cancelled']}/cancel", {})[0] == 200
    histories = {k: [i["type"] for i in call("get", f"/executions/{v}/history")[1]["items"]] for k, v in ids.items()}
    print("RESULT " + json.dumps({"workflow_id": wf, "ids": ids, "histories": histories,
                                  "statuses": {k: call("get", f"/executions/{v}")[1]["status"] for k, v in ids.items()}}))
"""


def _previous_release(into: Path) -> Path:
    """``app.py``, ``chalicelib/`` and ``infra/`` of the previous release, from git."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE, "app.py", "chalicelib", "infra"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    reset = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()  # moto's backends are shared by the whole process
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "STEPLINE_STAGE": "dev",
        "STEPLINE_ADMIN_KEY": ADMIN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    urllib.request.urlopen(reset, timeout=30).close()
    server.stop()


def test_a_store_filled_by_the_previous_release_reads_and_runs_on(moto_env: dict[str, str], tmp_path: Path) -> None:
    old = _previous_release(tmp_path / "previous")
    run = subprocess.run(
        [sys.executable, "-c", OLD_SCRIPT, str(old)],
        capture_output=True,
        text=True,
        env={**moto_env, "PATH": "/usr/bin:/bin"},
        cwd=str(old),
        timeout=600,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    before = json.loads(lines[-1][len("RESULT ") :])
    assert before["statuses"] == {"approved": "completed", "waiting": "waiting", "cancelled": "cancelled"}

    # the upgrade (README, "Upgrading"): the index changes one stack update each, as
    # CloudFormation makes them, with the list backfill between the additions and the removals;
    # the update also adds the executions table's stream (the table is updated in place)
    import boto3
    from chalice.test import Client

    from app import app
    from chalicelib.config import Settings
    from chalicelib.engine import Engine, reset_engine
    from chalicelib.local.resources import load_template
    from chalicelib.local.stream import StreamPump
    from chalicelib.store.backfill import backfill

    settings = Settings.from_env()
    spec = load_template()["Resources"]["ExecutionsTable"]["Properties"]["StreamSpecification"]
    boto3.client("dynamodb").update_table(
        TableName=settings.executions_table, StreamSpecification={"StreamEnabled": True, **spec}
    )
    reports = _upgrade_indexes(old, settings, lambda: backfill(settings))
    assert (reports[0].heads, reports[0].updated) == (3, 3), reports
    assert (reports[1].updated, reports[1].already) == (0, 3), reports  # idempotent
    reset_engine(Engine.build(settings))
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    wf, ids = before["workflow_id"], before["ids"]
    try:
        with Client(app) as client:

            def get(path: str) -> Any:
                response = client.http.get(path, headers=headers)
                assert response.status_code == 200, (path, response.body)
                return json.loads(response.body)

            listed = get(f"/workflows/{wf}/executions")["items"]
            assert sorted(i["execution_id"] for i in listed) == sorted(ids.values())
            assert [i["execution_id"] for i in get(f"/workflows/{wf}/executions?status=waiting")["items"]] == [
                ids["waiting"]
            ]
            assert {i["execution_id"] for i in get("/executions?status=completed")["items"]} == {ids["approved"]}
            assert get(f"/workflows/{wf}")["active_executions"] == 1
            for name, execution_id in ids.items():
                assert get(f"/executions/{execution_id}")["status"] == before["statuses"][name]
                history = [i["type"] for i in get(f"/executions/{execution_id}/history")["items"]]
                assert history == before["histories"][name], name
            since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
            day = get(f"/workflows/{wf}/stats?bucket=day&from={since}")
            assert '"completed": 1' in json.dumps(day) and '"cancelled": 1' in json.dumps(day), day

            # the execution the old release left waiting goes on under today's code
            approve = client.http.post(
                f"/executions/{ids['waiting']}/steps/check/approve",
                headers=headers,
                body=json.dumps({"comment": "after the upgrade"}),
            )
            assert approve.status_code == 200, approve.body

            sqs = boto3.client("sqs")
            url = sqs.get_queue_url(QueueName=settings.step_queue)["QueueUrl"]
            for _ in range(20):
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    event = client.events.generate_sqs_event(
                        queue_name=settings.step_queue, message_bodies=[message["Body"]]
                    )
                    client.lambda_.invoke("run_step", event)
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            # the aggregate function's event source delivers the head changes since the update
            StreamPump(settings, lambda event: client.lambda_.invoke("aggregate", event)).drain()
            finished = get(f"/executions/{ids['waiting']}")
            assert finished["status"] == "completed", finished
            assert finished["steps"][-1]["output"] == {"final": "waiting"}
            assert get(f"/workflows/{wf}")["active_executions"] == 0
            # the one-off recount the README suggests after the update agrees
            from chalicelib.tools.rebuild_counts import rebuild

            assert rebuild(Engine.build(Settings.from_env()).store, [wf]) == {wf: 0}
            assert get(f"/workflows/{wf}")["active_executions"] == 0
            assert [i["execution_id"] for i in get(f"/workflows/{wf}/executions?status=waiting")["items"]] == []
            # a new execution lists beside the old ones, across workflows too
            new_id = json.loads(
                client.http.post(
                    f"/workflows/{wf}/executions", headers=headers, body=json.dumps({"inputs": {"n": "new"}})
                ).body
            )["execution_id"]
            assert {i["execution_id"] for i in get("/executions")["items"]} == {*ids.values(), new_id}
    finally:
        reset_engine(None)


def _upgrade_indexes(old: Path, settings: Any, run_backfill: Any) -> list[Any]:
    """Apply ``infra/index_steps.py``'s steps from the old template to today's to the tables,
    one UpdateTable per step (what each stack update does); backfill twice after the last
    addition. Returns the backfill reports."""
    import boto3

    sys.path.insert(0, str(ROOT / "infra"))
    try:
        from index_steps import step_templates
    finally:
        sys.path.remove(str(ROOT / "infra"))
    previous = json.loads((old / "infra" / "template.json").read_text())
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    ddb = boto3.client("dynamodb")
    names = {"ExecutionsTable": settings.executions_table, "CatalogTable": settings.catalog_table}
    reports: list[Any] = []
    have = {name: previous["Resources"][name]["Properties"].get("GlobalSecondaryIndexes", []) for name in names}
    for step in step_templates(previous, template):
        for resource, table in names.items():
            props = step["Resources"][resource]["Properties"]
            wanted = props.get("GlobalSecondaryIndexes", [])
            added = [g for g in wanted if g["IndexName"] not in {h["IndexName"] for h in have[resource]}]
            removed = [h for h in have[resource] if h["IndexName"] not in {g["IndexName"] for g in wanted}]
            assert len(added) + len(removed) <= 1, "one index per update"
            if removed and not reports:
                reports = [run_backfill(), run_backfill()]
            update = (
                [{"Create": added[0]}]
                if added
                else [{"Delete": {"IndexName": removed[0]["IndexName"]}}]
                if removed
                else []
            )
            if update:
                ddb.update_table(
                    TableName=table,
                    AttributeDefinitions=props["AttributeDefinitions"],
                    GlobalSecondaryIndexUpdates=update,
                )
            have[resource] = wanted
    indexes = ddb.describe_table(TableName=settings.executions_table)["Table"]["GlobalSecondaryIndexes"]
    assert sorted(i["IndexName"] for i in indexes) == ["by_due", "list_month", "list_wf"]
    return reports
