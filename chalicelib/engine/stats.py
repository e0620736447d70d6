"""Run statistics per bucket: counts by status, median and p95 duration.

Read from the per-hour counters of ``chalicelib.store.stats`` (kept at write time), never
from the executions. Buckets are hours or days; with ``tz`` a day runs from local midnight
to local midnight (23 or 25 hours across a daylight-saving change). Because the counters
are per UTC hour, a zone is accepted only while its offset is a whole number of hours at
every bucket boundary of the range (``Asia/Kolkata`` is refused with a 400 naming ``tz``).
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.cron import timezone_error
from chalicelib.domain.histogram import percentile
from chalicelib.domain.timefmt import iso
from chalicelib.errors import FieldError, ValidationError
from chalicelib.store.stats import HourStats, StatsStore

MAX_BUCKETS = {"hour": 24 * 31, "day": 366}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


def parse_zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    if timezone_error(name):  # the names a schedule takes (ZoneInfo also opens host files like "localtime")
        raise ValidationError(FieldError("tz", "must be an IANA time zone name, e.g. Europe/Paris"))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValidationError(FieldError("tz", "must be an IANA time zone name, e.g. Europe/Paris")) from error


def bucket_starts(start: datetime, end: datetime, bucket: str, zone: tzinfo) -> list[datetime]:
    """UTC starts of the buckets covering [start, end), plus the end of the last one."""
    local = start.astimezone(zone)
    if bucket == "hour":
        first = start.replace(minute=0, second=0, microsecond=0)
    else:
        first = datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)
    starts = [first]
    while starts[-1] < end or len(starts) == 1:
        if len(starts) > MAX_BUCKETS[bucket] + 1:
            raise ValidationError(
                FieldError(
                    "from",
                    f"the range holds more than {MAX_BUCKETS[bucket]} "
                    f"{bucket} buckets; narrow it or use a larger bucket",
                )
            )
        previous = starts[-1]
        if bucket == "hour":
            starts.append(previous + timedelta(hours=1))
        else:
            day = previous.astimezone(zone).date() + timedelta(days=1)
            starts.append(datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC))
    for boundary in starts:
        if boundary.minute or boundary.second or boundary.astimezone(zone).minute:
            raise ValidationError(
                FieldError(
                    "tz",
                    "statistics are kept per UTC hour: this zone's offset is not a whole number of hours in the range",
                )
            )
    return starts


def workflow_stats(
    stats: StatsStore,
    workflow_id: str,
    bucket: str,
    start: datetime | None,
    end: datetime | None,
    zone_name: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``GET /workflows/{id}/stats`` document."""
    if bucket not in MAX_BUCKETS:
        raise ValidationError(FieldError("bucket", "must be hour or day"))
    zone = parse_zone(zone_name)
    end = end or now + timedelta(microseconds=1)  # by default the bucket holding "now" is the last one
    start = start or end - DEFAULT_SPAN[bucket]
    if start >= end:
        raise ValidationError(FieldError("from", "must be before to"))
    starts = bucket_starts(start, end, bucket, zone)
    hours = stats.read(workflow_id, _hour(starts[0]), _hour(starts[-1] - timedelta(hours=1)))
    sums = [HourStats() for _ in starts[:-1]]
    keys = [_hour(s) for s in starts]
    for hour, values in hours.items():
        index = bisect.bisect_right(keys, hour) - 1
        if 0 <= index < len(sums):
            sums[index].add(values)
    total = HourStats()
    buckets = []
    # starts holds one more entry than sums: the end of the last bucket.
    for begin, values in zip(starts, sums, strict=False):
        total.add(values)
        buckets.append({"start": iso(begin), "local_start": begin.astimezone(zone).isoformat(), **_view(values)})
    return {
        "workflow_id": workflow_id,
        "bucket": bucket,
        "tz": zone_name or "UTC",
        "from": iso(starts[0]),
        "to": iso(starts[-1]),
        "buckets": buckets,
        "totals": _view(total),
    }


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _view(values: HourStats) -> dict[str, Any]:
    completed = sum(values.histogram.values())
    return {
        "counts": dict(values.counts),
        "total": sum(values.counts.values()),
        "duration_seconds": {
            "completed": completed,
            "median": percentile(values.histogram, 0.5, values.bin_sums, values.samples),
            "p95": percentile(values.histogram, 0.95, values.bin_sums, values.samples),
            "mean": round(values.duration_sum / completed, 3) if completed else None,
        },
    }
