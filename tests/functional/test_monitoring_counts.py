"""``active_executions`` stays exact when many executions start, finish, fail, get retried
and cancelled at the same time, with duplicate SQS deliveries, through the real handlers.

Worker deliveries run in parallel threads. Moto is not thread-safe (its transactions
restore a table snapshot on failure), so each AWS request is made atomic, as it is in AWS,
with a lock around moto's request dispatch; the requests of different threads still
interleave freely. HTTP calls share one lock because Chalice's test client keeps the
current request on the app object (one request per Lambda container in AWS).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from tests.functional.monitoring_support import GATED

FLAKY = {
    "name": "Flaky",
    "trigger": {"type": "manual"},
    "steps": [
        {
            "id": "f",
            "agent": "python",
            "config": {"callable": "chalicelib.samples.callables:flaky"},
            "retry": {"max_attempts": 3, "backoff_seconds": 0},
        },
        {"id": "t", "agent": "transform", "instructions": "prev"},
    ],
}
FAILING = {
    "name": "Failing",
    "trigger": {"type": "manual"},
    "steps": [{"id": "x", "agent": "python", "config": {"callable": "chalicelib.samples.callables:fails_permanently"}}],
}


@pytest.fixture
def atomic_aws(monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


class Http:
    def __init__(self, api: Any) -> None:
        self.api, self.lock = api, threading.Lock()

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        with self.lock:
            return self.api.call(method, path, body if body is not None else {})


def parallel_drain(worker: Any, pool: ThreadPoolExecutor, also: Callable[[], None] | None = None) -> int:
    """Deliver every queued message twice, concurrently, until the queue stays empty."""
    delivered = 0
    for _ in range(100):
        messages = worker.receive()
        if not messages:
            return delivered
        for m in messages:
            worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=m["ReceiptHandle"])
        jobs = [pool.submit(worker.deliver, m["Body"]) for m in messages for _ in range(2)]
        if also is not None:
            jobs.append(pool.submit(also))
            also = None
        for job in jobs:
            job.result()
        delivered += len(messages)
    raise AssertionError("queue did not drain")


def active(http: Http) -> dict[str, int]:
    status, body = http("GET", "/workflows")
    assert status == 200
    return {w["name"]: w["active_executions"] for w in body["items"]}


def test_active_counts_return_to_zero_under_concurrency(api: Any, worker: Any, atomic_aws: None) -> None:
    http = Http(api)
    gate, flaky, failing = (api.create_workflow(d) for d in (GATED, FLAKY, FAILING))
    with ThreadPoolExecutor(max_workers=8) as pool:
        starts = [
            pool.submit(http, "POST", f"/workflows/{wf}/executions", {"inputs": {}})
            for wf in (gate, flaky, failing)
            for _ in range(6)
        ]
        ids = {gate: [], flaky: [], failing: []}
        for job in starts:
            status, body = job.result()
            assert status == 201, body
            ids[body["workflow_id"]].append(body["execution_id"])
        assert active(http) == {"Gated": 6, "Flaky": 6, "Failing": 6}

        parallel_drain(worker, pool)
        assert active(http) == {"Gated": 6, "Flaky": 0, "Failing": 0}

        # operators retry every failed execution while others approve and cancel gates
        retried = [pool.submit(http, "POST", f"/executions/{e}/steps/x/retry") for e in ids[failing]]
        assert all(job.result()[0] == 200 for job in retried)
        assert active(http)["Failing"] == 6

        def decide_gates() -> None:
            for i, e in enumerate(ids[gate]):
                path = f"/executions/{e}/steps/g/approve" if i % 2 else f"/executions/{e}/cancel"
                assert http("POST", path)[0] == 200

        def cancel_some_while_running() -> None:
            for e in ids[failing][::2]:
                status, body = http("POST", f"/executions/{e}/cancel")
                assert status in (200, 409), body

        parallel_drain(worker, pool, also=decide_gates)
        cancel = pool.submit(cancel_some_while_running)
        parallel_drain(worker, pool)
        cancel.result()
        parallel_drain(worker, pool)

    assert active(http) == {"Gated": 0, "Flaky": 0, "Failing": 0}
    statuses = {e: api.execution(e)["status"] for group in ids.values() for e in group}
    assert {statuses[e] for e in ids[flaky]} == {"completed"}
    assert {statuses[e] for e in ids[gate]} == {"completed", "cancelled"}
    assert {statuses[e] for e in ids[failing]} <= {"failed", "cancelled"}
    # the lists agree with the counters: nothing is left running or waiting
    for status in ("running", "waiting"):
        assert api.get(f"/executions?status={status}")[1]["items"] == []
    # and the statistics count every execution exactly once
    for wf in (gate, flaky, failing):
        totals = api.get(f"/workflows/{wf}/stats?bucket=hour")[1]["totals"]
        assert totals["total"] == 6 and totals["counts"]["running"] == totals["counts"]["waiting"] == 0
