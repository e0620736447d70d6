"""Executions: heads, numbered events (commit items), lists and the due index.

Writes are conditional. A start is one put of the head, which carries event 1 (with an
idempotency key, a transaction of the head and the key's marker). A later commit is put
with ``attribute_not_exists(pk)`` on its first sequence number, so of two writers that read
the same history exactly one appends; the other gets ``TransitionConflict``. A status
change moves the head forward too: in one transaction with the commit for operators and
the sweep, right after it for the worker. How events sit in items: ``store/commits.py``.
Counts and statistics are not written here: the stream aggregator derives them from the
head's changes (``chalicelib.engine.aggregator``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.domain.machine import Event
from chalicelib.domain.states import ACTIVE_STATUSES, ExecutionStatus
from chalicelib.domain.timefmt import parse_iso
from chalicelib.errors import FieldError, HeadBehind, NotFound, StoreBusy, TransitionConflict, ValidationError
from chalicelib.store.commits import (
    COMMIT,
    HEAD_SK,
    commit_item,
    details_json,
    due_entry,
    esk,
    item_bytes,
    start_event,
    start_json,
    to_events,
    with_seq,
)
from chalicelib.store.dues import DueIndex
from chalicelib.store.lists import ExecutionLists, ListFilter, status_keys, summary_keys
from chalicelib.store.models import EventItem, Marker, Summary, connection
from chalicelib.store.payloads import PayloadStore
from chalicelib.store.records import Page, StatusChange, SummaryRecord
from chalicelib.store.stats import COUNTER_SHARDS, StatsStore
from chalicelib.store.tokens import decode_token, encode_token
from chalicelib.store.young import start_due_at

ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
#: A trigger longer than this (as JSON) is kept in the payload bucket, so the head stays small.
TRIGGER_INLINE_LIMIT = 400
#: What a head may weigh at most (DynamoDB item size: names plus values), whatever the input.
HEAD_LIMIT = 1024
#: What a head may grow by after its start: ``ended_at``, a longer status (also in ``l_sk``) and
#: ``step``, the current step's part for status events (under 200 bytes, engine/status_events.py).
#: An UpdateItem bills the larger of the item before and after, so the start leaves room.
HEAD_GROWTH = 256
#: Statuses after which the sweep has nothing to do (a failed execution waits for an operator,
#: whose action commits its own due entry): a commit that reaches one writes no due entry.
FINAL_STATUSES = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED, ExecutionStatus.FAILED})

# the value types live in store/records.py and are re-exported here for earlier imports
__all__ = ["COMMIT", "HEAD_LIMIT", "ExecutionStore", "Page", "StatusChange", "SummaryRecord"]


def counter_sk(shard: int) -> str:
    """Sort key of one shard of a workflow's active counter (``COUNTERS`` is the pre-shard item)."""
    return f"COUNTERS#{shard}"


def counter_sks() -> list[str]:
    """Every item that holds part of a workflow's active count."""
    return ["COUNTERS", *(counter_sk(k) for k in range(COUNTER_SHARDS))]


def _epk(execution_id: str) -> str:
    return f"EX#{execution_id}"


#: Error codes that say "try again later", not "the state is not what you expected".
BUSY_CODES = {
    "TransactionConflict",
    "TransactionConflictException",
    "ThrottlingError",
    "ThrottlingException",
    "ProvisionedThroughputExceeded",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
}


def _reasons(error: Exception) -> set[str]:
    reasons = getattr(error, "cancellation_reasons", None) or []
    return {r.code for r in reasons if r is not None and r.code}


def _conflict(error: Exception, entity: str, expected: str) -> bool:
    """True when a PynamoDB error is a lost condition or a transaction collision.

    The execution store asks ``_busy`` first: there a collision or throttling is retried,
    never reported as a conflict of state.
    """
    code = getattr(error, "cause_response_code", None)
    if code == "ConditionalCheckFailedException":
        return True
    if code in ("TransactionCanceledException", "TransactionConflictException"):
        codes = _reasons(error)
        return not codes or codes <= {"ConditionalCheckFailed", "TransactionConflict", "None"}
    return False


def _busy(error: Exception) -> bool:
    """True when a write failed for load (collision, throttling), so that a retry may pass."""
    code = getattr(error, "cause_response_code", None)
    if code == "TransactionCanceledException":
        codes = _reasons(error) - {"None"}
        return bool(codes) and "ConditionalCheckFailed" not in codes and codes <= BUSY_CODES
    return code in BUSY_CODES


