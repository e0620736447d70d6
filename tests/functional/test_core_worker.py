"""The SQS step worker: at-least-once delivery, claims, agent and integration failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.domain.machine import ClaimStep, decide
from chalicelib.errors import TransitionConflict
from tests.functional.test_core_flow import THREE_STEPS

INPUTS = {"customer": "ACME", "amount": 21}


def _types(api: Any, execution_id: str) -> list[str]:
    return api.history_types(execution_id)


def test_duplicate_delivery_of_every_message_runs_each_step_once(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    execution_id = api.start(wf, INPUTS)["execution_id"]
    delivered: list[str] = []
    while True:
        messages = worker.receive()
        if not messages:
            break
        for message in messages:
            worker.deliver(message["Body"])
            worker.deliver(message["Body"])  # SQS delivers at least once
            worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
            delivered.append(message["Body"])
    assert len(delivered) == 1  # three pure steps: one worker chains them all (docs/design.md, "Chaining")
    history = _types(api, execution_id)
    assert history.count("step_started") == 3 and history.count("step_completed") == 3
    before = api.execution(execution_id)
    for body in delivered:  # a late replay of every message changes nothing
        worker.deliver(body)
    assert _types(api, execution_id) == history
    assert api.execution(execution_id) == before
    assert before["status"] == "completed"


def test_malformed_and_unknown_messages_are_dropped_cleanly(api: Any, worker: Any) -> None:
    assert worker.deliver("not json") is not None
    worker.deliver(json.dumps({"execution_id": "ex_nope", "step_id": "a", "attempt": 1}))
    worker.deliver(json.dumps({"execution_id": 3}))
    assert worker.receive() == []


def test_stale_attempt_message_does_not_run(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    execution_id = api.start(wf, INPUTS)["execution_id"]
    worker.deliver(json.dumps({"execution_id": execution_id, "step_id": "draft", "attempt": 2}))
    worker.deliver(json.dumps({"execution_id": execution_id, "step_id": "summary", "attempt": 1}))
    assert _types(api, execution_id) == ["execution_started"]


def test_two_concurrent_claims_one_wins_one_conflicts(api: Any, aws: Any, clock: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    execution_id = api.start(wf, INPUTS)["execution_id"]
    executions = aws.executions
    first, second = executions.load(execution_id), executions.load(execution_id)
    claim = ClaimStep("draft", 1)
    executions.commit(first, decide(first, claim, clock()))
    with pytest.raises(TransitionConflict):
        executions.commit(second, decide(second, claim, clock()))
    assert _types(api, execution_id) == ["execution_started", "step_started"]


def test_racing_deliveries_through_the_handler_run_the_step_once(api: Any, worker: Any, monkeypatch: Any) -> None:
    # moto serves requests from several threads without isolation (its failed transactions
    # restore a copy of the table, wiping others' writes); serialise them, as DynamoDB
    # isolates each request, so that the race is the engine's alone
    from moto.core.botocore_stubber import BotocoreStubber

    lock, original = threading.RLock(), BotocoreStubber.process_request

    def isolated(self: Any, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", isolated)
    wf = api.create_workflow(THREE_STEPS)
    execution_id = api.start(wf, INPUTS)["execution_id"]
    body = worker.receive()[0]["Body"]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait()
            worker.deliver(body)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = _types(api, execution_id)
    # one of the four deliveries ran the chain of three steps; each step ran once
    assert history.count("step_started") == 3 and history.count("step_completed") == 3
    assert history[-1] == "execution_completed"


PYTHON_FAILS = {
    "name": "Fails",
    "trigger": {"type": "manual"},
    "steps": [
        {"id": "ok", "agent": "transform", "instructions": "'fine'"},
        {"id": "boom", "agent": "python", "config": {"callable": "chalicelib.samples.callables:always_fails"}},
        {"id": "never", "agent": "transform", "instructions": "'unreached'"},
    ],
}


def test_failing_agent_pauses_the_execution_with_a_readable_error(api: Any, worker: Any) -> None:
    wf = api.create_workflow(PYTHON_FAILS)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "failed"
    states = [s["state"] for s in execution["steps"]]
    assert states == ["completed", "failed", "pending"]
    error = execution["steps"][1]["error"]
    assert error["kind"] == "agent" and "RuntimeError" in error["message"]
    assert api.get("/workflows")[1]["items"][0]["active_executions"] == 0


class _Integration(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        status = {"/ok": 200, "/expired": 401, "/down": 502}[self.path]
        payload = {"echo": body} if status == 200 else {"error": "token expired" if status == 401 else "upstream down"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def integration() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Integration)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _http_flow(base: str, path: str) -> dict[str, Any]:
    return {
        "name": f"HTTP {path}",
        "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "integer"}]},
        "steps": [
            {
                "id": "call",
                "agent": "http",
                "instructions": "{n: input.n}",
                "config": {"url": f"{base}{path}", "method": "POST"},
            },
            {"id": "after", "agent": "transform", "instructions": "prev.body.echo.n"},
        ],
    }


def test_http_integration_passes_its_response_along(api: Any, worker: Any, integration: str) -> None:
    wf = api.create_workflow(_http_flow(integration, "/ok"))
    execution_id = api.start(wf, {"n": 7})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed"
    assert execution["steps"][0]["output"]["status"] == 200
    assert execution["steps"][1]["output"] == 7


def test_expired_credentials_fail_the_step_as_an_integration_error(api: Any, worker: Any, integration: str) -> None:
    wf = api.create_workflow(_http_flow(integration, "/expired"))
    execution_id = api.start(wf, {"n": 1})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "failed"
    error = execution["steps"][0]["error"]
    assert error["kind"] == "integration"
    assert "401" in error["message"] and "expired" in error["message"]


def test_server_error_names_status_and_excerpt(api: Any, worker: Any, integration: str) -> None:
    wf = api.create_workflow(_http_flow(integration, "/down"))
    execution_id = api.start(wf, {"n": 1})["execution_id"]
    worker.drain()
    error = api.execution(execution_id)["steps"][0]["error"]
    assert error["kind"] == "integration" and "502" in error["message"] and "upstream down" in error["message"]
    history = api.get(f"/executions/{execution_id}/history")[1]["items"]
    failed = [e for e in history if e["type"] == "step_failed"]
    assert len(failed) == 1 and failed[0]["details"]["error"]["kind"] == "integration"
