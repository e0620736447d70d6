"""Counts and statistics written by the stream aggregator, exactly once per head change.

The aggregator (``chalicelib.engine.aggregator``) sorts a stream batch's head changes by the
item they move: a counter shard (``WF#<id>`` / ``COUNTERS#<k>``, the ``active`` count) or a
statistics item (``WF#<id>`` / ``STATS#H#<hour>#<k>``). Each item then gets ONE plain
``UpdateItem`` per batch: the folded delta of its records, and its *watermark* for the
stream shard the batch came from, under the condition that the watermark is below the
first record applied::

    ADD active :d  SET wm_<lane> = :last   IF attribute_not_exists(wm_<lane>) OR wm_<lane> < :first

DynamoDB Streams orders records within a shard, and Lambda hands one shard's batches to the
function one at a time, in order; so per (item, shard) the records arrive in sequence and a
watermark says exactly which ones the item holds. A batch delivered again (after a failure
or a time-out) is refused item by item; a batch that failed half way completes on retry:
the items it had written refuse (their watermark is at or past its records), a refused
write reads the item's watermark and applies the records after it, if any.

The *lane* is the stream shard (``shardId``, given in the event because the event source
has a tumbling window, ``infra/template.json``). A lane's watermark is ``<len><digits>@<epoch
seconds>``: the length prefix makes text order numeric order for sequence numbers of any
length (21 to 40 digits). Shards close every few hours, so watermarks of lanes that wrote
nothing for ``PRUNE_AFTER_SECONDS`` (longer than the stream keeps records and the event
source retries them) are removed by a later write to the same item: no record of theirs
can come again.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pynamodb.exceptions import GetError, UpdateError
from pynamodb.expressions.operand import Path

from chalicelib.errors import StoreBusy
from chalicelib.store.executions import _busy, counter_sk
from chalicelib.store.models import Counters, Stats
from chalicelib.store.stats import MAX_SAMPLES

LANE_PREFIX = "wm_"
#: A lane silent this long cannot deliver again (the stream keeps records one day).
PRUNE_AFTER_SECONDS = 2 * 86400
#: Refused writes re-read and retried before giving up on an item (each refusal means the
#: item moved on meanwhile; more than a couple never happens with one reader per shard).
MAX_REFUSALS = 4
#: Items whose stale lanes this process remembers (bounded: it is only a saving).
STALE_MEMORY = 10_000
BATCH_GET_LIMIT = 100


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
        """How many items carry a non-zero delta."""
        return sum(1 for v in self.active.values() if v) + sum(1 for v in self.stats.values() if not v.empty())


#: A counter shard (workflow id, shard) or a statistics item (workflow id, hour, shard).
CounterRef = tuple[str, int]
StatsRef = tuple[str, str, int]


@dataclass
class ItemRecords:
    """One item's records of a batch (ascending stream sequence numbers) and how to fold any
    suffix of them: ``delta(i)`` is the change of records ``i..`` (an int for a counter, a
    ``StatDelta`` for a statistics item)."""

    ref: CounterRef | StatsRef
    sequences: list[str]
    delta: Callable[[int], int | StatDelta]

    @property
    def is_stats(self) -> bool:
        return len(self.ref) == 3


def lane_attribute(lane: str) -> str:
    """The item attribute holding ``lane``'s watermark (short: it is on every counter item)."""
    return LANE_PREFIX + hashlib.sha256(lane.encode()).hexdigest()[:12]


def ordered(sequence: str) -> str:
    """A stream sequence number as text whose order is the numbers' order."""
    digits = sequence.lstrip("0") or "0"
    return f"{len(digits):02d}{digits}"


def _key(ref: CounterRef | StatsRef) -> tuple[str, str]:
    if len(ref) == 3:
        return f"WF#{ref[0]}", f"STATS#H#{ref[1]}#{ref[2]}"
    return f"WF#{ref[0]}", counter_sk(ref[1])


@dataclass(frozen=True)
class ItemState:
    """What a batch needs to know of an item before writing it (read only when it must)."""

    watermark: str | None  # ``ordered`` sequence number of the lane's last applied record
    samples: int  # exact durations kept


