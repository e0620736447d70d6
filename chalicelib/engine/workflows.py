"""Workflow catalog service: validated definitions, versions, enable/disable."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.agents import AGENTS
from chalicelib.config import Settings
from chalicelib.domain.definition import WorkflowDefinition, parse_definition
from chalicelib.domain.machine import Actor
from chalicelib.domain.timefmt import iso
from chalicelib.engine.connections import connection_refs
from chalicelib.engine.notifications import Notifier
from chalicelib.errors import FieldError, ValidationError
from chalicelib.store import Store, WorkflowRecord

#: Parsed definitions by (table, workflow id, version). Versions are immutable, so a
#: warm Lambda container never has to read one twice.
_DEFINITIONS: dict[tuple[str, str, int], WorkflowDefinition] = {}


#: Called after every catalog change with (new record, previous record or None); triggers
#: use it to keep schedules and event subscriptions in step.
WorkflowListener = Callable[[WorkflowRecord, "WorkflowRecord | None"], None]


class WorkflowService:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        settings: Settings | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notifier = notifier
        self.listeners: list[WorkflowListener] = []

    def _changed(self, record: WorkflowRecord, before: WorkflowRecord | None = None) -> WorkflowRecord:
        for listener in self.listeners:
            listener(record, before)
        return record

    def parse(self, body: Any) -> WorkflowDefinition:
        """Validate a definition, including the connections its steps name (400 naming the field)."""
        definition = parse_definition(body, AGENTS)
        refs = connection_refs(body, AGENTS)
        if refs:
            errors = self.connections().check_refs(refs)
            if errors:
                raise ValidationError(errors)
        return definition

    def connections(self) -> Any:
        from chalicelib.engine.connections import connections_for

        return connections_for(self.settings or Settings.from_env(), self, self.clock)

    def create(self, body: Any, actor: Actor) -> WorkflowRecord:
        definition = self.parse(body)
        workflow_id = f"wf_{uuid.uuid4().hex[:16]}"
        return self._changed(
            self.store.catalog.create_workflow(workflow_id, definition.to_dict(), iso(self.clock()), actor.name)
        )

    def update(self, workflow_id: str, body: Any, actor: Actor, expected_version: int | None = None) -> WorkflowRecord:
        definition = self.parse(body)
        current = self.store.catalog.get_workflow(workflow_id)
        if expected_version is not None and expected_version != current.version:
            raise ValidationError(FieldError("version", f"is {current.version}, not {expected_version}"))
        return self._changed(
            self.store.catalog.update_workflow(
                workflow_id, definition.to_dict(), current.version, iso(self.clock()), actor.name
            ),
            current,
        )

    def set_enabled(self, workflow_id: str, enabled: bool, actor: Actor) -> WorkflowRecord:
        self.store.catalog.set_enabled(workflow_id, enabled, iso(self.clock()), actor.name)
        return self._changed(self.store.catalog.get_workflow(workflow_id))

    def notification_secret(self, record: WorkflowRecord) -> str | None:
        """A new notification secret when this version brought the first webhook target (shown once)."""
        if self.notifier is None:
            return None
        targets = self.definition(record.workflow_id, record.version).notify
        return self.notifier.ensure_secret(record.workflow_id, targets, iso(self.clock()))

    def get(self, workflow_id: str, with_count: bool = False) -> WorkflowRecord:
        """The workflow (404 if unknown); ``active_executions`` is read only ``with_count`` (0 otherwise)."""
        return self.store.catalog.get_workflow(workflow_id, with_count)

    def list(self) -> list[WorkflowRecord]:
        return self.store.catalog.list_workflows()

    def definition(self, workflow_id: str, version: int) -> WorkflowDefinition:
        """The parsed definition of one version (cached: versions never change)."""
        key = (self.store.catalog.table_name, workflow_id, version)
        cached = _DEFINITIONS.get(key)
        if cached is None:
            cached = parse_definition(self.store.catalog.get_version(workflow_id, version), AGENTS)
            _DEFINITIONS[key] = cached
        return cached


def workflow_view(record: WorkflowRecord) -> dict[str, Any]:
    d = record.definition
    return {
        "workflow_id": record.workflow_id,
        "name": record.name,
        "description": d.get("description", ""),
        "enabled": record.enabled,
        "trigger": d.get("trigger"),
        "version": record.version,
        "active_executions": record.active_executions,
        "steps": d.get("steps", []),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        **({"notify": d["notify"]} if d.get("notify") else {}),
    }
