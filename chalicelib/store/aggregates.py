"""Counts and statistics written by the stream aggregator, exactly once per head change.

The aggregator (``chalicelib.engine.aggregator``) folds a batch of head changes into
``Deltas``: per counter shard item (``WF#<id>`` / ``COUNTERS#<k>``) one ``active`` delta,
per statistics item (``WF#<id>`` / ``STATS#H#<hour>#<k>``) one set of count, histogram and
duration deltas. ``AggregateStore.apply`` writes them in ONE transaction together with a
*batch marker* (``AGG#<first sequence number>`` / ``BATCH``, put only if absent, holding the
last sequence number of the records it covers): so each counter or statistics item gets at
most one write per batch, and a batch delivered again (Lambda retries a stream batch from
its first record) finds its marker and is skipped, whole or up to the marker's last record.
Markers expire (TTL) after two days; the stream keeps records for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.errors import StoreBusy
from chalicelib.store.executions import _busy, _conflict, counter_sk
from chalicelib.store.models import Counters, Marker, Stats, connection
from chalicelib.store.stats import MAX_SAMPLES

#: DynamoDB's limit of items per transaction, less the marker.
MAX_ITEMS_PER_BATCH = 99
MARKER_SK = "BATCH"
MARKER_TTL_SECONDS = 2 * 86400


@dataclass
class StatDelta:
    """What one batch changes in one statistics item."""

    counts: dict[str, int] = field(default_factory=dict)
    duration_sum: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)
    bin_sums: dict[int, float] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)

    def empty(self) -> bool:
        return not any(self.counts.values()) and not self.histogram


@dataclass
class Deltas:
    """A batch's changes, combined per item: (workflow id, shard) and (workflow id, hour, shard)."""

    active: dict[tuple[str, int], int] = field(default_factory=dict)
    stats: dict[tuple[str, str, int], StatDelta] = field(default_factory=dict)

    def items(self) -> int:
        """How many items the batch writes (zero deltas are not written)."""
        return sum(1 for v in self.active.values() if v) + sum(1 for v in self.stats.values() if not v.empty())


def marker_pk(sequence_number: str) -> str:
    return f"AGG#{sequence_number}"


class AggregateStore:
    def applied_through(self, first_sequence: str) -> str | None:
        """The last sequence number applied by the batch that started at ``first_sequence``, if any."""
        try:
            return str(Marker.get(marker_pk(first_sequence), MARKER_SK, consistent_read=True).value)
        except DoesNotExist:
            return None

    def apply(self, first_sequence: str, last_sequence: str, deltas: Deltas, now_epoch: int) -> bool:
        """Write ``deltas`` and the batch marker in one transaction.

        Returns False (and writes nothing) when the marker exists: another delivery of the
        same records applied them. Raises ``StoreBusy`` for throttling or a collision.
        """
        room = self._sample_room(deltas)
        try:
            with TransactWrite(connection=connection()) as tx:
                # precondition: this batch was never applied
                tx.save(
                    Marker(
                        marker_pk(first_sequence),
                        MARKER_SK,
                        value=last_sequence,
                        expires_at=now_epoch + MARKER_TTL_SECONDS,
                    ),
                    condition=Marker.pk.does_not_exist(),
                )
                for (workflow_id, shard), delta in sorted(deltas.active.items()):
                    if delta:
                        tx.update(
                            Counters(f"WF#{workflow_id}", counter_sk(shard)), actions=[Counters.active.add(delta)]
                        )
                for key, stat in sorted(deltas.stats.items()):
                    if not stat.empty():
                        tx.update(self._stats_item(*key), actions=self._stat_actions(stat, room.get(key, 0)))
        except TransactWriteError as error:
            if _busy(error):
                raise StoreBusy("the counters are busy; the batch is retried") from error
            if _conflict(error, "batch", "new"):
                return False
            raise
        return True

    def set_active(self, workflow_id: str, shards: list[int]) -> None:
        """Overwrite a workflow's counter shards (``rebuild_counts``); the pre-shard item goes to 0."""
        for sk, value in [("COUNTERS", 0), *((counter_sk(k), n) for k, n in enumerate(shards))]:
            Counters(f"WF#{workflow_id}", sk).update(actions=[Counters.active.set(value)])

    # ------------------------------------------------------------------ helpers
    def _stats_item(self, workflow_id: str, hour: str, shard: int) -> Any:
        return Stats(f"WF#{workflow_id}", f"STATS#H#{hour}#{shard}")

    def _stat_actions(self, stat: StatDelta, room: int) -> list[Any]:
        s = Stats
        actions = [getattr(s, f"n_{status}").add(n) for status, n in sorted(stat.counts.items()) if n]
        for index, n in sorted(stat.histogram.items()):
            actions += [getattr(s, f"d_{index}").add(n), getattr(s, f"s_{index}").add(round(stat.bin_sums[index], 3))]
        if stat.histogram:
            actions.append(s.d_sum.add(round(stat.duration_sum, 3)))
        if room > 0 and stat.samples:
            actions.append(s.samples.set((s.samples | []).append(stat.samples[:room])))
        return actions

    def _sample_room(self, deltas: Deltas) -> dict[tuple[str, str, int], int]:
        """How many exact durations each item with completions can still keep (one BatchGetItem).

        Best effort: a concurrent batch of another stream shard may add some too, so an hour
        can hold a few more than ``MAX_SAMPLES`` (the item stays small either way).
        """
        wanted = [key for key, stat in deltas.stats.items() if stat.samples]
        if not wanted:
            return {}
        keys = {(f"WF#{w}", f"STATS#H#{h}#{k}"): (w, h, k) for w, h, k in wanted}
        kept = {key: 0 for key in wanted}
        for item in Stats.batch_get(list(keys), attributes_to_get=["pk", "sk", "samples"]):
            kept[keys[(item.pk, item.sk)]] = len(item.samples or [])
        return {key: MAX_SAMPLES - n for key, n in kept.items()}
