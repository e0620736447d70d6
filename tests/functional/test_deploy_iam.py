"""Least privilege, checked against what the code really calls.

A scenario that walks every feature runs through the real handlers under moto, with
resource names derived from infra/template.json exactly as CloudFormation would name them
(account 123456789012, us-east-1, stage dev). Every AWS call the app makes is recorded
(a botocore ``provide-client-params`` hook on every session: boto3's and PynamoDB's) and
mapped to the IAM actions and ARNs it needs. The test then checks both directions:
``.chalice/policy-dev.json`` allows every call, and grants nothing no call (or the Lambda
service on the functions' behalf) needs.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.handlers
import pytest

from chalicelib.local.resources import load_template

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION, STAGE = "123456789012", "us-east-1", "dev"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "StageName": STAGE}

CALLS: list[tuple[str, str, dict[str, Any]]] = []
RECORDING: dict[str, Any] = {"on": False, "function": "api"}
#: Which function made each recorded call: "api" (the API handler) or "worker" (the others).
CALLERS: list[str] = []


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    if RECORDING["on"]:
        CALLS.append((model.service_model.service_name, model.name, dict(params)))
        CALLERS.append(RECORDING["function"])


# Sessions are created lazily by the app (boto3's default one, one per PynamoDB connection),
# after this import; each gets the hook. It records only while RECORDING is on.
botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params", _record))


# ------------------------------------------------------------------ template and policy
#: ARNs CloudFormation makes up (a secret's random suffix), filled in when the scenario creates them.
REFS: dict[str, str] = {
    "AdminKeySecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:stepline-{STAGE}-admin-key-AbCdEf"
}


def _sub(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return REFS[value["Ref"]]
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO[m.group(1)], text)


def _deployed_names() -> dict[str, str]:
    """Each function's resource environment variable -> the name CloudFormation gives it."""
    resources = load_template()["Resources"]
    name_property = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::S3::Bucket": "BucketName",
    }
    names = {}
    for variable, ref in resources["APIHandler"]["Properties"]["Environment"]["Variables"].items():
        target = ref.get("Ref") or ref.get("Fn::GetAtt", [None])[0]
        if resources.get(target, {}).get("Type") in name_property:  # not parameters or the secret's Fn::If
            names[variable] = _sub(resources[target]["Properties"][name_property[resources[target]["Type"]]])
    return names


def _policy(stage: str = STAGE, function: str = "") -> list[dict[str, Any]]:
    """The stage's shared policy, or with ``function="api"`` the API handler's (shared + secret writes)."""
    document = json.loads((ROOT / ".chalice" / f"policy-{stage}{'-' + function if function else ''}.json").read_text())
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


def _grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (action, _sub(resource))
        for s in statements
        if s["Effect"] == "Allow"
        for action in s["Action"]
        for resource in s["Resource"]
    }


# --------------------------------------------------------------- calls -> IAM requests
def _table(name: str, index: str | None = None) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}" + (f"/index/{index}" if index else "")


def _queue(url_or_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{urlparse(url_or_name).path.rsplit('/', 1)[-1] or url_or_name}"


TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
}


