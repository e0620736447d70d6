"""Cron schedules through the real tick handler with a controllable clock: once per slot
across DST changes, overlapping ticks, downtime catch-up, disable/enable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

STEPS = [{"id": "echo", "agent": "transform", "instructions": "input"}]


def scheduled(cron: str, zone: str = "UTC", name: str = "Nightly") -> dict[str, Any]:
    return {"name": name, "trigger": {"type": "schedule", "cron": cron, "timezone": zone}, "steps": STEPS}


def tick(client: Any) -> None:
    """The minute's schedule functions, as the deployed stack runs them: the tick, then the sweep
    (which also enters the started executions in the list indexes once their start is 2 minutes old)."""
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={}, resources=[])
    client.lambda_.invoke("fire_schedules", event)
    client.lambda_.invoke("sweep", event)


def run_ticks(client: Any, clock: Any, until: datetime, every: timedelta) -> None:
    while clock.now < until:
        clock.now = min(clock.now + every, until)
        tick(client)


def fired(api: Any, workflow_id: str) -> list[dict[str, Any]]:
    """The schedule trigger of each execution, oldest first."""
    status, body = api.get(f"/workflows/{workflow_id}/executions?limit=200")
    assert status == 200, body
    triggers = [api.execution(item["execution_id"])["trigger"] for item in body["items"]]
    return sorted(triggers, key=lambda t: t["scheduled_for"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "zone, cron, start, end, expected",
    [
        # Paris spring change (2026-03-29 02:00 -> 03:00): 02:30 does not exist, runs once at 03:30 CEST.
        (
            "Europe/Paris",
            "30 2 * * *",
            "2026-03-28T00:00",
            "2026-03-30T03:00",
            ["2026-03-28T01:30:00.000Z", "2026-03-29T01:30:00.000Z", "2026-03-30T00:30:00.000Z"],
        ),
        # Paris autumn change (2026-10-25 03:00 -> 02:00): 02:30 happens twice, runs once.
        (
            "Europe/Paris",
            "30 2 * * *",
            "2026-10-24T00:00",
            "2026-10-26T03:00",
            ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
        ),
        # New York spring change (2026-03-08 02:00 -> 03:00).
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T05:00",
            "2026-03-09T08:00",
            ["2026-03-07T07:30:00.000Z", "2026-03-08T07:30:00.000Z", "2026-03-09T06:30:00.000Z"],
        ),
        # New York autumn change (2026-11-01 02:00 -> 01:00): 01:30 happens twice, runs once.
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T04:00",
            "2026-11-02T08:00",
            ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"],
        ),
    ],
)
def test_daily_job_fires_once_per_day_across_dst_changes(
    api: Any, client: Any, clock: Any, zone: str, cron: str, start: str, end: str, expected: list[str]
) -> None:
    clock.now = at(start)
    wf = api.create_workflow(scheduled(cron, zone))
    run_ticks(client, clock, at(end), timedelta(minutes=50))  # ticks at every minute of the hour in turn
    triggers = fired(api, wf)
    assert [t["scheduled_for"] for t in triggers] == expected
    assert all(t["type"] == "schedule" and t["coalesced"] == 0 for t in triggers)


def test_the_tick_starts_the_slot_once_and_records_scheduled_and_actual_time(api: Any, client: Any, clock: Any) -> None:
    clock.now = at("2026-06-01T08:59:00")
    wf = api.create_workflow(scheduled("0 9 * * *", "UTC"))
    tick(client)
    assert fired(api, wf) == []
    clock.now = at("2026-06-01T09:00:40")
    tick(client)
    tick(client)
    [trigger] = fired(api, wf)
    assert trigger["scheduled_for"] == "2026-06-01T09:00:00.000Z"
    assert trigger["started_at"] == "2026-06-01T09:00:40.000Z"
    status, view = api.get(f"/workflows/{wf}/schedule")
    assert status == 200
    assert view["next_fire_times"][:2] == ["2026-06-02T09:00:00.000Z", "2026-06-03T09:00:00.000Z"]
    assert view["slots"][0]["status"] == "fired" and view["slots"][0]["scheduled_for"] == trigger["scheduled_for"]
    assert view["slots"][0]["execution_id"]


def test_overlapping_ticks_for_the_same_slot_start_one_execution(api: Any, aws: Any, client: Any, clock: Any) -> None:
    clock.now = at("2026-06-01T08:59:00")
    wf = api.create_workflow(scheduled("0 9 * * *", "UTC"))
    before = aws.triggers.store.get_schedule(wf)
    clock.now = at("2026-06-01T09:00:05")
    tick(client)
    # A second tick that read the schedule before the first one moved it on: put the
    # schedule back to the state that tick saw, and let it run the same minute.
    aws.triggers.store.put_schedule(before, "2026-06-01T09:00:04.000Z")
    clock.now = at("2026-06-01T09:00:20")
    tick(client)
    assert [t["scheduled_for"] for t in fired(api, wf)] == ["2026-06-01T09:00:00.000Z"]
    # The second tick still moves the schedule on.
    assert aws.triggers.store.get_schedule(wf).next_fire == "2026-06-02T09:00:00.000Z"


def test_a_tick_that_died_after_claiming_is_taken_over_without_a_second_start(
    api: Any, aws: Any, client: Any, clock: Any
) -> None:
    clock.now = at("2026-06-01T08:59:00")
    wf = api.create_workflow(scheduled("0 9 * * *", "UTC"))
    # The dead tick claimed the slot and wrote nothing else.
    assert (
        aws.triggers.store.claim_slot(wf, "2026-06-01T09:00:00.000Z", "2026-06-01T09:00:01.000Z", 2_000_000_000) is None
    )
    clock.now = at("2026-06-01T09:01:00")
    tick(client)  # the claim is young: the other tick may still be at work, so the slot stays due
    assert fired(api, wf) == []
    assert aws.triggers.store.get_schedule(wf).next_fire == "2026-06-01T09:00:00.000Z"
    clock.now = at("2026-06-01T09:04:00")
    tick(client)  # the claim is stale: its tick died, this one takes over
    tick(client)
    assert [t["scheduled_for"] for t in fired(api, wf)] == ["2026-06-01T09:00:00.000Z"]
    assert aws.triggers.store.get_schedule(wf).next_fire == "2026-06-02T09:00:00.000Z"
    _, view = api.get(f"/workflows/{wf}/schedule")
    assert view["slots"][0]["status"] == "fired"


def test_after_downtime_only_the_latest_missed_slot_fires(api: Any, client: Any, clock: Any) -> None:
    clock.now = at("2026-06-01T12:00:00")
    wf = api.create_workflow(scheduled("*/10 * * * *", "UTC"))
    clock.now = at("2026-06-01T13:05:30")  # the ticker was down since 12:00
    tick(client)
    [trigger] = fired(api, wf)
    assert trigger["scheduled_for"] == "2026-06-01T13:00:00.000Z"
    assert trigger["started_at"] == "2026-06-01T13:05:30.000Z"
    assert trigger["coalesced"] == 5  # 12:10 .. 12:50
    _, view = api.get(f"/workflows/{wf}/schedule")
    statuses = {s["scheduled_for"][11:16]: s["status"] for s in view["slots"]}
    assert statuses == {
        "13:00": "fired",
        "12:50": "missed",
        "12:40": "missed",
        "12:30": "missed",
        "12:20": "missed",
        "12:10": "missed",
    }
    assert view["next_fire_times"][0] == "2026-06-01T13:10:00.000Z"
    clock.now = at("2026-06-01T13:06:00")
    tick(client)
    clock.now = at("2026-06-01T13:10:01")
    tick(client)
    assert [t["scheduled_for"][11:16] for t in fired(api, wf)] == ["13:00", "13:10"]


def test_disabled_schedule_does_not_fire_and_resumes_at_the_next_future_slot(api: Any, client: Any, clock: Any) -> None:
    clock.now = at("2026-06-01T12:00:00")
    wf = api.create_workflow(scheduled("*/10 * * * *", "UTC"))
    clock.now = at("2026-06-01T12:05:00")
    assert api.post(f"/workflows/{wf}/disable")[0] == 200
    run_ticks(client, clock, at("2026-06-01T12:35:00"), timedelta(minutes=5))
    assert fired(api, wf) == []
    _, view = api.get(f"/workflows/{wf}/schedule")
    assert view["enabled"] is False and view["next_fire_times"] == []
    assert api.post(f"/workflows/{wf}/enable")[0] == 200
    _, view = api.get(f"/workflows/{wf}/schedule")
    assert view["next_fire_times"][0] == "2026-06-01T12:40:00.000Z"
    assert [(s["scheduled_for"][11:16], s["status"]) for s in view["slots"]] == [
        ("12:30", "skipped"),
        ("12:20", "skipped"),
        ("12:10", "skipped"),
    ]
    tick(client)  # 12:35: nothing due, the past slots are not caught up
    assert fired(api, wf) == []
    clock.now = at("2026-06-01T12:40:02")
    tick(client)
    assert [t["scheduled_for"][11:16] for t in fired(api, wf)] == ["12:40"]


def test_changing_the_cron_moves_the_next_fire_time(api: Any, client: Any, clock: Any) -> None:
    clock.now = at("2026-06-01T12:00:00")
    wf = api.create_workflow(scheduled("0 18 * * *", "UTC"))
    assert api.put(f"/workflows/{wf}", scheduled("15 12 * * *", "Europe/Paris"))[0] == 200
    _, view = api.get(f"/workflows/{wf}/schedule")
    assert view["next_fire_times"][0] == "2026-06-02T10:15:00.000Z"  # 12:15 CEST
    assert view["timezone"] == "Europe/Paris"
    manual = {"name": "Now manual", "trigger": {"type": "manual", "inputs": []}, "steps": STEPS}
    assert api.put(f"/workflows/{wf}", manual)[0] == 200
    assert api.get(f"/workflows/{wf}/schedule")[0] == 404
    clock.now = at("2026-06-02T18:00:00")
    tick(client)
    assert fired(api, wf) == []


def test_invalid_cron_and_timezone_are_400_naming_the_field(api: Any) -> None:
    status, body = api.post("/workflows", scheduled("0 9 ? * MON *", "Mars/Olympus"))
    assert status == 400
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert "AWS-style" in fields["trigger.cron"] and "trigger.timezone" in fields
