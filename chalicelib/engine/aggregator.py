"""The stream aggregator: head changes in, active counts, statistics and status events out.

Every execution's head item (``EX#<id>`` / ``SUMMARY``) changes only when its status does.
DynamoDB Streams hands those changes (old and new image) to the ``aggregate`` function in
batches, in order per execution. For each batch the aggregator

1. folds the changes into one delta per counter shard item and per statistics item
   (``chalicelib.store.aggregates.Deltas``): a busy workflow's counter item gets at most one
   write per batch, however many of its executions changed;
2. writes them in one transaction with the batch's marker, so a batch delivered again (a
   retry after a failure or time-out) is skipped instead of counted twice; a batch whose
   items would not fit one transaction (100 items) is cut into consecutive parts, each with
   its own marker;
3. after a part is committed, puts one EventBridge ``Execution Status Change`` event per
   status change of that part (never for a part another delivery already applied).

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
from chalicelib.store.aggregates import MAX_ITEMS_PER_BATCH, AggregateStore, Deltas, StatDelta
from chalicelib.store.stats import COMPLETED, hour_key, shard_of

log = logging.getLogger("stepline.aggregator")

ACTIVE = ("running", "waiting")
HEAD_SK = "SUMMARY"
#: Tries of one part's transaction on a busy store before the invocation fails (Lambda retries).
BUSY_TRIES = 5


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
        seq = _attr(new, "seq")
        return HeadChange(
            str(body["SequenceNumber"]),
            execution_id,
            workflow_id,
            before,
            after,
            started_at,
            _attr(new, "ended_at"),
            int(seq) if seq and seq.isdigit() else None,
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


@dataclass(frozen=True)
class _Record:
    sequence: str
    change: HeadChange | None


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

    def handle(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Apply one batch; returns what it did (``applied``, ``skipped`` changes, ``writes``)."""
        batch = [_Record(str((r.get("dynamodb") or {}).get("SequenceNumber", "")), head_change(r)) for r in records]
        batch = [r for r in batch if r.sequence.isdigit()]
        outcome = {"records": len(batch), "applied": 0, "skipped": 0, "writes": 0}
        i = 0
        while i < len(batch):
            if not any(r.change for r in batch[i:]):
                break  # nothing left that changes a count: no marker needed
            done = self.store.applied_through(batch[i].sequence)
            if done is not None and int(done) >= int(batch[i].sequence):
                # a delivery of these records already applied them (a retried batch)
                while i < len(batch) and int(batch[i].sequence) <= int(done):
                    outcome["skipped"] += batch[i].change is not None
                    i += 1
                continue
            part, deltas = self._part(batch, i)
            changes = [r.change for r in part if r.change is not None]
            if self._apply(part[0].sequence, part[-1].sequence, deltas):
                outcome["applied"] += len(changes)
                outcome["writes"] += deltas.items() + 1
                for change in changes:
                    self.announce(change)
            else:
                outcome["skipped"] += len(changes)
            i += len(part)
        metric("AggregatedChanges", outcome["applied"])
        return outcome

    @staticmethod
    def _part(batch: list[_Record], start: int) -> tuple[list[_Record], Deltas]:
        """The longest run of records from ``start`` whose items fit one transaction."""
        deltas, part = Deltas(), list[_Record]()
        for record in batch[start:]:
            if record.change is not None:
                trial = len(deltas.active) + len(deltas.stats) + 2
                if part and trial > MAX_ITEMS_PER_BATCH:
                    break
                add_change(deltas, record.change)
            part.append(record)
        return part, deltas

    def _apply(self, first: str, last: str, deltas: Deltas) -> bool:
        backoff = Backoff(sleep=self.sleep) if self.sleep else Backoff()
        while True:
            try:
                return self.store.apply(first, last, deltas, int(self.clock().timestamp()))
            except StoreBusy:
                if backoff.tries >= BUSY_TRIES:
                    raise  # the invocation fails; Lambda delivers the batch again
                backoff.wait()
