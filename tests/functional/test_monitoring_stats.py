"""Run statistics from write-time counters: buckets, time zones, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.functional.monitoring_support import GATED, at, settle, start

UTC = UTC


def run(api: Any, aws: Any, worker: Any, clock: Any, wf: str, when: datetime, target: str, seconds: float = 0) -> None:
    """Start at ``when``, reach the gate, then after ``seconds`` move to ``target``."""
    at(clock, when)
    r = start(api, aws, wf)
    if target == "running":
        return
    worker.drain()
    at(clock, when + timedelta(seconds=seconds))
    settle(api, r, target)


@pytest.fixture
def history(api: Any, aws: Any, worker: Any, clock: Any) -> str:
    wf = api.create_workflow(GATED)
    d = datetime
    run(api, aws, worker, clock, wf, d(2026, 10, 25, 22, 30, tzinfo=UTC), "completed", 5)  # Paris: Oct 25, 23:30 CET
    run(api, aws, worker, clock, wf, d(2026, 11, 24, 22, 30, tzinfo=UTC), "completed", 90)  # Paris: Nov 24, 23:30
    run(api, aws, worker, clock, wf, d(2026, 11, 24, 22, 50, tzinfo=UTC), "completed", 600)
    run(api, aws, worker, clock, wf, d(2026, 11, 24, 23, 10, tzinfo=UTC), "completed", 30)  # Paris: Nov 25
    run(api, aws, worker, clock, wf, d(2026, 11, 25, 0, 20, tzinfo=UTC), "failed", 10)
    run(api, aws, worker, clock, wf, d(2026, 11, 25, 0, 40, tzinfo=UTC), "cancelled", 10)
    run(api, aws, worker, clock, wf, d(2026, 11, 25, 1, 10, tzinfo=UTC), "waiting")
    run(api, aws, worker, clock, wf, d(2026, 11, 25, 1, 20, tzinfo=UTC), "running")
    at(clock, d(2026, 11, 25, 12, tzinfo=UTC))
    return wf


def stats(api: Any, wf: str, query: str) -> dict[str, Any]:
    status, body = api.get(f"/workflows/{wf}/stats?{query}")
    assert status == 200, body
    return body


def counts(bucket: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in bucket["counts"].items() if v}


def near(value: float | None, exact: float) -> bool:
    """Histogram answers are within ~9% of the exact value (quarter-octave bins)."""
    return value is not None and abs(value - exact) <= 0.1 * exact


def test_hour_buckets_count_statuses_and_durations(api: Any, history: str) -> None:
    body = stats(api, history, "bucket=hour&from=2026-11-24T22:00:00Z&to=2026-11-25T02:00:00Z")
    assert [b["start"] for b in body["buckets"]] == [
        "2026-11-24T22:00:00.000Z",
        "2026-11-24T23:00:00.000Z",
        "2026-11-25T00:00:00.000Z",
        "2026-11-25T01:00:00.000Z",
    ]
    b22, b23, b00, b01 = body["buckets"]
    assert counts(b22) == {"completed": 2} and b22["total"] == 2
    assert near(b22["duration_seconds"]["median"], 90) and near(b22["duration_seconds"]["p95"], 600)
    assert b22["duration_seconds"]["mean"] == 345.0
    assert counts(b23) == {"completed": 1} and near(b23["duration_seconds"]["median"], 30)
    assert counts(b00) == {"failed": 1, "cancelled": 1}
    assert b00["duration_seconds"] == {"completed": 0, "median": None, "p95": None, "mean": None}
    assert counts(b01) == {"waiting": 1, "running": 1}
    assert counts(body["totals"]) == {"completed": 3, "failed": 1, "cancelled": 1, "waiting": 1, "running": 1}
    assert near(body["totals"]["duration_seconds"]["median"], 90)
    _defaults_and_bad_parameters(api, history)


def test_day_buckets_follow_the_requested_time_zone(api: Any, history: str) -> None:
    utc = stats(api, history, "bucket=day&from=2026-11-24T00:00:00Z&to=2026-11-26T00:00:00Z")
    assert [counts(b) for b in utc["buckets"]] == [
        {"completed": 3},
        {"failed": 1, "cancelled": 1, "waiting": 1, "running": 1},
    ]
    paris = stats(
        api, history, "bucket=day&tz=Europe/Paris&from=2026-11-24T00:00:00%2B01:00&to=2026-11-26T00:00:00%2B01:00"
    )
    assert [b["start"] for b in paris["buckets"]] == ["2026-11-23T23:00:00.000Z", "2026-11-24T23:00:00.000Z"]
    assert paris["buckets"][0]["local_start"] == "2026-11-24T00:00:00+01:00"
    assert [counts(b) for b in paris["buckets"]] == [
        {"completed": 2},
        {"completed": 1, "failed": 1, "cancelled": 1, "waiting": 1, "running": 1},
    ]
    new_york = stats(api, history, "bucket=day&tz=America/New_York&from=2026-11-24T12:00:00Z&to=2026-11-25T04:00:00Z")
    assert len(new_york["buckets"]) == 1 and new_york["buckets"][0]["total"] == 7
    # across the daylight-saving change of Oct 25 the Paris day has 25 hours
    body = stats(api, history, "bucket=day&tz=Europe/Paris&from=2026-10-24T12:00:00Z&to=2026-10-26T12:00:00Z")
    starts = [b["start"] for b in body["buckets"]]
    assert starts == ["2026-10-23T22:00:00.000Z", "2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z"]
    assert [counts(b) for b in body["buckets"]] == [{}, {"completed": 1}, {}]
    utc = stats(api, history, "bucket=day&from=2026-10-24T12:00:00Z&to=2026-10-26T12:00:00Z")
    assert [counts(b) for b in utc["buckets"]] == [{}, {"completed": 1}, {}]


def test_counts_follow_a_retry_out_of_failed(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf = api.create_workflow(GATED)
    r = start(api, aws, wf)
    worker.drain()
    settle(api, r, "failed")
    hour = "bucket=hour&from=2026-11-25T12:00:00Z&to=2026-11-25T13:00:00Z"
    assert counts(stats(api, wf, hour)["buckets"][0]) == {"failed": 1}
    assert api.post(f"/executions/{r.execution_id}/steps/g/retry", {})[0] == 200
    assert counts(stats(api, wf, hour)["buckets"][0]) == {"running": 1}
    worker.drain()
    clock.advance(120)
    settle(api, r, "completed")
    bucket = stats(api, wf, hour)["buckets"][0]
    assert counts(bucket) == {"completed": 1} and near(bucket["duration_seconds"]["median"], 120)


def test_a_single_short_run_reports_its_own_duration(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    """Regression: one 0.132 s execution used to read median 0.5 and p95 0.5 (bin 0's middle)."""
    wf = api.create_workflow(GATED)
    run(api, aws, worker, clock, wf, datetime(2026, 11, 25, 12, 5, tzinfo=UTC), "completed", 0.132)
    durations = stats(api, wf, "bucket=hour&from=2026-11-25T12:00:00Z&to=2026-11-25T13:00:00Z")["totals"][
        "duration_seconds"
    ]
    assert durations == {"completed": 1, "median": 0.132, "p95": 0.132, "mean": 0.132}


def test_small_counts_give_exact_percentiles(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wf = api.create_workflow(GATED)
    for minute, seconds in ((1, 0.25), (2, 0.75), (3, 40), (4, 41), (5, 43)):
        run(api, aws, worker, clock, wf, datetime(2026, 11, 25, 12, minute, tzinfo=UTC), "completed", seconds)
    durations = stats(api, wf, "bucket=day&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z")["totals"][
        "duration_seconds"
    ]
    assert (durations["median"], durations["p95"]) == (40, 43)


def _defaults_and_bad_parameters(api: Any, history: str) -> None:
    body = stats(api, history, "")
    assert body["bucket"] == "day" and body["tz"] == "UTC" and len(body["buckets"]) in (30, 31)
    assert body["totals"]["total"] == 7
    for query, field in [
        ("bucket=week", "bucket"),
        ("tz=Mars/Base", "tz"),
        ("tz=Asia/Kolkata", "tz"),
        ("from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", "from"),
        ("bucket=hour&from=2026-01-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from"),
        ("from=soon", "from"),
        ("to=0424-09-03T10:33:36.7576Z", "to"),
    ]:
        status, err = api.get(f"/workflows/{history}/stats?{query}")
        assert status == 400 and err["errors"][0]["field"] == field, (query, err)
    assert api.get("/workflows/wf_nope/stats")[0] == 404
