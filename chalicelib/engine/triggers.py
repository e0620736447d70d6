"""The trigger services, built together and hooked to catalog changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.config import Settings
from chalicelib.engine.events import EventService
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.schedules import ScheduleService
from chalicelib.engine.tools import ToolService
from chalicelib.engine.workflows import WorkflowService
from chalicelib.store import WorkflowRecord
from chalicelib.store.triggers import TriggerStore
from chalicelib.triggers import TRIGGER_KINDS


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
        """Let every trigger kind keep what it holds outside the definition (an event
        subscription, the schedule item) in step with the workflow head."""
        new = after.definition.get("trigger") or {}
        old = (before.definition.get("trigger") or {}) if before else {}
        for plugin in TRIGGER_KINDS.values():
            plugin.sync(self, after, old, new)