def _needs(service: str, operation: str, params: dict[str, Any]) -> set[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs one API call is authorised on."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return {
                (f"dynamodb:{TRANSACT[kind]}", _table(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            }
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return {(f"dynamodb:{operation}", _table(table)) for table in params["RequestItems"]}
        return {(f"dynamodb:{operation}", _table(params["TableName"], params.get("IndexName")))}
    if service == "sqs":
        return {(f"sqs:{operation}", _queue(params.get("QueueUrl") or params["QueueName"]))}
    if service == "s3":
        if operation in S3_ACTIONS:
            return {(S3_ACTIONS[operation], f"arn:aws:s3:::{params['Bucket']}/{params['Key']}")}
        return {(f"s3:{operation}", f"arn:aws:s3:::{params['Bucket']}")}
    if service == "events" and operation == "PutEvents":
        return {
            ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{entry.get('EventBusName', 'default')}")
            for entry in params["Entries"]
        }
    if service == "secretsmanager" and str(params.get("SecretId", "")).startswith("arn:"):
        return {(f"secretsmanager:{operation}", params["SecretId"])}  # the bootstrap admin key, by ARN
    if service == "secretsmanager":  # a secret's ARN ends with a random suffix after its name
        name = params.get("SecretId") or params["Name"]
        return {(f"secretsmanager:{operation}", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")} | (
            {("secretsmanager:TagResource", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf")}
            if params.get("Tags")
            else set()
        )
    if service == "bedrock-runtime" and operation == "Converse":  # Converse is authorised as InvokeModel
        return {("bedrock:InvokeModel", f"arn:aws:bedrock:{REGION}::foundation-model/{params['modelId']}")}
    if service == "sesv2" and operation == "SendEmail":
        # SES authorises the sender's identity (an address, or its domain when that is verified)
        return {("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{params['FromEmailAddress']}")}
    raise AssertionError(f"unexpected AWS service {service}.{operation}: map it to IAM here")


def _service_needs(names: dict[str, str]) -> set[tuple[str, str]]:
    """What Lambda itself does with the functions' role: poll the step queue, write logs."""
    queue = _queue(names["STEPLINE_STEP_QUEUE"])
    groups = [
        _sub(r["Properties"]["LogGroupName"])
        for r in load_template()["Resources"].values()
        if r.get("Type") == "AWS::Logs::LogGroup"
    ]
    logs = {
        (action, f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*")
        for group in groups
        for action in ("logs:CreateLogStream", "logs:PutLogEvents")
    }
    # the aggregator's event source reads the executions table's stream (its label is known
    # only once deployed) and sends the records of a batch it gave up on to the failure queue
    table = names["STEPLINE_EXECUTIONS_TABLE"]
    stream = {
        (f"dynamodb:{action}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2026-01-01T00:00:00.000")
        for action in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
    }
    failures = {
        (
            "sqs:SendMessage",
            _queue(_sub(load_template()["Resources"]["AggregateFailureQueue"]["Properties"]["QueueName"])),
        )
    }
    return (
        {("sqs:ReceiveMessage", queue), ("sqs:DeleteMessage", queue), ("sqs:GetQueueAttributes", queue)}
        | logs
        | stream
        | failures
    )


def _allowed(need: tuple[str, str], grants: set[tuple[str, str]]) -> bool:
    action, resource = need
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) and fnmatch.fnmatchcase(resource, r) for a, r in grants)


# ------------------------------------------------------------------------ the scenario
@pytest.fixture(autouse=True)
def deployed_names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Runs before the ``aws`` fixture creates the resources: use the deployed names."""
    names = _deployed_names()
    for variable, value in names.items():
        monkeypatch.setenv(variable, value)
    return names


@pytest.fixture
def recording() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    CALLS.clear()
    CALLERS.clear()
    RECORDING.update(on=True, function="api")
    yield CALLS
    RECORDING["on"] = False
    CALLS.clear()
    CALLERS.clear()


BIG = {
    "name": "Big",
    "notify": [{"on": ["gate_waiting", "failed", "completed"], "email": "ops@example.com"}],
    "trigger": {"type": "manual", "inputs": [{"name": "note", "type": "string", "required": True}]},
    "steps": [
        {
            "id": "produce",
            "agent": "python",
            "config": {"callable": "chalicelib.samples.callables:big_output", "bytes": 200_000},
        },
        {"id": "gate", "agent": "transform", "instructions": "prev.bytes", "gate": {"type": "approval"}},
        {"id": "fail", "agent": "python", "config": {"callable": "chalicelib.samples.callables:fails_permanently"}},
    ],
}


def _record_aggregate_only(pump: Any) -> None:
    """The stream pump stands for Lambda's event source (its reads are the service's, in
    ``_service_needs``); what the aggregate handler calls is the function's."""
    read, deliver = pump.pump_once, pump.deliver

    def pump_once() -> int:
        saved = dict(RECORDING)
        RECORDING["on"] = False
        try:
            return int(read())
        finally:
            RECORDING.update(saved)

    def deliver_recorded(event: dict[str, Any]) -> Any:
        saved = dict(RECORDING)
        RECORDING.update(on=True, function="worker")
        try:
            return deliver(event)
        finally:
            RECORDING.update(saved)

    pump.pump_once, pump.deliver = pump_once, deliver_recorded


def _run_scenario(api: Any, worker: Any, aws: Any, clock: Any) -> None:
    from chalicelib.engine import Engine, reset_engine

    _record_aggregate_only(api.client.stream)

    def drain() -> None:  # the worker fixture's loop, recording only what the handler does
        try:
            for _ in range(100):
                RECORDING["on"] = False
                messages = worker.receive()
                if not messages:
                    return
                for message in messages:
                    RECORDING.update(on=True, function="worker")
                    worker.deliver(message["Body"])
                    RECORDING.update(on=False, function="api")
                    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
            raise AssertionError("queue did not drain")
        finally:
            RECORDING["on"] = True

    # CloudFormation generates the bootstrap admin key's secret; the API function gets its ARN
    RECORDING["on"] = False
    secrets = boto3.client("secretsmanager", region_name=REGION)
    bootstrap = secrets.get_random_password(PasswordLength=48, ExcludePunctuation=True)["RandomPassword"]
    REFS["AdminKeySecret"] = secrets.create_secret(Name=f"stepline-{STAGE}-admin-key", SecretString=bootstrap)["ARN"]
    settings = dataclasses.replace(aws.settings, admin_key_secret=REFS["AdminKeySecret"])
    reset_engine(Engine.build(settings, clock=clock))
    RECORDING["on"] = True
    assert api.get("/me", key=bootstrap)[1] == {"name": "bootstrap-admin", "role": "admin"}
    status, key = api.post("/keys", {"name": "ops", "role": "operator"}, key=bootstrap)
    assert status == 201
    assert api.get("/me", key=key["key"])[0] == 200
    wf = api.create_workflow(BIG)
    assert api.put(f"/workflows/{wf}", {**BIG, "description": "v2"})[0] == 200
    assert api.post(f"/workflows/{wf}/disable")[0] == 200
    assert api.post(f"/workflows/{wf}/enable")[0] == 200
    assert api.get("/workflows")[0] == 200 and api.get(f"/workflows/{wf}")[0] == 200
    started = api.start(wf, {"note": "n" * 100_000}, headers={"Idempotency-Key": "once"})
    assert api.start(wf, {"note": "n" * 100_000}, headers={"Idempotency-Key": "once"}) == started
    execution_id = started["execution_id"]
    drain()
    # the API function is another process: it reads the payloads back from S3
    reset_engine(Engine.build(settings, clock=clock))
    assert api.execution(execution_id)["steps"][0]["output"]["bytes"] == 200_000
    assert api.post(f"/executions/{execution_id}/steps/gate/approve", {"comment": "ok"})[0] == 200
    drain()
    assert api.execution(execution_id)["status"] == "failed"
    assert api.post(f"/executions/{execution_id}/steps/fail/retry")[0] == 200
    assert api.post(f"/executions/{execution_id}/steps/fail/skip", {})[0] in (200, 409)
    drain()
    assert api.get(f"/executions/{execution_id}/history")[0] == 200
    assert api.get(f"/workflows/{wf}/executions")[0] == 200
    assert api.get(f"/workflows/{wf}/executions?status=completed")[0] == 200
    other = api.start(wf, {"note": "short"})["execution_id"]
    assert api.post(f"/executions/{other}/cancel")[0] == 200
    _run_triggers(api, clock, drain)
    _run_monitoring(api, wf, drain)
    _run_agents(api, drain)
    RECORDING["on"] = False  # SQS puts a poison message in the dead-letter queue
    dlq = worker.sqs.get_queue_url(QueueName=aws.settings.step_dlq)["QueueUrl"]
    worker.sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps({"execution_id": other, "step_id": "produce", "attempt": 1})
    )
    RECORDING["on"] = True
    clock.advance(600)
    RECORDING["function"] = "worker"
    worker.sweep()  # due index, watermark, dead-letter queue, counters
    RECORDING["function"] = "api"
    assert api.get("/health")[1]["details"]["dead_letters"] == 1


def _run_agents(api: Any, drain: Any) -> None:
    """Connections (secrets written by the API, read by the worker), llm steps on an OpenAI-compatible
    server and on Bedrock, and an email step."""
    import boto3

    from tests.fakes.providers import openai_completion
    from tests.fakes.scripted import Answer, ScriptedServer

    RECORDING["on"] = False  # the test's own set-up: a verified sender
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity="desk@stepline.example")
    RECORDING["on"] = True
    with ScriptedServer() as provider:
        provider.default("/v1/chat/completions", Answer(200, openai_completion("fine")))
        for body in (
            {"name": "model", "kind": "openai", "base_url": provider.url + "/v1", "api_key": "sk-1"},
            {"name": "aws-model", "kind": "bedrock", "region": REGION},
            {"name": "old", "kind": "bearer", "token": "t-123"},
        ):
            assert api.post("/connections", body)[0] == 201, body
        assert api.put("/connections/model", {"api_key": "sk-2"})[0] == 200
        assert api.get("/connections")[0] == 200 and api.get("/connections/model")[0] == 200
        assert api.call("DELETE", "/connections/old")[0] == 204
        wf = api.create_workflow(
            {
                "name": "Agents",
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "id": "ask",
                        "agent": "llm",
                        "instructions": "Say hi",
                        "config": {"connection": "model", "model": "m"},
                    },
                    {
                        "id": "mail",
                        "agent": "email",
                        "config": {
                            "to": ["a@example.com"],
                            "from": "desk@stepline.example",
                            "subject": "s",
                            "body": "{{ prev.text }}",
                        },
                    },
                    {
                        "id": "bedrock",
                        "agent": "llm",
                        "instructions": "Say hi",
                        "config": {"connection": "aws-model", "model": "anthropic.claude-3-haiku-20240307-v1:0"},
                        "retry": {"max_attempts": 1, "backoff_seconds": 0},
                    },
                ],
            }
        )
        api.start(wf, {})
        drain()


