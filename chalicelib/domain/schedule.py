"""When a schedule fires: cron slots as UTC instants, once per slot across DST changes.

A slot is the UTC instant a cron expression names in its time zone. croniter alone, fed
aware datetimes, fires a fixed local-time job twice on the autumn change and not at all
on the spring one. Here croniter only walks *wall-clock* (naive) times, and this module
turns each wall time into instants with zoneinfo:

* a wall time that does not exist (the spring gap, e.g. 02:30 in Paris on the last Sunday
  of March) fires once, shifted forward by the gap (02:30 -> 03:30 local), as cronie and
  Vixie cron do;
* a wall time that happens twice (the autumn repeat) fires once, at its first occurrence,
  unless the hour field is ``*``: a job that runs every hour keeps running by elapsed
  time, so it fires in both occurrences of the repeated hour;
* several wall times that land on one instant (an hourly job in the gap) fire once.

Pure: callers pass the instants; no clock, no environment.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["count_between", "fire_times", "last_slots", "latest_fire", "next_fire", "next_fires", "slots_between"]

UTC = UTC
# No UTC offset moves by more than this at once (real transitions are 30 minutes to 2 hours).
_SHIFT = timedelta(hours=3)
# Windows the backwards search for the latest slot widens through.
_WINDOWS = (timedelta(hours=2), timedelta(days=2), timedelta(days=40), timedelta(days=400), timedelta(days=3000))


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _instants(wall: datetime, zone: ZoneInfo, every_hour: bool) -> list[datetime]:
    """The UTC instants at which the naive local ``wall`` time fires."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    exists = first.astimezone(zone).replace(tzinfo=None) == wall
    if not exists:
        # In a gap fold=0 reads the wall time with the offset from before the change,
        # which is the wall time shifted forward by the gap.
        return [first]
    return [first, second] if every_hour else [first]


def fire_times(cron: str, tz: str, after: datetime) -> Iterator[datetime]:
    """Every slot strictly after ``after`` (aware), ascending, as aware UTC datetimes. Endless."""
    zone = _zone(tz)
    after = after.astimezone(UTC)
    every_hour = cron.split()[1] == "*"
    # Near an offset change an earlier wall time can fire after a later one: start early there.
    start = after if _steady(zone, after) else after - _SHIFT
    from croniter import croniter  # imported here: the worker and sweep functions never load it

    walls = croniter(cron, start.astimezone(zone).replace(tzinfo=None))
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        wall = walls.get_next(datetime)
        for instant in _instants(wall, zone, every_hour):
            if instant > after:
                heapq.heappush(pending, instant)
        # Wall times come in order; their instants may not (a repeated hour). A pending
        # instant is final once no later wall time can land before it.
        reached = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        while pending and (pending[0] <= reached - _SHIFT or (pending[0] <= reached and _steady(zone, pending[0]))):
            instant = heapq.heappop(pending)
            if instant != last:
                last = instant
                yield instant


def _steady(zone: ZoneInfo, instant: datetime) -> bool:
    """True when the zone's UTC offset does not change within ``_SHIFT`` of ``instant``."""
    return (instant - _SHIFT).astimezone(zone).utcoffset() == (instant + _SHIFT).astimezone(zone).utcoffset()


def next_fire(cron: str, tz: str, after: datetime) -> datetime:
    """The first slot strictly after ``after``."""
    return next(fire_times(cron, tz, after))


def next_fires(cron: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots strictly after ``after``."""
    times = fire_times(cron, tz, after)
    return [next(times) for _ in range(count)]


def slots_between(cron: str, tz: str, start: datetime, end: datetime, limit: int | None = None) -> list[datetime]:
    """Slots ``s`` with ``start <= s <= end``, ascending; at most ``limit`` (the first ones)."""
    found: list[datetime] = []
    for instant in fire_times(cron, tz, start - timedelta(microseconds=1)):
        if instant > end or (limit is not None and len(found) >= limit):
            break
        found.append(instant)
    return found


def count_between(cron: str, tz: str, start: datetime, end: datetime, cap: int = 100_000) -> int:
    """How many slots fall in ``[start, end]`` (counting stops at ``cap``)."""
    return len(slots_between(cron, tz, start, end, cap))


def last_slots(cron: str, tz: str, start: datetime, end: datetime, count: int) -> list[datetime]:
    """The last ``count`` slots in ``[start, end]``, ascending (searching backwards from ``end``)."""
    for window in _WINDOWS:
        low = max(start, end - window)
        slots = slots_between(cron, tz, low, end)
        if len(slots) >= count or low == start:
            return slots[-count:] if count else []
    return slots_between(cron, tz, start, end)[-count:] if count else []


def latest_fire(cron: str, tz: str, start: datetime, end: datetime) -> datetime | None:
    """The most recent slot in ``[start, end]``, or None.

    Searches backwards from ``end`` through widening windows, so catching up after a long
    downtime costs the slots of one window, not every slot missed.
    """
    for window in _WINDOWS:
        low = max(start, end - window)
        slots = slots_between(cron, tz, low, end)
        if slots:
            return slots[-1]
        if low == start:
            return None
    slots = slots_between(cron, tz, start, end)
    return slots[-1] if slots else None
