"""Run statistics kept at write time: one item per workflow and start hour.

Item ``WF#<workflow_id>`` / ``STATS#H#<YYYY-MM-DDTHH>#<shard>`` (UTC hour of the executions'
start, and the execution's counter shard, ``shard_of``) holds ``n_<status>``: how many of the executions that started in that hour are in
each status now (a status change moves one count, in the same transaction as the
summary update, so counts never drift), and for those that completed, ``d_sum`` (total
seconds) and ``d_<bin>`` (the log-scale histogram of ``chalicelib.domain.histogram``).
Completed and cancelled are final; a failed execution can still be retried, so it is
counted as failed while it is, and its duration is only recorded once it completes.

Reading a range is one Query on the workflow's partition: its cost is the number of
hours (times shards in use) in the range, never the number of executions. Items written
before sharding (no ``#<shard>`` suffix) are read and summed the same way.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.domain.histogram import bin_of
from chalicelib.domain.timefmt import parse_iso
from chalicelib.store.models import STAT_BINS, STAT_STATUSES, Models

COMPLETED = "completed"
#: Counter and statistics items of a workflow are split this many ways: concurrent starts
#: and status changes of one busy workflow then rarely touch the same item in their
#: transactions (DynamoDB cancels both sides of a collision with ``TransactionConflict``).
COUNTER_SHARDS = 8


def shard_of(execution_id: str) -> int:
    """The counter shard of an execution (stable: every change of it lands on the same items)."""
    return int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16) % COUNTER_SHARDS


@dataclass
class HourStats:
    """The counters of one hour (or, summed, of a longer bucket)."""

    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STAT_STATUSES})
    duration_sum: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, other: "HourStats") -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.duration_sum += other.duration_sum
        for index, n in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + n


def hour_key(at: str) -> str:
    """``2026-11-25T13`` for any ISO UTC timestamp in that hour."""
    return at[:13]


def _sk(hour: str) -> str:
    return f"STATS#H#{hour}"


class StatsStore:
    def __init__(self, models: Models) -> None:
        self.m = models

    def _item(self, workflow_id: str, started_at: str, shard: int) -> Any:
        return self.m.Stats(f"WF#{workflow_id}", f"{_sk(hour_key(started_at))}#{shard}")

    def on_create(self, tx: TransactWrite, workflow_id: str, status: str, started_at: str, shard: int = 0) -> None:
        """Count a new execution in its start hour (part of the start transaction)."""
        attr = getattr(self.m.Stats, f"n_{status}")
        tx.update(self._item(workflow_id, started_at, shard), actions=[attr.add(1)])

    def on_change(self, tx: TransactWrite, workflow_id: str, before: str, after: str, started_at: str,
                  at: str, shard: int = 0) -> None:
        """Move one execution from ``before`` to ``after`` (part of the status-change transaction)."""
        stats = self.m.Stats
        actions = [getattr(stats, f"n_{before}").add(-1), getattr(stats, f"n_{after}").add(1)]
        if after == COMPLETED:
            seconds = max(0.0, (parse_iso(at) - parse_iso(started_at)).total_seconds())
            actions += [getattr(stats, f"d_{bin_of(seconds)}").add(1), stats.d_sum.add(round(seconds, 3))]
        tx.update(self._item(workflow_id, started_at, shard), actions=actions)

    def read(self, workflow_id: str, first_hour: str, last_hour: str) -> dict[str, HourStats]:
        """The hours from ``first_hour`` to ``last_hour`` (inclusive) that have counters."""
        stats = self.m.Stats
        rows = stats.query(f"WF#{workflow_id}", stats.sk.between(_sk(first_hour), _sk(last_hour) + "~"))
        hours: dict[str, HourStats] = {}
        for row in rows:
            hour = row.sk[len("STATS#H#"):len("STATS#H#") + 13]
            hours.setdefault(hour, HourStats()).add(_to_hour(row))
        return hours


def _to_hour(row: Any) -> HourStats:
    hour = HourStats()
    for status in STAT_STATUSES:
        hour.counts[status] = int(getattr(row, f"n_{status}") or 0)
    hour.duration_sum = float(row.d_sum or 0)
    for index in range(STAT_BINS):
        n = getattr(row, f"d_{index}")
        if n:
            hour.histogram[index] = int(n)
    return hour
