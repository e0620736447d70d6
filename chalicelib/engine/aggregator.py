"""The stream aggregator: head changes in, active counts, statistics and status events out.

Every execution's head item (``EX#<id>`` / ``SUMMARY``) changes only when its status does.
DynamoDB Streams hands those changes (old and new image) to the ``aggregate`` function in
batches, one stream shard at a time and in order within it. For each batch the aggregator

1. sorts the changes by the item they move (``item_records``): every change moves one
   statistics item (its workflow, start hour and counter shard), a change into or out of
   running/waiting also moves its counter shard;
2. writes each item once, a plain conditional ``UpdateItem`` carrying the folded delta and
   the item's watermark for this stream shard (``chalicelib.store.aggregates``): a batch
   delivered again is refused item by item, a batch that failed half way completes on
   retry. A counter shard whose records net to zero (an execution that started and ended
   in the batch) is only read, never written, unless an earlier delivery applied part of
   its records;
3. puts one EventBridge ``Execution Status Change`` event per change its statistics item
   took in this delivery (never for a change an earlier delivery applied).

So counts and statistics lag the head by the stream's delay (about a second) plus the
batching window, and never drift: each change is applied exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.histogram import bin_of
from chalicelib.domain.timefmt import parse_iso
from chalicelib.engine.budget import Backoff
from chalicelib.errors import StoreBusy
from chalicelib.observability import metric
from chalicelib.store.aggregates import (
    AggregateStore,
    CounterRef,
    Deltas,
    ItemRecords,
    ItemState,
    StatDelta,
    StatsRef,
    ordered,
    sample_room,
)
from chalicelib.store.stats import COMPLETED, hour_key, shard_of

log = logging.getLogger("stepline.aggregator")

ACTIVE = ("running", "waiting")
HEAD_SK = "SUMMARY"
#: Tries of one item's write on a busy store before the invocation fails (Lambda retries).
BUSY_TRIES = 5
#: The lane of a batch whose event names no stream shard (one shard: local mode, tests).
DEFAULT_LANE = "stream"


@dataclass(frozen=True)
class HeadChange:
    """One status change of one execution, as its head item's stream record tells it."""

    sequence: str
    execution_id: str
    workflow_id: str
    before: str | None
    after: str
    started_at: str
    ended_at: str | None
    #: the last event sequence number of the commit that made this change (None before it was kept)
    head_seq: int | None
    #: what else the head says, for the status event (``chalicelib.engine.status_events``)
    workflow_version: int | None = None
    trigger_type: str | None = None
    #: the current step's changing part as the head keeps it; None when the head has none
    step: str | None = None

    def head(self) -> dict[str, Any]:
        """The head's fields as plain values (``status_events.detail_from_head``)."""
        return {
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "status": self.after,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "trigger_type": self.trigger_type,
            "step": self.step,
        }


def _attr(image: Mapping[str, Any], name: str) -> str | None:
    value = image.get(name)
    if not isinstance(value, dict):
        return None
    raw = value.get("S", value.get("N"))
    return raw if isinstance(raw, str) else None


