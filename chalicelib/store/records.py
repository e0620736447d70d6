"""The execution store's value types: a head as the engine sees it, a status change, a list page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Page", "StatusChange", "SummaryRecord"]


@dataclass(frozen=True)
class SummaryRecord:
    execution_id: str
    workflow_id: str
    workflow_version: int
    status: str
    trigger: dict[str, Any]
    started_at: str
    ended_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "status": self.status,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }


@dataclass(frozen=True)
class StatusChange:
    workflow_id: str
    before: str
    after: str
    at: str
    #: start time and trigger type of the execution: they place it in the list indexes and
    #: the statistics hour (``None`` only from callers that predate them)
    started_at: str | None = None
    trigger_type: str | None = None
    #: the current step's changing part for the status event (``engine/status_events.py``);
    #: None: not known (the head's is removed, and the event replays the history)
    step: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[SummaryRecord]
    next_token: str | None