class AggregateStore:
    def __init__(self) -> None:
        #: item key -> {stale lane attribute: the value seen}, removed by the item's next write
        self._stale: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads
    def states(self, refs: Sequence[CounterRef | StatsRef], lane: str) -> dict[CounterRef | StatsRef, ItemState]:
        """The lane's watermark and the samples kept of ``refs`` (consistent BatchGetItem,
        one request per 100 items). An item not answered is left out (the caller then
        writes it conditionally, which is always safe)."""
        name = lane_attribute(lane)
        out: dict[CounterRef | StatsRef, ItemState] = {}
        wanted = {_key(ref): ref for ref in refs}
        keys = list(wanted)
        conn = Stats._get_connection()  # both item kinds are on the catalog table
        for i in range(0, len(keys), BATCH_GET_LIMIT):
            # key attribute maps (PynamoDB's annotation says str, its code takes maps)
            chunk = cast(Any, [{"pk": pk, "sk": sk} for pk, sk in keys[i : i + BATCH_GET_LIMIT]])
            try:
                answer = conn.batch_get_item(
                    chunk, consistent_read=True, attributes_to_get=["pk", "sk", "samples", name]
                )
            except GetError as error:
                if _busy(error):
                    continue  # unknown: those items are written conditionally
                raise
            for item in answer.get("Responses", {}).get(conn.table_name, []):
                ref = wanted.get((item["pk"]["S"], item["sk"]["S"]))
                if ref is not None:
                    mark = item.get(name, {}).get("S")
                    out[ref] = ItemState(
                        mark.split("@")[0] if mark else None, len(item.get("samples", {}).get("L", []))
                    )
            for pk, sk in keys[i : i + BATCH_GET_LIMIT]:
                ref = wanted[(pk, sk)]
                if ref not in out and not _unprocessed(answer, conn.table_name, pk, sk):
                    out[ref] = ItemState(None, 0)  # absent: nothing applied yet
        return out

    def watermark(self, ref: CounterRef | StatsRef, lane: str) -> str | None:
        """The lane's watermark on one item (strongly consistent), or None."""
        pk, sk = _key(ref)
        name = lane_attribute(lane)
        try:
            item = Stats._get_connection().get_item(pk, sk, consistent_read=True, attributes_to_get=[name])
        except GetError as error:
            if _busy(error):
                raise StoreBusy("the counters are busy; the batch is retried") from error
            raise
        mark = item.get("Item", {}).get(name, {}).get("S")
        return str(mark).split("@")[0] if mark else None

    # ----------------------------------------------------------------- writes
    def apply(self, records: ItemRecords, lane: str, now_epoch: int, start: int = 0, room: int = 0) -> int:
        """Apply ``records.sequences[start:]`` to the item, once.

        Returns the index of the first record this call applied (``len(sequences)`` when the
        item already held them all). Raises ``StoreBusy`` for throttling.
        """
        name = lane_attribute(lane)
        pk, sk = _key(records.ref)
        conn = Stats._get_connection()
        for _ in range(MAX_REFUSALS):
            if start >= len(records.sequences):
                return start
            first, last = ordered(records.sequences[start]), ordered(records.sequences[-1])
            with self._lock:
                stale = dict(self._stale.get((pk, sk), {}))
            actions = [*self._actions(records, records.delta(start), room), Path(name).set(f"{last}@{now_epoch}")]
            actions += [Path(attribute).remove() for attribute in stale]
            # precondition: the item holds none of these records (its watermark for this
            # shard is before the first), and the stale lanes are as seen
            condition = Path(name).does_not_exist() | (Path(name) < first)
            for attribute, seen in stale.items():
                condition &= Path(attribute) == seen
            try:
                answer = conn.update_item(pk, sk, actions=actions, condition=condition, return_values="ALL_NEW")
            except UpdateError as error:
                if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                    if _busy(error):
                        raise StoreBusy("the counters are busy; the batch is retried") from error
                    raise
                if stale:
                    with self._lock:
                        self._stale.pop((pk, sk), None)  # a stale lane wrote again: keep it
                    continue
                # a delivery before this one applied some of the records: apply the rest
                held = self.watermark(records.ref, lane) or ""
                start = next((i for i, s in enumerate(records.sequences) if ordered(s) > held), len(records.sequences))
                continue
            self._note_stale(pk, sk, name, answer.get("Attributes", {}), now_epoch)
            return start
        raise StoreBusy(f"{pk} {sk} kept moving; the batch is retried")

    def _note_stale(self, pk: str, sk: str, name: str, attributes: dict[str, Any], now_epoch: int) -> None:
        stale = {}
        for attribute, value in attributes.items():
            if not attribute.startswith(LANE_PREFIX) or attribute == name:
                continue
            raw = str(value.get("S", ""))
            stamp = raw.rpartition("@")[2]
            if stamp.isdigit() and now_epoch - int(stamp) > PRUNE_AFTER_SECONDS:
                stale[attribute] = raw
        with self._lock:
            if stale:
                if len(self._stale) >= STALE_MEMORY:
                    self._stale.clear()
                self._stale[(pk, sk)] = stale
            else:
                self._stale.pop((pk, sk), None)

    def set_active(self, workflow_id: str, shards: list[int]) -> None:
        """Overwrite a workflow's counter shards (``rebuild_counts``); the pre-shard item goes to 0."""
        for sk, value in [("COUNTERS", 0), *((counter_sk(k), n) for k, n in enumerate(shards))]:
            Counters(f"WF#{workflow_id}", sk).update(actions=[Counters.active.set(value)])

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _actions(records: ItemRecords, delta: int | StatDelta, room: int) -> list[Any]:
        if isinstance(delta, int):
            return [Counters.active.add(delta)] if delta else []
        s = Stats
        actions = [getattr(s, f"n_{status}").add(n) for status, n in sorted(delta.counts.items()) if n]
        for index, n in sorted(delta.histogram.items()):
            actions += [getattr(s, f"d_{index}").add(n), getattr(s, f"s_{index}").add(round(delta.bin_sums[index], 3))]
        if delta.histogram:
            actions.append(s.d_sum.add(round(delta.duration_sum, 3)))
        if room > 0 and delta.samples:
            actions.append(s.samples.set((s.samples | []).append(delta.samples[:room])))
        return actions


def _unprocessed(answer: dict[str, Any], table: str, pk: str, sk: str) -> bool:
    pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    return any(k.get("pk", {}).get("S") == pk and k.get("sk", {}).get("S") == sk for k in pending)


def sample_room(state: ItemState | None) -> int:
    """How many exact durations an item can still keep (best effort: a concurrent batch of
    another shard may add some too, so an hour can hold a few more than ``MAX_SAMPLES``)."""
    return MAX_SAMPLES - state.samples if state is not None else 0
