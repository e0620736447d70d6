"""``schedule``: started by the ticker at each slot of a five-field cron in a time zone
(``domain/schedule.py`` computes slots across daylight-saving changes; ``engine/schedules.py``
keeps one schedule item per workflow with its next fire time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.cron import cron_error, timezone_error
from chalicelib.domain.definition import Trigger
from chalicelib.domain.fields import JsonObject
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.errors import FieldError
from chalicelib.triggers.base import TriggerKindPlugin


class ScheduleTrigger(TriggerKindPlugin):
    name = TriggerKind.SCHEDULE.value
    keys = ("type", "cron", "timezone")
    docs = {
        "cron": "schedule: five-field cron, e.g. `0 9 * * MON-FRI`",
        "timezone": "schedule: IANA zone, e.g. `Europe/Paris`",
    }

    def parse(self, obj: JsonObject, raw: Mapping[str, Any], errors: list[FieldError]) -> Trigger | None:
        cron, zone = raw.get("cron"), raw.get("timezone")
        zone = "UTC" if zone is None else zone
        for key, problem in (("cron", cron_error(cron)), ("timezone", timezone_error(zone))):
            if problem:
                obj.fail(key, problem)
        return Trigger(self.name, cron=" ".join(str(cron).split()), timezone=zone) if obj.ok else None

    def sync(self, services: Any, workflow: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """The schedule item follows the definition: created, moved or removed."""
        if self.name in (before.get("type"), after.get("type")):
            services.schedules.sync(workflow)
