"""The trigger services, built together and hooked to catalog changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.config import Settings
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.engine.events import EventService
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.schedules import ScheduleService
from chalicelib.engine.tools import ToolService
from chalicelib.engine.workflows import WorkflowService
from chalicelib.store import WorkflowRecord
from chalicelib.store.triggers import TriggerStore


@dataclass(frozen=True)
class Triggers:
    store: TriggerStore
    events: EventService
    schedules: ScheduleService
    tools: ToolService

    @classmethod
    def build(
        cls, settings: Settings, workflows: WorkflowService, executions: ExecutionService, clock: Callable[[], datetime]
    ) -> Triggers:
        store = TriggerStore.from_settings(settings)
        triggers = cls(
            store,
            EventService(store, workflows, executions, clock, timedelta(days=settings.webhook_dedupe_days)),
            ScheduleService(store, workflows, executions, clock),
            ToolService(workflows, executions),
        )
        workflows.listeners.append(triggers.on_workflow_change)
        return triggers

    def on_workflow_change(self, after: WorkflowRecord, before: WorkflowRecord | None) -> None:
        """Keep event subscriptions and the schedule item in step with the workflow head."""
        new = after.definition.get("trigger") or {}
        old = (before.definition.get("trigger") or {}) if before else {}
        moved = (old.get("source"), old.get("event_type")) != (new.get("source"), new.get("event_type"))
        if old.get("type") == TriggerKind.EVENT and (moved or new.get("type") != TriggerKind.EVENT):
            self.store.unsubscribe(old["source"], old["event_type"], after.workflow_id)
        if new.get("type") == TriggerKind.EVENT:
            self.store.subscribe(new["source"], new["event_type"], after.workflow_id, after.version)
        if TriggerKind.SCHEDULE in (new.get("type"), old.get("type")):
            self.schedules.sync(after)