def _run_monitoring(api: Any, wf: str, drain: Any) -> None:
    """Lists on every index, statistics, and a bulk retry chunked through the step queue."""
    for query in ("", "?status=failed", "?trigger=manual", "?status=failed&trigger=manual"):
        assert api.get(f"/executions{query}")[0] == 200, query
        assert api.get(f"/workflows/{wf}/executions{query}")[0] == 200, query
    assert api.get(f"/workflows/{wf}/stats?bucket=day&from=2026-11-01T00:00:00Z")[0] == 200
    status, job = api.post("/executions/bulk", {"action": "retry", "filters": {"workflow_id": wf}, "dry_run": False})
    assert status == 202, job
    drain()
    assert api.get(f"/executions/bulk/{job['job_id']}")[0] == 200


def _run_triggers(api: Any, clock: Any, drain: Any) -> None:
    """Signed webhooks (and their dedupe, stored events, replay), sources, schedules, EventBridge."""
    from standardwebhooks import Webhook

    echo = [{"id": "echo", "agent": "transform", "instructions": "input"}]
    status, source = api.post("/sources", {"name": "billing"})
    assert status == 201
    api.create_workflow(
        {
            "name": "On invoice",
            "steps": echo,
            "trigger": {"type": "event", "source": "billing", "event_type": "invoice.created"},
        }
    )
    body = json.dumps({"type": "invoice.created", "amount": 3})
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(clock.now.timestamp())),
        "webhook-signature": Webhook(source["secret"]).sign("msg_1", clock.now, body),
        "Content-Type": "application/json",
    }
    first = api.client.http.post("/webhooks/billing", headers=headers, body=body)
    assert first.status_code == 202
    assert api.client.http.post("/webhooks/billing", headers=headers, body=body).status_code == 200
    event_id = json.loads(first.body)["event_id"]
    assert api.get(f"/events/{event_id}")[0] == 200
    assert api.post(f"/events/{event_id}/replay")[0] == 202
    assert api.get("/sources")[0] == 200 and api.post("/sources/billing/rotate")[0] == 200
    nightly = api.create_workflow(
        {"name": "Every minute", "steps": echo, "trigger": {"type": "schedule", "cron": "* * * * *", "timezone": "UTC"}}
    )
    assert api.get(f"/workflows/{nightly}/schedule")[0] == 200
    clock.advance(120)
    tick = api.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    api.client.lambda_.invoke("fire_schedules", tick)
    upload = api.client.events.generate_cw_event(
        source="aws.s3",
        detail_type="Object Created",
        detail={"bucket": {"name": "in"}, "object": {"key": "a.csv"}},
        resources=["arn:aws:s3:::in"],
    )
    api.client.lambda_.invoke("integration_event", upload)
    status, _tools = api.get("/tools")
    assert status == 200
    drain()


