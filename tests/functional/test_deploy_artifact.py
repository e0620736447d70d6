"""The packaged artifact, deployed and run as Lambda runs it (tests/functional/deployed_stack.py).

`make package`'s template is translated by aws-sam-translator and created on moto's
CloudFormation (API Gateway left out: moto cannot build it), then each function runs from
the unzipped deployment.zip in its own interpreter (only the package and the AWS SDK that
Lambda's runtime provides on sys.path) with the environment the stack gave it, against the
same moto server. The bootstrap admin key comes from the stack's secret; API Gateway proxy
events create a workflow and start runs; the test polls the step queue as Lambda's event
source mapping would and invokes the worker with SQS events; EventBridge scheduled events
run the sweep. A dependency missing from requirements.txt, a handler or environment
variable wired wrong in the template, or a policy-free import of something not shipped
fails here. One test: building the zip and the stack is the slow part.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.functional import deployed_stack as ds

TEMPLATE_FUNCTIONS = ("APIHandler", "RunStep", "Sweep", "FireSchedules", "IntegrationEvent", "Aggregate")

HELLO = {
    "name": "Hello deployed",
    "trigger": {"type": "manual", "inputs": [{"name": "who", "type": "string"}]},
    "steps": [
        {"id": "greet", "agent": "transform", "instructions": "{greeting: join(' ', ['hello', input.who])}"},
        {"id": "shout", "agent": "transform", "instructions": "{loud: prev.greeting, who: input.who}"},
    ],
}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # a free port
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are per process, shared by every server and mock in it: start empty
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    yield endpoint
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
    server.stop()


class Deployed:
    """The stack plus its functions, started on first use."""

    def __init__(self, stack: ds.Stack, task: Any, runtime: Any) -> None:
        self.stack = stack
        self.functions = {name: ds.Function.from_stack(stack, name, task, runtime) for name in TEMPLATE_FUNCTIONS}
        self.key: str | None = None

    def api(self, method: str, path: str, body: Any = None, key: Any = ...) -> tuple[int, Any]:
        """Call the API function as API Gateway would; ``key=None`` sends no key."""
        event = ds.api_event(self.stack.openapi, method, path, key=self.key if key is ... else key, body=body)
        answer = self.functions["APIHandler"].invoke(event)
        assert "ok" in answer, answer
        response = answer["ok"]
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def drain(self, limit: int = 50) -> int:
        """Poll the step queue as the event source mapping does; invoke the worker per message
        (batch size 1) and delete it only when the invocation succeeded."""
        sqs = self.stack.client("sqs")
        url, arn = self.stack.outputs["StepQueueUrl"], self.stack.outputs["StepQueueArn"]
        for delivered in range(limit):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return delivered
            answer = self.functions["RunStep"].invoke(ds.sqs_event(messages, arn))
            assert "ok" in answer, answer
            sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        raise AssertionError("the step queue did not drain")

    def aggregate(self) -> int:
        """Read the executions table's stream as the aggregator's event source mapping does
        (its filter and batch size, from the template) and invoke the deployed function."""
        from chalicelib.config import Settings
        from chalicelib.local.stream import StreamPump

        def deliver(event: dict[str, Any]) -> Any:
            answer = self.functions["Aggregate"].invoke(event)
            assert "ok" in answer, answer
            return answer["ok"]

        settings = Settings.from_env(
            {
                "AWS_REGION": ds.REGION,
                "AWS_ENDPOINT_URL": self.stack.endpoint,
                "STEPLINE_EXECUTIONS_TABLE": self.stack.outputs["ExecutionsTableName"],
            }
        )
        with pytest.MonkeyPatch.context() as env:
            for name, value in ds.CREDENTIALS.items():
                env.setenv(name, value)
            return StreamPump(settings, deliver).drain()

    def stop(self) -> None:
        for function in self.functions.values():
            function.stop()


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    sam = ds.build_package(tmp_path_factory)
    stack = ds.deploy(moto_endpoint, sam)
    task, runtime = ds.unpack(sam.with_name("deployment.zip"), tmp_path_factory.mktemp("lambda"))
    deployed = Deployed(stack, task, runtime)
    yield deployed
    deployed.stop()


@contextlib.contextmanager
def _listener() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on a free loopback port that records the paths it is asked for."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def _rule_arn(stack: ds.Stack, function: ds.Function) -> str:
    events = stack.client("events")
    for rule in events.list_rules()["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if any(t["Arn"] == function.arn for t in targets):
            return rule["Arn"]
    raise AssertionError(f"no EventBridge rule invokes {function.name}")


def test_packaged_stack_runs_executions_through_lambda_events(deployed: Deployed) -> None:
    stack, functions = deployed.stack, deployed.functions
    # -- the stack: everything but API Gateway created, from the translated template
    assert set(stack.left_out) == {
        "AdminKeySecret",
        "APIHandlerInvokePermission",
        "RestAPI",
        "RestAPIapiStage",
        *[k for k in stack.left_out if k.startswith("RestAPIDeployment")],
    }
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in stack.resources.values())
    assert len(stack.resources) == len(stack.template["Resources"]) >= 25
    for function in functions.values():
        assert function.environment["STEPLINE_STAGE"] == "dev"
        assert function.timeout > 0
    sqs, lam = stack.client("sqs"), stack.client("lambda")
    mappings = {m["FunctionArn"]: m for m in lam.list_event_source_mappings()["EventSourceMappings"]}
    assert set(mappings) == {functions["RunStep"].arn, functions["Aggregate"].arn}
    mapping = mappings[functions["RunStep"].arn]
    assert mapping["EventSourceArn"] == stack.outputs["StepQueueArn"] and mapping["BatchSize"] == 1
    stream = mappings[functions["Aggregate"].arn]
    assert stream["EventSourceArn"] == stack.outputs["ExecutionsStreamArn"] and stream["BatchSize"] == 100
    # this test is the poller of both: moto would otherwise try to run the functions in a container
    # (and for the stream, whatever Enabled says, then drop the records it handed over)
    for m in mappings.values():
        lam.update_event_source_mapping(UUID=m["UUID"], Enabled=False)
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[ds.ACCOUNT][ds.REGION].tables[stack.outputs["ExecutionsTableName"]]
    table.lambda_event_source_mappings.clear()
    queue = sqs.get_queue_attributes(QueueUrl=stack.outputs["StepQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert int(queue["VisibilityTimeout"]) >= 6 * functions["RunStep"].timeout
    assert json.loads(queue["RedrivePolicy"])["maxReceiveCount"] >= 5

    # -- day one: the bootstrap admin key, read with the one command the README gives
    secret_arn = stack.outputs["AdminKeySecretArn"]
    assert functions["APIHandler"].environment["STEPLINE_ADMIN_KEY_SECRET"] == secret_arn
    deployed.key = stack.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    assert deployed.api("GET", "/health", key=None) == (200, {"status": "ok", "stage": "dev"})
    assert deployed.api("GET", "/me") == (200, {"name": "bootstrap-admin", "role": "admin"})
    assert deployed.api("GET", "/me", key="sl_wrong")[0] == 401
    status, operator = deployed.api("POST", "/keys", {"name": "ops", "role": "operator"})
    assert status == 201 and operator["key"].startswith("sl_")
    init = functions["APIHandler"].init
    assert init["outside"] == [], init["outside"]  # nothing imported from beyond the package and SDK

    status, templates = deployed.api("GET", "/templates")  # the sample definitions are shipped
    assert status == 200 and templates["items"], templates
    # -- production runs only the python callables it declares: the sample callables are not shipped
    sample = {
        **HELLO,
        "steps": [{"id": "s", "agent": "python", "config": {"callable": "chalicelib.samples.callables:slow"}}],
    }
    status, refused = deployed.api("POST", "/workflows", sample)
    assert status == 400 and refused["errors"][0]["field"] == "steps[0].config.callable", refused

    # -- a run: API Gateway events create and start it, SQS events drive the worker
    status, workflow = deployed.api("POST", "/workflows", HELLO)
    assert status == 201, workflow
    wf = workflow["workflow_id"]
    status, started = deployed.api(
        "POST", f"/workflows/{wf}/executions", {"inputs": {"who": "stack"}}, key=operator["key"]
    )
    assert status == 201, started
    assert deployed.drain() == 1  # one worker invocation chains both steps
    status, execution = deployed.api("GET", f"/executions/{started['execution_id']}")
    assert status == 200 and execution["status"] == "completed", execution
    assert execution["steps"][-1]["output"] == {"loud": "hello stack", "who": "stack"}
    # -- the stream: the aggregate function counts the start and the completion
    assert deployed.aggregate() >= 2
    status, counted = deployed.api("GET", f"/workflows/{wf}/stats?bucket=hour")
    assert status == 200 and counted["totals"]["counts"]["completed"] == 1, counted
    assert deployed.api("GET", f"/workflows/{wf}")[1]["active_executions"] == 0

    # -- the sweep on its schedule: a step message that SQS dead-lettered fails its step,
    #    and an operator's retry then completes the run
    status, second = deployed.api("POST", f"/workflows/{wf}/executions", {"inputs": {"who": "again"}})
    assert status == 201
    (lost,) = sqs.receive_message(QueueUrl=stack.outputs["StepQueueUrl"], MaxNumberOfMessages=1)["Messages"]
    sqs.send_message(QueueUrl=stack.outputs["StepDeadLetterQueueUrl"], MessageBody=lost["Body"])
    sqs.delete_message(QueueUrl=stack.outputs["StepQueueUrl"], ReceiptHandle=lost["ReceiptHandle"])
    sweep = functions["Sweep"]
    answer = sweep.invoke(ds.scheduled_event(_rule_arn(stack, sweep)))
    assert "ok" in answer, answer
    execution_id = second["execution_id"]
    status, failed = deployed.api("GET", f"/executions/{execution_id}")
    assert failed["status"] == "failed" and failed["steps"][0]["state"] == "failed", failed
    assert deployed.api("GET", "/health")[1]["details"]["dead_letters"] == 1
    assert deployed.api("POST", f"/executions/{execution_id}/steps/greet/retry", {}, key=operator["key"])[0] == 200
    assert deployed.drain() == 1  # the retried step and the next, chained
    status, done = deployed.api("GET", f"/executions/{execution_id}")
    assert done["status"] == "completed", done

    # -- the deployed http agent reaches no loopback address (no STEPLINE_OUTBOUND_ALLOW_PRIVATE)
    with _listener() as (port, hits):
        probe = {
            "name": "Probe",
            "trigger": {"type": "manual", "inputs": []},
            "steps": [
                {
                    "id": "call",
                    "agent": "http",
                    "retry": {"max_attempts": 1},
                    "config": {"url": f"http://127.0.0.1:{port}/internal", "method": "GET"},
                }
            ],
        }
        status, created = deployed.api("POST", "/workflows", probe)
        assert status == 201, created
        status, run = deployed.api("POST", f"/workflows/{created['workflow_id']}/executions", {"inputs": {}})
        assert status == 201, run
        deployed.drain()
        status, blocked = deployed.api("GET", f"/executions/{run['execution_id']}")
        assert blocked["status"] == "failed", blocked
        assert "loopback" in json.dumps(blocked["steps"][0]["error"]), blocked["steps"][0]
        assert hits == []

    # -- a scheduled workflow (croniter and the time zones load only here: lazily imported)
    nightly = {
        "name": "Nightly",
        "trigger": {"type": "schedule", "cron": "30 2 * * *", "timezone": "Europe/Paris"},
        "steps": HELLO["steps"][:1],
    }
    status, scheduled = deployed.api("POST", "/workflows", nightly)
    assert status == 201, scheduled
    status, schedule = deployed.api("GET", f"/workflows/{scheduled['workflow_id']}/schedule")
    assert status == 200 and len(schedule["next_fire_times"]) >= 1, schedule
    assert all(("T01:30:00" in t or "T00:30:00" in t) for t in schedule["next_fire_times"]), schedule  # 02:30 Paris
    # -- an EventBridge event matching the integration rule's pattern starts its workflow
    on_upload = {
        "name": "On upload",
        "trigger": {"type": "event", "source": "aws.s3", "event_type": "Object Created"},
        "steps": [{"id": "echo", "agent": "transform", "instructions": "input.detail.object"}],
    }
    status, upload_wf = deployed.api("POST", "/workflows", on_upload)
    assert status == 201, upload_wf
    integration = functions["IntegrationEvent"]
    rule = stack.client("events").describe_rule(Name=_rule_arn(stack, integration).rsplit("/", 1)[-1])
    pattern = json.loads(rule["EventPattern"])
    upload = {
        **ds.scheduled_event(rule["Arn"]),
        "source": pattern["source"][0],
        "detail-type": pattern["detail-type"][0],
        "resources": ["arn:aws:s3:::uploads"],
        "detail": {"bucket": {"name": "uploads"}, "object": {"key": "in/a.csv"}},
    }
    answer = integration.invoke(upload)
    assert "ok" in answer, answer
    assert deployed.drain() == 1
    status, page = deployed.api("GET", f"/workflows/{upload_wf['workflow_id']}/executions")
    (summary,) = page["items"]
    status, uploaded = deployed.api("GET", f"/executions/{summary['execution_id']}")
    assert uploaded["status"] == "completed" and uploaded["steps"][0]["output"] == {"key": "in/a.csv"}, uploaded

    # -- the schedule tick runs too, from its own rule
    ticks = functions["FireSchedules"]
    assert "ok" in ticks.invoke(ds.scheduled_event(_rule_arn(stack, ticks))), ticks.output[-5:]
    # every function logged JSON lines only (observability.py) and none failed to start
    for function in functions.values():
        for line in function.output:
            assert line.startswith("{"), (function.name, line)
