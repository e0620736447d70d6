"""Trigger kinds: how executions start. Each kind is one module here, registered below.

Adding a kind: write ``<kind>.py`` with a ``TriggerKindPlugin`` subclass (``name``, ``keys``,
``parse``, and ``sync`` if it keeps something outside the definition), and register it here.
docs/design.md, "Trigger kinds", walks through an example.
"""

from __future__ import annotations

from chalicelib.triggers.base import TriggerKindPlugin
from chalicelib.triggers.event import EventTrigger
from chalicelib.triggers.manual import ManualTrigger
from chalicelib.triggers.registry import (
    TRIGGER_KINDS,
    UnknownTriggerKind,
    get_trigger_kind,
    register,
    trigger_kind_names,
    unregister,
)
from chalicelib.triggers.schedule import ScheduleTrigger

__all__ = [
    "TRIGGER_KINDS",
    "TriggerKindPlugin",
    "UnknownTriggerKind",
    "get_trigger_kind",
    "register",
    "trigger_kind_names",
    "unregister",
]

for _plugin in (ManualTrigger(), EventTrigger(), ScheduleTrigger()):
    register(_plugin)
