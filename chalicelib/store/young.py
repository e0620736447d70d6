"""Young executions: running, and not yet in the list indexes.

A start writes no list-index row. Its head enters both list indexes at its first status
change, or when the sweep visits its start's ``by_due`` entry (a hand-over grace after the
start), whichever comes first. Until then lists find it through that entry, whose range key
also names what a list needs (``start_due_at``). The entry lies in a minute bucket between
the sweep's watermark and now + the grace; ``YoungWindow`` reads those buckets (one Query per
minute: about four when the sweep keeps up, whatever the history). docs/design.md, "Young
executions", says why (a head moved within both indexes at its end: 4 index units; a young
one is entered once, with its final status: 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.running import HANDOVER_GRACE_SECONDS
from chalicelib.domain.timefmt import iso
from chalicelib.domain.timefmt import parse_iso as _parse
from chalicelib.store.models import EventItem, Marker

__all__ = ["SWEEP_WATERMARK", "YOUNG_STATUS", "StartEntry", "YoungWindow", "start_due_at"]

#: The sweep's watermark (catalog marker): the minute of the ``by_due`` index it reads from next.
SWEEP_WATERMARK = ("SWEEP", "DUE")
#: The status of a young execution (its head is written at the start, when it is running).
YOUNG_STATUS = "running"
#: How long after its start a young execution's due entry comes due (the start's hand-over
#: grace): the window reaches this far past now.
YOUNG_AHEAD = timedelta(seconds=HANDOVER_GRACE_SECONDS)
#: The window starts this long before now, or at the sweep's watermark when that is earlier
#: (a sweep that keeps up has its watermark within the last minute).
YOUNG_BEHIND = timedelta(minutes=1)
#: However far behind the sweep is, the window starts no earlier than this before now (the
#: sweep itself re-reads at most an hour of failed visits).
YOUNG_MAX_BEHIND = timedelta(hours=1)
_HEAD_SK = "SUMMARY"


def start_due_at(entry: str, started_at: str, trigger: str, workflow_id: str) -> str:
    """The range key of a start's ``by_due`` entry: the usual ``<due>#<id>#000001`` and what a
    list needs to place the execution while it is young (``<started_at>#<trigger>#<workflow>``)."""
    return f"{entry}#{started_at}#{trigger}#{workflow_id}"


@dataclass(frozen=True)
class StartEntry:
    """A start's due entry, read back: the execution and where a list places it."""

    pk: str
    execution_id: str
    started_at: str
    trigger: str
    workflow_id: str

    @property
    def position(self) -> str:
        """``<started_at>#<execution_id>``, the lists' order."""
        return f"{self.started_at}#{self.execution_id}"

    @classmethod
    def parse(cls, pk: str, sk: str, due_at: str) -> StartEntry | None:
        """The start entry of a ``by_due`` row (None for every other entry of the index)."""
        parts = due_at.split("#", 5)
        if sk != _HEAD_SK or len(parts) != 6 or parts[2] != "000001":
            return None
        _, execution_id, _, started_at, trigger, workflow_id = parts
        return cls(pk, execution_id, started_at, trigger, workflow_id)


class YoungWindow:
    """The ``by_due`` buckets that can hold a young execution's start entry, as of ``now``."""

    def __init__(self, now: datetime) -> None:
        low = now - YOUNG_BEHIND
        try:
            mark = Marker.get(*SWEEP_WATERMARK).value
        except DoesNotExist:
            mark = None
        if mark:
            low = min(low, max(_parse(mark), now - YOUNG_MAX_BEHIND))
        self.low, self.high = low.replace(second=0, microsecond=0), now + YOUNG_AHEAD
        #: no young execution started before this (ISO), so a list that ends earlier skips the window
        self.earliest = iso(self.low - YOUNG_AHEAD)
        #: Queries made so far
        self.queries = 0

    def entries(self) -> Iterator[StartEntry]:
        """Every start entry in the window (one Query per minute bucket)."""
        bucket = self.low
        while bucket <= self.high:
            self.queries += 1
            for item in EventItem.by_due.query(iso(bucket)[:16]):
                entry = StartEntry.parse(item.pk, item.sk, item.due_at or "")
                if entry is not None:
                    yield entry
            bucket += timedelta(minutes=1)
