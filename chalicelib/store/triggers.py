"""Trigger storage: sources and their secrets, webhook dedupe, stored events, event
subscriptions, schedules (indexed on their next fire time) and schedule slot claims.

Every write states its precondition; PynamoDB errors stop here as domain errors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.config import Settings
from chalicelib.errors import Conflict, NotFound, TransitionConflict
from chalicelib.store.executions import _conflict
from chalicelib.store.models import bind
from chalicelib.store.payloads import PayloadStore
from chalicelib.store.trigger_models import Delivery, Schedule, Slot, Source, StoredEvent, Subscription

#: Schedules spread over this many index partitions; the tick queries each one. One GSI
#: partition takes ~1000 writes a second (one per fired slot), far beyond what one tick fires;
#: raise this (and re-put the schedules) only if that ever becomes the limit.
SCHEDULE_SHARDS = 1


@dataclass(frozen=True)
class SourceRecord:
    name: str
    scheme: str
    secret: str
    previous_secret: str | None
    previous_expires_at: int | None
    created_at: str
    rotated_at: str | None

    def secrets(self, now_epoch: float) -> list[str]:
        """The secrets that verify right now: current, then previous until it expires."""
        keep = self.previous_secret and self.previous_expires_at and now_epoch < self.previous_expires_at
        return [self.secret, self.previous_secret] if keep else [self.secret]  # type: ignore[list-item]


@dataclass(frozen=True)
class EventRecord:
    event_id: str
    source: str
    event_type: str
    payload: Any
    via: str
    delivery_id: str | None
    received_at: str
    executions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleRecord:
    workflow_id: str
    cron: str
    timezone: str
    enabled: bool
    wf_version: int
    next_fire: str | None
    disabled_at: str | None


@dataclass(frozen=True)
class SlotRecord:
    scheduled_for: str
    status: str
    execution_id: str | None = None
    started_at: str | None = None
    reason: str | None = None
    coalesced: int | None = None
    claimed_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "scheduled_for": self.scheduled_for,
            "status": self.status,
            "execution_id": self.execution_id,
            "started_at": self.started_at,
            "reason": self.reason,
            "coalesced": self.coalesced,
        }
        return {k: v for k, v in out.items() if v is not None}


def _shard(workflow_id: str) -> str:
    return str(int(hashlib.sha256(workflow_id.encode()).hexdigest(), 16) % SCHEDULE_SHARDS)


class TriggerStore:
    def __init__(self, payloads: PayloadStore | None = None) -> None:
        self.payloads = payloads

    @classmethod
    def from_settings(cls, settings: Settings) -> TriggerStore:
        bind(settings)
        return cls(PayloadStore(settings))

    # ----------------------------------------------------------------- sources
    def create_source(self, name: str, scheme: str, secret: str, at: str, actor: str) -> SourceRecord:
        item = Source(
            f"SRC#{name}",
            "SOURCE",
            kind="source",
            name_sk=name,
            name=name,
            scheme=scheme,
            secret=secret,
            created_at=at,
            created_by=actor,
        )
        try:
            # precondition: a new source name
            item.save(condition=Source.pk.does_not_exist())
        except PutError as error:
            if _conflict(error, "source", "new"):
                raise Conflict(f"source {name} already exists") from error
            raise
        return _to_source(item)

    def get_source(self, name: str) -> SourceRecord | None:
        try:
            return _to_source(Source.get(f"SRC#{name}", "SOURCE", consistent_read=True))
        except DoesNotExist:
            return None

    def list_sources(self) -> list[SourceRecord]:
        return [_to_source(item) for item in Source.by_kind.query("source")]

    def rotate_source(
        self, name: str, expected_secret: str, new_secret: str, previous_expires_at: int, at: str
    ) -> SourceRecord:
        item = Source(f"SRC#{name}", "SOURCE")
        try:
            # precondition: nobody rotated since we read the current secret
            item.update(
                actions=[
                    Source.secret.set(new_secret),
                    Source.previous_secret.set(expected_secret),
                    Source.previous_expires_at.set(previous_expires_at),
                    Source.rotated_at.set(at),
                ],
                condition=Source.secret == expected_secret,
            )
        except UpdateError as error:
            if _conflict(error, "source", "secret"):
                raise TransitionConflict(f"source {name}", "the secret read before rotating") from error
            raise
        return _to_source(item)

    # -------------------------------------------------------------- deliveries
    def claim_delivery(
        self, source: str, delivery_id: str, event_id: str, at: str, now_epoch: int, expires_at: int
    ) -> dict[str, Any] | None:
        """Record a first delivery. Returns None if it is new, else the stored first answer
        (``{}`` when the first attempt has not answered yet)."""
        pk = f"HOOK#{source}#{hashlib.sha256(delivery_id.encode()).hexdigest()}"
        try:
            # precondition: this delivery id was never seen (or its record expired, TTL being lazy)
            Delivery(pk, "DELIVERY", event_id=event_id, created_at=at, expires_at=expires_at).save(
                condition=Delivery.pk.does_not_exist() | (Delivery.expires_at < now_epoch)
            )
            return None
        except PutError as error:
            if not _conflict(error, "delivery", "new"):
                raise
        try:
            first = Delivery.get(pk, "DELIVERY", consistent_read=True)
        except DoesNotExist:  # expired and deleted in between: treat as new next time
            return {}
        return json.loads(first.answer) if first.answer else {}

    def answer_delivery(self, source: str, delivery_id: str, answer: dict[str, Any]) -> None:
        pk = f"HOOK#{source}#{hashlib.sha256(delivery_id.encode()).hexdigest()}"
        try:
            # precondition: the delivery record exists (written by claim_delivery)
            Delivery(pk, "DELIVERY").update(
                actions=[Delivery.answer.set(json.dumps(answer))], condition=Delivery.pk.exists()
            )
        except UpdateError as error:
            if not _conflict(error, "delivery", "exists"):
                raise

    # ------------------------------------------------------------------ events
    def put_event(self, record: EventRecord) -> bool:
        """Store an event once; False if that event id was already stored (a retried delivery)."""
        payload, ref = json.dumps(record.payload), None
        if self.payloads is not None and self.payloads.needs_offload(payload):
            # large bodies go to the payload bucket; the item keeps the key (claim check)
            payload, ref = "", self.payloads.put(f"events/{record.event_id}", payload)
        try:
            # precondition: a new event id
            StoredEvent(
                f"EVT#{record.event_id}",
                "EVENT",
                event_id=record.event_id,
                source=record.source,
                event_type=record.event_type,
                payload=payload,
                payload_ref=ref,
                via=record.via,
                delivery_id=record.delivery_id,
                received_at=record.received_at,
                executions=json.dumps(record.executions),
            ).save(condition=StoredEvent.pk.does_not_exist())
            return True
        except PutError as error:
            if _conflict(error, "event", "new"):
                return False
            raise

    def get_event(self, event_id: str) -> EventRecord:
        try:
            item = StoredEvent.get(f"EVT#{event_id}", "EVENT", consistent_read=True)
        except DoesNotExist as error:
            raise NotFound(f"event {event_id} not found") from error
        text = self.payloads.get(item.payload_ref) if item.payload_ref and self.payloads else item.payload
        return EventRecord(
            item.event_id,
            item.source,
            item.event_type,
            json.loads(text),
            item.via,
            item.delivery_id,
            item.received_at,
            json.loads(item.executions or "[]"),
        )

    def set_event_executions(self, event_id: str, execution_ids: list[str]) -> None:
        # precondition: the event exists (stored just before its executions started)
        StoredEvent(f"EVT#{event_id}", "EVENT").update(
            actions=[StoredEvent.executions.set(json.dumps(execution_ids))], condition=StoredEvent.pk.exists()
        )

    # ----------------------------------------------------------- subscriptions
    def subscribe(self, source: str, event_type: str, workflow_id: str, version: int) -> None:
        try:
            # precondition: never replace a subscription written for a newer workflow version
            Subscription(
                f"SUB#{source}#{event_type}", f"WF#{workflow_id}", workflow_id=workflow_id, wf_version=version
            ).save(condition=Subscription.pk.does_not_exist() | (Subscription.wf_version <= version))
        except PutError as error:
            if not _conflict(error, "subscription", "version"):
                raise

    def unsubscribe(self, source: str, event_type: str, workflow_id: str) -> None:
        # precondition: none; deleting a missing subscription is a no-op
        Subscription(f"SUB#{source}#{event_type}", f"WF#{workflow_id}").delete()

    def subscribers(self, source: str, event_type: str) -> list[str]:
        return [item.workflow_id for item in Subscription.query(f"SUB#{source}#{event_type}")]

    # --------------------------------------------------------------- schedules
    def put_schedule(self, record: ScheduleRecord, at: str) -> None:
        """Write a schedule as its workflow's latest version defines it."""
        item = Schedule(
            f"WF#{record.workflow_id}",
            "SCHEDULE",
            workflow_id=record.workflow_id,
            cron=record.cron,
            timezone=record.timezone,
            enabled=record.enabled,
            wf_version=record.wf_version,
            next_fire=record.next_fire,
            disabled_at=record.disabled_at,
            updated_at=at,
            sched_shard=_shard(record.workflow_id) if record.enabled and record.next_fire else None,
        )
        try:
            # precondition: never overwrite what a newer workflow version wrote
            item.save(condition=Schedule.pk.does_not_exist() | (Schedule.wf_version <= record.wf_version))
        except PutError as error:
            if _conflict(error, "schedule", "version"):
                raise TransitionConflict(f"schedule of {record.workflow_id}", f"version {record.wf_version}") from error
            raise

    def delete_schedule(self, workflow_id: str) -> None:
        # precondition: none; deleting a missing schedule is a no-op
        Schedule(f"WF#{workflow_id}", "SCHEDULE").delete()

    def get_schedule(self, workflow_id: str) -> ScheduleRecord | None:
        try:
            return _to_schedule(Schedule.get(f"WF#{workflow_id}", "SCHEDULE", consistent_read=True))
        except DoesNotExist:
            return None

    def due_schedules(self, now_iso: str) -> list[str]:
        """Workflow ids whose next fire time is at or before ``now_iso``: a Query per index shard."""
        due: list[str] = []
        for shard in range(SCHEDULE_SHARDS):
            due += [item.workflow_id for item in Schedule.by_next_fire.query(str(shard), Schedule.next_fire <= now_iso)]
        return due

    def advance_schedule(self, workflow_id: str, expected_next: str, new_next: str, at: str) -> bool:
        """Move the next fire time on; False when another tick (or an edit) moved it first."""
        try:
            # precondition: still enabled and still at the slot this tick handled
            Schedule(f"WF#{workflow_id}", "SCHEDULE").update(
                actions=[Schedule.next_fire.set(new_next), Schedule.updated_at.set(at)],
                # `== True` builds PynamoDB's condition expression; it is not a truth test.
                condition=(Schedule.next_fire == expected_next) & (Schedule.enabled == True),  # noqa: E712
            )
            return True
        except UpdateError as error:
            if _conflict(error, "schedule", "next fire"):
                return False
            raise

    # ------------------------------------------------------------------- slots
    def claim_slot(self, workflow_id: str, slot: str, at: str, expires_at: int) -> SlotRecord | None:
        """Claim a slot for this tick. None if claimed now, else the existing claim."""
        try:
            # precondition: nobody claimed this (workflow, slot) before
            Slot(
                f"WF#{workflow_id}",
                f"SLOT#{slot}",
                scheduled_for=slot,
                status="claimed",
                claimed_at=at,
                expires_at=expires_at,
            ).save(condition=Slot.pk.does_not_exist())
            return None
        except PutError as error:
            if not _conflict(error, "slot", "new"):
                raise
        try:
            return _to_slot(Slot.get(f"WF#{workflow_id}", f"SLOT#{slot}", consistent_read=True))
        except DoesNotExist:
            return SlotRecord(slot, "claimed")

    def finish_slot(self, workflow_id: str, slot: SlotRecord) -> None:
        actions: list[Action] = [Slot.status.set(slot.status)]
        for name in ("execution_id", "started_at", "reason", "coalesced"):
            value = getattr(slot, name)
            if value is not None:
                actions.append(getattr(Slot, name).set(value))
        # precondition: this tick holds the claim (it wrote the item)
        Slot(f"WF#{workflow_id}", f"SLOT#{slot.scheduled_for}").update(actions=actions, condition=Slot.pk.exists())

    def log_slot(self, workflow_id: str, slot: SlotRecord, at: str, expires_at: int) -> bool:
        """Record a slot that did not fire (missed, skipped); False if the slot already has a record."""
        try:
            # precondition: the slot was never claimed (a claimed slot keeps its own story)
            Slot(
                f"WF#{workflow_id}",
                f"SLOT#{slot.scheduled_for}",
                scheduled_for=slot.scheduled_for,
                status=slot.status,
                reason=slot.reason,
                claimed_at=at,
                expires_at=expires_at,
            ).save(condition=Slot.pk.does_not_exist())
            return True
        except PutError as error:
            if _conflict(error, "slot", "new"):
                return False
            raise

    def recent_slots(self, workflow_id: str, limit: int = 20) -> list[SlotRecord]:
        items = Slot.query(f"WF#{workflow_id}", Slot.sk.startswith("SLOT#"), scan_index_forward=False, limit=limit)
        return [_to_slot(item) for item in items]


def _to_source(item: Any) -> SourceRecord:
    expires = int(item.previous_expires_at) if item.previous_expires_at is not None else None
    return SourceRecord(
        item.name, item.scheme, item.secret, item.previous_secret, expires, item.created_at, item.rotated_at
    )


def _to_schedule(item: Any) -> ScheduleRecord:
    return ScheduleRecord(
        item.workflow_id,
        item.cron,
        item.timezone,
        bool(item.enabled),
        int(item.wf_version),
        item.next_fire,
        item.disabled_at,
    )


def _to_slot(item: Any) -> SlotRecord:
    coalesced = int(item.coalesced) if item.coalesced is not None else None
    return SlotRecord(
        item.scheduled_for, item.status, item.execution_id, item.started_at, item.reason, coalesced, item.claimed_at
    )
