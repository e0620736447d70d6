"""Local mode under concurrency, through the real local server
(``python -m chalicelib.local.server``, embedded moto): contested operator decisions get
exactly one 200 each and the outcome matches it, parallel starts all complete once, and
Idempotency-Keys always point at an execution that exists."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.functional.test_local_runner import ADMIN_KEY, ROOT, TERMINAL, _free_port, _wait_for

CONTESTED = 20
PARALLEL_STARTS = 200
GATED = {
    "name": "Contested gate",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "prepare", "agent": "transform", "instructions": "{n: `1`}"},
        {"id": "gate", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
    ],
}
QUICK = {
    "name": "Quick",
    "trigger": {"type": "manual", "inputs": [{"name": "i", "type": "integer"}]},
    "steps": [{"id": "one", "agent": "transform", "instructions": "input"}],
}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = _free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        HOST="127.0.0.1",
        STEPLINE_ADMIN_KEY=ADMIN_KEY,
        PYTHONUNBUFFERED="1",
        STEPLINE_LOCAL_CONCURRENCY="4",
    )
    for name in ("AWS_ENDPOINT_URL", "STEPLINE_USE_REAL_AWS", "STEPLINE_MOTO_PORT"):
        env.pop(name, None)
    logs = tmp_path / "runner.log"
    with logs.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.server", "--no-seed"],
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
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = ADMIN_KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One API call; a generous timeout, since a loaded CI machine is slow (this is no timing test)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")


def _until(what: str, probe: Any, process: Any, logs: Path, timeout: float = 240) -> Any:
    return _wait_for(what, probe, timeout, process, logs)


def _history_types(base: str, execution_id: str) -> list[str]:
    status, body = _call(base, "GET", f"/executions/{execution_id}/history")
    assert status == 200, body
    return [item["type"] for item in body["items"]]


def test_contested_decisions_get_one_200_and_the_outcome_matches(local: Any) -> None:
    base, process, logs = local
    status, created = _call(base, "POST", "/workflows", GATED)
    assert status == 201, created
    workflow_id = created["workflow_id"]
    ids = []
    for _ in range(CONTESTED):
        status, started = _call(base, "POST", f"/workflows/{workflow_id}/executions", {"inputs": {}})
        assert status == 201, started
        ids.append(started["execution_id"])

    def all_waiting() -> bool:
        return all(_call(base, "GET", f"/executions/{i}")[1]["status"] == "waiting" for i in ids)

    _until("every execution waiting at its gate", all_waiting, process, logs)

    actions = {"approve": "/steps/gate/approve", "cancel": "/cancel", "force_advance": "/steps/gate/force-advance"}
    calls = [(execution_id, action) for execution_id in ids for action in actions]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(
                lambda call: (
                    call,
                    _call(
                        base,
                        "POST",
                        f"/executions/{call[0]}{actions[call[1]]}",
                        {"reason" if call[1] == "cancel" else "comment": "race"},
                    ),
                ),
                calls,
            )
        )

    def _settled(base: str, execution_id: str) -> dict[str, Any] | None:
        execution = _call(base, "GET", f"/executions/{execution_id}")[1]
        return execution if execution["status"] in TERMINAL else None

    problems = []
    for execution_id in ids:
        mine = [(action, status) for (eid, action), (status, _body) in answers if eid == execution_id]
        winners = [action for action, status in mine if status == 200]
        others = {status for action, status in mine if action not in winners}
        if len(winners) != 1 or others != {409}:
            problems.append((execution_id, mine))
            continue
        execution = _until(
            "the decided execution to settle",
            functools.partial(_settled, base, execution_id),
            process,
            logs,
        )
        history = _history_types(base, execution_id)
        expected_status = "cancelled" if winners[0] == "cancel" else "completed"
        if execution["status"] != expected_status:
            problems.append((execution_id, winners[0], execution["status"]))
        decision = {
            "approve": "approval_granted",
            "cancel": "execution_cancelled",
            "force_advance": "step_force_advanced",
        }[winners[0]]
        if decision not in history:
            problems.append((execution_id, winners[0], history))
    assert problems == []

    def settled_counts() -> bool:
        status, listing = _call(base, "GET", "/workflows")
        return status == 200 and [w["active_executions"] for w in listing["items"]] == [0]

    _until("active executions back to 0", settled_counts, process, logs, timeout=60)


def test_parallel_starts_all_complete_once_and_keys_point_at_real_executions(local: Any) -> None:
    base, _process, logs = local
    status, created = _call(base, "POST", "/workflows", QUICK)
    assert status == 201, created
    workflow_id = created["workflow_id"]

    def start(i: int) -> tuple[int, Any]:
        return _call(base, "POST", f"/workflows/{workflow_id}/executions", {"inputs": {"i": i}})

    with ThreadPoolExecutor(max_workers=12) as pool:
        started = list(pool.map(start, range(PARALLEL_STARTS)))
    assert [status for status, _ in started] == [201] * PARALLEL_STARTS, [b for s, b in started if s != 201][:3]
    ids = [body["execution_id"] for _, body in started]
    assert len(set(ids)) == PARALLEL_STARTS

    # The same Idempotency-Key from several clients at once: one execution, and it exists.
    def keyed(key: str) -> tuple[int, Any]:
        return _call(
            base,
            "POST",
            f"/workflows/{workflow_id}/executions",
            {"inputs": {"i": -1}},
            headers={"Idempotency-Key": key},
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        keyed_answers = list(pool.map(keyed, ["same-key"] * 8 + ["other-key"] * 8))
    assert {status for status, _ in keyed_answers} <= {200, 201}, keyed_answers
    by_key = {
        "same-key": {b["execution_id"] for _, b in keyed_answers[:8]},
        "other-key": {b["execution_id"] for _, b in keyed_answers[8:]},
    }
    assert all(len(found) == 1 for found in by_key.values()), by_key
    ids += [next(iter(found)) for found in by_key.values()]

    deadline = time.monotonic() + 300
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for execution_id in list(pending):
            status, execution = _call(base, "GET", f"/executions/{execution_id}")
            assert status == 200, execution
            if execution["status"] in TERMINAL:
                assert execution["status"] == "completed", execution
                pending.discard(execution_id)
        if pending:
            time.sleep(0.5)
    assert pending == set(), f"{len(pending)} executions did not complete:\n{logs.read_text()[-3000:]}"
    for execution_id in ids[:: max(1, len(ids) // 25)]:  # every history shows one start and one end
        history = _history_types(base, execution_id)
        assert history.count("execution_started") == 1 and history.count("execution_completed") == 1, history
    # the active count follows from the stream aggregator within seconds (the README says so)
    counts: list[int] = []
    while time.monotonic() < deadline:
        status, listing = _call(base, "GET", "/workflows")
        counts = [w["active_executions"] for w in listing["items"]]
        if counts == [0]:
            break
        time.sleep(0.5)
    assert counts == [0], counts
