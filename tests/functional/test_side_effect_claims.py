"""A side-effecting step's claim and its call's ``side_effect_started`` ride in one put, the one
that records the step before it; a worker that dies between that put and the recording of the
call's result, before the call or after it, leaves the call ``unknown``, and neither a
redelivery, the sweep, nor an automatic retry (which replays) ever makes it again.

The worker's death is made at the AWS SDK boundary (botocore's ``before-call`` and
``after-call`` events): a ``BaseException`` that nothing in Stepline catches ends the
invocation right where a crashed Lambda would stop, after (or instead of) the chosen write.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.domain.machine import HANDOVER_GRACE_SECONDS
from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional.worker_deaths import DEATHS, Death, WorkerDied

TIMEOUT = 60


@pytest.fixture
def integration() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server
    DEATHS.armed = None


def _two_charges(api: Any, integration: ScriptedServer) -> str:
    def charge(step_id: str) -> dict[str, Any]:
        return {
            "id": step_id,
            "agent": "http",
            "timeout_seconds": TIMEOUT,
            "retry": {"max_attempts": 2, "backoff_seconds": 0},
            "config": {"url": f"{integration.url}/{step_id}", "method": "POST"},
        }

    return api.create_workflow({"name": "Charges", "trigger": {"type": "manual"}, "steps": [charge("a"), charge("b")]})


def _commit_items(aws: Any, execution_id: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=aws.settings.region, endpoint_url=aws.settings.endpoint_url)
    return ddb.query(
        TableName=aws.settings.executions_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"EX#{execution_id}"}, ":e": {"S": "E#"}},
    )["Items"]


def _events_of(item: dict[str, Any]) -> list[str]:
    if "events" in item:
        return [e["type"] for e in json.loads(item["events"]["S"])]
    if "events_z" in item:  # a list over one write unit is stored compressed
        return [e["type"] for e in json.loads(zlib.decompress(item["events_z"]["B"]))]
    return [item["type"]["S"]]


def _die_and_come_back(api: Any, worker: Any, clock: Any, execution_id: str) -> dict[str, Any]:
    """Deliver the first message until the worker dies; deliver it again; let the sweep time
    the stuck step out (and retry it, replaying); return step ``b`` as the API shows it."""
    [message] = worker.receive(1)
    with pytest.raises(WorkerDied):
        worker.deliver(message["Body"])
    assert worker.deliver(message["Body"]) is not None  # the redelivery: the claim is taken, nothing runs
    step = api.execution(execution_id)["steps"][1]
    assert (step["state"], step["attempt"]) == ("running", 1)
    [effect] = step["side_effects"]
    assert effect["status"] == "unknown" and effect["idempotency_key"] == f"{execution_id}:b:1:1"
    # a claim writes no due entry: the start's (its hand-over's grace) comes due after the deadline
    clock.advance(max(TIMEOUT, HANDOVER_GRACE_SECONDS) + 1)
    worker.sweep()  # past its deadline: timed out, and retried automatically
    worker.drain()
    return api.execution(execution_id)["steps"][1]


def test_the_claim_and_the_call_ride_in_the_put_that_records_the_step_before(
    api: Any, worker: Any, aws: Any, integration: ScriptedServer
) -> None:
    integration.script("/a", Answer(201, {"charge": "A"}))
    integration.script("/b", Answer(201, {"charge": "B"}))
    execution_id = api.start(_two_charges(api, integration))["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    commits = [_events_of(item) for item in _commit_items(aws, execution_id)]
    assert commits == [  # event 1 (execution_started) is on the head
        ["step_started", "side_effect_started"],
        ["step_completed", "step_started", "side_effect_started"],
        ["step_completed", "execution_completed"],
    ]
    types = api.history_types(execution_id)  # the history still shows every event on its own
    assert types.count("side_effect_started") == 2 and types.count("step_started") == 2
    [effect] = api.execution(execution_id)["steps"][1]["side_effects"]
    assert effect["status"] == "succeeded" and effect["n"] == 1
    assert integration.requests("/b")[0].headers["idempotency-key"] == effect["idempotency_key"]


def test_a_worker_that_dies_after_the_merged_claim_before_the_call_leaves_it_unknown_and_never_makes_it(
    api: Any, worker: Any, integration: ScriptedServer, clock: Any
) -> None:
    integration.script("/a", Answer(201, {"charge": "A"}))
    integration.script("/b", Answer(201, {"charge": "B"}), Answer(201, {"charge": "B2"}))
    execution_id = api.start(_two_charges(api, integration))["execution_id"]
    DEATHS.armed = death = Death(("step_completed", "side_effect_started"), after_the_write=True)

    step = _die_and_come_back(api, worker, clock, execution_id)
    assert death.hits == 1
    assert integration.requests("/b") == []  # the worker died before the call: nobody made it
    assert (step["state"], step["attempt"]) == ("failed", 2)
    assert step["error"]["retryable"] is False and "unknown outcome" in step["error"]["message"]
    assert [e["status"] for e in step["side_effects"]] == ["unknown"]  # a person decides: rerun or skip
    assert len(integration.requests("/a")) == 1


def test_a_worker_that_dies_after_the_call_before_its_result_leaves_it_unknown_and_never_repeats_it(
    api: Any, worker: Any, integration: ScriptedServer, clock: Any
) -> None:
    integration.script("/a", Answer(201, {"charge": "A"}))
    integration.script("/b", Answer(201, {"charge": "B"}), Answer(201, {"charge": "B2"}))
    execution_id = api.start(_two_charges(api, integration))["execution_id"]
    DEATHS.armed = death = Death(("execution_completed",), after_the_write=False)

    step = _die_and_come_back(api, worker, clock, execution_id)
    assert death.hits == 1
    assert len(integration.requests("/b")) == 1  # made once, by the worker that died; never again
    assert (step["state"], step["attempt"]) == ("failed", 2)
    assert "unknown outcome" in step["error"]["message"]
    assert [e["status"] for e in step["side_effects"]] == ["unknown"]

    assert api.post(f"/executions/{execution_id}/steps/b/retry", {"side_effects": "rerun"})[0] == 200
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    keys = [r.headers["idempotency-key"] for r in integration.requests("/b")]
    assert keys == [f"{execution_id}:b:1:1", f"{execution_id}:b:3:1"]


def test_an_email_steps_send_rides_in_its_claims_put_and_a_bad_config_opens_nothing(
    api: Any, worker: Any, aws: Any
) -> None:
    sender = "support@stepline.example"
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity=sender)

    def mail(step_id: str, to: str) -> dict[str, Any]:
        config = {"to": [to], "from": sender, "subject": "Ticket", "body": "We are on it."}
        return {"id": step_id, "agent": "email", "retry": {"max_attempts": 1, "backoff_seconds": 0}, "config": config}

    workflow_id = api.create_workflow(
        {
            "name": "Mails",
            "trigger": {"type": "manual"},
            "steps": [mail("first", "ada@example.com"), mail("second", "{{ input.missing }}")],
        }
    )
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "failed" and execution["steps"][1]["state"] == "failed"
    assert execution["steps"][1]["side_effects"] == []  # its recipient did not render: nothing was opened
    [effect] = execution["steps"][0]["side_effects"]
    assert effect["kind"] == "email" and effect["status"] == "succeeded"
    commits = [_events_of(item) for item in _commit_items(aws, execution_id)]
    assert commits[0] == ["step_started", "side_effect_started"]  # event 1 is on the head
    assert commits[1:] == [["step_completed", "step_started"], ["step_failed"]]  # the claim, without a call
