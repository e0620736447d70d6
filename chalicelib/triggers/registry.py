"""The trigger-kind registry: ``trigger.type`` names map to plugins here.

An unknown name fails loudly (``UnknownTriggerKind`` lists what is known), as the agent
registry does; a definition naming one is refused with a field error that lists the kinds.
"""

from __future__ import annotations

from chalicelib.triggers.base import TriggerKindPlugin

__all__ = ["TRIGGER_KINDS", "UnknownTriggerKind", "get_trigger_kind", "register", "trigger_kind_names", "unregister"]

TRIGGER_KINDS: dict[str, TriggerKindPlugin] = {}


class UnknownTriggerKind(KeyError):
    """No trigger kind is registered under this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.message = f"unknown trigger kind {name!r}; known kinds: {', '.join(trigger_kind_names()) or '(none)'}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return self.message


def register(plugin: TriggerKindPlugin) -> TriggerKindPlugin:
    """Add ``plugin`` under ``plugin.name``; raises ``ValueError`` if the name is taken or empty."""
    if not plugin.name:
        raise ValueError(f"trigger kind {plugin!r} has no name")
    if plugin.name in TRIGGER_KINDS:
        raise ValueError(f"a trigger kind named {plugin.name!r} is already registered")
    if "type" not in plugin.keys:
        raise ValueError(f"trigger kind {plugin.name!r}: keys must include 'type'")
    TRIGGER_KINDS[plugin.name] = plugin
    return plugin


def unregister(name: str) -> None:
    """Remove a kind (tests that register their own)."""
    TRIGGER_KINDS.pop(name, None)


def get_trigger_kind(name: str) -> TriggerKindPlugin:
    """The plugin registered under ``name``; raises ``UnknownTriggerKind`` otherwise."""
    try:
        return TRIGGER_KINDS[name]
    except (KeyError, TypeError):
        raise UnknownTriggerKind(name) from None


def trigger_kind_names() -> list[str]:
    """Registered kinds, in registration order (the built-ins: manual, event, schedule)."""
    return list(TRIGGER_KINDS)
