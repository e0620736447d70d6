"""Schedule triggers: keep each schedule's next fire time indexed, and fire due slots once.

The tick (every minute) queries the ``by_next_fire`` index for schedules whose next fire
time has come (never a scan), then for each one:

1. finds the most recent slot that is due (after downtime only that one fires; the older
   ones are recorded as missed and coalesced into it);
2. claims the slot with a conditional put of ``SLOT#<slot>`` (two overlapping ticks: one wins);
3. starts the execution with idempotency key ``schedule:<slot>``, so even a tick that died
   after claiming and is taken over later cannot start the slot twice;
4. moves the next fire time on with a conditional update (``next_fire`` still the one read).

Disabling a workflow takes its schedule out of the index; enabling it puts it back at the
next future slot and records the slots that passed meanwhile as skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.machine import Actor
from chalicelib.domain.schedule import count_between, last_slots, latest_fire, next_fire, next_fires
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.workflows import WorkflowService
from chalicelib.errors import Conflict, NotFound, TransitionConflict
from chalicelib.store import WorkflowRecord
from chalicelib.store.triggers import ScheduleRecord, SlotRecord, TriggerStore

log = logging.getLogger("stepline.schedules")

SCHEDULER = Actor("scheduler", "system")
#: Slot records (claims and the log GET /workflows/{id}/schedule shows) are kept this long.
SLOT_TTL = timedelta(days=30)
#: A claim this old whose execution was never recorded belongs to a tick that died: take it over.
CLAIM_TAKEOVER = timedelta(minutes=2)
#: How many missed or skipped slots are recorded one by one (the count covers all of them).
LOGGED_SLOTS = 20
#: Missed slots are counted up to this many (a per-minute job down for a day reports 1000).
COUNT_CAP = 1000
_EPSILON = timedelta(microseconds=1)


class ScheduleService:
    def __init__(
        self,
        store: TriggerStore,
        workflows: WorkflowService,
        executions: ExecutionService,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.executions = executions
        self.clock = clock

    # --------------------------------------------------------- catalog changes
    def sync(self, record: WorkflowRecord) -> None:
        """Make the schedule item follow the workflow's latest definition and enabled flag."""
        trigger = record.definition.get("trigger") or {}
        existing = self.store.get_schedule(record.workflow_id)
        if trigger.get("type") != TriggerKind.SCHEDULE:
            if existing is not None:
                self.store.delete_schedule(record.workflow_id)
            return
        now = self.clock()
        cron, zone = trigger["cron"], trigger.get("timezone", "UTC")
        if not record.enabled:
            disabled_at = existing.disabled_at if existing and not existing.enabled else iso(now)
            target = ScheduleRecord(record.workflow_id, cron, zone, False, record.version, None, disabled_at)
        else:
            same = existing is not None and existing.enabled and existing.cron == cron and existing.timezone == zone
            if same and existing is not None and existing.next_fire:
                upcoming = existing.next_fire
            else:
                upcoming = iso(next_fire(cron, zone, now))
            if existing is not None and not existing.enabled and existing.disabled_at:
                self._log_passed(
                    record.workflow_id, cron, zone, parse_iso(existing.disabled_at), now, "skipped", "workflow disabled"
                )
            target = ScheduleRecord(record.workflow_id, cron, zone, True, record.version, upcoming, None)
        try:
            self.store.put_schedule(target, iso(now))
        except TransitionConflict:
            log.info("schedule of %s: a newer version already wrote it", record.workflow_id)

    # -------------------------------------------------------------------- tick
    def tick(self) -> dict[str, int]:
        """Fire every due schedule once. Returns counts of what happened, for the logs."""
        now = self.clock()
        outcomes: dict[str, int] = {}
        for workflow_id in self.store.due_schedules(iso(now)):
            try:
                outcome = self.fire(workflow_id, now)
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule of %s failed", workflow_id)
                outcome = "error"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    def fire(self, workflow_id: str, now: datetime) -> str:
        schedule = self.store.get_schedule(workflow_id)
        if schedule is None or not schedule.enabled or not schedule.next_fire or parse_iso(schedule.next_fire) > now:
            return "not_due"  # the index is eventually consistent; the item is the truth
        cron, zone = schedule.cron, schedule.timezone
        due_from = parse_iso(schedule.next_fire)
        slot = latest_fire(cron, zone, due_from, now)
        outcome = "advanced"
        if slot is not None:
            outcome = self._fire_slot(schedule, slot, due_from, now)
        if outcome == "in_progress":
            return outcome  # leave the schedule due: if that tick died, a later one takes its claim over
        upcoming = next_fire(cron, zone, max(slot or now, now))
        self.store.advance_schedule(workflow_id, schedule.next_fire, iso(upcoming), iso(now))
        return outcome

    def _fire_slot(self, schedule: ScheduleRecord, slot: datetime, due_from: datetime, now: datetime) -> str:
        workflow_id, slot_iso = schedule.workflow_id, iso(slot)
        expires = int((now + SLOT_TTL).timestamp())
        held = self.store.claim_slot(workflow_id, slot_iso, iso(now), expires)
        if held is not None and held.status != "claimed":
            return "already_fired"
        if held is not None and held.claimed_at and parse_iso(held.claimed_at) >= now - CLAIM_TAKEOVER:
            return "in_progress"  # another tick holds the claim right now
        coalesced = count_between(schedule.cron, schedule.timezone, due_from, slot - _EPSILON, COUNT_CAP)
        if coalesced:
            self._log_passed(
                workflow_id,
                schedule.cron,
                schedule.timezone,
                due_from,
                slot - _EPSILON,
                "missed",
                f"downtime: coalesced into {slot_iso}",
            )
        trigger: dict[str, Any] = {
            "type": "schedule",
            "scheduled_for": slot_iso,
            "started_at": iso(now),
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "coalesced": coalesced,
        }
        try:
            state = self.executions.start(
                workflow_id, {"scheduled_for": slot_iso}, trigger, SCHEDULER, f"schedule:{slot_iso}"
            )
        except (Conflict, NotFound) as error:  # disabled or deleted since the index said due
            self.store.finish_slot(workflow_id, SlotRecord(slot_iso, "skipped", reason=error.message))
            return "skipped"
        self.store.finish_slot(
            workflow_id,
            SlotRecord(
                slot_iso, "fired", execution_id=state.execution_id, started_at=iso(now), coalesced=coalesced or None
            ),
        )
        return "fired"

    def _log_passed(
        self, workflow_id: str, cron: str, zone: str, start: datetime, end: datetime, status: str, reason: str
    ) -> None:
        """Record the most recent slots in ``[start, end]`` that did not fire."""
        recent = last_slots(cron, zone, start, end, LOGGED_SLOTS)
        now = self.clock()
        expires = int((now + SLOT_TTL).timestamp())
        for instant in recent:
            self.store.log_slot(workflow_id, SlotRecord(iso(instant), status, reason=reason), iso(now), expires)

    # -------------------------------------------------------------------- view
    def view(self, workflow_id: str, count: int = 5) -> dict[str, Any]:
        record = self.workflows.get(workflow_id)
        trigger = record.definition.get("trigger") or {}
        if trigger.get("type") != TriggerKind.SCHEDULE:
            raise NotFound(f"workflow {workflow_id} has no schedule trigger (it is {trigger.get('type')})")
        schedule = self.store.get_schedule(workflow_id)
        cron, zone = trigger["cron"], trigger.get("timezone", "UTC")
        upcoming: list[str] = []
        if schedule is not None and schedule.enabled and schedule.next_fire:
            first = parse_iso(schedule.next_fire)
            upcoming = [iso(first)] + [iso(t) for t in next_fires(cron, zone, first, count - 1)]
        return {
            "workflow_id": workflow_id,
            "cron": cron,
            "timezone": zone,
            "enabled": record.enabled,
            "next_fire_times": upcoming,
            "disabled_at": schedule.disabled_at if schedule else None,
            "slots": [s.to_dict() for s in self.store.recent_slots(workflow_id)],
        }