def test_policy_allows_every_call_the_code_makes_and_nothing_more(
    api: Any,
    worker: Any,
    aws: Any,
    clock: Any,
    deployed_names: dict[str, str],
    recording: list[tuple[str, str, dict[str, Any]]],
) -> None:
    assert aws.settings.payload_bucket == f"stepline-{STAGE}-payloads-{ACCOUNT}-{REGION}"
    _run_scenario(api, worker, aws, clock)
    services = {service for service, _, _ in recording}
    # the hook saw PynamoDB's and boto3's clients
    assert services == {"dynamodb", "sqs", "s3", "secretsmanager", "bedrock-runtime", "sesv2", "events"}, services
    needs: dict[tuple[str, str], str] = {}
    worker_needs: dict[tuple[str, str], str] = {}
    for (service, operation, params), caller in zip(recording, CALLERS, strict=True):
        for need in _needs(service, operation, params):
            needs.setdefault(need, f"{service}.{operation}")
            if caller == "worker":
                worker_needs.setdefault(need, f"{service}.{operation}")
    lambda_needs = {need: "the Lambda service" for need in _service_needs(deployed_names)}
    needs.update(lambda_needs)
    worker_needs.update(lambda_needs)
    shared, api_grants = _grants(_policy()), _grants(_policy(function="api"))

    denied = sorted(
        f"{action} on {resource} (for {why})"
        for (action, resource), why in needs.items()
        if not _allowed((action, resource), api_grants)
    )
    assert not denied, "policy-dev-api.json does not allow:\n" + "\n".join(denied)
    denied = sorted(
        f"{action} on {resource} (for {why})"
        for (action, resource), why in worker_needs.items()
        if not _allowed((action, resource), shared)
    )
    assert not denied, "policy-dev.json (the other functions) does not allow:\n" + "\n".join(denied)
    unused = sorted(f"{a} on {r}" for a, r in api_grants if not any(_allowed(need, {(a, r)}) for need in needs))
    assert not unused, "the policies grant what nothing uses:\n" + "\n".join(unused)
    admin_key = ("secretsmanager:GetSecretValue", REFS["AdminKeySecret"])
    assert admin_key in api_grants and admin_key not in shared  # the bootstrap key: the API function only
    assert admin_key not in worker_needs
    writes = {a for a, _ in api_grants - shared - {admin_key}}
    assert writes == {
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
        "dynamodb:DeleteItem",
    }, writes  # connection admin only
    assert not any(need[0] in writes for need in worker_needs), "a worker function writes secrets"


