"""``event``: started by a signed webhook delivery or an integration event whose source and
type match (``engine/events.py`` finds the subscribed workflows), optionally filtered by a
JMESPath expression over the event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.definition import Trigger
from chalicelib.domain.fields import JsonObject, jmespath_problem
from chalicelib.domain.limits import MAX_NAME
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.errors import FieldError
from chalicelib.triggers.base import TriggerKindPlugin


class EventTrigger(TriggerKindPlugin):
    name = TriggerKind.EVENT.value
    keys = ("type", "source", "event_type", "filter")
    docs = {
        "source": "event: the webhook source name",
        "event_type": "event: the body's `type` to match",
        "filter": "event: optional JMESPath filter over the event",
    }

    def parse(self, obj: JsonObject, raw: Mapping[str, Any], errors: list[FieldError]) -> Trigger | None:
        source = obj.text("source", required=True, max_len=MAX_NAME)
        event_type = obj.text("event_type", required=True, max_len=MAX_NAME)
        expression = raw.get("filter")
        if expression is not None and (problem := jmespath_problem(expression)):
            obj.fail("filter", problem)
        return Trigger(self.name, source=source, event_type=event_type, filter=expression) if obj.ok else None

    def sync(self, services: Any, workflow: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """The subscription (source, event type) -> workflow follows the definition."""
        moved = (before.get("source"), before.get("event_type")) != (after.get("source"), after.get("event_type"))
        if before.get("type") == self.name and (moved or after.get("type") != self.name):
            services.store.unsubscribe(before["source"], before["event_type"], workflow.workflow_id)
        if after.get("type") == self.name:
            services.store.subscribe(after["source"], after["event_type"], workflow.workflow_id, workflow.version)
