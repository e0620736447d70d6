"""Stepline's entry points. Each parses its input and calls one function in chalicelib."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Rate

from chalicelib import handlers, observability
from chalicelib.api import connections, docs, executions, mcp, monitoring, system, triggers, ui, workflows
from chalicelib.config import executions_stream_arn, step_queue_arn
from chalicelib.engine import get_engine
from chalicelib.engine.events import integration_event_pattern

app = Chalice(app_name="stepline")
observability.configure()  # after Chalice, which sets up its own "stepline" logger
app.register_blueprint(system.bp)
app.register_blueprint(workflows.bp)
app.register_blueprint(executions.bp)
app.register_blueprint(triggers.bp)
app.register_blueprint(ui.bp)
app.register_blueprint(monitoring.bp)
app.register_blueprint(docs.bp)
app.register_blueprint(connections.bp)
app.register_blueprint(mcp.bp)


@app.on_sqs_message(queue_arn=step_queue_arn(), batch_size=1)
def run_step(event: Any) -> None:
    handlers.run_step_records(event)


@app.on_dynamodb_record(
    stream_arn=executions_stream_arn(),
    batch_size=100,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=1,
)
def aggregate(event: Any) -> dict[str, Any]:
    return handlers.aggregate_records(event)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event: Any) -> None:
    handlers.sweep()


@app.schedule(Rate(1, unit=Rate.MINUTES))
def fire_schedules(event: Any) -> None:
    get_engine().triggers.schedules.tick()


@app.on_cw_event(integration_event_pattern())
def integration_event(event: Any) -> None:
    get_engine().triggers.events.receive_integration(event.to_dict())
