"""The sweep and finished executions: a commit's due entry stays on the ``by_due`` index after
its execution finishes, so the sweep meets many entries of finished executions. It reads
their head (one small GetItem), not their whole history, and still acts on the live ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults import FAULTS
from tests.functional.operator_kit import tf, workflow


@pytest.fixture
def recording() -> Iterator[Any]:
    FAULTS.calls.clear()
    FAULTS.recording = True
    yield FAULTS
    FAULTS.recording = False
    FAULTS.calls.clear()


def _calls(recording: Any, operation: str, execution_id: str) -> int:
    return sum(1 for op, body in recording.calls if op == operation and execution_id in json.dumps(body))


def test_a_finished_execution_due_again_costs_a_head_read_and_a_live_one_is_still_handled(
    api: Any, worker: Any, clock: Any, recording: Any
) -> None:
    wf = api.create_workflow(workflow(tf("one", "input"), tf("two", "prev")))
    finished = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(finished)["status"] == "completed"
    lost = api.start(wf)["execution_id"]
    for message in worker.receive():  # its first step's message is lost
        worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=message["ReceiptHandle"])
    clock.advance(6 * 60)  # both executions' hand-over entries are due
    recording.calls.clear()
    worker.sweep()
    # the finished execution: its head was read, its history was not
    assert _calls(recording, "GetItem", finished) >= 1
    assert _calls(recording, "Query", finished) == 0
    # the live one was loaded and its lost message sent again
    assert _calls(recording, "Query", lost) >= 1
    assert "step_requeued" in api.history_types(lost)
    worker.drain()
    assert api.execution(lost)["status"] == "completed"
