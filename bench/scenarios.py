"""Part 1 and 2 scenarios: which workflows the cost figures are counted on, and how.

Each scenario runs executions through the real handlers (``bench.transitions.count_requests``)
with chaining as configured (``STEPLINE_MAX_CHAIN_STEPS``, read by the worker per invocation):

* pure 5 / pure 10: five and ten ``transform`` steps, one worker chains them all;
  the difference is the marginal cost of an extra step;
* forced hop: the five pure steps with ``STEPLINE_MAX_CHAIN_STEPS=1``, one SQS hop per step;
* http 5: five side-effecting ``http`` steps against a loopback server (each claim is
  committed before its call).

Costs left out of the totals are counted beside them: API Gateway requests (one start
request per execution) and CloudWatch Logs ingestion (the bytes of the JSON log and EMF
lines the engine writes per step).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.harness import FIVE_STEPS

#: API Gateway REST API, per million requests (first 333 million), us-east-1.
API_GATEWAY_PER_MILLION = 3.50
#: CloudWatch Logs ingestion (standard class), per GB.
LOGS_PER_GB = 0.50


def ten_steps() -> dict[str, Any]:
    """FIVE_STEPS twice over (ids suffixed), for the marginal cost of a step."""
    definition = copy.deepcopy(FIVE_STEPS)
    extra = copy.deepcopy(FIVE_STEPS["steps"])
    for step in extra:
        step["id"] += "_2"
        step["instructions"] = step["instructions"].replace("steps.draft", "steps.draft_2")
    definition["name"] = "Bench ten steps"
    definition["steps"] = definition["steps"] + extra
    return definition


def http_steps(url: str, count: int = 5) -> dict[str, Any]:
    return {
        "name": "Bench http steps",
        "trigger": copy.deepcopy(FIVE_STEPS["trigger"]),
        "steps": [
            {
                "id": f"call_{i}",
                "agent": "http",
                "instructions": "{customer: input.customer}",
                "config": {"url": url, "method": "POST"},
            }
            for i in range(count)
        ],
    }


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) or b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def loopback_server() -> Iterator[str]:
    """A JSON echo server on 127.0.0.1 and a free port: the third party the http steps call
    (loopback is allowed for the run, as in local mode: ``STEPLINE_OUTBOUND_ALLOW_PRIVATE``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = os.environ.get("STEPLINE_OUTBOUND_ALLOW_PRIVATE")
    os.environ["STEPLINE_OUTBOUND_ALLOW_PRIVATE"] = "1"
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/echo"
    finally:
        server.shutdown()
        if before is None:
            os.environ.pop("STEPLINE_OUTBOUND_ALLOW_PRIVATE", None)
        else:
            os.environ["STEPLINE_OUTBOUND_ALLOW_PRIVATE"] = before


@contextmanager
def max_chain(steps: int | None) -> Iterator[None]:
    """Run with ``STEPLINE_MAX_CHAIN_STEPS`` set (None: the default)."""
    before = os.environ.get("STEPLINE_MAX_CHAIN_STEPS")
    if steps is not None:
        os.environ["STEPLINE_MAX_CHAIN_STEPS"] = str(steps)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("STEPLINE_MAX_CHAIN_STEPS", None)
        else:
            os.environ["STEPLINE_MAX_CHAIN_STEPS"] = before


class LogBytes:
    """Counts the bytes CloudWatch Logs would ingest: the JSON lines the ``stepline`` loggers
    write to the process's stdout at the stage's level (prod: ``INFO``), and the EMF metric
    lines ``metric()`` prints (Lambda sends those to the log group too). Both are counted as
    they are written (``observability`` writes every line to ``sys.__stdout__``), so the
    count costs the engine no second formatting of each record (until 2026-12-03 a logging
    handler formatted every record again, inside the measured CPU time). The EMF lines are
    counted, not shown: the bench's own output stays readable."""

    def __init__(self) -> None:
        self.bytes = 0

    @contextmanager
    def counting(self) -> Iterator[LogBytes]:
        real = sys.__stdout__
        setattr(sys, "__stdout__", _CountedLines(real, self))  # noqa: B010 - observability writes to sys.__stdout__, a Final name
        try:
            yield self
        finally:
            setattr(sys, "__stdout__", real)  # noqa: B010 - as above


class _CountedLines:
    """A stand-in for the process's stdout that counts the JSON log and EMF lines written to
    it, and swallows the EMF ones."""

    def __init__(self, real: Any, counter: LogBytes) -> None:
        self.real, self.counter = real, counter

    def write(self, text: str) -> int:
        if text.startswith("{"):
            self.counter.bytes += len(text.encode("utf-8"))
            if text.startswith('{"_aws"'):
                return len(text)
        return self.real.write(text) if self.real is not None else len(text)

    def flush(self) -> None:
        if self.real is not None:
            self.real.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def left_out(steps_per_execution: int, log_bytes_per_step: float) -> dict[str, float]:
    """$ per million steps of the costs the totals leave out."""
    api = API_GATEWAY_PER_MILLION / steps_per_execution
    logs = log_bytes_per_step * 1e6 / 1024**3 * LOGS_PER_GB
    return {
        "api_gateway_start_requests": round(api, 4),
        "cloudwatch_logs_ingestion": round(logs, 4),
        "log_bytes_per_step": round(log_bytes_per_step, 1),
    }