def head_change(record: Mapping[str, Any]) -> HeadChange | None:
    """The status change a stream record carries, or None (another item, no status change).

    Never raises: a record this code cannot read is logged and skipped, so one odd record
    cannot hold up the shard (a stream batch is retried until it passes).
    """
    try:
        body = record.get("dynamodb") or {}
        if record.get("eventName") not in ("INSERT", "MODIFY") or _attr(body.get("Keys") or {}, "sk") != HEAD_SK:
            return None
        new, old = body.get("NewImage") or {}, body.get("OldImage") or {}
        after = _attr(new, "status")
        before = _attr(old, "status") if record.get("eventName") == "MODIFY" else None
        execution_id, workflow_id, started_at = (_attr(new, n) for n in ("execution_id", "workflow_id", "started_at"))
        if not (after and execution_id and workflow_id and started_at) or before == after:
            return None
        seq, version = _attr(new, "seq"), _attr(new, "workflow_version")
        return HeadChange(
            str(body["SequenceNumber"]),
            execution_id,
            workflow_id,
            before,
            after,
            started_at,
            _attr(new, "ended_at"),
            int(seq) if seq and seq.isdigit() else None,
            int(version) if version and version.isdigit() else None,
            _attr(new, "trigger_type"),
            _attr(new, "step"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        log.error("skipping an unreadable stream record: %s", error)
        return None


def add_change(deltas: Deltas, change: HeadChange) -> None:
    """Fold one change into the batch's deltas (pure: no I/O)."""
    shard = shard_of(change.execution_id)
    moved = int(change.after in ACTIVE) - int(change.before in ACTIVE)
    key = (change.workflow_id, shard)
    deltas.active[key] = deltas.active.get(key, 0) + moved
    stat = deltas.stats.setdefault((change.workflow_id, hour_key(change.started_at), shard), StatDelta())
    stat.counts[change.after] = stat.counts.get(change.after, 0) + 1
    if change.before:
        stat.counts[change.before] = stat.counts.get(change.before, 0) - 1
    if change.after == COMPLETED and change.ended_at:
        seconds = max(0.0, (parse_iso(change.ended_at) - parse_iso(change.started_at)).total_seconds())
        index, rounded = bin_of(seconds), round(seconds, 3)
        stat.histogram[index] = stat.histogram.get(index, 0) + 1
        stat.bin_sums[index] = stat.bin_sums.get(index, 0.0) + rounded
        stat.duration_sum += rounded
        stat.samples.append(rounded)


def item_records(changes: list[HeadChange]) -> list[ItemRecords]:
    """Each counter and statistics item a batch moves, with its records in stream order.

    Every change moves one statistics item; a change into or out of running/waiting also
    moves its counter shard."""
    by_item: dict[CounterRef | StatsRef, list[HeadChange]] = {}
    for change in changes:
        shard = shard_of(change.execution_id)
        by_item.setdefault((change.workflow_id, hour_key(change.started_at), shard), []).append(change)
        if (change.after in ACTIVE) != (change.before in ACTIVE):
            by_item.setdefault((change.workflow_id, shard), []).append(change)
    return [ItemRecords(ref, [c.sequence for c in mine], _folder(ref, mine)) for ref, mine in by_item.items()]


def _folder(ref: CounterRef | StatsRef, changes: list[HeadChange]) -> Callable[[int], int | StatDelta]:
    def delta(start: int) -> int | StatDelta:
        deltas = Deltas()
        for change in changes[start:]:
            add_change(deltas, change)
        if len(ref) == 3:
            return deltas.stats.get(ref, StatDelta())
        return deltas.active.get(ref, 0)

    return delta


class Aggregator:
    """Applies stream batches (Lambda's record dicts) to the counters, then announces them."""

    def __init__(
        self,
        store: AggregateStore,
        announce: Callable[[HeadChange], None],
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.announce = announce
        self.clock = clock
        self.sleep = sleep

    def handle(self, records: Iterable[Mapping[str, Any]], lane: str = DEFAULT_LANE) -> dict[str, int]:
        """Apply one batch of one stream shard (``lane``); returns what it did: head changes
        ``applied`` and ``skipped`` (held already), item ``writes``.

        Raises ``StoreBusy`` when an item stayed busy: the items written keep their records,
        and Lambda delivers the batch again for the rest."""
        batch = [r for r in records if str((r.get("dynamodb") or {}).get("SequenceNumber", "")).isdigit()]
        changes = [c for c in (head_change(r) for r in batch) if c is not None]
        outcome = {"records": len(batch), "applied": 0, "skipped": 0, "writes": 0}
        items = item_records(changes)
        # Read first only the items that need it: statistics items that may keep exact
        # durations, and counter shards whose delta nets to zero (written only if an
        # earlier delivery applied part of their records, which only their watermark says).
        wanted = [i.ref for i in items if _needs_read(i)]
        states = self.store.states(wanted, lane) if wanted else {}
        now = int(self.clock().timestamp())
        applied: list[HeadChange] = []
        busy: StoreBusy | None = None
        for item in items:
            state = states.get(item.ref)
            start = _first_unapplied(item, state)
            if not item.is_stats and state is not None and start == 0 and item.delta(0) == 0:
                continue  # nets to zero and nothing of it was applied: nothing to write
            try:
                first = self._apply(item, lane, now, start, sample_room(state))
            except StoreBusy as error:
                busy = error  # the other items go on; the retry completes this one
                continue
            outcome["writes"] += first < len(item.sequences)
            if item.is_stats:  # each change moves exactly one statistics item: announce it there
                now_applied = set(item.sequences[first:])
                applied += [c for c in changes if c.sequence in now_applied]
                outcome["skipped"] += first
        outcome["applied"] = len(applied)
        for change in sorted(applied, key=lambda c: int(c.sequence)):
            self.announce(change)
        metric("AggregatedChanges", outcome["applied"])
        if busy is not None:
            raise busy  # Lambda delivers the batch again
        return outcome

    def _apply(self, item: ItemRecords, lane: str, now: int, start: int, room: int) -> int:
        backoff = Backoff(sleep=self.sleep) if self.sleep else Backoff()
        while True:
            try:
                return self.store.apply(item, lane, now, start, room)
            except StoreBusy:
                if backoff.tries >= BUSY_TRIES:
                    raise
                backoff.wait()


def _needs_read(item: ItemRecords) -> bool:
    if item.is_stats:
        delta = item.delta(0)
        return isinstance(delta, StatDelta) and bool(delta.samples)
    return item.delta(0) == 0


def _first_unapplied(item: ItemRecords, state: ItemState | None) -> int:
    if state is None or state.watermark is None:
        return 0
    held = state.watermark
    return next((i for i, s in enumerate(item.sequences) if ordered(s) > held), len(item.sequences))
