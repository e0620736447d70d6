"""Filtered execution lists, per workflow and across workflows, through the real API."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest

from tests.functional.monitoring_support import GATED, Run, at, pages, settle, start

STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
TRIGGERS = ("manual", "event", "schedule")
UTC = UTC

#: start times over four months, one of them (October) empty
SLOTS = [
    datetime(2026, 8, 31, 23, 59, tzinfo=UTC),
    datetime(2026, 9, 3, 8, tzinfo=UTC),
    datetime(2026, 9, 3, 8, 30, tzinfo=UTC),
    datetime(2026, 9, 28, 17, tzinfo=UTC),
    datetime(2026, 11, 2, 6, tzinfo=UTC),
    datetime(2026, 11, 20, 14, tzinfo=UTC),
]


def build(api: Any, aws: Any, worker: Any, clock: Any) -> tuple[list[str], list[Run]]:
    wfs = [api.create_workflow(GATED), api.create_workflow({**GATED, "name": "Other"})]
    runs: list[Run] = []
    for i, (slot, wf_index) in enumerate(product(SLOTS, (0, 1))):
        at(clock, slot + timedelta(seconds=wf_index))
        runs.append(start(api, aws, wfs[wf_index], TRIGGERS[i % 3]))
    worker.drain()
    at(clock, datetime(2026, 11, 25, 12, tzinfo=UTC))
    for i, run in enumerate(runs):
        settle(api, run, ("completed", "failed", "cancelled", "waiting")[i % 4] if i % 7 else "waiting")
    at(clock, datetime(2026, 11, 25, 13, tzinfo=UTC))
    for trigger in TRIGGERS:  # left running: their first step is never delivered
        runs.append(start(api, aws, wfs[0], trigger))
    return wfs, runs


def expected(
    runs: list[Run], wf: str | None, status: str | None, trigger: str | None, span: tuple[str, str] | None
) -> list[str]:
    chosen = [
        r
        for r in runs
        if (wf is None or r.workflow_id == wf)
        and (status is None or r.status == status)
        and (trigger is None or r.trigger == trigger)
        and (span is None or span[0] <= r.started_at <= span[1])
    ]
    return [r.execution_id for r in sorted(chosen, key=lambda r: f"{r.started_at}#{r.execution_id}", reverse=True)]


def query(status: str | None, trigger: str | None, span: tuple[str, str] | None) -> str:
    parts = [f"status={status}"] if status else []
    parts += [f"trigger={trigger}"] if trigger else []
    parts += [f"from={span[0]}", f"to={span[1]}"] if span else []
    return "&".join(parts)


def test_every_filter_combination_pages_newest_first(api: Any, aws: Any, worker: Any, clock: Any) -> None:
    wfs, runs = build(api, aws, worker, clock)
    assert {r.status for r in runs} == set(STATUSES)
    span = ("2026-09-01T00:00:00.000Z", "2026-11-10T00:00:00.000Z")
    checked = 0
    combos = [
        (wf, status, trigger, None)
        for wf, status, trigger in product([wfs[0], None], (None, *STATUSES), (None, *TRIGGERS))
    ]
    combos += [
        (wf, status, trigger, span)
        for wf, status, trigger in product([wfs[1], None], (None, "waiting", "completed"), (None, "event"))
    ]
    for wf, status, trigger, rng in combos:
        q = query(status, trigger, rng)
        path = f"/workflows/{wf}/executions" if wf else "/executions"
        got = pages(api, f"{path}?{q}" if q else path, limit=2)
        flat = [i for page in got for i in page]
        assert flat == expected(runs, wf, status, trigger, rng), (wf, q)
        assert all(len(page) <= 2 for page in got)
        if wf:  # per workflow one partition: only the last page may be short
            assert all(len(page) == 2 for page in got[:-1]), (wf, q, got)
        checked += bool(flat)
    assert checked > 30
    # across workflows the list walks the months newest first, over the empty October
    status, body = api.get("/executions?limit=200")
    assert status == 200 and body["next_token"] is None
    assert [i["execution_id"] for i in body["items"]] == expected(runs, None, None, None, None)
    assert {i["started_at"][:7] for i in body["items"]} == {"2026-08", "2026-09", "2026-11"}
    # items show the current status, trigger and end
    by_id = {r.execution_id: r for r in runs}
    for item in body["items"]:
        run = by_id[item["execution_id"]]
        assert (item["status"], item["trigger"]["type"], item["workflow_id"]) == (
            run.status,
            run.trigger,
            run.workflow_id,
        )
        assert (item["ended_at"] is not None) == (run.status in ("completed", "cancelled"))
    # the filter by workflow is the same list as the workflow's own
    own = api.get(f"/workflows/{wfs[1]}/executions?status=failed&limit=200")[1]
    cross = api.get(f"/executions?workflow_id={wfs[1]}&status=failed&limit=200")[1]
    assert own["items"] == cross["items"] and own["items"]
    # a range before the first execution is empty, with no token
    assert api.get("/executions?to=2026-01-01T00:00:00Z") == (200, {"items": [], "next_token": None})


def _token(scope_path: str, api: Any) -> str:
    status, body = api.get(scope_path)
    assert status == 200 and body["next_token"], body
    return body["next_token"]


def _rewrite(token: str, change: Any) -> str:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    change(data)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_tampered_and_foreign_tokens_are_400(api: Any, aws: Any) -> None:
    wfs = [api.create_workflow(GATED), api.create_workflow(GATED)]
    for wf in (wfs[0], wfs[0], wfs[1], wfs[1]):
        start(api, aws, wf)
    wf_path = f"/workflows/{wfs[0]}/executions"
    token = _token(f"{wf_path}?limit=1", api)
    cross = _token("/executions?status=running&limit=1", api)

    def other_id(d: dict[str, Any]) -> None:
        d["k"]["pk"]["S"] = "EX#ex_forged"

    def other_hash(d: dict[str, Any]) -> None:
        d["k"]["g_wf"]["S"] = wfs[1]

    def number_value(d: dict[str, Any]) -> None:
        d["k"]["start_sk"] = {"N": "1"}

    def far_month(d: dict[str, Any]) -> None:
        d["m"] = "2099-01"

    bad = [
        (wf_path, "not-a-token!!"),
        (wf_path, base64.urlsafe_b64encode(b"[1,2]").decode()),
        (wf_path, _rewrite(token, other_id)),
        (wf_path, _rewrite(token, other_hash)),
        (wf_path, _rewrite(token, number_value)),
        (f"/workflows/{wfs[1]}/executions", token),  # another workflow's token
        (f"{wf_path}?status=failed", token),  # another filter's token
        ("/executions?status=running", _rewrite(cross, far_month)),
        ("/executions?status=failed", cross),
        ("/executions?status=running", token),
        (f"/executions?status=running&workflow_id={wfs[0]}", cross),
    ]
    for path, value in bad:
        sep = "&" if "?" in path else "?"
        status, body = api.get(f"{path}{sep}next_token={value}")
        assert status == 400, (path, value, body)
        assert body["errors"][0]["field"] == "next_token"
    # the untouched tokens still work
    assert api.get(f"{wf_path}?limit=1&next_token={token}")[0] == 200
    assert api.get(f"/executions?status=running&limit=1&next_token={cross}")[0] == 200


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=done", "status"),
        ("trigger=cron", "trigger"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("to=0424-09-03T10:33:36Z", "to"),
        ("colour=red", "colour"),
    ],
)
def test_bad_filters_name_the_field(api: Any, query: str, field: str) -> None:
    wf = api.create_workflow(GATED)
    for path in (f"/workflows/{wf}/executions", "/executions"):
        status, body = api.get(f"{path}?{query}")
        assert status == 400 and body["errors"][0]["field"] == field, body


def test_unknown_workflow_is_404_and_an_empty_filter(api: Any) -> None:
    assert api.get("/executions?workflow_id=wf_nope") == (200, {"items": [], "next_token": None})
    assert api.get("/workflows/wf_nope/executions")[0] == 404


def test_a_page_costs_its_partitions_whatever_the_history(api: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page Queries the index partitions its filters leave (status x trigger, times the month
    shards across workflows) and reads its heads with one BatchGetItem: no Scan, and executions
    outside its partitions (other statuses, other workflows) never cost it a call."""
    from moto.core.botocore_stubber import BotocoreStubber

    from chalicelib.store.lists import MONTH_SHARDS, STATUSES
    from chalicelib.triggers import trigger_kind_names

    kinds = len(trigger_kind_names())

    wf, other = api.create_workflow(GATED), api.create_workflow(GATED)
    runs = [start(api, aws, wf) for _ in range(8)]
    for run in runs[:3]:
        assert api.post(f"/executions/{run.execution_id}/cancel", {})[0] == 200
    seen: list[str] = []
    original = BotocoreStubber.process_request

    def record(self: Any, request: Any) -> Any:
        seen.append(str(request.headers.get("X-Amz-Target", b""), "utf-8", "replace").split(".")[-1])
        return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", record)
    partitions = len(STATUSES) * kinds
    paths = [
        (f"/workflows/{wf}/executions?status=cancelled&trigger=manual&limit=2", 1),
        (f"/workflows/{wf}/executions?status=cancelled&limit=2", kinds),
        ("/executions?status=cancelled&trigger=manual&limit=2", MONTH_SHARDS),
        (f"/workflows/{wf}/executions?limit=3", 2 * partitions),  # a partition is read at most twice
    ]

    def measure() -> list[tuple[int, int, int]]:
        counts = []
        for path, most in paths:
            seen.clear()
            status, body = api.get(path)
            assert status == 200 and body["items"], (path, body)
            counts.append((seen.count("Query"), seen.count("BatchGetItem"), seen.count("Scan")))
            assert counts[-1][0] <= most and counts[-1][1:] == (1, 0), (path, seen)
        return counts

    before = measure()
    monkeypatch.setattr(BotocoreStubber, "process_request", original)
    for _ in range(12):  # history outside the filtered partitions: running ones, another workflow
        start(api, aws, wf)
        start(api, aws, other)
    monkeypatch.setattr(BotocoreStubber, "process_request", record)
    after = measure()
    assert after[:3] == before[:3]
