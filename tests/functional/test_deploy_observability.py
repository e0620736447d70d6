"""Observability as Lambda ships it: JSON log lines carrying execution and step ids, and
CloudWatch embedded-metric-format (EMF) lines, both on stdout (local mode prints them too)."""

from __future__ import annotations

import json
from typing import Any

import pytest

FLOW = {
    "name": "Observed",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "one", "agent": "transform", "instructions": "`1`"},
        {"id": "two", "agent": "transform", "instructions": "sum([prev, `1`])"},
    ],
}
FAILING = {
    "name": "Observed failure",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "boom", "agent": "python", "config": {"callable": "chalicelib.samples.callables:fails_permanently"}}
    ],
}


def _lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capfd.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _metrics(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [
        line for line in lines if "_aws" in line and line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == name
    ]


def test_engine_logs_are_json_with_execution_and_step_ids(
    api: Any, worker: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    wf = api.create_workflow(FLOW)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    logs = [line for line in _lines(capfd) if "_aws" not in line]
    engine = [line for line in logs if line["logger"] in ("stepline.runner", "stepline.executions")]
    assert {line["message"] for line in engine} >= {
        "step started (agent transform)",
        "execution completed (was running)",
    }
    assert all(line["execution_id"] == execution_id for line in engine)
    runner = [line for line in engine if line["logger"] == "stepline.runner"]
    assert {(line["step_id"], line["attempt"]) for line in runner} == {("one", 1), ("two", 1)}
    assert all(line["level"] in ("INFO", "WARNING", "ERROR") and line["timestamp"].endswith("Z") for line in logs)


def test_emf_metrics_count_executions_and_time_steps(api: Any, worker: Any, capfd: pytest.CaptureFixture[str]) -> None:
    ok = api.start(api.create_workflow(FLOW))["execution_id"]
    bad = api.start(api.create_workflow(FAILING))["execution_id"]
    worker.drain()
    assert api.execution(bad)["status"] == "failed"
    lines = _lines(capfd)
    started = _metrics(lines, "ExecutionsStarted")
    assert sorted(m["execution_id"] for m in started) == sorted([ok, bad])
    assert [m["execution_id"] for m in _metrics(lines, "ExecutionsCompleted")] == [ok]
    assert [m["execution_id"] for m in _metrics(lines, "ExecutionsFailed")] == [bad]
    durations = _metrics(lines, "StepDuration")
    assert sorted((m["execution_id"], m["step_id"], m["outcome"]) for m in durations) == sorted(
        [(ok, "one", "completed"), (ok, "two", "completed"), (bad, "boom", "failed")]
    )
    sample = durations[0]
    directive = sample["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Stepline"
    assert directive["Metrics"] == [{"Name": "StepDuration", "Unit": "Milliseconds"}]
    assert directive["Dimensions"] == [["Stage"], ["Stage", "Agent"]]
    assert sample["Stage"] == "dev" and sample["Agent"] in ("transform", "python")
    assert isinstance(sample["StepDuration"], (int, float)) and sample["StepDuration"] >= 0
    assert isinstance(sample["_aws"]["Timestamp"], int)
    for name in ("ExecutionsStarted", "ExecutionsCompleted", "ExecutionsFailed"):
        assert all(
            m[name] == 1 and m["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]
            for m in _metrics(lines, name)
        )
