"""A busy store is never a 500: a throttled or failing read is tried again with jittered
backoff, and what outlasts the retries is a 503 with ``Retry-After`` on every kind of route
(start, read, list, operator action), with nothing half-done. Faults are injected at the SDK
boundary (``tests/faults.py``): the engine sees exactly what DynamoDB would send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import FAULTS, Rule
from tests.functional.operator_kit import tf, workflow

FOREVER = 10_000


@pytest.fixture
def faults() -> Iterator[Any]:
    yield FAULTS
    FAULTS.clear()


def _raw(api: Any, method: str, path: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": api.headers()}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    return getattr(api.client.http, method.lower())(path, **kwargs)


def _busy_answer(response: Any) -> None:
    assert response.status_code == 503, response.body
    assert response.headers.get("Retry-After") == "1"
    assert json.loads(response.body)["Code"] == "ServiceUnavailableError"


def test_a_read_throttled_a_few_times_is_tried_again_and_the_start_succeeds(api: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("only", "input")))
    throttled = FAULTS.add(Rule("GetItem", "ThrottlingException", times=3, needle=wf))
    failing = FAULTS.add(Rule("GetItem", "InternalServerError", times=2, needle=wf, status=500))
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {}})
    assert status == 201, body
    assert throttled.hits == 3 and failing.hits == 2
    assert [i["execution_id"] for i in api.get(f"/workflows/{wf}/executions")[1]["items"]] == [body["execution_id"]]


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("ProvisionedThroughputExceededException", 400)]
)
def test_a_start_whose_reads_stay_throttled_is_a_503_and_starts_nothing(
    api: Any, faults: Any, code: str, status: int
) -> None:
    wf = api.create_workflow(workflow(tf("only", "input")))
    rule = FAULTS.add(Rule("GetItem", code, times=FOREVER, needle=wf, status=status))
    _busy_answer(_raw(api, "POST", f"/workflows/{wf}/executions", {"inputs": {}}))
    assert rule.hits > 1  # tried again before giving up
    faults.clear()
    assert api.get(f"/workflows/{wf}/executions")[1]["items"] == []
    assert api.post(f"/workflows/{wf}/executions", {"inputs": {}})[0] == 201


def test_reads_lists_and_operator_actions_answer_503_while_the_store_fails(api: Any, worker: Any, faults: Any) -> None:
    wf = api.create_workflow(workflow(tf("check", "input", gate={"type": "approval"}), tf("post")))
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(ex)["status"] == "waiting"
    FAULTS.add(Rule("Query", "InternalServerError", times=FOREVER, needle=ex, status=500))
    _busy_answer(_raw(api, "GET", f"/executions/{ex}"))
    _busy_answer(_raw(api, "GET", f"/executions/{ex}/history"))
    _busy_answer(_raw(api, "POST", f"/executions/{ex}/steps/check/approve", {"comment": "fine"}))
    faults.clear()
    FAULTS.add(Rule("Query", "ThrottlingException", times=FOREVER, needle=wf))
    _busy_answer(_raw(api, "GET", f"/workflows/{wf}/executions"))
    faults.clear()
    # nothing was applied while the store failed; now the approval goes through, once
    assert "approval_granted" not in api.history_types(ex)
    assert api.post(f"/executions/{ex}/steps/check/approve", {"comment": "fine"})[0] == 200
    assert api.history_types(ex).count("approval_granted") == 1


def test_a_state_clash_is_still_not_a_503(api: Any, faults: Any) -> None:
    # a refused condition is about the data, not the load: no retry, no 503
    wf = api.create_workflow(workflow(tf("only", "input")))
    ex = api.start(wf)["execution_id"]
    status, body = api.post(f"/executions/{ex}/steps/only/approve", {"comment": "no gate"})
    assert status == 409, body


@pytest.mark.parametrize("key", [None, "lost-answer"])
def test_a_start_whose_commit_answer_was_lost_is_one_201_and_runs(
    api: Any, worker: Any, faults: Any, key: str | None
) -> None:
    # the start's write is committed, then its answer is lost (a 500 after the commit): the
    # retry meets its own execution and must answer 201 for it, not 409, and send its first step
    wf = api.create_workflow(workflow(tf("only", "input")))
    rules = [
        FAULTS.add(Rule(op, "InternalServerError", needle="execution_started", status=500, after=True))
        for op in ("TransactWriteItems", "PutItem")
    ]
    headers = {"Idempotency-Key": key} if key else None
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {}}, headers=headers)
    assert status == 201, body
    assert sum(rule.hits for rule in rules) == 1
    faults.clear()
    listed = [i["execution_id"] for i in api.get(f"/workflows/{wf}/executions")[1]["items"]]
    assert listed == [body["execution_id"]]
    worker.drain()  # the first step was sent with the answer, not left to the sweep's grace
    assert api.execution(body["execution_id"])["status"] == "completed"
