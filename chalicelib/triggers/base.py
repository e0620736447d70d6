"""The trigger-kind interface: one plugin per way executions start (``manual``, ``event``,
``schedule``), found through ``registry.py`` the way agents are.

A plugin owns its part of the definition (the keys of ``trigger`` besides ``type``, and how
to read them) and what it keeps outside the definition in step with workflow changes (an
event subscription, a schedule item). The engine passes its trigger services to ``sync``;
plugins never build AWS clients themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.definition import Trigger
from chalicelib.domain.fields import JsonObject
from chalicelib.errors import FieldError

__all__ = ["TriggerKindPlugin"]


class TriggerKindPlugin:
    """One trigger kind. Subclasses set ``name`` and ``keys`` and implement ``parse``."""

    #: The value of ``trigger.type`` (and of the ``trigger`` list filter).
    name: str = ""
    #: The keys a definition's ``trigger`` of this kind may hold, ``type`` included.
    keys: tuple[str, ...] = ("type",)
    #: One line per key for the OpenAPI document and the docs.
    docs: Mapping[str, str] = {}

    def parse(self, obj: JsonObject, raw: Mapping[str, Any], errors: list[FieldError]) -> Trigger | None:
        """The trigger read from ``raw`` (``obj`` reads and records field problems), or None."""
        raise NotImplementedError

    def to_dict(self, trigger: Trigger) -> dict[str, Any]:
        """The canonical JSON form, stored and served (``parse`` of it gives ``trigger`` back)."""
        values = {key: getattr(trigger, key, None) for key in self.keys}
        values.update(dict(trigger.settings))
        return {key: value for key, value in values.items() if value is not None} | {"type": self.name}

    def sync(self, services: Any, workflow: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Keep what this kind needs outside the definition in step with a saved workflow.

        ``before`` and ``after`` are the workflow's ``trigger`` objects before and after the
        change (empty when there was none); either may be of another kind. ``services`` is the
        engine's ``Triggers`` bundle (its ``store``, ``schedules``, ...). Nothing by default."""
