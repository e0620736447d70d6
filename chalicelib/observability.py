"""Structured JSON logs and CloudWatch metrics in embedded metric format (EMF).

Logs: every record of a ``stepline.*`` logger is printed to stdout as one JSON object with
``level``, ``logger``, ``message``, ``timestamp`` and whatever ``log_context`` holds at that
moment (``execution_id``, ``step_id``, ``attempt``, ...), so CloudWatch Logs Insights can
filter an execution's lines: ``filter execution_id = "ex_..."``.

Metrics: ``metric()`` prints one EMF line (a JSON object with an ``_aws`` key). Lambda sends
stdout to CloudWatch Logs, which turns those lines into metrics in the ``Stepline``
namespace: no PutMetricData call, no extra IAM permission, no extra latency.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Both write to the process's standard output (``sys.__stdout__``, file descriptor 1), not to
whatever ``sys.stdout`` is at the moment: code that captures ``sys.stdout`` in-process (the
CLI's ``--json`` output under click's test runner) never gets log lines mixed into its own.
Tests read them with ``capfd``. Local mode (``make run``) sets ``STEPLINE_LOG_FORMAT=text``:
each line then prints once, readable (``12:00:01 INFO  runner  step completed ...``), and EMF
lines are left out (no CloudWatch reads them there).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

NAMESPACE = "Stepline"
ROOT_LOGGER = "stepline"

_context: ContextVar[Mapping[str, Any]] = ContextVar("stepline_log_context", default=MappingProxyType({}))
_dimensions: dict[str, str] = {"Stage": "dev"}
_settings: dict[str, bool] = {"text": False}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line (and metric) written inside the ``with`` block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context.get(),
        }
        if record.exc_info:
            doc["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One readable line: time, level, logger (without ``stepline.``), message, then the ids."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        name = record.name.removeprefix(ROOT_LOGGER + ".")
        ids = " ".join(f"{k}={v}" for k, v in _context.get().items())
        line = f"{at} {record.levelname:<7} {name:<13} {record.getMessage()}" + (f"  [{ids}]" if ids else "")
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def _out() -> Any:
    return sys.__stdout__ or sys.stdout


class _StdoutHandler(logging.StreamHandler[Any]):
    """A stream handler on the process's standard output, looked up when it writes."""

    def __init__(self) -> None:
        super().__init__(_out())

    @property
    def stream(self) -> Any:
        return _out()

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(env: Mapping[str, str] | None = None) -> None:
    """Send ``stepline.*`` logs to stdout as JSON (idempotent; app.py calls it after ``Chalice()``).

    ``Chalice(app_name="stepline")`` owns the logger ``stepline`` too (``app.log``): it sets it
    to ERROR and may add a plain-text stdout handler. Ours replaces that handler, so Chalice's
    own error lines come out as JSON as well, and the level is ``STEPLINE_LOG_LEVEL``.
    """
    env = os.environ if env is None else env
    _dimensions["Stage"] = env.get("STEPLINE_STAGE", "dev")
    _settings["text"] = env.get("STEPLINE_LOG_FORMAT", "json").lower() == "text"
    logger = logging.getLogger(ROOT_LOGGER)
    logger.setLevel(env.get("STEPLINE_LOG_LEVEL", "INFO").upper())
    for existing in list(logger.handlers):
        if type(existing) is logging.StreamHandler:
            logger.removeHandler(existing)
    handler = next((h for h in logger.handlers if isinstance(h, _StdoutHandler)), None)
    if handler is None:
        handler = _StdoutHandler()
        logger.addHandler(handler)
    handler.setFormatter(TextFormatter() if _settings["text"] else JsonFormatter())
    # On Lambda the runtime's root handler would print each line a second time, as text; in
    # local mode the console's root handler would. Elsewhere records also propagate (pytest's caplog).
    logger.propagate = "AWS_LAMBDA_FUNCTION_NAME" not in env and not _settings["text"]


def metric(
    name: str, value: float, unit: str = "Count", dimensions: Mapping[str, str] | None = None, **properties: Any
) -> dict[str, Any]:
    """Print one EMF line for ``name`` and return it.

    Dimensions are ``Stage`` plus ``dimensions`` (low cardinality: each combination is a
    billed custom metric); ids go in ``properties``, searchable in the logs, not dimensions.
    """
    dims = {**_dimensions, **(dimensions or {})}
    dimension_sets = [["Stage"]] + ([list(dims)] if len(dims) > 1 else [])
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": dimension_sets, "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        **_context.get(),
        **properties,
        **dims,
        name: value,
    }
    if _settings["text"]:
        return doc  # local console: nothing reads EMF there
    out = _out()
    out.write(json.dumps(doc, default=str) + "\n")
    out.flush()
    return doc