class ExecutionStore:
    def __init__(self, payloads: PayloadStore, retention_days: int | None = None) -> None:
        self.payloads = payloads
        self.lists = ExecutionLists()
        self.stats = StatsStore()
        #: the due index the sweep reads and re-arms (store/dues.py)
        self.dues = DueIndex()
        #: optional retention: items carry ``expires_at`` (DynamoDB TTL) this many days on
        self.retention_days = retention_days

    # ------------------------------------------------------------------ writes
    def create(
        self,
        summary: SummaryRecord,
        first: Event,
        idempotency_pk: str | None = None,
        idempotency_expires: int | None = None,
    ) -> None:
        """Create the head with event 1 on it: one conditional put, or with an idempotency key
        one transaction of the head and the key's marker."""
        self.lists.note_month(summary.started_at[:7])
        head = self._summary_item(summary, with_seq(first, 1))
        try:
            if idempotency_pk is None:
                # precondition: a new execution id
                head.save(condition=Summary.pk.does_not_exist())
                return
            with TransactWrite(connection=connection()) as tx:
                # precondition: a new execution id
                tx.save(head, condition=Summary.pk.does_not_exist())
                # precondition: the idempotency key was never used
                tx.save(
                    Marker(
                        idempotency_pk,
                        "IDEM",
                        value=summary.execution_id,
                        created_at=summary.started_at,
                        expires_at=idempotency_expires,
                    ),
                    condition=Marker.pk.does_not_exist(),
                )
        except (PutError, TransactWriteError) as error:
            if _busy(error):
                raise StoreBusy("the execution store is busy; try again") from error
            if _conflict(error, "execution", "new"):
                raise TransitionConflict("execution", "a new execution id or idempotency key") from error
            raise

    def append(
        self,
        execution_id: str,
        after_seq: int,
        events: Sequence[Event],
        change: StatusChange | None = None,
        atomic: bool = True,
    ) -> list[Event]:
        """Commit ``events`` after sequence ``after_seq``; with ``change``, move the head too.

        All the events go into one commit item keyed by the first one's sequence number, so
        one conditional put appends any number of events. Returns the events with their
        sequence numbers. Raises ``TransitionConflict`` when another writer committed first.

        With ``atomic`` (operator actions, the sweep) the commit and the head update are one
        transaction. Without it (the worker) they are two conditional writes, commit first:
        the commit is the lock, and the head update is forward only (``seq``), so a worker
        that dies in between leaves a head one change behind, which the next delivery of its
        message repairs (``repair_head``) and any later change overtakes.
        """
        numbered = [with_seq(e, after_seq + i + 1) for i, e in enumerate(events)]
        final = change is not None and change.after in FINAL_STATUSES
        item = self._commit_item(execution_id, numbered, final)
        try:
            if change is None or not atomic:
                # precondition: nobody committed this sequence number yet
                item.save(condition=EventItem.pk.does_not_exist())
            else:
                with TransactWrite(connection=connection()) as tx:
                    # precondition: nobody committed this sequence number yet
                    tx.save(item, condition=EventItem.pk.does_not_exist())
                    target, actions, condition = self._head_update(execution_id, change, numbered[-1].seq)
                    tx.update(target, actions=actions, condition=condition)
        except (PutError, TransactWriteError) as error:
            if _busy(error):
                raise StoreBusy(f"the store is busy writing execution {execution_id}; try again") from error
            if _conflict(error, "execution", "event"):
                raise TransitionConflict(f"execution {execution_id}", f"next event {after_seq + 1}") from error
            raise
        if change is not None and not atomic:
            try:
                self.move_head(execution_id, change, numbered[-1].seq)
            except StoreBusy as error:
                raise HeadBehind(f"execution {execution_id}: commit stored, head not moved") from error
        return numbered

    def move_head(self, execution_id: str, change: StatusChange, seq: int) -> bool:
        """Set the head to ``change.after`` as of event ``seq``, unless a later change got there first."""
        target, actions, condition = self._head_update(execution_id, change, seq)
        try:
            target.update(actions=actions, condition=condition)
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False  # the head is already at a later change
            if _busy(error):
                raise StoreBusy(f"the store is busy writing execution {execution_id}; try again") from error
            raise
        return True

    def head_status(self, execution_id: str) -> tuple[str, int | None]:
        """The head's status and the event sequence number it is at (strongly consistent)."""
        item = Summary.get(_epk(execution_id), HEAD_SK, consistent_read=True, attributes_to_get=["status", "seq"])
        return item.status, int(item.seq) if item.seq is not None else None

    def _head_update(self, execution_id: str, change: StatusChange, seq: int) -> tuple[Summary, list[Action], Any]:
        actions: list[Action] = [Summary.status.set(change.after), Summary.seq.set(seq)]
        if change.after in (ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED):
            actions.append(Summary.ended_at.set(change.at))
        actions.append(Summary.step.set(change.step) if change.step is not None else Summary.step.remove())
        if change.started_at and change.trigger_type:
            keys = status_keys(
                change.workflow_id, change.after, change.trigger_type, change.started_at, execution_id=execution_id
            )
            actions += [getattr(Summary, name).set(value) for name, value in keys.items()]
        # precondition: forward only. The commit put is the lock between writers; the head
        # only ever moves to a later commit's status (a head written before ``seq`` was kept
        # must still show the status the decision was made on)
        condition = (Summary.seq < seq) | (Summary.seq.does_not_exist() & (Summary.status == change.before))
        return Summary(_epk(execution_id), HEAD_SK), actions, condition

    # ------------------------------------------------------------------- reads
    def load_events(self, execution_id: str) -> list[Event]:
        """All events of an execution in order (strongly consistent). Empty if unknown.

        One Query of the partition: the commit items in order, then the head (event 1).
        """
        events: list[Event] = []
        start: Event | None = None
        for item in EventItem.query(_epk(execution_id), consistent_read=True):
            if item.sk == HEAD_SK:
                start = start_event(item.start, item.start_ref, self.payloads)
            elif item.sk.startswith("E#"):
                events.extend(to_events(item, self.payloads))
        if start is not None and (not events or events[0].seq != 1):
            events.insert(0, start)
        return events

    def events_page(self, execution_id: str, limit: int, token: str | None) -> tuple[list[Event], str | None]:
        """A page of an execution's events in order, and the token of the next page (or None).

        A page ends after ``limit`` events, possibly inside a commit item: the token names
        that item's key and the last event returned (event 1, on the head, is named as the
        item ``E#000001`` it was before it moved there, so tokens did not change).
        """
        pk = _epk(execution_id)
        cursor = decode_token(token, pk, {"pk", "sk", "last"})
        if cursor is not None and (
            cursor["pk"]["S"] != pk or not cursor["sk"]["S"].startswith("E#") or not cursor["last"]["S"].isdigit()
        ):
            raise ValidationError(FieldError("next_token", "invalid or foreign pagination token"))
        first_sk = cursor["sk"]["S"] if cursor else "E#"
        last = int(cursor["last"]["S"]) if cursor else 0
        events: list[Event] = []
        rows: Any = iter(
            EventItem.query(pk, EventItem.sk.between(first_sk, "E#~"), consistent_read=True, page_size=limit + 1)
        )
        if cursor is None:
            head_row = next(rows, None)
            if head_row is None or head_row.sk != esk(1):
                # event 1 is on the head (unless the execution predates that, or is unknown)
                start = self._head_start(pk)
                if start is not None:
                    events.append(start)
                    if len(events) == limit:
                        return events, encode_token({"pk": {"S": pk}, "sk": {"S": esk(1)}, "last": {"S": "1"}}, pk)
            rows = itertools.chain([head_row] if head_row is not None else [], rows)
        for item in rows:
            for event in to_events(item, self.payloads):
                if event.seq <= last:
                    continue
                events.append(event)
                if len(events) == limit:
                    # as a Query with a limit: the next page (maybe empty) starts in this item
                    key = {"pk": {"S": pk}, "sk": {"S": item.sk}, "last": {"S": str(event.seq)}}
                    return events, encode_token(key, pk)
        return events, None

    def _head_start(self, pk: str) -> Event | None:
        try:
            head = Summary.get(pk, HEAD_SK, consistent_read=True, attributes_to_get=["start", "start_ref"])
        except DoesNotExist:
            return None
        return start_event(head.start, head.start_ref, self.payloads)

    def get_summary(self, execution_id: str) -> SummaryRecord:
        try:
            item = Summary.get(_epk(execution_id), HEAD_SK, consistent_read=True)
        except DoesNotExist as error:
            raise NotFound(f"execution {execution_id} not found") from error
        return self._to_summary(item)

    def find_idempotent(self, idempotency_pk: str) -> str | None:
        try:
            return Marker.get(idempotency_pk, "IDEM", consistent_read=True).value
        except DoesNotExist:
            return None

    def list_for_workflow(
        self,
        workflow_id: str,
        status: str | None,
        start_from: str | None,
        start_to: str | None,
        limit: int,
        token: str | None,
        trigger: str | None = None,
        *,
        now: str,
    ) -> Page:
        """Newest first, from the list index of the head and the young executions (store/lists.py)."""
        return self.list(ListFilter(workflow_id, status, trigger, start_from, start_to), limit, token, now)

    def list(self, f: ListFilter, limit: int, token: str | None, now: str) -> Page:
        """A page of any list (per workflow or across workflows) and the next page's token."""
        items, next_token = self.lists.page(f, limit, token, now)
        return Page([self._to_summary(item) for item in items], next_token)

    # ---------------------------------------------------------------- mapping
    def _summary_item(self, s: SummaryRecord, first: Event | None = None) -> Summary:
        """The head: a few short fields, the list keys and event 1 (``first``, numbered), under
        ``HEAD_LIMIT`` bytes whatever the trigger and input: a large trigger goes to the payload
        bucket (the head keeps its type), and so do event 1's details when the head would not
        leave room for its later growth (``HEAD_GROWTH``) with them."""
        kind = str(s.trigger.get("type", "manual"))
        trigger, trigger_ref = json.dumps(s.trigger, separators=(",", ":")), None
        if len(trigger.encode("utf-8")) > TRIGGER_INLINE_LIMIT:
            trigger, trigger_ref = json.dumps({"type": kind}), self.payloads.put(s.execution_id, trigger)
        keys = summary_keys(s.workflow_id, s.status, kind, s.started_at, execution_id=s.execution_id)
        head = Summary(
            _epk(s.execution_id),
            HEAD_SK,
            execution_id=s.execution_id,
            workflow_id=s.workflow_id,
            workflow_version=s.workflow_version,
            status=s.status,
            trigger_type=kind,
            trigger=trigger,
            trigger_ref=trigger_ref,
            started_at=s.started_at,
            ended_at=s.ended_at,
            expires_at=self._expiry(s.started_at),
            seq=1,
            g_wf=keys["g_wf"],
            l_month=keys["l_month"],
            l_sk=keys["l_sk"],
        )
        if first is None:
            return head
        head.start = start_json(first)
        entry = due_entry(s.execution_id, [first], False)
        if entry is not None:
            # Young: the head enters the list indexes at its first status change or the sweep's
            # visit of this entry, and lists find it through the entry until then (store/lists.py).
            head.due_bucket = entry[0]
            head.due_at = start_due_at(entry[1], s.started_at, kind, s.workflow_id)
        # the size check counts the list keys either way: the head gets them later
        if first.details and item_bytes(head.serialize()) + HEAD_GROWTH >= HEAD_LIMIT:
            head.start = start_json(first, with_details=False)
            head.start_ref = self.payloads.put(s.execution_id, details_json(first))
        if entry is not None:
            head.g_wf = head.l_month = head.l_sk = None
        return head

    def _to_summary(self, item: Summary) -> SummaryRecord:
        trigger = self.payloads.get(item.trigger_ref) if item.trigger_ref else item.trigger
        return SummaryRecord(
            item.execution_id,
            item.workflow_id,
            int(item.workflow_version),
            item.status,
            json.loads(trigger),
            item.started_at,
            item.ended_at,
        )

    def _event_item(self, execution_id: str, e: Event, seq: int) -> Any:
        return self._commit_item(execution_id, [with_seq(e, seq)])

    def _commit_item(self, execution_id: str, events: Sequence[Event], final: bool = False) -> Any:
        return commit_item(execution_id, events, self.payloads, self._expiry(events[-1].at), final)

    def _expiry(self, at: str) -> int | None:
        if not self.retention_days:
            return None
        return int(parse_iso(at).timestamp()) + self.retention_days * 86400
