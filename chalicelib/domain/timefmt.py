"""Timestamps as the API shows them: ISO 8601, UTC, millisecond precision, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """Format an aware datetime as ``2026-11-25T22:30:47.123Z``."""
    m = moment.astimezone(UTC)
    # fields formatted directly: strftime is slower, and its %Y does not pad years before 1000
    # on glibc ("218-09-12"), which parse_iso cannot read back
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as error:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise ValueError(f"{text!r} is out of range in UTC") from error


def utc_now() -> datetime:
    return datetime.now(UTC)
