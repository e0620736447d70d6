"""The engine: applies the state machine's decisions to the store and the queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.agents.python import configure as configure_python_agent
from chalicelib.config import Settings
from chalicelib.domain.timefmt import utc_now
from chalicelib.engine.aggregator import Aggregator, HeadChange
from chalicelib.engine.deadletters import DeadLetters
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.notifications import Notifier, status_detail
from chalicelib.engine.runner import StepRunner
from chalicelib.engine.status_events import detail_from_head
from chalicelib.engine.sweeper import Sweeper
from chalicelib.engine.triggers import Triggers
from chalicelib.engine.workflows import WorkflowService
from chalicelib.queue import DeadLetterQueue, StepQueue
from chalicelib.store import Store
from chalicelib.store.aggregates import AggregateStore

log = logging.getLogger("stepline.engine")


@dataclass(frozen=True)
class Engine:
    settings: Settings
    store: Store
    queue: StepQueue
    workflows: WorkflowService
    executions: ExecutionService
    runner: StepRunner
    sweeper: Sweeper
    triggers: Triggers
    deadletters: DeadLetters
    notifier: Notifier
    aggregator: Aggregator

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime] = utc_now) -> Engine:
        configure_python_agent(settings.python_modules)  # what this deployment may call
        store = Store.from_settings(settings)
        queue = StepQueue(settings)
        notifier = Notifier(store.catalog, _clients(settings), settings.notify_from, clock, send_task=queue.send_task)
        workflows = WorkflowService(store, clock, settings, notifier)
        executions = ExecutionService(store, queue, workflows, clock, notifier)
        runner = StepRunner(executions, clock)
        return cls(
            settings,
            store,
            queue,
            workflows,
            executions,
            runner,
            Sweeper(executions, clock, runner.recover),
            Triggers.build(settings, workflows, executions, clock),
            DeadLetters(executions, DeadLetterQueue(settings), clock, runner.recover),
            notifier,
            Aggregator(
                AggregateStore(), _announcer(executions, notifier) if settings.status_events else _silent, clock
            ),
        )


def _announcer(executions: ExecutionService, notifier: Notifier) -> Callable[[HeadChange], None]:
    """The aggregator's status event: the execution as the head says it was at the change
    (``status_events``), on EventBridge; the history is replayed only for a head that does
    not hold its current step."""

    def announce(change: HeadChange) -> None:
        try:
            detail = None
            if change.workflow_version is not None:
                definition = executions.workflows.definition(change.workflow_id, change.workflow_version)
                detail = detail_from_head(change.execution_id, change.before, change.head(), definition)
            if detail is None:
                detail = status_detail(executions.load_at(change.execution_id, change.head_seq), change.before)
        except Exception:  # the counts are committed: a missing event must not fail the batch
            log.exception("no status event for %s: its definition or history could not be read", change.execution_id)
            return
        notifier.announce_detail(detail)

    return announce


def _silent(change: HeadChange) -> None:
    """The stage sends no status events (``STEPLINE_STATUS_EVENTS=disabled``)."""


def _clients(settings: Settings) -> Callable[[str], Any]:
    """boto3 clients made on first use (importing or building the engine touches no AWS)."""
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            import boto3

            made[service] = boto3.client(service, region_name=settings.region, endpoint_url=settings.endpoint_url)
        return made[service]

    return client


_ENGINE: Engine | None = None


def get_engine(env: Mapping[str, str] | None = None) -> Engine:
    """The process-wide engine, built on first use (importing the app touches no AWS)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine.build(Settings.from_env(env))
    return _ENGINE


def reset_engine(engine: Engine | None = None) -> None:
    """Replace the process-wide engine (tests use this to inject a clock)."""
    global _ENGINE
    _ENGINE = engine
    from chalicelib.engine.connections import vault_for

    vault_for.cache_clear()  # a new engine (a new stack in tests) starts with no cached secrets