def test_policy_has_no_wildcard_actions_or_resources_beyond_object_keys_and_log_streams() -> None:
    for stage, function in (("dev", ""), ("prod", ""), ("dev", "api"), ("prod", "api")):
        for statement in _policy(stage, function):
            assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
            for action in statement["Action"]:
                assert "*" not in action and "?" not in action, action
            for resource in map(_sub, statement["Resource"]):
                wildcard = resource.find("*")
                assert (
                    wildcard == -1
                    or (resource.endswith("/payloads/*") and resource.startswith("arn:aws:s3:::"))
                    or (resource.startswith("arn:aws:logs:") and resource.endswith(":*"))
                    or resource.endswith(f":secret:stepline/{stage}/*")
                    or resource == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/stepline-{stage}-executions/stream/*"
                    or resource
                    in (f"arn:aws:bedrock:{REGION}::foundation-model/*", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/*")
                ), resource
                assert "?" not in resource and resource.count("*") <= 1, resource


def test_prod_policy_is_the_dev_policy_on_prod_resources() -> None:
    for function in ("", "api"):
        dev = (
            json.dumps(_policy("dev", function))
            .replace("stepline-dev-", "stepline-prod-")
            .replace("stepline/dev/", "stepline/prod/")
        )
        assert json.loads(dev) == _policy("prod", function)
