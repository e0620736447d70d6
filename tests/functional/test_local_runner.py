"""Local mode (``make run``): the runner end to end, and its Lambda-like SQS and schedule loops.

The first test starts ``python -m chalicelib.local.server`` as ``make run`` does and drives the
"Order enrichment" sample over HTTP to completion. The others check the SQS poller and the
ticker against a small Chalice app of their own on ``mock_aws``, so that what local mode
promises (Lambda's delete/redeliver rules, generic handler discovery) holds whatever the
real app registers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice import Chalice, Cron, Rate
from moto import mock_aws

from chalicelib.local.worker import (
    QueueWorker,
    ScheduleTicker,
    queue_bindings,
    schedule_bindings,
    sqs_event,
)
from chalicelib.samples.workflows import SAMPLE_WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "local-runner-test-admin-key"
TERMINAL = {"completed", "failed", "cancelled"}


# --- make run, end to end -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(base: str, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")


def _wait_for(what: str, probe: Any, timeout: float, process: subprocess.Popen[bytes], logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the runner exited ({process.returncode}) while waiting for {what}:\n{logs.read_text()}")
        try:
            last = probe()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last = error
        else:
            if last and not isinstance(last, Exception):
                return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}):\n{logs.read_text()}")


@pytest.fixture
def runner(tmp_path: Path):
    """``python -m chalicelib.local.server`` on a free port with a fixed admin key; yields its URL."""
    port = _free_port()
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", STEPLINE_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
    for name in ("AWS_ENDPOINT_URL", "STEPLINE_USE_REAL_AWS", "STEPLINE_MOTO_PORT"):
        env.pop(name, None)  # always the embedded moto, never a real account
    logs = tmp_path / "runner.log"
    with logs.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for("GET /health", lambda: _call(base, "GET", "/health", key=None)[0] == 200, 90, process, logs)
        yield base, process, logs
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_make_run_serves_the_order_enrichment_sample_to_completion(runner: tuple[str, Any, Path]) -> None:
    base, process, logs = runner

    def seeded_workflow_id() -> str | None:
        status, listing = _call(base, "GET", "/workflows")
        names = (
            {item["name"]: item["workflow_id"] for item in (listing or {}).get("items", [])} if status == 200 else {}
        )
        return names.get("Order enrichment")

    workflow_id = _wait_for("the seeded 'Order enrichment' workflow", seeded_workflow_id, 30, process, logs)
    status, started = _call(
        base,
        "POST",
        f"/workflows/{workflow_id}/executions",
        {"inputs": {"customer": "ACME", "amount": 1250, "priority": "high"}},
    )
    assert status == 201, started
    assert started["status"] == "running"
    execution_id = started["execution_id"]

    def finished() -> dict[str, Any] | None:
        code, execution = _call(base, "GET", f"/executions/{execution_id}")
        assert code == 200, execution
        return execution if execution["status"] in TERMINAL else None

    execution = _wait_for(f"execution {execution_id} to finish", finished, 30, process, logs)
    assert execution["status"] == "completed", json.dumps(execution, indent=2)
    assert [step["state"] for step in execution["steps"]] == ["completed"] * 3
    summary = execution["steps"][-1]["output"]
    assert summary["customer"] == "ACME"
    assert summary["total"] == 1250
    assert summary["priority"] == "high"  # enrich_order: totals of 1000 and more are high priority

    # the worker logs the status change just after storing it: wait for the line
    _wait_for(
        "the completion log line", lambda: "execution completed (was running)" in logs.read_text(), 10, process, logs
    )
    banner = logs.read_text()
    assert base in banner and ADMIN_KEY in banner and "curl" in banner
    # the console logs each record once, readable: no JSON copy, no EMF lines
    done = [line for line in banner.splitlines() if "execution completed (was running)" in line]
    assert len(done) == 1 and f"execution_id={execution_id}" in done[0], banner
    assert '"logger": "stepline' not in banner and '"_aws"' not in banner

    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(timeout=20) == 0, logs.read_text()


# --- the SQS poller and the ticker, on a small app of their own -----------------------------

demo = Chalice(app_name="local-runner-demo")
CALLS: list[dict[str, Any]] = []
REPLIES: dict[str, Any] = {}  # message body -> what the handler does with it


@demo.on_sqs_message(queue="demo-steps", batch_size=1)
def one_at_a_time(event: Any) -> Any:
    raw = event.to_dict()
    CALLS.append(raw)
    reply = REPLIES.get(raw["Records"][0]["body"])
    if isinstance(reply, Exception):
        raise reply
    return reply


@demo.on_sqs_message(queue="demo-batches", batch_size=10)
def in_batches(event: Any) -> Any:
    raw = event.to_dict()
    CALLS.append(raw)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in raw["Records"] if r["body"] == "bad"]}


@demo.schedule(Rate(1, unit=Rate.MINUTES))
def every_minute(event: Any) -> None:
    CALLS.append(event.to_dict())


@demo.schedule(Cron(30, 2, "?", "*", "MON-FRI", "*"))
def weekday_nights(event: Any) -> None:
    CALLS.append(event.to_dict())


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    CALLS.clear()
    REPLIES.clear()
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        # Visibility 0: a message left on the queue is visible again at once, so the
        # redelivery that Lambda would see after the timeout is observable without waiting.
        for queue in ("demo-steps", "demo-batches"):
            client.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "0"})
        yield client


def _worker(sqs: Any, handler_name: str) -> QueueWorker:
    binding = next(b for b in queue_bindings(demo) if b.name == handler_name)
    return QueueWorker(binding, sqs, region="us-east-1", wait_seconds=0)


def _depth(sqs: Any, queue: str) -> int:
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return sum(int(value) for value in attributes["Attributes"].values())


def test_the_local_admin_key_has_the_form_of_every_other_key() -> None:
    from chalicelib.auth import new_key
    from chalicelib.local.server import ensure_admin_key

    env: dict[str, str] = {}
    key = ensure_admin_key(env)
    assert key.startswith("sl_") and len(key) == len(new_key()) and env["STEPLINE_ADMIN_KEY"] == key
    assert ensure_admin_key({"STEPLINE_ADMIN_KEY": "mine"}) == "mine"


def test_discovers_sqs_and_scheduled_handlers_from_the_app() -> None:
    assert {(b.name, b.queue_name, b.batch_size) for b in queue_bindings(demo)} == {
        ("one_at_a_time", "demo-steps", 1),
        ("in_batches", "demo-batches", 10),
    }
    assert {(b.name, b.expression) for b in schedule_bindings(demo)} == {
        ("every_minute", "rate(1 minute)"),
        ("weekday_nights", "cron(30 2 ? * MON-FRI *)"),
    }


def test_handler_gets_a_lambda_shaped_sqs_event_and_the_message_is_deleted(sqs: Any) -> None:
    url = sqs.get_queue_url(QueueName="demo-steps")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"execution_id": "e1"}',
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "step"}},
    )

    assert _worker(sqs, "one_at_a_time").poll_once() == 1

    (record,) = CALLS[0]["Records"]
    assert record["body"] == '{"execution_id": "e1"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:demo-steps"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "step"
    assert record["messageId"] and record["receiptHandle"]
    assert _depth(sqs, "demo-steps") == 0


def test_a_raising_handler_leaves_the_message_to_be_redelivered(sqs: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = sqs.get_queue_url(QueueName="demo-steps")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="boom")
    REPLIES["boom"] = RuntimeError("engine exploded")
    worker = _worker(sqs, "one_at_a_time")

    worker.poll_once()
    assert "engine exploded" in caplog.text  # logged with its traceback, not swallowed
    assert _depth(sqs, "demo-steps") == 1

    REPLIES["boom"] = None
    worker.poll_once()
    assert [call["Records"][0]["attributes"]["ApproximateReceiveCount"] for call in CALLS] == ["1", "2"]
    assert _depth(sqs, "demo-steps") == 0


def test_batch_item_failures_keep_only_the_failed_messages(sqs: Any) -> None:
    url = sqs.get_queue_url(QueueName="demo-batches")["QueueUrl"]
    for body in ("good", "bad", "good"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    worker = _worker(sqs, "in_batches")

    received = 0
    while received < 3:  # SQS may hand them out over more than one receive
        received += worker.poll_once()

    assert _depth(sqs, "demo-batches") == 1
    worker.poll_once()
    assert CALLS[-1]["Records"][0]["body"] == "bad"
    assert CALLS[-1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_a_failure_report_naming_an_unknown_message_fails_the_whole_batch(sqs: Any) -> None:
    url = sqs.get_queue_url(QueueName="demo-steps")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="odd")
    REPLIES["odd"] = {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}

    _worker(sqs, "one_at_a_time").poll_once()

    assert _depth(sqs, "demo-steps") == 1


def test_sqs_event_matches_what_chalice_test_generates() -> None:
    from chalice.test import Client

    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": "b",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    ours = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"][0]
    with Client(demo) as client:
        theirs = client.events.generate_sqs_event(["b"], queue_name="q")["Records"][0]
    assert set(ours) == set(theirs)


def test_ticker_runs_rate_handlers_soon_after_start_then_every_period() -> None:
    start = _dt.datetime(2026, 1, 5, 12, 0, tzinfo=_dt.UTC)  # a Monday
    ticker = ScheduleTicker(schedule_bindings(demo), region="us-east-1", start=start, first_delay=2)

    assert ticker.tick(start) == []
    assert ticker.tick(start + _dt.timedelta(seconds=2)) == ["every_minute"]
    assert ticker.tick(start + _dt.timedelta(seconds=30)) == []
    assert ticker.tick(start + _dt.timedelta(seconds=62)) == ["every_minute"]
    event = CALLS[-1]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/every_minute"]


def test_ticker_reads_eventbridge_cron_with_its_weekday_numbers() -> None:
    start = _dt.datetime(2026, 1, 9, 3, 0, tzinfo=_dt.UTC)  # Friday, after 02:30
    ticker = ScheduleTicker(
        [b for b in schedule_bindings(demo) if b.name == "weekday_nights"], region="us-east-1", start=start
    )
    assert ticker.next_due() == _dt.datetime(2026, 1, 12, 2, 30, tzinfo=_dt.UTC)  # Monday

    numeric = Chalice(app_name="numeric-cron")

    @numeric.schedule(Cron(0, 9, "?", "*", "2-6", "*"))  # EventBridge: 2-6 = MON-FRI
    def weekday_mornings(event: Any) -> None:
        pass

    sunday = _dt.datetime(2026, 1, 11, 10, 0, tzinfo=_dt.UTC)
    assert ScheduleTicker(schedule_bindings(numeric), region="us-east-1", start=sunday).next_due() == _dt.datetime(
        2026, 1, 12, 9, 0, tzinfo=_dt.UTC
    )


# --- the samples ----------------------------------------------------------------------------


def test_sample_workflows_are_valid_definitions() -> None:
    from chalicelib.agents import AGENTS
    from chalicelib.domain.definition import parse_definition

    names = [parse_definition(sample, AGENTS).name for sample in SAMPLE_WORKFLOWS]
    assert names == ["Order enrichment", "Invoice approval", "Nightly report", "Support ticket triage"]
