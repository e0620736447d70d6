"""Cron slots across DST changes: once per wall-clock slot, in the schedule's own zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.schedule import latest_fire, next_fire, next_fires, slots_between

UTC = UTC


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(values: list[datetime]) -> list[str]:
    return [v.strftime("%Y-%m-%dT%H:%M") for v in values]


def test_paris_daily_0230_fires_once_on_spring_change_shifted_into_summer_time() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does not exist and runs at 03:30 local.
    got = next_fires("30 2 * * *", "Europe/Paris", at("2026-03-27T00:00"), 4)
    assert iso(got) == ["2026-03-27T01:30", "2026-03-28T01:30", "2026-03-29T01:30", "2026-03-30T00:30"]


def test_paris_daily_0230_fires_once_on_autumn_change_at_first_occurrence() -> None:
    # 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice and runs once (00:30 UTC).
    got = next_fires("30 2 * * *", "Europe/Paris", at("2026-10-23T00:00"), 4)
    assert iso(got) == ["2026-10-23T00:30", "2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"]


def test_new_york_spring_gap_and_autumn_repeat_each_fire_once() -> None:
    spring = next_fires("30 2 * * *", "America/New_York", at("2026-03-07T00:00"), 3)
    assert iso(spring) == ["2026-03-07T07:30", "2026-03-08T07:30", "2026-03-09T06:30"]
    autumn = next_fires("30 1 * * *", "America/New_York", at("2026-10-31T00:00"), 3)
    assert iso(autumn) == ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"]


def test_hourly_job_keeps_elapsed_hours_through_both_changes() -> None:
    autumn = slots_between("0 * * * *", "Europe/Paris", at("2026-10-24T23:00"), at("2026-10-25T03:00"))
    assert iso(autumn) == [
        "2026-10-24T23:00",
        "2026-10-25T00:00",
        "2026-10-25T01:00",
        "2026-10-25T02:00",
        "2026-10-25T03:00",
    ]
    spring = slots_between("0 * * * *", "Europe/Paris", at("2026-03-28T23:00"), at("2026-03-29T03:00"))
    assert iso(spring) == [
        "2026-03-28T23:00",
        "2026-03-29T00:00",
        "2026-03-29T01:00",
        "2026-03-29T02:00",
        "2026-03-29T03:00",
    ]


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"])
def test_every_calendar_day_gets_exactly_one_daily_slot_for_a_whole_year(zone: str) -> None:
    slots = slots_between("30 2 * * *", zone, at("2026-01-01T00:00"), at("2027-01-01T00:00"))
    from zoneinfo import ZoneInfo

    days = [s.astimezone(ZoneInfo(zone)).date() for s in slots]
    assert len(days) == len(set(days)) == 365
    assert slots == sorted(slots)


def test_next_fire_is_strictly_after_the_given_instant() -> None:
    assert next_fire("*/5 * * * *", "UTC", at("2026-01-01T10:05")) == at("2026-01-01T10:10")
    assert next_fire("*/5 * * * *", "UTC", at("2026-01-01T10:04:59")) == at("2026-01-01T10:05")


def test_latest_fire_after_downtime_is_the_most_recent_slot_only() -> None:
    assert latest_fire("0 9 * * 1", "UTC", at("2026-01-01T00:00"), at("2026-03-01T00:00")) == at("2026-02-23T09:00")
    assert latest_fire("*/10 * * * *", "UTC", at("2026-01-01T00:00"), at("2026-01-05T13:07")) == at("2026-01-05T13:00")
    assert latest_fire("0 9 1 1 *", "UTC", at("2026-01-02T00:00"), at("2026-06-01T00:00")) is None


def test_latest_fire_includes_both_bounds() -> None:
    assert latest_fire("0 * * * *", "UTC", at("2026-01-01T10:00"), at("2026-01-01T10:00")) == at("2026-01-01T10:00")


def test_slots_between_respects_the_limit() -> None:
    assert len(slots_between("* * * * *", "UTC", at("2026-01-01T00:00"), at("2026-01-02T00:00"), limit=7)) == 7


def test_dst_day_slots_are_one_hour_closer_or_further_apart_in_utc() -> None:
    spring = next_fires("0 9 * * *", "Europe/Paris", at("2026-03-28T00:00"), 2)
    assert spring[1] - spring[0] == timedelta(hours=23)
    autumn = next_fires("0 9 * * *", "Europe/Paris", at("2026-10-24T00:00"), 2)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
