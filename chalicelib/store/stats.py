"""Run statistics kept at write time: one item per workflow and start hour.

Item ``WF#<workflow_id>`` / ``STATS#H#<YYYY-MM-DDTHH>#<shard>`` (UTC hour of the executions'
start, and the execution's counter shard, ``shard_of``) holds ``n_<status>``: how many of the executions that started in that hour are in
each status now (each head change moves one count, applied exactly once by the stream
aggregator: ``chalicelib.store.aggregates``), and for those that completed, ``d_sum`` (total
seconds), ``d_<bin>`` (the log-scale histogram of ``chalicelib.domain.histogram``) with
``s_<bin>`` (the seconds summed in each bin, so a percentile reads as the mean of the
observed values in its bin, never a bin edge), and ``samples``: the first
``MAX_SAMPLES`` durations exactly, so that small counts get exact percentiles.
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

from chalicelib.store.models import STAT_BINS, STAT_STATUSES, Stats

COMPLETED = "completed"
#: Exact durations kept per hour and shard; beyond this the histogram answers alone.
MAX_SAMPLES = 25
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
    bin_sums: dict[int, float] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)

    def add(self, other: HourStats) -> None:
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.duration_sum += other.duration_sum
        for index, n in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + n
        for index, total in other.bin_sums.items():
            self.bin_sums[index] = self.bin_sums.get(index, 0.0) + total
        self.samples.extend(other.samples)


def hour_key(at: str) -> str:
    """``2026-11-25T13`` for any ISO UTC timestamp in that hour."""
    return at[:13]


def _sk(hour: str) -> str:
    return f"STATS#H#{hour}"


class StatsStore:
    def _item(self, workflow_id: str, started_at: str, shard: int) -> Any:
        return Stats(f"WF#{workflow_id}", f"{_sk(hour_key(started_at))}#{shard}")

    def read(self, workflow_id: str, first_hour: str, last_hour: str) -> dict[str, HourStats]:
        """The hours from ``first_hour`` to ``last_hour`` (inclusive) that have counters."""
        stats = Stats
        rows = stats.query(f"WF#{workflow_id}", stats.sk.between(_sk(first_hour), _sk(last_hour) + "~"))
        hours: dict[str, HourStats] = {}
        for row in rows:
            hour = row.sk[len("STATS#H#") : len("STATS#H#") + 13]
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
            hour.bin_sums[index] = float(getattr(row, f"s_{index}") or 0)
    hour.samples = [float(x) for x in row.samples or []]
    return hour
